"""The production deployment files (deploy/, helm/sellthrough/) checked against the code they deploy.

What the code reads is derived from the code, never listed here: environment variable names from the
pydantic settings classes, topics and partition counts from `sellthrough_contracts.topics.TOPICS`, the
topics each service consumes from its `consumer_job(topics=...)` calls, metric names and labels from
`sellthrough_runtime.metrics`. Renaming a setting, adding a topic or a consumer makes these tests fail until
the deployment files follow.

Rendering the Helm chart: no `helm` binary is installable here (no Debian package; no PyPI package ships the
Linux binary: `helm-package` has only macOS and Windows builds, and `helm-sdkpy` needs Python 3.12 and offers
lint but no template rendering). When `helm` is on PATH the chart is rendered with `helm template` and linted
with `helm lint`. Otherwise it is rendered by `GoTemplate` below, an interpreter of the subset of Go
text/template and Sprig that the chart uses, following their documented semantics, including the ones that
bite in real Helm: numbers from values are float64 (so `eq`/`gt` against an int literal is an error and
large numbers print as 8.388608e+06), missing map keys are nil, a field of nil is an error, `default`
treats 0/false/"" as empty. A function or construct outside that subset raises, so the test fails rather
than silently rendering something Helm would not. Only `helm lint` is skipped without the binary.
"""

import ast
import base64
import hashlib
import importlib
import json
import re
import shutil
import subprocess
import tomllib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase
from pydantic import AliasChoices, AliasPath
from pydantic.fields import FieldInfo

import sellthrough_contracts.topics as contract_topics
from sellthrough_contracts.topics import TOPICS, Topic
from sellthrough_runtime import metrics as runtime_metrics
from sellthrough_runtime.auth import TokenFile
from sellthrough_runtime.kafka_security import KafkaSecuritySettings
from sellthrough_runtime.settings import ServiceSettings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
CHART = ROOT / "helm" / "sellthrough"
COMPOSE_FILE = DEPLOY / "compose.yaml"
RELEASE = "rel"
NAMESPACE = "sellthrough"
KUBE_VERSION = "1.30.0"  # the chart needs >= 1.25; older helm releases default to an older version

# Set in every container whatever their defaults: the port, because probes, Services and scrape targets must
# agree on it; the tokens file, because without one every request is refused with 401.
ALWAYS_SET = {"SELLTHROUGH_HTTP_PORT", "SELLTHROUGH_TOKENS_FILE"}
# The variables deploy/README.md promises every container gets; the derived set must cover them.
NAMED_CONTAINER_VARIABLES = {
    "DATABASE_URL",
    "KAFKA_BOOTSTRAP_SERVERS",
    "SELLTHROUGH_TOKENS_FILE",
    "SELLTHROUGH_HTTP_HOST",
    "SELLTHROUGH_HTTP_PORT",
}
LOOPBACK = ("127.0.0.1", "localhost", "::1")


# ---------------------------------------------------------------------------------------------------------
# What the code reads
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServiceFacts:
    name: str  # directory under services/, image and object name
    module: str
    settings: tuple[type[ServiceSettings], ...]
    env: dict[str, FieldInfo]  # every setting the service reads (upper case) -> its field
    consumes: frozenset[str]  # topic names its consumer groups read
    environ_names: frozenset[str] = frozenset()  # read directly from os.environ (runtime and service code)

    def unknown(self, names: Iterable[str]) -> set[str]:
        """The names among `names` that this service does not read."""
        return {name for name in names if not _reads(self.env, set(self.environ_names), name)}

    @property
    def default_port(self) -> int:
        ports = {cls.model_fields["http_port"].default for cls in self.settings}
        assert len(ports) == 1, f"{self.name}: its settings classes disagree on http_port: {ports}"
        return int(ports.pop())

    @property
    def needs_container_value(self) -> set[str]:
        """Variables without a default, or whose default is a loopback address (nothing listens there in a
        container, and a server bound there is unreachable from outside it), plus ALWAYS_SET."""
        needed = set(ALWAYS_SET)
        for name, info in self.env.items():
            default = None if info.is_required() else info.get_default(call_default_factory=True)
            if info.is_required() or (isinstance(default, str) and any(host in default for host in LOOPBACK)):
                needed.add(name)
        return needed

    @property
    def partition_cap(self) -> int | None:
        """Most useful replicas: a consumer group gives each partition to one member."""
        counts = [topic.partitions for topic in TOPICS if topic.name in self.consumes]
        return max(counts) if counts else None


def _subclasses(cls: type[ServiceSettings]) -> Iterator[type[ServiceSettings]]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def _env_names(cls: type[ServiceSettings]) -> dict[str, FieldInfo]:
    """The variables pydantic-settings reads for `cls`: an alias replaces prefix + field name."""
    assert not cls.model_config.get("case_sensitive"), "names are compared upper-cased"
    prefix = cls.model_config.get("env_prefix", "")
    names: dict[str, FieldInfo] = {}
    for field_name, info in cls.model_fields.items():
        alias = info.validation_alias if info.validation_alias is not None else info.alias
        choices = alias.choices if isinstance(alias, AliasChoices) else [alias]
        for choice in choices:
            if choice is None:
                names[(prefix + field_name).upper()] = info
            elif isinstance(choice, AliasPath):
                names[str(choice.path[0]).upper()] = info
            else:
                names[choice.upper()] = info
    return names


