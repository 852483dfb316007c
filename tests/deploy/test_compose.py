"""deploy/compose.yaml against the code it runs: every service built from the Dockerfile, given the settings
it needs and only names it reads, secrets required, topics, roles and the first token created before it."""

import re
import shutil
import subprocess

import pytest

from sellthrough_runtime.auth import TokenFile
from sellthrough_runtime.kafka_security import KafkaSecuritySettings
from sellthrough_runtime.settings import ServiceSettings
from tests.deploy.code_facts import ROOT, contract_topic_specs, env_names, parse_topic_specs, service_schema, services
from tests.deploy.compose_file import (
    COMPOSE_FILE,
    COMPOSE_SECRETS,
    DEPLOY,
    compose,
    compose_env,
    interpolate,
    password_variables,
    refusal,
)


def test_compose_builds_every_service_from_the_dockerfile() -> None:
    declared = compose()["services"]
    for name, facts in services().items():
        assert name in declared, f"compose.yaml has no {name}"
        build = declared[name]["build"]
        assert (DEPLOY / build["context"]).resolve() == ROOT
        assert (ROOT / build["dockerfile"]).resolve() == DEPLOY / "Dockerfile"
        assert build["args"]["SERVICE"] == name
        assert int(build["args"]["HTTP_PORT"]) == facts.default_port


def test_compose_gives_each_service_what_it_needs_and_only_names_it_reads() -> None:
    declared = compose()["services"]
    for name, facts in services().items():
        env = compose_env(name)
        missing = facts.needs_container_value - env.keys()
        assert not missing, f"{name} needs {sorted(missing)} in compose.yaml"
        unknown = facts.unknown(env)
        assert not unknown, f"{name} is given {sorted(unknown)}, which {facts.module} does not read"
        assert env["SELLTHROUGH_HTTP_HOST"] == "0.0.0.0"
        port = int(env["SELLTHROUGH_HTTP_PORT"])
        assert port == facts.default_port, "keep the documented ports"
        assert any(str(mapping).endswith(f":{port}") for mapping in declared[name].get("ports", []))
        # The tokens file is where the secret is mounted, and the database and broker are compose services.
        targets = [f"/run/secrets/{secret['target']}" for secret in declared[name]["secrets"]]
        assert env["SELLTHROUGH_TOKENS_FILE"] in targets
        # Each service logs in as its own role, with the password the db-roles step gives that role.
        role = service_schema(facts)
        variable = f"{role.upper()}_DB_PASSWORD"
        assert env["DATABASE_URL"] == f"postgresql://{role}:{COMPOSE_SECRETS[variable]}@postgres:5432/sellthrough"
        assert compose_env("db-roles")[f"SELLTHROUGH_DB_PASSWORD_{role.upper()}"] == COMPOSE_SECRETS[variable]
        assert all(server.split(":")[0] in declared for server in env["KAFKA_BOOTSTRAP_SERVERS"].split(","))


def test_compose_creates_the_contract_topics() -> None:
    init = compose()["services"]["topic-init"]
    assert init["image"].startswith("apache/kafka:")
    env = compose_env("topic-init")
    assert parse_topic_specs(env["TOPICS"]) == contract_topic_specs(), "compose topics drifted from TOPICS"
    script = " ".join(init["command"]) if isinstance(init["command"], list) else init["command"]
    assert "$$TOPICS" in script
    assert "kafka-topics.sh" in script
    assert "--partitions" in script
    assert init.get("restart") == "no"


