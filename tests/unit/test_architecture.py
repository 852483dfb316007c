"""Rules of the codebase that a reviewer should not have to remember."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVICES = {
    "order_capture": ROOT / "services/order-capture/order_capture",
    "stock_ledger": ROOT / "services/stock-ledger/stock_ledger",
    "scheme_engine": ROOT / "services/scheme-engine/scheme_engine",
    "query_api": ROOT / "services/query-api/query_api",
}
SHARED = {
    "sellthrough_contracts": ROOT / "contracts/sellthrough_contracts",
    "sellthrough_runtime": ROOT / "runtime/sellthrough_runtime",
}
SQL_CALLS = {"execute", "executemany", "fetch", "fetchrow", "fetchval", "copy_records_to_table", "prepare", "cursor"}


def imported_modules(path: Path) -> set[str]:
    modules: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            modules.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules.add(node.module.split(".")[0])
    return modules


def python_files(*directories: Path) -> list[Path]:
    return sorted(p for d in directories for p in d.rglob("*.py"))


def service_import_violations(services: dict[str, Path], root: Path = ROOT) -> list[str]:
    violations = []
    for name, directory in services.items():
        others = set(services) - {name}
        for path in python_files(directory):
            for module in imported_modules(path) & others:
                violations.append(f"{path.relative_to(root)} imports {module}")
    return violations


def test_services_never_import_each_other() -> None:
    assert service_import_violations(SERVICES) == []


def test_the_import_rule_catches_a_service_importing_another(tmp_path: Path) -> None:
    fake = tmp_path / "query_api"
    fake.mkdir()
    (fake / "leak.py").write_text("from order_capture.store import store_events\n")
    (tmp_path / "order_capture").mkdir()
    services = {"query_api": fake, "order_capture": tmp_path / "order_capture"}
    assert service_import_violations(services, root=tmp_path) == ["query_api/leak.py imports order_capture"]


@pytest.mark.parametrize("package", sorted(SHARED))
def test_shared_packages_do_not_depend_on_services(package: str) -> None:
    for path in python_files(SHARED[package]):
        assert not imported_modules(path) & set(SERVICES), path


def test_contracts_do_no_io() -> None:
    forbidden = {"asyncpg", "aiokafka", "httpx", "fastapi", "psycopg", "socket"}
    for path in python_files(SHARED["sellthrough_contracts"]):
        assert not imported_modules(path) & forbidden, path


def _is_psycopg_composition(node: ast.expr) -> bool:
    """psycopg's sql.SQL("... {}").format(sql.Identifier(x)) quotes what it inserts: allowed."""
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "SQL"


def formatted_sql_calls(path: Path, root: Path = ROOT) -> list[str]:
    """Calls that pass SQL built with an f-string, % or .format(): parameters must be bound instead."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in SQL_CALLS):
            continue
        if not node.args:
            continue
        sql = node.args[0]
        built = (
            isinstance(sql, ast.JoinedStr)
            or (isinstance(sql, ast.BinOp) and isinstance(sql.op, ast.Mod | ast.Add))
            or (
                isinstance(sql, ast.Call)
                and isinstance(sql.func, ast.Attribute)
                and sql.func.attr == "format"
                and not _is_psycopg_composition(sql.func.value)
            )
        )
        if built:
            found.append(f"{path.relative_to(root)}:{node.lineno}")
    return found


def test_no_sql_is_built_by_string_formatting() -> None:
    sources = python_files(*SERVICES.values(), *SHARED.values(), ROOT / "devstack/sellthrough_devstack")
    assert [hit for path in sources for hit in formatted_sql_calls(path)] == []


def test_the_sql_rule_catches_an_f_string(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(
        "async def f(conn, t):\n"
        '    await conn.fetch(f"SELECT * FROM {t}")\n'
        '    await conn.execute("DELETE FROM {}".format(t))\n'
        '    await conn.execute(sql.SQL("DROP SCHEMA {}").format(sql.Identifier(t)))\n'
    )
    assert formatted_sql_calls(bad, root=tmp_path) == ["bad.py:2", "bad.py:3"]


def event_type_literals(path: Path, root: Path = ROOT) -> list[str]:
    """String literals that are an event type's name: outside contracts a type is named by its class
    (`OrderCaptured.type_name()`, `type_names(...)`), so a renamed or removed type fails to import, not silently."""
    from sellthrough_contracts import EVENT_TYPES

    return sorted(
        f"{path.relative_to(root)}:{node.lineno} {node.value}"
        for node in ast.walk(ast.parse(path.read_text(), str(path)))
        if isinstance(node, ast.Constant) and node.value in EVENT_TYPES
    )


def test_services_name_event_types_by_their_contract_class() -> None:
    assert [hit for path in python_files(*SERVICES.values()) for hit in event_type_literals(path)] == []


def test_the_event_type_rule_catches_a_type_name_written_as_a_string(tmp_path: Path) -> None:
    bad = tmp_path / "projection.py"
    bad.write_text(
        'WANTED = frozenset({"OrderCaptured", "SkuRegistered"})\n'
        "if event.event_type == 'StockCounted':\n"
        '    """A docstring naming OrderCaptured is prose, and Order is no type."""\n'
    )
    assert event_type_literals(bad, root=tmp_path) == [
        "projection.py:1 OrderCaptured",
        "projection.py:1 SkuRegistered",
        "projection.py:2 StockCounted",
    ]


def app_state_reads(path: Path, root: Path = ROOT) -> list[str]:
    """Reads of `app.state` or of a request's `.app`: a route (or anything else in a service) takes what it needs
    as a typed dependency (sellthrough_runtime.dependencies), so the app's wiring stays in one place."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if not isinstance(node, ast.Attribute):
            continue
        reads_state = node.attr == "state" and isinstance(node.value, ast.Attribute) and node.value.attr == "app"
        reads_app = node.attr == "app" and isinstance(node.value, ast.Name)
        if reads_state or reads_app:
            found.append(f"{path.relative_to(root)}:{node.lineno}")
    return sorted(set(found))