def _call_name(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return ""


def _consumed_topics(module: str) -> frozenset[str]:
    """Topic names passed to consumer_job(topics=[X.name, ...]) or ConsumerSpec(topics=(X.name, ...)) anywhere in
    the service's package."""
    by_constant = {name: value for name, value in vars(contract_topics).items() if isinstance(value, Topic)}
    package = importlib.import_module(module)
    assert package.__file__ is not None
    consumed: set[str] = set()
    for path in sorted(Path(package.__file__).parent.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.Call):
                continue
            name = _call_name(node.func)
            where = f"{path.relative_to(ROOT)}:{node.lineno}"
            assert name not in {"make_consumer", "AIOKafkaConsumer"}, (
                f"{where}: a consumer not built by consumer_job; teach this test which topics it reads"
            )
            if name not in {"consumer_job", "ConsumerSpec"}:
                continue
            topics = next((k.value for k in node.keywords if k.arg == "topics"), None)
            if name == "consumer_job" and isinstance(topics, ast.Attribute) and topics.attr == "topics":
                continue  # consumer_job(topics=spec.topics): the ConsumerSpec(topics=[...]) call names them
            assert isinstance(topics, ast.List | ast.Tuple), f"{where}: topics= is not a literal list"
            for element in topics.elts:
                # Only <TOPIC>.name with TOPIC a Topic of sellthrough_contracts.topics is understood.
                is_topic = isinstance(element, ast.Attribute) and isinstance(element.value, ast.Name)
                constant = element.value.id if is_topic and element.attr == "name" else ""  # type: ignore[attr-defined]
                assert constant in by_constant, (
                    f"{where}: expected <TOPIC>.name, TOPIC from sellthrough_contracts.topics"
                )
                consumed.add(by_constant[constant].name)
    return frozenset(consumed)


def _environ_reads(package_dir: Path) -> set[str]:
    """Names read with os.environ.get("X"), os.environ["X"] or os.getenv("X") in a package."""
    names: set[str] = set()
    for path in package_dir.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            key: ast.expr | None = None
            if isinstance(node, ast.Call) and node.args and _call_name(node.func) in {"get", "getenv"}:
                receiver = node.func.value if isinstance(node.func, ast.Attribute) else None
                if _call_name(node.func) == "getenv" or (receiver is not None and _call_name(receiver) == "environ"):
                    key = node.args[0]
            elif isinstance(node, ast.Subscript) and _call_name(node.value) == "environ":
                key = node.slice
            if isinstance(key, ast.Constant) and isinstance(key.value, str):
                names.add(key.value)
    return names


def _reads(env: dict[str, FieldInfo], environ_names: set[str], name: str) -> bool:
    """Whether a service reads variable `name`: a setting, a direct environment read, or, once the code
    configures OpenTelemetry from the environment (OTEL_TRACES_EXPORTER), the SDK's OTEL_* variables."""
    otel = "OTEL_TRACES_EXPORTER" in environ_names and name.startswith("OTEL_")
    return name.upper() in env or name in environ_names or otel


@cache
def services() -> dict[str, ServiceFacts]:
    """Every package under services/, with the module its console script runs."""
    found: dict[str, ServiceFacts] = {}
    for pyproject in sorted((ROOT / "services").glob("*/pyproject.toml")):
        project = tomllib.loads(pyproject.read_text())["project"]
        (entry_point,) = project["scripts"].values()
        module = entry_point.split(".", 1)[0]
        importlib.import_module(f"{module}.main")
        classes = tuple(c for c in _subclasses(ServiceSettings) if c.__module__.split(".")[0] == module)
        assert classes, f"{module} defines no ServiceSettings subclass"
        env = _env_names(ServiceSettings)
        for cls in classes:
            env.update(_env_names(cls))
        package_dir = Path(importlib.import_module(module).__file__ or "").parent
        environ_names = _environ_reads(package_dir) | _environ_reads(Path(runtime_metrics.__file__ or "").parent)
        found[pyproject.parent.name] = ServiceFacts(
            pyproject.parent.name, module, classes, env, _consumed_topics(module), frozenset(environ_names)
        )
    assert len(found) >= 4
    return found


def contract_topic_specs() -> set[tuple[str, int]]:
    return {(topic.name, topic.partitions) for topic in TOPICS}


def parse_topic_specs(value: str) -> set[tuple[str, int]]:
    """The "name:partitions name:partitions" form the topic creators read."""
    specs = set()
    for spec in value.split():
        name, _, partitions = spec.rpartition(":")
        specs.add((name, int(partitions)))
    assert len(specs) == len(value.split()), f"duplicate topic in {value!r}"
    return specs


def test_settings_derivation_covers_the_container_variables() -> None:
    for facts in services().values():
        assert facts.needs_container_value >= NAMED_CONTAINER_VARIABLES, facts.name
        assert "DATABASE_URL" in facts.env
        assert "SELLTHROUGH_DB_POOL_MAX" in facts.env
        assert "SELLTHROUGH_DATABASE_URL" not in facts.env, "an alias replaces the prefixed name"
        assert facts.unknown(["SELLTHROUGH_HTTP_PORT", "DATABASE_URL"]) == set()
        assert facts.unknown(["SELLTHROUGH_NO_SUCH_SETTING", "DB_URL"]) == {"SELLTHROUGH_NO_SUCH_SETTING", "DB_URL"}


def test_consumed_topics_are_read_from_the_code() -> None:
    facts = services()
    assert facts["query-api"].consumes >= {contract_topics.REFERENCE.name, contract_topics.TRADE.name}
    assert facts["order-capture"].consumes >= {contract_topics.REFERENCE.name}


# ---------------------------------------------------------------------------------------------------------
# Dockerfile
# ---------------------------------------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    instructions: list[tuple[str, str]] = []
    pending = ""
    for line in (DEPLOY / "Dockerfile").read_text().splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        text = (pending + line).strip()
        pending = ""
        keyword, _, rest = text.partition(" ")
        instructions.append((keyword.upper(), rest.strip()))
    return instructions


def test_dockerfile_builds_any_service_as_non_root() -> None:
    instructions = dockerfile_instructions()
    stages = [i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM"]
    assert len(stages) >= 2, "multi-stage"
    for index in stages:
        assert instructions[index][1].split()[0] == "python:3.11-slim"
    final = instructions[stages[-1] :]
    arguments = {rest.split("=")[0] for keyword, rest in instructions if keyword == "ARG"}
    assert "SERVICE" in arguments
    runs = " ".join(rest for keyword, rest in instructions if keyword == "RUN")
    assert "pip install -c constraints.txt ./contracts ./runtime ./services/${SERVICE}" in runs
    users = [rest for keyword, rest in final if keyword == "USER"]
    assert users, "the runtime stage sets USER"
    uid = users[-1].split(":")[0]
    assert uid.isdigit(), "a numeric uid, so runAsNonRoot can check it"
    assert int(uid) != 0
    assert any(keyword == "EXPOSE" for keyword, _ in final)
    (healthcheck,) = [rest for keyword, rest in final if keyword == "HEALTHCHECK"]
    assert "/healthz" in healthcheck
    assert "SELLTHROUGH_HTTP_PORT" in healthcheck
    assert any(keyword == "CMD" for keyword, _ in final)
    env = " ".join(rest for keyword, rest in final if keyword == "ENV")
    assert "SELLTHROUGH_HTTP_HOST=0.0.0.0" in env
    for keyword, rest in instructions:
        if keyword == "COPY" and not rest.startswith("--from"):
            source = rest.split()[0].replace("${SERVICE}", "order-capture")
            assert (ROOT / source).exists(), f"COPY {source}: not in the repository"


def _ignore_pattern(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern as a regex on slash-separated paths relative to the context (Go
    filepath.Match plus `**`); a match of a directory also covers what is below it."""
    regex = ""
    parts = pattern.strip("/").split("/")
    for i, part in enumerate(parts):
        if part == "**":
            regex += "(?:[^/]+/)*" if i < len(parts) - 1 else ".*"
            continue
        regex += "".join("[^/]*" if c == "*" else "[^/]" if c == "?" else re.escape(c) for c in part)
        if i < len(parts) - 1:
            regex += "/"
    return re.compile(regex + "(?:/.*)?")


def docker_ignored(relative: str) -> bool:
    ignored = False
    for line in (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines():
        pattern = line.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negated = pattern.startswith("!")
        if _ignore_pattern(pattern.lstrip("!")).fullmatch(relative):
            ignored = not negated
    return ignored


def test_docker_context_sends_what_the_image_installs() -> None:
    # BuildKit reads <Dockerfile>.dockerignore next to the Dockerfile; a deploy/.dockerignore would be ignored.
    assert not (DEPLOY / ".dockerignore").exists()
    needed = [ROOT / "constraints.txt"]
    for project in (ROOT / "contracts", ROOT / "runtime", *(ROOT / "services").iterdir()):
        for path in project.rglob("*"):
            parts = path.relative_to(project).parts
            leftover = parts[0] in {"build", "dist", "schemas"} or path.suffix == ".pyc"  # setuptools, caches
            if (
                path.is_file()
                and not leftover
                and not any(p.endswith(".egg-info") or p == "__pycache__" for p in parts)
            ):
                needed.append(path)
    assert any(path.suffix == ".sql" for path in needed)
    for path in needed:
        assert not docker_ignored(path.relative_to(ROOT).as_posix()), f"{path.relative_to(ROOT)} is not sent"
    for unwanted in (
        ".venv/bin/python",
        ".git/HEAD",
        ".dev/tokens.env",
        "tests/conftest.py",
        "runtime/sellthrough_runtime.egg-info/PKG-INFO",
        "runtime/sellthrough_runtime/__pycache__/x.pyc",
        "runtime/build/lib/sellthrough_runtime/app.py",
        "services/query-api/build/lib/query_api/main.py",
    ):
        assert docker_ignored(unwanted), f"{unwanted} would be sent to the builder"


# ---------------------------------------------------------------------------------------------------------
# docker compose
# ---------------------------------------------------------------------------------------------------------


def interpolate(value: str, environ: dict[str, str] | None = None) -> str:
    """Compose's variable substitution ($$, ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, nested
    defaults), from `environ` (empty: what compose does with nothing set in the shell)."""
    environ = environ or {}
    out, i = "", 0
    while i < len(value):
        if value.startswith("$$", i):
            out, i = out + "$", i + 2
        elif value.startswith("${", i):
            depth, j = 1, i + 2
            while depth:
                if value.startswith("${", j):
                    depth, j = depth + 1, j + 2
                    continue
                depth -= value[j] == "}"
                j += 1
            match = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)(:-|-|:\?|\?)?(.*)", value[i + 2 : j - 1], re.S)
            assert match, f"bad substitution in {value!r}"
            name, operator, argument = match.groups()
            unset = name not in environ if operator in {"-", "?"} else not environ.get(name)
            if operator and operator.endswith("?") and unset:
                raise AssertionError(f"compose needs {name}: {argument}")
            out += interpolate(argument, environ) if operator and unset else environ.get(name, "")
            i = j
        else:
            out, i = out + value[i], i + 1
    return out


@cache
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())
    return loaded


COMPOSE_SECRETS = {
    "POSTGRES_PASSWORD": "pg-admin-secret",
    "ORDER_CAPTURE_DB_PASSWORD": "oc-secret",
    "STOCK_LEDGER_DB_PASSWORD": "sl-secret",
    "SCHEME_ENGINE_DB_PASSWORD": "se-secret",
    "QUERY_API_DB_PASSWORD": "qa-secret",
    "GRAFANA_ADMIN_PASSWORD": "grafana-secret",
}
"""What an operator must set (deploy/.env.example lists them): compose refuses to start without any of them."""


def compose_env(service: str, environ: dict[str, str] | None = None) -> dict[str, str]:
    """The service's environment as compose hands it over with only the required secrets set in the shell."""
    environment = compose()["services"][service].get("environment", {})
    if isinstance(environment, list):
        environment = dict(item.split("=", 1) for item in environment)
    given = COMPOSE_SECRETS if environ is None else environ
    return {name: interpolate(str(value), given) for name, value in environment.items()}


def service_schema(facts: ServiceFacts) -> str:
    """The PostgreSQL schema (and role) of a service: the SCHEMA its composition root passes to the app."""
    schema = importlib.import_module(f"{facts.module}.main").SCHEMA
    assert isinstance(schema, str)
    return schema


def refusal(service: str, environ: dict[str, str]) -> str | None:
    """Why compose refuses to start `service` with `environ` ("compose needs NAME"), or None."""
    try:
        compose_env(service, environ)
    except AssertionError as error:
        return str(error).split(":")[0]
    return None


def password_variables(compose_text: str) -> set[str]:
    return set(re.findall(r"\$\{([A-Z0-9_]*PASSWORD[A-Z0-9_]*)", compose_text))


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
    assert variables <= _env_names(ServiceSettings).keys(), "every service reads them"
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


# ---------------------------------------------------------------------------------------------------------
# Prometheus and Grafana
# ---------------------------------------------------------------------------------------------------------

TARGET_LABELS = {"job", "instance", "component"}


@cache
def exported_metrics() -> dict[str, frozenset[str]]:
    """Every series name the runtime exports -> its label names."""
    exported: dict[str, frozenset[str]] = {}
    for metric in vars(runtime_metrics).values():
        if not isinstance(metric, MetricWrapperBase):
            continue
        labels = frozenset(metric._labelnames)
        (family,) = metric.describe()
        suffixes = {"counter": ["_total"], "gauge": [""], "histogram": ["_bucket", "_sum", "_count"],
                    "summary": ["_sum", "_count"], "info": ["_info"]}  # fmt: skip
        assert family.type in suffixes, f"{family.name}: teach this test the series of a {family.type}"
        for suffix in suffixes[family.type]:
            exported[family.name + suffix] = labels | ({"le"} if suffix == "_bucket" else set())
    assert "sellthrough_consumer_lag" in exported
    assert "sellthrough_dead_letters_total" in exported
    return exported


def check_promql(expr: str, where: str) -> set[str]:
    """Every metric `expr` names is exported, and every label it groups or matches by exists on one of them.
    Returns the metric names."""
    exported = exported_metrics()
    expr = expr.replace("$__rate_interval", "5m")
    names = set(re.findall(r"\bsellthrough_[a-z0-9_]+\b", expr))
    unknown = names - exported.keys()
    assert not unknown, f"{where}: {sorted(unknown)} are not exported by sellthrough_runtime.metrics"
    known_labels = set(TARGET_LABELS)
    for name in names:
        known_labels |= exported[name]
    used = set()
    for group in re.findall(r"\b(?:by|without|on|ignoring)\s*\(([^)]*)\)", expr):
        used |= {label.strip() for label in group.split(",") if label.strip()}
    for matchers in re.findall(r"\{([^}]*)\}", expr):
        used |= set(re.findall(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)", matchers))
    assert not used - known_labels, f"{where}: labels {sorted(used - known_labels)} exist on none of {sorted(names)}"
    return names | ({"up"} if re.search(r"\bup\b", expr) else set())


def test_prometheus_scrapes_every_service_and_loads_the_rules() -> None:
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    (job,) = [job for job in config["scrape_configs"] if job["job_name"] == "sellthrough"]
    assert job.get("metrics_path", "/metrics") == "/metrics"
    targets = {target for group in job["static_configs"] for target in group["targets"]}
    expected = {f"{name}:{compose_env(name)['SELLTHROUGH_HTTP_PORT']}" for name in services()}
    assert targets == expected
    mounted = {str(v).split(":")[1]: str(v).split(":")[0] for v in compose()["services"]["prometheus"]["volumes"]}
    for rule_file in config["rule_files"]:
        assert rule_file in mounted
        assert (DEPLOY / mounted[rule_file]).is_file()


def test_alert_rules_cover_lag_dead_letters_outbox_and_down_services() -> None:
    rules = [
        rule
        for group in yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())["groups"]
        for rule in group["rules"]
    ]
    covered: set[str] = set()
    for rule in rules:
        assert rule["alert"]
        assert rule["labels"]["severity"] in {"warning", "critical"}
        names = check_promql(rule["expr"], rule["alert"])
        covered |= names
        annotations = " ".join(rule["annotations"].values())
        for label in re.findall(r"\$labels\.([a-zA-Z_]+)", annotations):
            assert label in TARGET_LABELS or any(label in exported_metrics().get(n, ()) for n in names), label
    assert {"sellthrough_consumer_lag", "sellthrough_dead_letters_total", "sellthrough_outbox_backlog", "up"} <= covered
    (down,) = [rule for rule in rules if re.search(r"\bup\b", rule["expr"])]
    assert 'job="sellthrough"' in down["expr"], "the job label both compose and the ServiceMonitor give"


def test_grafana_provisions_prometheus_and_a_dashboard_of_known_metrics() -> None:
    grafana = DEPLOY / "grafana"
    (datasource,) = yaml.safe_load((grafana / "provisioning/datasources/prometheus.yml").read_text())["datasources"]
    assert datasource["type"] == "prometheus"
    assert datasource["url"] == "http://prometheus:9090"
    (provider,) = yaml.safe_load((grafana / "provisioning/dashboards/sellthrough.yml").read_text())["providers"]
    mounts = {str(v).split(":")[1]: str(v).split(":")[0] for v in compose()["services"]["grafana"]["volumes"]}
    assert (DEPLOY / mounts[provider["options"]["path"]] / "sellthrough.json").is_file()
    dashboard = json.loads((grafana / "dashboards" / "sellthrough.json").read_text())
    used: set[str] = set()
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == datasource["uid"]
        for target in panel["targets"]:
            used |= check_promql(target["expr"], f"panel {panel['title']!r}")
    wanted = {
        "sellthrough_events_ingested_total",  # ingest rate
        "sellthrough_consumer_lag",
        "sellthrough_outbox_backlog",
        "sellthrough_dead_letters_total",
        "sellthrough_http_requests_total",  # errors
        "sellthrough_http_request_seconds_bucket",  # latency
    }
    assert wanted <= used, f"the dashboard does not show {sorted(wanted - used)}"


# ---------------------------------------------------------------------------------------------------------
# A Go text/template + Sprig subset: the fallback Helm renderer (see the module docstring)
# ---------------------------------------------------------------------------------------------------------


class GoTemplateError(Exception):
    pass


_MISSING: Any = object()
_WS = " \t\r\n"
_ACTION = re.compile(r"\{\{(-[ \t\r\n])?(.*?)([ \t\r\n]-)?\}\}", re.DOTALL)
_TOKEN = re.compile(
    r"""(?P<ws>\s+)|(?P<str>"(?:[^"\\]|\\.)*")|(?P<raw>`[^`]*`)|(?P<decl>:=)|(?P<assign>=)|(?P<pipe>\|)
    |(?P<lparen>\()|(?P<rparen>\))|(?P<comma>,)|(?P<var>\$[A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*)
    |(?P<field>(?:\.[A-Za-z0-9_]+)+|\.)|(?P<num>[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)|(?P<ident>[A-Za-z_][A-Za-z0-9_]*)""",
    re.VERBOSE,
)


@dataclass
class _Operand:
    kind: str  # lit, field, var, call, sub
    value: Any = None
    path: list[str] = field(default_factory=list)


@dataclass
class _Pipeline:
    cmds: list[list[_Operand]]
    decl: list[str] = field(default_factory=list)
    assign: bool = False  # `=` rather than `:=`


@dataclass
class _Node:
    kind: str  # text, action, if, range, with, template
    text: str = ""
    pipe: _Pipeline | None = None
    branches: list[tuple[_Pipeline | None, list["_Node"]]] = field(default_factory=list)
    body: list["_Node"] = field(default_factory=list)
    else_body: list["_Node"] = field(default_factory=list)


def _tokens(body: str) -> list[tuple[str, str, int, int]]:
    tokens, pos = [], 0
    while pos < len(body):
        match = _TOKEN.match(body, pos)
        if match is None:
            raise GoTemplateError(f"cannot parse {body[pos:]!r}")
        kind = match.lastgroup or ""
        if kind != "ws":
            tokens.append((kind, match.group(), match.start(), match.end()))
        pos = match.end()
    return tokens


def _parse_pipeline(tokens: list[tuple[str, str, int, int]]) -> _Pipeline:
    pipe = _Pipeline(cmds=[])
    i = 0
    if tokens and tokens[0][0] == "var":
        j, names = 0, []
        while j < len(tokens) and tokens[j][0] == "var":
            names.append(tokens[j][1])
            j += 1
            if j < len(tokens) and tokens[j][0] == "comma":
                j += 1
        if j < len(tokens) and tokens[j][0] in {"decl", "assign"}:
            pipe.decl, pipe.assign, i = names, tokens[j][0] == "assign", j + 1
    command: list[_Operand] = []
    while i < len(tokens):
        kind, text, _, end = tokens[i]
        if kind == "pipe":
            pipe.cmds.append(command)
            command, i = [], i + 1
            continue
        if kind == "lparen":
            depth, j = 1, i + 1
            while depth:
                depth += {"lparen": 1, "rparen": -1}.get(tokens[j][0], 0)
                j += 1
            operand = _Operand("sub", _parse_pipeline(tokens[i + 1 : j - 1]))
            if j < len(tokens) and tokens[j][0] == "field" and tokens[j][2] == tokens[j - 1][3]:
                operand.path, j = tokens[j][1].split(".")[1:], j + 1
            command.append(operand)
            i = j
            continue
        if kind in {"str", "raw"}:
            command.append(_Operand("lit", json.loads(text) if kind == "str" else text[1:-1]))
        elif kind == "num":
            command.append(_Operand("lit", float(text) if re.search(r"[.eE]", text) else int(text)))
        elif kind == "field":
            command.append(_Operand("field", path=[p for p in text.split(".") if p]))
        elif kind == "var":
            name, *path = text.split(".")
            command.append(_Operand("var", name, path))
        elif kind == "ident":
            literals = {"true": True, "false": False, "nil": None}
            command.append(_Operand("lit", literals[text]) if text in literals else _Operand("call", text))
        else:
            raise GoTemplateError(f"unexpected {text!r} at {end}")
        i += 1
    if command:
        pipe.cmds.append(command)
    if not pipe.cmds:
        raise GoTemplateError("missing value for command")
    return pipe


class GoTemplate:
    """Parses template files into one namespace (as Helm does) and renders them."""

    def __init__(self) -> None:
        self.templates: dict[str, list[_Node]] = {}
        self.funcs: dict[str, Callable[..., Any]] = {**SPRIG, "include": self._include, "tpl": self._unsupported}

    def _unsupported(self, *args: Any) -> Any:
        raise GoTemplateError("tpl is not supported by the fallback renderer")

    def parse(self, name: str, source: str) -> None:
        items: list[tuple[str, str]] = []
        pos, trim_next = 0, False
        for match in _ACTION.finditer(source):
            text = source[pos : match.start()]
            if trim_next:
                text = text.lstrip(_WS)
            if match.group(1):
                text = text.rstrip(_WS)
            items.append(("text", text))
            body = match.group(2).strip()
            if not (body.startswith("/*") and body.endswith("*/")):
                items.append(("action", body))
            trim_next, pos = bool(match.group(3)), match.end()
        tail = source[pos:]
        items.append(("text", tail.lstrip(_WS) if trim_next else tail))
        nodes, _, stop = self._parse_list(items, 0)
        if stop is not None:
            raise GoTemplateError(f"{name}: unexpected {{{{{stop}}}}}")
        self.templates[name] = nodes

    def _parse_list(self, items: list[tuple[str, str]], i: int) -> tuple[list[_Node], int, str | None]:
        nodes: list[_Node] = []
        while i < len(items):
            kind, body = items[i]
            i += 1
            if kind == "text":
                if body:
                    nodes.append(_Node("text", text=body))
                continue
            word, _, rest = body.partition(" ")
            rest = rest.strip()
            if word in {"end", "else"}:
                return nodes, i, body
            if word == "if":
                node = _Node("if")
                condition: _Pipeline | None = _parse_pipeline(_tokens(rest))
                while True:
                    branch, i, stop = self._parse_list(items, i)
                    node.branches.append((condition, branch))
                    if stop is None:
                        raise GoTemplateError("unterminated if")
                    if stop == "end":
                        break
                    if stop == "else":
                        condition = None
                    elif stop.startswith("else if "):
                        condition = _parse_pipeline(_tokens(stop[len("else if ") :]))
                    else:
                        raise GoTemplateError(f"unsupported {stop!r}")
                nodes.append(node)
            elif word in {"range", "with"}:
                node = _Node(word, pipe=_parse_pipeline(_tokens(rest)))
                node.body, i, stop = self._parse_list(items, i)
                if stop == "else":
                    node.else_body, i, stop = self._parse_list(items, i)
                if stop != "end":
                    raise GoTemplateError(f"unterminated {word} ({stop!r})")
                nodes.append(node)
            elif word == "define":
                name = json.loads(rest)
                body_nodes, i, stop = self._parse_list(items, i)
                if stop != "end":
                    raise GoTemplateError(f"unterminated define {name}")
                self.templates[name] = body_nodes
            elif word == "template":
                tokens = _tokens(rest)
                name = json.loads(tokens[0][1])
                nodes.append(_Node("template", text=name, pipe=_parse_pipeline(tokens[1:]) if tokens[1:] else None))
            elif word in {"block", "break", "continue"}:
                raise GoTemplateError(f"{{{{{word}}}}} is not supported by the fallback renderer")
            else:
                nodes.append(_Node("action", pipe=_parse_pipeline(_tokens(body))))
        return nodes, i, None

    def render(self, name: str, data: Any) -> str:
        if name not in self.templates:
            raise GoTemplateError(f'no template "{name}"')
        out: list[str] = []
        self._walk(self.templates[name], data, [["$", data]], out)
        return "".join(out)

    def _include(self, name: str, data: Any) -> str:
        return self.render(name, data)

    def _walk(self, nodes: list[_Node], dot: Any, scope: list[list[Any]], out: list[str]) -> None:
        for node in nodes:
            mark = len(scope)
            if node.kind == "text":
                out.append(node.text)
            elif node.kind == "action":
                assert node.pipe is not None
                value = self._pipeline(node.pipe, dot, scope)
                if not node.pipe.decl:
                    out.append(go_string(value))
            elif node.kind == "if":
                for condition, branch in node.branches:
                    if condition is None or go_truth(self._pipeline(condition, dot, scope)):
                        self._walk(branch, dot, scope, out)
                        break
            elif node.kind == "with":
                assert node.pipe is not None
                value = self._pipeline(node.pipe, dot, scope)
                if go_truth(value):
                    self._walk(node.body, value, scope, out)
                else:
                    self._walk(node.else_body, dot, scope, out)
            elif node.kind == "range":
                self._range(node, dot, scope, out)
            elif node.kind == "template":
                data = self._pipeline(node.pipe, dot, scope) if node.pipe else None
                out.append(self.render(node.text, data))
            if node.kind in {"if", "with", "range"}:
                del scope[mark:]  # a variable lives until the end of the control structure declaring it

    def _range(self, node: _Node, dot: Any, scope: list[list[Any]], out: list[str]) -> None:
        assert node.pipe is not None
        names = node.pipe.decl
        value = self._pipeline(_Pipeline(node.pipe.cmds), dot, scope)
        if value is None:
            items: list[tuple[Any, Any]] = []
        elif isinstance(value, dict):
            items = [(key, value[key]) for key in sorted(value)]
        elif isinstance(value, list):
            items = list(enumerate(value))
        else:
            raise GoTemplateError(f"range can't iterate over {go_string(value)}")
        if not items:
            self._walk(node.else_body, dot, scope, out)
            return
        for key, element in items:
            mark = len(scope)
            if len(names) == 1:
                scope.append([names[0], element])
            elif len(names) == 2:
                scope += [[names[0], key], [names[1], element]]
            self._walk(node.body, element, scope, out)
            del scope[mark:]

    def _pipeline(self, pipe: _Pipeline, dot: Any, scope: list[list[Any]]) -> Any:
        value = _MISSING
        for command in pipe.cmds:
            value = self._command(command, dot, scope, value)
        if pipe.decl:
            (name,) = pipe.decl
            if pipe.assign:
                for slot in reversed(scope):
                    if slot[0] == name:
                        slot[1] = value
                        break
                else:
                    raise GoTemplateError(f"undefined variable: {name}")
            else:
                scope.append([name, value])
        return value

    def _command(self, command: list[_Operand], dot: Any, scope: list[list[Any]], piped: Any) -> Any:
        head = command[0]
        if head.kind != "call":
            if len(command) > 1 or piped is not _MISSING:
                raise GoTemplateError("can't give argument to non-function")
            return self._operand(head, dot, scope)
        operands = command[1:]
        extra = [] if piped is _MISSING else [piped]
        if head.value in {"and", "or"}:  # short-circuit, returning the deciding argument (Go 1.18+)
            value: Any = None
            for index in range(len(operands) + len(extra)):
                value = self._operand(operands[index], dot, scope) if index < len(operands) else piped
                if go_truth(value) == (head.value == "or"):
                    return value
            return value
        function = self.funcs.get(head.value)
        if function is None:
            raise GoTemplateError(f'function "{head.value}" not defined (fallback renderer)')
        return function(*[self._operand(o, dot, scope) for o in operands], *extra)

    def _operand(self, operand: _Operand, dot: Any, scope: list[list[Any]]) -> Any:
        if operand.kind == "lit":
            return operand.value
        if operand.kind == "call":
            return self._command([operand], dot, scope, _MISSING)
        if operand.kind == "field":
            base = dot
        elif operand.kind == "var":
            slot = next((slot for slot in reversed(scope) if slot[0] == operand.value), None)
            if slot is None:
                raise GoTemplateError(f"undefined variable: {operand.value}")
            base = slot[1]
        else:
            base = self._pipeline(operand.value, dot, scope)
        for key in operand.path:
            if base is None:
                raise GoTemplateError(f"nil pointer evaluating interface {{}}.{key}")
            if not isinstance(base, dict):
                raise GoTemplateError(f"can't evaluate field {key} in type {type(base).__name__}")
            base = base.get(key)
        return base


def go_float(value: float) -> str:
    """fmt's %v of a float64 (strconv 'g' with the shortest precision): the shortest digits that round-trip,
    in exponent form when the decimal exponent is below -4 or at least 6 (so 1000000 prints as 1e+06)."""
    if value == 0:
        return "0"
    _sign, digits, exponent = Decimal(repr(abs(value))).normalize().as_tuple()
    assert isinstance(exponent, int)
    text = "".join(map(str, digits))
    point = len(text) + exponent
    x = point - 1
    prefix = "-" if value < 0 else ""
    if x < -4 or x >= 6:
        mantissa = text[0] + ("." + text[1:] if len(text) > 1 else "")
        return f"{prefix}{mantissa}e{'-' if x < 0 else '+'}{abs(x):02d}"
    if point <= 0:
        return f"{prefix}0.{'0' * -point}{text}"
    if point >= len(text):
        return prefix + text + "0" * (point - len(text))
    return f"{prefix}{text[:point]}.{text[point:]}"


def go_string(value: Any) -> str:
    """fmt.Sprint of one value, with Helm's "<no value>" -> "" for nil."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return go_float(value)
    if isinstance(value, list):
        return "[" + " ".join(go_string(v) for v in value) + "]"
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{go_string(value[k])}" for k in sorted(value)) + "]"
    return str(value)


def go_truth(value: Any) -> bool:
    if value is None:
        return False
    if isinstance(value, bool | int | float):
        return value != 0
    if isinstance(value, str | list | dict):
        return len(value) > 0
    return True


def go_quote(value: str) -> str:
    """strconv.Quote."""
    escapes = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\a": "\\a", "\b": "\\b", "\f": "\\f",
               "\v": "\\v"}  # fmt: skip
    out = []
    for char in value:
        if char in escapes:
            out.append(escapes[char])
        elif not char.isprintable():
            out.append(f"\\x{ord(char):02x}" if ord(char) < 0x80 else f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def _kind(value: Any) -> str:
    if value is None:
        return "nil"
    for kind, types in (("bool", bool), ("int", int), ("float", float), ("string", str)):
        if isinstance(value, types):
            return kind
    raise GoTemplateError(f"invalid type for comparison: {type(value).__name__}")


def _eq(first: Any, *others: Any) -> bool:
    for other in others:
        a, b = _kind(first), _kind(other)
        if "nil" in (a, b):
            if a == b:
                return True
            continue
        if a != b:
            raise GoTemplateError(f"incompatible types for comparison: {a} and {b}")
        if first == other:
            return True
    return False


def _compare(op: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    def compare(a: Any, b: Any) -> bool:
        kinds = (_kind(a), _kind(b))
        if "nil" in kinds or "bool" in kinds:
            raise GoTemplateError("invalid type for comparison")
        if kinds[0] != kinds[1]:
            raise GoTemplateError(f"incompatible types for comparison: {kinds[0]} and {kinds[1]}")
        return op(a, b)

    return compare


def _go_int(value: Any) -> int:
    """Sprig's int (cast.ToInt)."""
    if value is None:
        return 0
    if isinstance(value, bool | int | float):
        return int(value)
    if isinstance(value, str):
        try:
            return int(value, 0)
        except ValueError:
            return 0
    raise GoTemplateError(f"int of {type(value).__name__}")


def _int_param(value: Any, function: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise GoTemplateError(f"{function}: wrong type for value; expected int; got {type(value).__name__}")
    return value


def _printf(form: str, *args: Any) -> str:
    """fmt.Sprintf for %s %d %v %q %%."""
    out, remaining = [], list(args)
    pieces = re.split(r"(%.)", form)
    for piece in pieces:
        if not re.fullmatch(r"%.", piece):
            out.append(piece)
            continue
        verb = piece[1]
        if verb == "%":
            out.append("%")
            continue
        if not remaining:
            out.append(f"%!{verb}(MISSING)")
            continue
        arg = remaining.pop(0)
        if verb in "sv":
            out.append(go_string(arg))
        elif verb == "q":
            out.append(go_quote(go_string(arg)))
        elif verb == "d":
            is_int = isinstance(arg, int) and not isinstance(arg, bool)
            out.append(str(arg) if is_int else f"%!d({type(arg).__name__}={go_string(arg)})")
        else:
            raise GoTemplateError(f"printf verb %{verb} not supported by the fallback renderer")
    return "".join(out) + "".join(f"%!(EXTRA {go_string(a)})" for a in remaining)


def _sprint(*args: Any) -> str:
    out = ""
    for i, arg in enumerate(args):
        if i and not isinstance(arg, str) and not isinstance(args[i - 1], str):
            out += " "
        out += go_string(arg)
    return out


def _plain(value: Any) -> Any:
    """Values as Go's YAML/JSON encoders write them: float64 3 as 3."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _to_yaml(value: Any) -> str:
    text = yaml.safe_dump(_plain(value), default_flow_style=False, sort_keys=True, width=2**31)
    return text.removesuffix("\n...\n").removesuffix("\n")


def _indent(width: Any, text: str) -> str:
    pad = " " * _int_param(width, "indent")
    return pad + text.replace("\n", "\n" + pad)


def _trunc(length: Any, text: str) -> str:
    length = _int_param(length, "trunc")
    if length < 0:
        return text[length:] if len(text) + length > 0 else text
    return text[:length]


def _default(default: Any, *given: Any) -> Any:
    return given[0] if given and go_truth(given[0]) else default


def _required(message: str, value: Any = None) -> Any:
    if value is None or value == "":
        raise GoTemplateError(message)
    return value


def _fail(message: str) -> Any:
    raise GoTemplateError(message)


def _dict(*pairs: Any) -> dict[str, Any]:
    return {str(pairs[i]): pairs[i + 1] if i + 1 < len(pairs) else "" for i in range(0, len(pairs), 2)}


def _join(separator: str, values: Any) -> str:
    return separator.join(go_string(v) for v in (values if isinstance(values, list) else [values]))


def _length(value: Any) -> int:
    if not isinstance(value, str | list | dict):
        raise GoTemplateError(f"len of type {type(value).__name__}")
    return len(value)


def _index(value: Any, *keys: Any) -> Any:
    for key in keys:
        value = value[key] if isinstance(value, list) else value.get(key)
    return value


SPRIG: dict[str, Callable[..., Any]] = {
    "append": lambda values, value: [*(values or []), value],
    "b64enc": lambda text: base64.b64encode(go_string(text).encode()).decode(),
    "contains": lambda needle, haystack: needle in haystack,
    "default": _default,
    "dict": _dict,
    "empty": lambda value: not go_truth(value),
    "eq": _eq,
    "fail": _fail,
    "ge": _compare(lambda a, b: a >= b),
    "gt": _compare(lambda a, b: a > b),
    "hasKey": lambda mapping, key: key in mapping,
    "indent": _indent,
    "index": _index,
    "int": _go_int,
    "join": _join,
    "le": _compare(lambda a, b: a <= b),
    "len": _length,
    "list": lambda *values: list(values),
    "lower": lambda text: go_string(text).lower(),
    "lt": _compare(lambda a, b: a < b),
    "ne": lambda a, b: not _eq(a, b),
    "nindent": lambda width, text: "\n" + _indent(width, text),
    "not": lambda value: not go_truth(value),
    "print": _sprint,
    "printf": _printf,
    "quote": lambda *values: " ".join(go_quote(go_string(v)) for v in values if v is not None),
    "replace": lambda old, new, text: go_string(text).replace(old, new),
    "required": _required,
    "sha256sum": lambda text: hashlib.sha256(go_string(text).encode()).hexdigest(),
    "squote": lambda *values: " ".join(f"'{go_string(v)}'" for v in values if v is not None),
    "toJson": lambda value: json.dumps(_plain(value), separators=(",", ":"), sort_keys=True),
    "toString": go_string,
    "toYaml": _to_yaml,
    "trimSuffix": lambda suffix, text: go_string(text).removesuffix(suffix),
    "trunc": _trunc,
    "upper": lambda text: go_string(text).upper(),
}


@pytest.mark.parametrize(
    ("source", "data", "expected"),
    [
        ("a  {{- 1 -}}  b", {}, "a1b"),
        (
            "{{ .n }} {{ .big }} {{ .small }} {{ .half }} {{ .k }}",
            {"n": 6000.0, "big": 8388608.0, "small": 0.00001, "half": 0.5, "k": 100000.0},
            "6000 8.388608e+06 1e-05 0.5 100000",
        ),
        ("{{ range $k, $v := .m }}{{ $k }}={{ $v }},{{ end }}", {"m": {"b": 1.0, "a": 2.0}}, "a=2,b=1,"),
        ("{{ $x := 0 }}{{ range .l }}{{ $x = . }}{{ end }}{{ $x }}", {"l": [1, 2, 3]}, "3"),
        ('{{ if gt (int .n) 2 }}big{{ else if eq .s "x" }}x{{ else }}small{{ end }}', {"n": 3.0, "s": "x"}, "big"),
        ('{{ default "d" .missing }} {{ default "d" 0 }} {{ .s | quote }}', {"s": 'a"b'}, 'd d "a\\"b"'),
        ('{{ printf "%s-%d" "x" (int .n) }} {{ list 1 2 | toJson }}', {"n": 3.0}, "x-3 [1,2]"),
        ('{{ and .a .b }} {{ or .a "z" }}', {"a": "", "b": "y"}, " z"),
        ('{{- define "t" }}[{{ .x }}]{{ end -}}{{ include "t" (dict "x" 1) | nindent 2 }}', {}, "\n  [1]"),
        ("{{ with .m }}{{ .k }}{{ else }}none{{ end }}{{/* comment */}}", {"m": {}}, "none"),
    ],
)
def test_fallback_renderer_follows_go_template_semantics(source: str, data: dict[str, Any], expected: str) -> None:
    template = GoTemplate()
    template.parse("t.yaml", source)
    assert template.render("t.yaml", data) == expected


@pytest.mark.parametrize(
    ("source", "data", "error"),
    [
        ("{{ eq .n 3 }}", {"n": 3.0}, "incompatible types"),  # values' numbers are float64 in Helm
        ("{{ .a.b }}", {}, "nil pointer"),
        ("{{ nosuch 1 }}", {}, "not defined"),
        ('{{ required "give x" .x }}', {}, "give x"),
        ("{{ trunc .n .s }}", {"n": 3.0, "s": "abcd"}, "expected int"),
    ],
)
def test_fallback_renderer_fails_where_helm_fails(source: str, data: dict[str, Any], error: str) -> None:
    template = GoTemplate()
    template.parse("t.yaml", source)
    with pytest.raises(GoTemplateError, match=error):
        template.render("t.yaml", data)


# ---------------------------------------------------------------------------------------------------------
# The Helm chart
# ---------------------------------------------------------------------------------------------------------


class RenderError(Exception):
    pass


def _merge(base: Any, override: Any) -> Any:
    """Helm's value coalescing: maps merge, anything else replaces, null deletes."""
    if not (isinstance(base, dict) and isinstance(override, dict)):
        return override
    merged = dict(base)
    for key, value in override.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = _merge(merged.get(key), value) if key in merged else value
    return merged


def _as_helm_values(value: Any) -> Any:
    """Values reach templates through JSON: every number is a float64."""
    if isinstance(value, dict):
        return {k: _as_helm_values(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_as_helm_values(v) for v in value]
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def _split_manifests(text: str) -> list[dict[str, Any]]:
    documents = []
    for document in re.split(r"(?:^|\s*\n)---\s*", text):
        if document.strip():
            loaded = yaml.safe_load(document)
            if loaded is not None:
                assert isinstance(loaded, dict), f"not an object: {document[:200]}"
                documents.append(loaded)
    return documents


def _render_with_fallback(values: dict[str, Any]) -> list[dict[str, Any]]:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())
    engine = GoTemplate()
    files = sorted(p for p in (CHART / "templates").rglob("*") if p.is_file())
    prefix = f"{chart['name']}/templates"
    for path in files:
        engine.parse(f"{prefix}/{path.relative_to(CHART / 'templates').as_posix()}", path.read_text())
    top = {
        "Values": _as_helm_values(_merge(defaults, values)),
        "Release": {
            "Name": RELEASE,
            "Namespace": NAMESPACE,
            "Service": "Helm",
            "IsInstall": True,
            "IsUpgrade": False,
            "Revision": 1,
        },
        "Chart": {key[0].upper() + key[1:]: value for key, value in chart.items()},
        "Capabilities": {"KubeVersion": {"Version": f"v{KUBE_VERSION}", "Major": "1", "Minor": "30"}},
    }
    manifests: list[dict[str, Any]] = []
    try:
        for path in files:
            relative = path.relative_to(CHART / "templates").as_posix()
            if path.name.startswith("_"):
                continue
            name = f"{prefix}/{relative}"
            output = engine.render(name, {**top, "Template": {"Name": name, "BasePath": prefix}})
            if path.name != "NOTES.txt":
                manifests += _split_manifests(output)
    except GoTemplateError as error:
        raise RenderError(str(error)) from error
    return manifests


def _render_with_helm(helm: str, values: dict[str, Any], tmp_path: Path) -> list[dict[str, Any]]:
    values_file = tmp_path / "values.yaml"
    values_file.write_text(yaml.safe_dump(values))
    command = [helm, "template", RELEASE, str(CHART), "--namespace", NAMESPACE, "--kube-version", KUBE_VERSION]
    command += ["-f", str(values_file)]
    result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=60)
    if result.returncode != 0:
        raise RenderError(result.stderr)
    return _split_manifests(result.stdout)


Render = Callable[..., list[dict[str, Any]]]


@pytest.fixture
def render(tmp_path: Path) -> Render:
    """render(**overrides) -> manifests, with ci/test-values.yaml under the overrides; render(ci=False, ...)
    without them. Real `helm template` when on PATH, the fallback renderer otherwise."""
    helm = shutil.which("helm")
    ci_values = yaml.safe_load((CHART / "ci" / "test-values.yaml").read_text())

    def run(ci: bool = True, **overrides: Any) -> list[dict[str, Any]]:
        values = _merge(ci_values, overrides) if ci else overrides
        return _render_with_helm(helm, values, tmp_path) if helm else _render_with_fallback(values)

    return run


def objects(manifests: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {m["metadata"]["name"]: m for m in manifests if m["kind"] == kind}


def component(manifests: list[dict[str, Any]], kind: str, service: str) -> dict[str, Any]:
    found = [
        m
        for m in objects(manifests, kind).values()
        if m["metadata"]["labels"].get("app.kubernetes.io/component") == service
    ]
    assert len(found) == 1, f"expected one {kind} for {service}, found {len(found)}"
    return found[0]


DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


def test_helm_lint() -> None:
    helm = shutil.which("helm")
    if helm is None:
        pytest.skip(
            "no helm binary: not on PATH and not installable here (no Debian package, no PyPI package with a "
            "Linux build); the chart is rendered by the fallback renderer instead"
        )
    result = subprocess.run(
        [helm, "lint", str(CHART), "--kube-version", KUBE_VERSION, "-f", str(CHART / "ci" / "test-values.yaml")],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_chart_values_list_the_contract_topics_and_what_each_service_consumes() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert {(t["name"], t["partitions"]) for t in values["topics"]} == contract_topic_specs()
    assert set(values["services"]) == set(services())
    for name, facts in services().items():
        assert set(values["services"][name]["consumes"]) == facts.consumes, f"{name}: consumes differs from the code"
        assert values["services"][name]["port"] == facts.default_port
    for key, value in values["config"].items():
        assert isinstance(value, str), f"config.{key}: give it as a string (numbers render as floats)"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"database": {"host": ""}}, r"database\.host is required"),
        ({"secret": {"adminDatabaseUrl": ""}}, r"secret\.adminDatabaseUrl is required"),
        ({"secret": {"dbPasswords": {"query-api": ""}}}, r"secret\.dbPasswords\.query-api is required"),
        ({"secret": {"dbPasswords": {"stock-ledger": None}}}, r"secret\.dbPasswords\.stock-ledger is required"),
        ({"kafka": {"bootstrapServers": ""}}, r"kafka\.bootstrapServers is required"),
        ({"kafka": {"security": {"saslPasswordKey": "password"}}}, r"kafka\.security\.secretName is required"),
    ],
)
def test_chart_refuses_to_render_without_a_database_its_secrets_or_kafka(
    render: Render, overrides: dict[str, Any], message: str
) -> None:
    render()  # control: the CI values render
    with pytest.raises(RenderError, match=message):
        render(**overrides)


