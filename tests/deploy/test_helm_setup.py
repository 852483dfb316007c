"""What the chart sets up around the services (rendered by the real helm): topics (a Job or Strimzi), the
Secret or the operator's own, the database roles and first admin token Jobs, and Kafka security for every
Kafka client."""

from sellthrough_runtime.kafka_security import KafkaSecuritySettings
from sellthrough_runtime.settings import ServiceSettings
from tests.deploy.chart import Render, component, jobs_by_component, objects, secret_key_value
from tests.deploy.code_facts import contract_topic_specs, env_names, parse_topic_specs, service_schema, services


def test_topic_job_creates_the_contract_topics(render: Render) -> None:
    manifests = render()
    assert not objects(manifests, "KafkaTopic")
    job = jobs_by_component(manifests)["topics"]
    assert "pre-install" in job["metadata"]["annotations"]["helm.sh/hook"]
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = {variable["name"]: variable["value"] for variable in container["env"]}
    assert parse_topic_specs(env["TOPICS"]) == contract_topic_specs(), "chart topics drifted from TOPICS"
    assert env["BOOTSTRAP_SERVERS"] == "kafka-0.kafka.example.internal:9092,kafka-1.kafka.example.internal:9092"
    assert "--config retention.ms=-1" in env["TOPIC_CONFIG"]
    assert "$TOPICS" in " ".join(container["args"])
    assert "kafka-topics.sh" in " ".join(container["args"])
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert any(mount["mountPath"] == "/tmp" for mount in container["volumeMounts"])


