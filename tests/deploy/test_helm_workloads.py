"""What the chart runs for each service (rendered by the real helm): a probed, non-root Deployment given the
settings the code reads, its Service, autoscaler, disruption budget, network policy and scraping."""

import re
from typing import Any

import pytest

from tests.deploy.chart import Render, RenderError, component, container_env, objects, secret_key_value
from tests.deploy.code_facts import service_schema, services


def test_each_service_runs_as_a_probed_non_root_deployment_with_the_settings_it_reads(render: Render) -> None:
    manifests = render()
    secrets = objects(manifests, "Secret")
    for name, facts in services().items():
        deployment = component(manifests, "Deployment", name)
        pod = deployment["spec"]["template"]
        assert deployment["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
        spec = pod["spec"]
        (container,) = spec["containers"]
        assert container["image"].endswith(f"/{name}:0.1.0")
        (port,) = container["ports"]
        assert port["containerPort"] == facts.default_port
        assert port["name"] == "http"
        for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
            assert container[probe]["httpGet"] == {"path": path, "port": "http"}, f"{name} {probe}"
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["runAsUser"] > 0
        security = container["securityContext"]
        assert security["readOnlyRootFilesystem"] is True
        assert security["allowPrivilegeEscalation"] is False
        assert security["capabilities"]["drop"] == ["ALL"]
        volumes = {volume["name"]: volume for volume in spec["volumes"]}
        mounts = {mount["mountPath"]: mount["name"] for mount in container["volumeMounts"]}
        assert "emptyDir" in volumes[mounts["/tmp"]], "a writable /tmp on a read-only root"
        resources = container["resources"]
        assert resources["requests"]["cpu"]
        assert resources["requests"]["memory"]
        assert resources["limits"]["memory"]

        env = container_env(manifests, container)
        missing = facts.needs_container_value - env.keys()
        assert not missing, f"{name} needs {sorted(missing)}"
        unknown = facts.unknown(env)
        assert not unknown, f"{name} is given {sorted(unknown)}, which {facts.module} does not read"
        assert env["SELLTHROUGH_HTTP_HOST"] == "0.0.0.0"
        assert int(env["SELLTHROUGH_HTTP_PORT"]) == facts.default_port
        for variable, value in env.items():
            assert not isinstance(value, str) or not re.search(r"\de[+-]\d\d$", value), f"{variable}={value}"
        # DATABASE_URL names the service's own role; its password comes from the Secret (Kubernetes fills in
        # $(DB_PASSWORD), declared before it); the tokens file is that Secret's key, mounted where the env says.
        role = service_schema(facts)
        assert env["DATABASE_URL"] == (f"postgresql://{role}:$(DB_PASSWORD)@postgres.example.internal:5432/sellthrough")
        names = [variable["name"] for variable in container["env"]]
        assert names.index("DB_PASSWORD") < names.index("DATABASE_URL"), "Kubernetes expands only earlier ones"
        assert secret_key_value(manifests, container, "DB_PASSWORD") == f"ci-{name}-password"
        (reference,) = [v["valueFrom"]["secretKeyRef"] for v in container["env"] if v["name"] == "DB_PASSWORD"]
        tokens_dir, _, tokens_key = env["SELLTHROUGH_TOKENS_FILE"].rpartition("/")
        secret_volume = volumes[mounts[tokens_dir]]["secret"]
        assert secret_volume["secretName"] == reference["name"]
        assert tokens_key in {item["path"] for item in secret_volume["items"]}
        assert tokens_key in secrets[reference["name"]]["stringData"]
        assert env["KAFKA_SECURITY_PROTOCOL"] == "PLAINTEXT"
        assert not [v for v in env if v.startswith(("KAFKA_SSL", "KAFKA_SASL"))], "unused security settings"


def test_tracing_is_off_unless_an_exporter_is_chosen(render: Render) -> None:
    (config_map,) = objects(render(), "ConfigMap").values()
    assert not [name for name in config_map["data"] if name.startswith("OTEL_")]
    manifests = render(tracing={"exporter": "otlp", "otlpEndpoint": "http://otel-collector.observability:4318"})
    for name, facts in services().items():
        container = component(manifests, "Deployment", name)["spec"]["template"]["spec"]["containers"][0]
        env = container_env(manifests, container)
        assert env["OTEL_TRACES_EXPORTER"] == "otlp"
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector.observability:4318"
        assert not facts.unknown(env), f"{name}: {sorted(facts.unknown(env))}"


def test_per_service_settings_and_config_must_be_names_the_code_reads(render: Render) -> None:
    manifests = render(services={"order-capture": {"env": {"SELLTHROUGH_MAX_BATCH_EVENTS": "500"}}})
    deployment = component(manifests, "Deployment", "order-capture")
    env = container_env(manifests, deployment["spec"]["template"]["spec"]["containers"][0])
    assert env["SELLTHROUGH_MAX_BATCH_EVENTS"] == "500"
    assert "SELLTHROUGH_MAX_BATCH_EVENTS" in services()["order-capture"].env
    assert "SELLTHROUGH_MAX_BATCH_EVENTS" not in services()["query-api"].env, "per-service, not shared"


def test_services_route_to_their_pods(render: Render) -> None:
    manifests = render()
    for name, facts in services().items():
        service = component(manifests, "Service", name)
        pod_labels = component(manifests, "Deployment", name)["spec"]["template"]["metadata"]["labels"]
        assert service["spec"]["selector"].items() <= pod_labels.items()
        (port,) = service["spec"]["ports"]
        assert port == {"name": "http", "port": facts.default_port, "targetPort": "http", "protocol": "TCP"}


def test_autoscaling_never_exceeds_the_partitions_a_service_consumes(render: Render) -> None:
    manifests = render()
    deployments = objects(manifests, "Deployment")
    for name, facts in services().items():
        hpa = component(manifests, "HorizontalPodAutoscaler", name)
        assert hpa["spec"]["scaleTargetRef"]["name"] in deployments
        assert "replicas" not in deployments[hpa["spec"]["scaleTargetRef"]["name"]]["spec"], "the HPA owns replicas"
        assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
        if facts.partition_cap is not None:
            assert hpa["spec"]["maxReplicas"] <= facts.partition_cap, f"{name}: idle consumers"
    capped = next(name for name, facts in services().items() if facts.partition_cap)
    too_many = services()[capped].partition_cap + 1  # type: ignore[operator]
    with pytest.raises(RenderError, match="sit idle"):
        render(services={capped: {"autoscaling": {"maxReplicas": too_many}}})


def test_replicas_are_fixed_when_autoscaling_is_off(render: Render) -> None:
    manifests = render(services={"query-api": {"autoscaling": {"enabled": False}, "replicas": 3}})
    assert component(manifests, "Deployment", "query-api")["spec"]["replicas"] == 3
    assert all(
        m["metadata"]["labels"]["app.kubernetes.io/component"] != "query-api"
        for m in objects(manifests, "HorizontalPodAutoscaler").values()
    )


def test_service_monitor_only_when_enabled(render: Render) -> None:
    assert not objects(render(), "ServiceMonitor")
    (monitor,) = objects(
        render(serviceMonitor={"enabled": True, "labels": {"release": "prom"}}), "ServiceMonitor"
    ).values()
    assert monitor["metadata"]["labels"]["release"] == "prom"
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] == "http"
    assert endpoint["path"] == "/metrics"
    services_objects = objects(render(), "Service").values()
    for service in services_objects:
        assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
        assert service["metadata"]["labels"][monitor["spec"]["jobLabel"]] == "sellthrough", "job label as in compose"