def test_every_rendered_object_is_well_formed(render: Render) -> None:
    manifests = render(serviceMonitor={"enabled": True})
    seen = set()
    for manifest in manifests:
        kind, metadata = manifest["kind"], manifest["metadata"]
        assert manifest["apiVersion"]
        assert kind
        key = (kind, metadata["name"])
        assert key not in seen, f"duplicate {key}"
        seen.add(key)
        name_pattern, name_length = (DNS_LABEL, 63) if kind in {"Service", "Deployment"} else (DNS_SUBDOMAIN, 253)
        assert name_pattern.fullmatch(metadata["name"]), key
        assert len(metadata["name"]) <= name_length, key
        labels = metadata["labels"]
        assert labels["app.kubernetes.io/instance"] == RELEASE
        assert labels["app.kubernetes.io/part-of"] == "sellthrough"
        for label, value in labels.items():
            assert isinstance(value, str), (key, label)
            assert len(value) <= 63, (key, label)
    kinds = {kind for kind, _ in seen}
    assert {"ConfigMap", "Secret", "Deployment", "Service", "HorizontalPodAutoscaler", "ServiceMonitor", "Job"} <= kinds
    assert {"NetworkPolicy", "PodDisruptionBudget"} <= kinds


def _container_env(manifests: list[dict[str, Any]], container: dict[str, Any]) -> dict[str, Any]:
    """The container's variables: envFrom ConfigMaps resolved, then env (value or valueFrom). A variable only
    there to be put into another one's value as $(NAME), as Kubernetes does, is left out: the process reads the
    result, not it."""
    env: dict[str, Any] = {}
    config_maps = objects(manifests, "ConfigMap")
    for source in container.get("envFrom", []):
        env.update(config_maps[source["configMapRef"]["name"]]["data"])
    for variable in container.get("env", []):
        env[variable["name"]] = variable.get("value", variable.get("valueFrom"))
    referenced = {
        name for value in env.values() if isinstance(value, str) for name in re.findall(r"\$\((\w+)\)", value)
    }
    return {name: value for name, value in env.items() if name not in referenced}