def test_strimzi_topics_replace_the_job(render: Render) -> None:
    manifests = render(kafka={"bootstrapServers": None,
                              "strimzi": {"enabled": True, "clusterName": "events", "namespace": "kafka"}})  # fmt: skip
    assert "topics" not in jobs_by_component(manifests)
    topics = objects(manifests, "KafkaTopic").values()
    assert {(t["spec"]["topicName"], t["spec"]["partitions"]) for t in topics} == contract_topic_specs()
    for topic in topics:
        assert topic["apiVersion"] == "kafka.strimzi.io/v1beta2"
        assert topic["metadata"]["labels"]["strimzi.io/cluster"] == "events"
        assert topic["metadata"]["namespace"] == "kafka"
        assert topic["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep", "uninstall keeps the log"
    (config_map,) = objects(manifests, "ConfigMap").values()
    assert config_map["data"]["KAFKA_BOOTSTRAP_SERVERS"] == "events-kafka-bootstrap.kafka.svc:9092"


def test_existing_secret_is_used_instead_of_a_generated_one(render: Render) -> None:
    manifests = render(
        ci=False,
        secret={"existingSecret": "prod-sellthrough"},
        database={"host": "db:5432"},
        kafka={"bootstrapServers": "k:9092"},
    )
    assert not objects(manifests, "Secret")
    for name in services():
        pod = component(manifests, "Deployment", name)["spec"]["template"]["spec"]
        (password,) = [v for v in pod["containers"][0]["env"] if v["name"] == "DB_PASSWORD"]
        assert password["valueFrom"]["secretKeyRef"]["name"] == "prod-sellthrough"
        assert {v["name"]: v for v in pod["volumes"]}["secrets"]["secret"]["secretName"] == "prod-sellthrough"
    for job in objects(manifests, "Job").values():
        for variable in job["spec"]["template"]["spec"]["containers"][0].get("env", []):
            if "valueFrom" in variable:
                assert variable["valueFrom"]["secretKeyRef"]["name"] == "prod-sellthrough", job["metadata"]["name"]


def test_database_jobs_create_the_roles_then_the_first_admin_token_before_the_services(render: Render) -> None:
    manifests = render()
    jobs = jobs_by_component(manifests)
    roles, bootstrap = jobs["db-roles"], jobs["tokens-bootstrap"]
    (secret,) = objects(manifests, "Secret").values()
    weights = {}
    for kind_name, hooked in [
        ("secret", secret),
        ("roles", roles),
        ("bootstrap", bootstrap),
        ("topics", jobs["topics"]),
    ]:
        annotations = hooked["metadata"]["annotations"]
        assert set(annotations["helm.sh/hook"].split(",")) == {"pre-install", "pre-upgrade"}, kind_name
        weights[kind_name] = int(annotations["helm.sh/hook-weight"])
    assert weights["secret"] < weights["roles"] < weights["bootstrap"], "the Secret first, then roles, then tokens"
    assert "hook-succeeded" not in bootstrap["metadata"]["annotations"]["helm.sh/hook-delete-policy"], (
        "kept, so the token it printed once can be read from its log"
    )
    schemas = {service_schema(facts) for facts in services().values()}
    (container,) = roles["spec"]["template"]["spec"]["containers"]
    command = container["command"]
    assert command[0] == "sellthrough-db-roles"
    readers = {command[i + 1] for i, arg in enumerate(command) if arg == "--auth-reader"}
    positional = [
        arg for i, arg in enumerate(command[1:], 1) if arg != "--auth-reader" and command[i - 1] != "--auth-reader"
    ]
    assert sorted(positional) == sorted(schemas)
    assert readers == {"order_capture", "query_api"}
    admin_url = "postgresql://sellthrough:ci-admin-password@postgres.example.internal:5432/sellthrough"
    assert secret_key_value(manifests, container, "DATABASE_URL") == admin_url
    for name, facts in services().items():
        variable = f"SELLTHROUGH_DB_PASSWORD_{service_schema(facts).upper()}"  # what sellthrough-db-roles reads
        assert secret_key_value(manifests, container, variable) == f"ci-{name}-password"
    (container,) = bootstrap["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["sellthrough-tokens", "bootstrap"]
    assert secret_key_value(manifests, container, "DATABASE_URL") == admin_url
    for job in (roles, bootstrap):
        pod = job["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["containers"][0]["securityContext"]["readOnlyRootFilesystem"] is True
        assert pod["containers"][0]["image"].endswith("/order-capture:0.1.0")
    assert not jobs_by_component(
        render(database={"rolesJob": {"enabled": False}, "tokensBootstrapJob": {"enabled": False}})
    ).keys() - {"topics"}


def test_kafka_security_reaches_every_kafka_client_from_a_secret(render: Render) -> None:
    security = {
        "protocol": "SASL_SSL",
        "saslMechanism": "SCRAM-SHA-512",
        "secretName": "kafka-credentials",
        "saslUsernameKey": "username",
        "saslPasswordKey": "password",
        "caKey": "ca.crt",
    }
    manifests = render(kafka={"security": security})
    containers = [component(manifests, "Deployment", name)["spec"]["template"]["spec"] for name in services()]
    containers.append(jobs_by_component(manifests)["topics"]["spec"]["template"]["spec"])
    for pod in containers:
        (container,) = pod["containers"]
        env = {v["name"]: v.get("value", v.get("valueFrom")) for v in container["env"]}
        assert env["KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
        assert env["KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
        assert env["KAFKA_SASL_USERNAME"] == {"secretKeyRef": {"name": "kafka-credentials", "key": "username"}}
        assert env["KAFKA_SASL_PASSWORD"] == {"secretKeyRef": {"name": "kafka-credentials", "key": "password"}}
        assert env["KAFKA_SSL_CA_FILE"] == "/etc/sellthrough/kafka-tls/ca.pem"
        assert "KAFKA_SSL_CERT_FILE" not in env
        mounts = {mount["name"]: mount["mountPath"] for mount in container["volumeMounts"]}
        assert mounts["kafka-tls"] == "/etc/sellthrough/kafka-tls"
        volume = {v["name"]: v for v in pod["volumes"]}["kafka-tls"]["secret"]
        assert volume == {
            "secretName": "kafka-credentials",
            "defaultMode": 0o440,
            "items": [{"key": "ca.crt", "path": "ca.pem"}],
        }
        # The names are the services' own settings, and the values are a combination they accept.
        assert {name for name in env if name.startswith("KAFKA_S")} <= env_names(ServiceSettings).keys()
    script = " ".join(jobs_by_component(manifests)["topics"]["spec"]["template"]["spec"]["containers"][0]["args"])
    assert script.count('--command-config "$props"') == 2
    KafkaSecuritySettings.model_validate(
        {"KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
         "KAFKA_SASL_USERNAME": "u", "KAFKA_SASL_PASSWORD": "p"}
    )  # fmt: skip