def test_compose_runs_kraft_kafka_postgres_and_waits_for_them() -> None:
    declared = compose()["services"]
    kafka = compose_env("kafka")
    assert declared["kafka"]["image"].startswith("apache/kafka:")
    assert "controller" in kafka["KAFKA_PROCESS_ROLES"]
    assert "broker" in kafka["KAFKA_PROCESS_ROLES"]
    assert kafka["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false", "only topic-init creates topics"
    assert declared["postgres"]["image"].split(":")[1].startswith("16")
    for name in ("kafka", "postgres", *services()):
        assert declared[name].get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
    for name in services():
        assert any(path in str(declared[name]["healthcheck"]["test"]) for path in ("/readyz", "/healthz"))
        assert declared[name]["depends_on"] == {
            "postgres": {"condition": "service_healthy"},
            "kafka": {"condition": "service_healthy"},
            "topic-init": {"condition": "service_completed_successfully"},
            "db-roles": {"condition": "service_completed_successfully"},
            "tokens-bootstrap": {"condition": "service_completed_successfully"},
        }
    assert declared["topic-init"]["depends_on"] == {"kafka": {"condition": "service_healthy"}}
    assert declared["db-roles"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert declared["tokens-bootstrap"]["depends_on"] == {"db-roles": {"condition": "service_completed_successfully"}}


def test_compose_mounts_files_that_exist() -> None:
    for name, service in compose()["services"].items():
        for volume in service.get("volumes", []):
            source = str(volume).split(":")[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), f"{name} mounts {source}, which does not exist"
    for name, secret in compose()["secrets"].items():
        path = DEPLOY / interpolate(secret["file"])
        assert path.is_file(), f"secret {name}: {path} does not exist"
        assert TokenFile.model_validate_json(path.read_bytes()).tokens == [], "no usable token ships in the repo"


def test_compose_refuses_to_start_without_each_secret_and_has_no_default_password() -> None:
    text = COMPOSE_FILE.read_text()
    # Every password is required: ${NAME:?message}, never ${NAME:-default} or ${NAME}.
    for variable in password_variables(text):
        uses = re.findall(r"\$\{" + variable + r"(:?[-?]?)", text)
        assert uses, variable
        if variable.startswith("KAFKA_"):
            assert set(uses) == {":-"}, f"{variable}: optional (empty unless Kafka uses it), so no default value"
            assert re.search(r"\$\{" + variable + r":-\}", text), f"{variable}: its default must be empty"
        else:
            assert set(uses) == {":?"}, f"{variable}: compose must refuse to start without it"
    assert set(COMPOSE_SECRETS) == {v for v in password_variables(text) if not v.startswith("KAFKA_")}
    for missing in COMPOSE_SECRETS:
        others = {name: value for name, value in COMPOSE_SECRETS.items() if name != missing}
        for given in (others, {**others, missing: ""}):  # unset, or set to nothing
            refusals = {refusal(service, given) for service in compose()["services"]} - {None}
            assert refusals == {f"compose needs {missing}"}, (missing, refusals)
    # The example environment file names every secret and gives none a value.
    example = dict(
        line.split("=", 1) for line in (DEPLOY / ".env.example").read_text().splitlines() if re.match(r"[A-Z_]+=", line)
    )
    assert set(COMPOSE_SECRETS) <= example.keys()
    assert all(value == "" for value in example.values()), "no usable value in the example"
    assert "change-me" not in text
    assert "example-" not in (DEPLOY / "README.md").read_text(), "no example tokens in the docs"


def test_compose_creates_the_database_roles_and_the_first_admin_token_before_the_services() -> None:
    declared = compose()["services"]
    roles = declared["db-roles"]
    command = roles["command"]
    assert command[0] == "sellthrough-db-roles"
    schemas = {service_schema(facts) for facts in services().values()}
    positional = [
        arg for i, arg in enumerate(command[1:], 1) if not arg.startswith("--") and command[i - 1] != "--auth-reader"
    ]
    assert set(positional) == schemas
    readers = {command[i + 1] for i, arg in enumerate(command) if arg == "--auth-reader"}
    assert readers == {"order_capture", "query_api"}, "only the services that authenticate callers read the tokens"
    admin_url = "postgresql://sellthrough:pg-admin-secret@postgres:5432/sellthrough"
    env = compose_env("db-roles")
    assert env["DATABASE_URL"] == admin_url
    for schema in schemas:
        assert env[f"SELLTHROUGH_DB_PASSWORD_{schema.upper()}"] == COMPOSE_SECRETS[f"{schema.upper()}_DB_PASSWORD"]
    bootstrap = declared["tokens-bootstrap"]
    assert bootstrap["command"] == ["sellthrough-tokens", "bootstrap"]
    assert compose_env("tokens-bootstrap")["DATABASE_URL"] == admin_url
    for one_shot in (roles, bootstrap):
        assert one_shot["restart"] == "no"
        assert one_shot["build"]["dockerfile"] == "deploy/Dockerfile", "built here, never pulled"
        assert one_shot["image"] == declared["order-capture"]["image"]
    for name in services():
        assert "DATABASE_URL" in compose_env(name)
        assert compose_env(name)["DATABASE_URL"] != admin_url, f"{name} must not use the administrator"


def test_compose_passes_kafka_security_to_every_kafka_client() -> None:
    variables = {str(info.validation_alias) for info in KafkaSecuritySettings.model_fields.values()}
    assert variables <= env_names(ServiceSettings).keys(), "every service reads them"
    assert "KAFKA_SECURITY_PROTOCOL" in variables
    assert "KAFKA_SASL_PASSWORD" in variables
    for name in [*services(), "topic-init"]:
        env = compose_env(name)
        assert variables <= env.keys(), f"{name} lacks {sorted(variables - env.keys())}"
        assert env["KAFKA_SECURITY_PROTOCOL"] == "PLAINTEXT"
        mounts = [str(volume) for volume in compose()["services"][name].get("volumes", [])]
        assert any(mount.endswith(":/etc/sellthrough/kafka-tls:ro") for mount in mounts), name
    script = compose()["services"]["topic-init"]["command"][0]
    assert script.count('--command-config "$$props"') == 2, "both kafka-topics.sh calls use the security settings"


def test_docker_compose_config_accepts_the_file() -> None:
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("no docker client on PATH")
    probe = subprocess.run([docker, "compose", "version"], capture_output=True, text=True, check=False)
    if probe.returncode != 0:
        pytest.skip(f"the docker client has no compose plugin ({probe.stderr.strip() or probe.stdout.strip()})")
    result = subprocess.run(
        [docker, "compose", "-f", str(COMPOSE_FILE), "config", "--quiet"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