def _secret_key_value(manifests: list[dict[str, Any]], container: dict[str, Any], name: str) -> str:
    """The value a secretKeyRef variable of `container` gets from the chart's Secret."""
    (reference,) = [v["valueFrom"]["secretKeyRef"] for v in container["env"] if v["name"] == name]
    return str(objects(manifests, "Secret")[reference["name"]]["stringData"][reference["key"]])


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

        env = _container_env(manifests, container)
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
        assert _secret_key_value(manifests, container, "DB_PASSWORD") == f"ci-{name}-password"
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
        env = _container_env(manifests, container)
        assert env["OTEL_TRACES_EXPORTER"] == "otlp"
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector.observability:4318"
        assert not facts.unknown(env), f"{name}: {sorted(facts.unknown(env))}"


def test_per_service_settings_and_config_must_be_names_the_code_reads(render: Render) -> None:
    manifests = render(services={"order-capture": {"env": {"SELLTHROUGH_MAX_BATCH_EVENTS": "500"}}})
    deployment = component(manifests, "Deployment", "order-capture")
    env = _container_env(manifests, deployment["spec"]["template"]["spec"]["containers"][0])
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


def test_topic_job_creates_the_contract_topics(render: Render) -> None:
    manifests = render()
    assert not objects(manifests, "KafkaTopic")
    job = _jobs_by_component(manifests)["topics"]
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
    assert "topics" not in _jobs_by_component(manifests)
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


