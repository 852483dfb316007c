"""What the deployed code reads, derived from the code and never listed by hand: environment variable names
from the pydantic settings classes, topics and partition counts from `sellthrough_contracts.topics.TOPICS`,
the topics each service consumes from its `consumer_job(topics=...)` calls. Renaming a setting, adding a topic
or a consumer makes the deployment tests fail until the deployment files follow."""

import ast
import importlib
import tomllib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from pydantic import AliasChoices, AliasPath
from pydantic.fields import FieldInfo

import sellthrough_contracts.topics as contract_topics
from sellthrough_contracts.topics import TOPICS, Topic
from sellthrough_runtime import metrics as runtime_metrics
from sellthrough_runtime.settings import ServiceSettings

ROOT = Path(__file__).resolve().parents[2]

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


def env_names(cls: type[ServiceSettings]) -> dict[str, FieldInfo]:
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


def _module_level_lists(paths: list[Path]) -> dict[str, ast.List | ast.Tuple]:
    """NAME = [...] or (...) at the top level of the package's modules, for topics= naming such a constant."""
    found: dict[str, ast.List | ast.Tuple] = {}
    for path in paths:
        for node in ast.parse(path.read_text(), str(path)).body:
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.List | ast.Tuple):
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        found[target.id] = node.value
    return found


def _consumed_topics(module: str) -> frozenset[str]:
    """Topic names passed to consumer_job(topics=[X.name, ...]) or ConsumerSpec(topics=(X.name, ...)) anywhere in
    the service's package (or to topics=NAME, NAME a literal list at the top of one of its modules)."""
    by_constant = {name: value for name, value in vars(contract_topics).items() if isinstance(value, Topic)}
    package = importlib.import_module(module)
    assert package.__file__ is not None
    consumed: set[str] = set()
    paths = sorted(Path(package.__file__).parent.rglob("*.py"))
    named_lists = _module_level_lists(paths)
    for path in paths:
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
            if isinstance(topics, ast.Name) and topics.id in named_lists:
                topics = named_lists[topics.id]  # a constant of the package (names.py: PROJECTION_TOPICS = (...))
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
        # The service's own script is named after its directory; a package may ship other commands beside it.
        entry_point = project["scripts"][f"sellthrough-{pyproject.parent.name}"]
        module = entry_point.split(".", 1)[0]
        importlib.import_module(f"{module}.main")
        classes = tuple(c for c in _subclasses(ServiceSettings) if c.__module__.split(".")[0] == module)
        assert classes, f"{module} defines no ServiceSettings subclass"
        env = env_names(ServiceSettings)
        for cls in classes:
            env.update(env_names(cls))
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


def service_schema(facts: ServiceFacts) -> str:
    """The PostgreSQL schema (and role) of a service: the SCHEMA its composition root passes to the app."""
    schema = importlib.import_module(f"{facts.module}.main").SCHEMA
    assert isinstance(schema, str)
    return schema