def _policy_ports(rules: list[dict[str, Any]]) -> list[set[tuple[Any, str]]]:
    return [{(port["port"], port["protocol"]) for port in rule["ports"]} for rule in rules]


def test_network_policies_let_in_only_api_callers_and_let_out_only_to_dns_postgres_kafka_and_otlp(
    render: Render,
) -> None:
    postgres_peer = {"ipBlock": {"cidr": "10.0.5.10/32"}}
    kafka_peer = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kafka"}}}
    manifests = render(networkPolicy={"egress": {"postgres": {"to": [postgres_peer]}, "kafka": {"to": [kafka_peer]}}})
    for name in services():
        policy = component(manifests, "NetworkPolicy", name)
        pod_labels = component(manifests, "Deployment", name)["spec"]["template"]["metadata"]["labels"]
        assert policy["spec"]["podSelector"]["matchLabels"].items() <= pod_labels.items()
        assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
        ingress = policy["spec"]["ingress"]
        if name in {"order-capture", "query-api"}:
            assert _policy_ports(ingress) == [{("http", "TCP")}]
            assert "from" not in ingress[0], "any caller may reach the API (apiFrom narrows it)"
        else:
            assert ingress == [], f"{name} accepts no connection"
        egress = policy["spec"]["egress"]
        assert _policy_ports(egress) == [{(53, "UDP"), (53, "TCP")}, {(5432, "TCP")}, {(9092, "TCP")}]
        assert [rule.get("to") for rule in egress] == [None, [postgres_peer], [kafka_peer]]
    # Traces over OTLP open the collector's port; scrapers may be let in to every service.
    prometheus = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
    manifests = render(
        tracing={"exporter": "otlp", "otlpEndpoint": "http://otel-collector.observability:4318"},
        networkPolicy={"metricsFrom": [prometheus]},
    )
    for name in services():
        policy = component(manifests, "NetworkPolicy", name)["spec"]
        assert {(4318, "TCP")} in _policy_ports(policy["egress"])
        assert {"ports": [{"port": "http", "protocol": "TCP"}], "from": [prometheus]} in policy["ingress"]
    assert not objects(render(networkPolicy={"enabled": False}), "NetworkPolicy")


def test_each_service_has_a_disruption_budget_that_never_blocks_a_drain(render: Render) -> None:
    manifests = render()
    for name in services():
        budget = component(manifests, "PodDisruptionBudget", name)
        pod_labels = component(manifests, "Deployment", name)["spec"]["template"]["metadata"]["labels"]
        assert budget["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
        assert budget["spec"]["maxUnavailable"] == 1
        assert "minAvailable" not in budget["spec"], "minAvailable 1 would block draining a one-replica service"