def _jobs_by_component(manifests: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {job["metadata"]["labels"]["app.kubernetes.io/component"]: job for job in objects(manifests, "Job").values()}


def test_database_jobs_create_the_roles_then_the_first_admin_token_before_the_services(render: Render) -> None:
    manifests = render()
    jobs = _jobs_by_component(manifests)
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
    assert _secret_key_value(manifests, container, "DATABASE_URL") == admin_url
    for name, facts in services().items():
        variable = f"SELLTHROUGH_DB_PASSWORD_{service_schema(facts).upper()}"  # what sellthrough-db-roles reads
        assert _secret_key_value(manifests, container, variable) == f"ci-{name}-password"
    (container,) = bootstrap["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["sellthrough-tokens", "bootstrap"]
    assert _secret_key_value(manifests, container, "DATABASE_URL") == admin_url
    for job in (roles, bootstrap):
        pod = job["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["containers"][0]["securityContext"]["readOnlyRootFilesystem"] is True
        assert pod["containers"][0]["image"].endswith("/order-capture:0.1.0")
    assert not _jobs_by_component(
        render(database={"rolesJob": {"enabled": False}, "tokensBootstrapJob": {"enabled": False}})
    ).keys() - {"topics"}


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
    containers.append(_jobs_by_component(manifests)["topics"]["spec"]["template"]["spec"])
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
        assert {name for name in env if name.startswith("KAFKA_S")} <= _env_names(ServiceSettings).keys()
    script = " ".join(_jobs_by_component(manifests)["topics"]["spec"]["template"]["spec"]["containers"][0]["args"])
    assert script.count('--command-config "$props"') == 2
    KafkaSecuritySettings.model_validate(
        {"KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
         "KAFKA_SASL_USERNAME": "u", "KAFKA_SASL_PASSWORD": "p"}
    )  # fmt: skip


CUSTOM_RESOURCES = {"ServiceMonitor", "KafkaTopic"}  # CRDs: no schema in the Kubernetes API to check against


@pytest.mark.parametrize("kube_version", ["1.25.0", KUBE_VERSION, "1.33.0"])
def test_rendered_objects_validate_against_the_kubernetes_api_schema(render: Render, kube_version: str) -> None:
    """The schema check the issue asks for when no helm binary is at hand: every built-in object the chart
    renders (with every optional part switched on) is valid for the API of each supported Kubernetes version."""
    manifests = render(
        serviceMonitor={"enabled": True},
        kafka={"strimzi": {"enabled": True}, "security": {"protocol": "SSL", "secretName": "k", "caKey": "ca"}},
        tracing={"exporter": "otlp"},
        networkPolicy={"apiFrom": [{"podSelector": {}}], "metricsFrom": [{"namespaceSelector": {}}]},
    )
    manifests += [m for m in render() if m["kind"] == "Job"]  # the topic Job (not rendered with Strimzi)
    built_in = [m for m in manifests if m["kind"] not in CUSTOM_RESOURCES]
    assert {"Deployment", "Service", "HorizontalPodAutoscaler", "ConfigMap", "NetworkPolicy"} <= {
        m["kind"] for m in built_in
    }
    assert {"PodDisruptionBudget", "Job", "Secret"} <= {m["kind"] for m in built_in}
    for manifest in built_in:
        kubernetes_validate.validate(manifest, kube_version, strict=True)


def test_the_schema_check_rejects_an_invalid_object() -> None:
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "x"},
        "spec": {"replicas": "two", "selector": {}, "template": {}},
    }
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBE_VERSION, strict=True)