def test_services_read_nothing_from_app_state() -> None:
    assert [hit for path in python_files(*SERVICES.values()) for hit in app_state_reads(path)] == []


def test_the_app_state_rule_catches_a_route_reading_it(tmp_path: Path) -> None:
    bad = tmp_path / "api.py"
    bad.write_text(
        "async def get_x(request):\n"
        "    context = request.app.state.context\n"
        "    tokens = getattr(request.app, 'state')\n"
        "    return scope.app_name, self.application\n"
    )
    assert app_state_reads(bad, root=tmp_path) == ["api.py:2", "api.py:3"]


def test_the_service_context_has_no_untyped_extras() -> None:
    from sellthrough_runtime.app import ServiceContext

    assert "extras" not in ServiceContext.__dataclass_fields__


def calls_to(name: str, path: Path) -> list[int]:
    return [
        node.lineno
        for node in ast.walk(ast.parse(path.read_text(), str(path)))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == name
    ]


def test_query_routes_take_the_period_as_a_dependency() -> None:
    """`from`/`to` are resolved once, by query_api.api.params.PeriodDep: no route repeats the preamble."""
    params = SERVICES["query_api"] / "api/params.py"
    callers = [p.name for p in python_files(SERVICES["query_api"]) if p != params and calls_to("date_range", p)]
    assert callers == []


def imported_names(path: Path) -> set[str]:
    """Every module a file imports, dotted in full."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


# query-api's layout (README, "Repository map"): what each package may not import, by module prefix.
QUERY_API_LAYERS = {
    "figures": (
        "asyncpg",
        "fastapi",
        "starlette",
        "aiokafka",
        "query_api.api",
        "query_api.reads",
        "query_api.projections",
    ),
    "reads": ("fastapi", "starlette", "aiokafka", "query_api.api"),
    "projections": ("fastapi", "starlette", "query_api.api", "query_api.reads"),
    "api": ("asyncpg", "aiokafka", "query_api.projections"),
}


def layer_violations(service: Path, layers: dict[str, tuple[str, ...]], root: Path = ROOT) -> list[str]:
    found = []
    for layer, forbidden in layers.items():
        for path in python_files(service / layer):
            for name in sorted(imported_names(path)):
                if any(name == f or name.startswith(f"{f}.") for f in forbidden):
                    found.append(f"{path.relative_to(root)} imports {name}")
    return found


def test_query_api_layers_import_only_downwards() -> None:
    """figures are pure; reads and projections know no HTTP; routes reach the database only through reads."""
    assert layer_violations(SERVICES["query_api"], QUERY_API_LAYERS) == []


def test_the_layer_rule_catches_a_figure_doing_io(tmp_path: Path) -> None:
    (tmp_path / "figures").mkdir()
    (tmp_path / "figures/lift.py").write_text("import asyncpg\nfrom query_api.reads.schemes import claims\n")
    (tmp_path / "api").mkdir()
    (tmp_path / "api/sales.py").write_text("from query_api.reads.sales import drill\nfrom asyncpg import Record\n")
    assert layer_violations(tmp_path, QUERY_API_LAYERS, root=tmp_path) == [
        "figures/lift.py imports asyncpg",
        "figures/lift.py imports query_api.reads.schemes",
        "api/sales.py imports asyncpg",
    ]


# order-capture, stock-ledger and scheme-engine's layout (README, "Repository map"): domain/ is pure rules, no I/O
# framework and nothing of its own service's outer layers; handlers/ decide without knowing HTTP.
LAYERED = ("order_capture", "stock_ledger", "scheme_engine")
IO_FRAMEWORKS = ("asyncpg", "fastapi", "starlette", "aiokafka", "confluent_kafka")


def service_layers(service: str) -> dict[str, tuple[str, ...]]:
    outer = tuple(f"{service}.{layer}" for layer in ("adapters", "api", "handlers", "main"))
    return {
        "domain": (*IO_FRAMEWORKS, *outer),
        "handlers": ("fastapi", "starlette", f"{service}.api", f"{service}.main"),
    }


@pytest.mark.parametrize("service", LAYERED)
def test_domain_is_pure_and_handlers_know_no_http(service: str) -> None:
    assert layer_violations(SERVICES[service], service_layers(service)) == []


@pytest.mark.parametrize("service", LAYERED)
def test_the_service_is_in_the_house_layout(service: str) -> None:
    directory = SERVICES[service]
    packages = {p.name for p in directory.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert packages >= {"domain", "handlers", "adapters"}
    assert (directory / "settings.py").is_file()
    assert (directory / "main.py").is_file()
    loose = {p.name for p in directory.glob("*.py")} - {"__init__.py", "__main__.py", "main.py", "settings.py"}
    assert loose == set(), "every module belongs to a layer"


def test_the_layer_rule_catches_sql_in_the_domain_and_http_in_a_handler(tmp_path: Path) -> None:
    (tmp_path / "domain").mkdir()
    (tmp_path / "domain/rules.py").write_text(
        "import asyncpg\nfrom shop.adapters.store import save\nfrom shop.domain.money import cents\n"
    )
    (tmp_path / "handlers").mkdir()
    (tmp_path / "handlers/orders.py").write_text("from fastapi import HTTPException\nfrom shop.adapters import store\n")
    assert layer_violations(tmp_path, service_layers("shop"), root=tmp_path) == [
        "domain/rules.py imports asyncpg",
        "domain/rules.py imports shop.adapters.store",
        "handlers/orders.py imports fastapi",
    ]