def _security_preamble(script: str) -> str:
    """The part of a topic creator's script that writes the client properties (before its topic loop)."""
    preamble, found, _ = script.partition("for spec in $TOPICS")
    assert found, "the script loops over $TOPICS"
    return preamble


@pytest.mark.parametrize("where", ["compose", "helm"])
def test_topic_creators_turn_the_security_variables_into_java_client_properties(
    where: str, render: Render, tmp_path: Path
) -> None:
    if where == "compose":
        script = compose()["services"]["topic-init"]["command"][0].replace("$$", "$")
    else:
        job = _jobs_by_component(render())["topics"]
        script = job["spec"]["template"]["spec"]["containers"][0]["args"][0]
    preamble = _security_preamble(script).replace("/tmp/", f"{tmp_path}/")
    key, cert = tmp_path / "client.key", tmp_path / "client.pem"
    key.write_text("KEY\n")
    cert.write_text("CERT\n")

    def properties(environment: dict[str, str]) -> dict[str, str]:
        subprocess.run(["sh", "-c", preamble], env=environment, check=True, timeout=10)
        lines = (tmp_path / "client.properties").read_text().splitlines()
        return dict(line.split("=", 1) for line in lines)

    assert properties({}) == {"security.protocol": "PLAINTEXT"}
    empty = {name: "" for name in ("KAFKA_SSL_CA_FILE", "KAFKA_SSL_CERT_FILE", "KAFKA_SASL_MECHANISM")}
    assert properties({"KAFKA_SECURITY_PROTOCOL": "PLAINTEXT", **empty}) == {"security.protocol": "PLAINTEXT"}
    secured = properties(
        {
            "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "KAFKA_SSL_CA_FILE": "/etc/sellthrough/kafka-tls/ca.pem",
            "KAFKA_SSL_CERT_FILE": str(cert),
            "KAFKA_SSL_KEY_FILE": str(key),
            "KAFKA_SSL_KEY_PASSWORD": "key-secret",
            "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
            "KAFKA_SASL_USERNAME": "sellthrough",
            "KAFKA_SASL_PASSWORD": "s3cret",
        }
    )
    assert secured == {
        "security.protocol": "SASL_SSL",
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": "/etc/sellthrough/kafka-tls/ca.pem",
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": f"{tmp_path}/client-keystore.pem",
        "ssl.key.password": "key-secret",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.jaas.config": 'org.apache.kafka.common.security.scram.ScramLoginModule required username="sellthrough" '
        'password="s3cret";',
    }
    assert (tmp_path / "client-keystore.pem").read_text() == "KEY\nCERT\n", "the Java PEM keystore: key, then chain"
    plain = properties({"KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "KAFKA_SASL_MECHANISM": "PLAIN",
                        "KAFKA_SASL_USERNAME": "u", "KAFKA_SASL_PASSWORD": "p"})  # fmt: skip
    assert plain["sasl.jaas.config"].startswith("org.apache.kafka.common.security.plain.PlainLoginModule required")
