"""Every read route x every role, generated from query-api's OpenAPI document (issue 15, "Reads").

The rule table RULES classifies each route: the roles that read it and the probes to send, with placeholders
filled from each role's territory: once with an object inside the caller's scope, once with one outside. The
expected answer follows from the table: 403 for a role the route does not admit, for an object outside the
scope, or for a drill level above the caller's top; otherwise 200, and every row returned must lie inside the
caller's territory, and unfiltered sales must add up to the caller's own sales only. A route missing from the
table fails test_every_route_is_classified, so a new route must be classified before it ships.
"""

import csv
import io
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest

from sellthrough_devstack.services import ServiceProcess
from sellthrough_devstack.tokens import issue_tokens
from sellthrough_runtime.auth import Role
from tests.conftest import Infra, Tokens
from tests.support.api import Api
from tests.support.brand import DISTRIBUTORS, OUTLETS, REGIONS, REPS, ZONES, invoice, order, stock_count
from tests.support.services import running_with_reference_data

pytestmark = pytest.mark.e2e

RANK = {"national": 0, "zone": 1, "region": 2, "distributor": 3, "outlet": 4, "sku": 4}


@dataclass(frozen=True)
class Territory:
    """What a role may read, and the objects a probe names inside and outside it."""

    top: str | None
    """The highest drill level it reads rows at; None: no geographic scope (rep, connector)."""
    zones: frozenset[str] = frozenset()
    regions: frozenset[str] = frozenset()
    distributors: frozenset[str] = frozenset()
    inside: dict[str, str] = field(default_factory=dict)
    outside: dict[str, str] = field(default_factory=dict)

    @property
    def outlets(self) -> frozenset[str]:
        return frozenset(o for o, d in OUTLETS.items() if d in self.distributors)

    def holds(self, kind: str, node: str | None) -> bool:
        allowed = {"zone": self.zones, "region": self.regions, "distributor": self.distributors, "outlet": self.outlets}
        return node in allowed[kind]


def _national() -> Territory:
    return Territory(
        "national",
        frozenset(ZONES),
        frozenset(REGIONS),
        frozenset(DISTRIBUTORS),
        inside={"zone": "Z2", "region": "R3", "distributor": "D3", "outlet": "O4", "rep": "REP-3"},
    )


def _under(zones: set[str], regions: set[str]) -> Territory:
    distributors = {d for d, r in DISTRIBUTORS.items() if r in regions}
    return Territory(None, frozenset(zones), frozenset(regions), frozenset(distributors))


TERRITORIES: dict[str, Territory] = {
    "analyst": _national(),
    "admin": _national(),
    "manager_z1": Territory(
        "zone",
        frozenset({"Z1"}),
        frozenset({"R1", "R2"}),
        frozenset({"D1", "D2"}),
        inside={"zone": "Z1", "region": "R2", "distributor": "D2", "outlet": "O3"},
        outside={"zone": "Z2", "region": "R3", "distributor": "D3", "outlet": "O4"},
    ),
    "manager_r3": Territory(
        "region",
        frozenset(),
        frozenset({"R3"}),
        frozenset({"D3"}),
        inside={"region": "R3", "distributor": "D3", "outlet": "O5"},
        # Its own zone holds another zone's regions: outside.
        outside={"zone": "Z2", "region": "R1", "distributor": "D1", "outlet": "O1"},
    ),
    "distributor1": Territory(
        "distributor",
        frozenset(),
        frozenset(),
        frozenset({"D1"}),
        inside={"distributor": "D1", "outlet": "O2"},
        outside={"zone": "Z1", "region": "R1", "distributor": "D2", "outlet": "O3"},
    ),
    # A rep reads its own orders and visits wherever they are: geography narrows them further, never widens.
    # REP-1 sells only at D1's outlets here, so that is where its rows may be.
    "rep1": Territory(
        None,
        frozenset({"Z1"}),
        frozenset({"R1"}),
        frozenset({"D1"}),
        inside={"zone": "Z2", "region": "R3", "distributor": "D3", "outlet": "O4", "rep": "REP-1"},
        outside={"rep": "REP-2"},
    ),
    # Two regions of different zones: it reads from region level, both regions together.
    "manager_r1_r3": Territory(
        "region",
        frozenset(),
        frozenset({"R1", "R3"}),
        frozenset({"D1", "D3"}),
        inside={"region": "R3", "distributor": "D1", "outlet": "O5"},
        outside={"zone": "Z1", "region": "R2", "distributor": "D2", "outlet": "O3"},
    ),
    "connector": Territory(None, inside={"distributor": "D1", "outlet": "O1", "zone": "Z1", "region": "R1"}),
}
ROLES = list(TERRITORIES)

SCOPED = {"manager_z1", "manager_r3", "manager_r1_r3", "distributor1"}
NATIONAL = frozenset({"analyst", "admin"})
READERS = NATIONAL | SCOPED
WITH_REP = READERS | {"rep1"}
EVERYONE = frozenset(ROLES)

Rows = Callable[[dict[str, Any], dict[str, str]], list[tuple[str, str | None]]]
"""The (kind, id) of every geographic object a response returns, given the request's parameters."""


def at_level(key: str = "rows", id_field: str = "id") -> Rows:
    def rows(body: dict[str, Any], params: dict[str, str]) -> list[tuple[str, str | None]]:
        level = params.get("level", "national")
        if level in ("national", "sku"):
            return []
        return [(level, r[id_field]) for r in body[key]]

    return rows


def each(key: str, kind: str, id_field: str) -> Rows:
    return lambda body, _: [(kind, r[id_field]) for r in body[key]]


def rep_rows(key: str, rep_field: str) -> Rows:
    """Rows of reps, each checked at the distributor the rep sells for in the test brand."""
    return lambda body, _: [("distributor", REPS.get(r[rep_field])) for r in body[key]]


def review_rows(body: dict[str, Any], _: dict[str, str]) -> list[tuple[str, str | None]]:
    """The review pack's regions (or distributors, for a distributor's pack) and its overstocked distributors."""
    regions = [(body["level"], r["id"]) for r in body["top_regions"] + body["bottom_regions"] if r["id"]]
    return regions + [("distributor", o["distributor_id"]) for o in body["overstock"]]


def both(*extractors: Rows) -> Rows:
    return lambda body, params: [row for extract in extractors for row in extract(body, params)]


def csv_rows(kind: str, column: str) -> Rows:
    """A CSV export's rows (the test passes them as {"csv": [...]})."""
    return lambda body, _: [(kind, r[column] or None) for r in body["csv"]]


def no_rows(body: dict[str, Any], params: dict[str, str]) -> list[tuple[str, str | None]]:
    return []


@dataclass(frozen=True)
class Probe:
    params: dict[str, str]
    """Values "{zone}", "{region}", "{distributor}", "{outlet}", "{rep}", "{top}" are filled per role; a path
    parameter's value is filled into the path."""
    rows: Rows = no_rows
    level: str | None = None
    """The drill level of its rows when no `level` parameter says it: a scoped caller reads none above its top."""
    ok: int = 200
    """The answer expected where the caller may read (404: the object does not exist)."""
    own_sales: str | None = None
    """A field of the total (or of each day) holding net sales value: this probe names no object, so it must
    equal the caller's own sales, no more."""


@dataclass(frozen=True)
class Rule:
    readers: frozenset[str]
    probes: tuple[Probe, ...]
    public: bool = False


LEVELS = ("national", "zone", "region", "distributor")


def drill_probes(rows: Rows, below_distributor: str, own_sales: str | None = None) -> tuple[Probe, ...]:
    """A (level, parent_id) route: each level bare, then under a parent inside and outside the scope."""
    return (
        *(Probe({"level": level}, rows, own_sales=own_sales if level == "national" else None) for level in LEVELS),
        Probe({"level": "{top}"}, rows, own_sales=own_sales),
        Probe({"level": "region", "parent_id": "{zone}"}, rows),
        Probe({"level": "distributor", "parent_id": "{region}"}, rows),
        Probe({"level": below_distributor, "parent_id": "{distributor}"}, rows),
    )


def forecast_rows(body: dict[str, Any], params: dict[str, str]) -> list[tuple[str, str | None]]:
    return [("distributor", body["distributor_id"])]


EVENT_ROWS = both(each("rows", "outlet", "outlet_id"), each("rows", "distributor", "distributor_id"))
CELL_PROBES = (
    Probe({}, own_sales="value"),
    Probe({"zone": "{zone}"}),
    Probe({"region": "{region}"}),
    Probe({"distributor": "{distributor}"}),
    Probe({"outlet": "{outlet}"}),
    Probe({"rep": "{rep}"}),
)
WITHIN_PROBES = ("{zone}", "{region}", "{distributor}", "{outlet}")

RULES: dict[str, Rule] = {
    "/healthz": Rule(EVERYONE, (Probe({}),), public=True),
    "/readyz": Rule(EVERYONE, (Probe({}),), public=True),
    "/v1/scope": Rule(EVERYONE, (Probe({}),)),
    "/v1/whoami": Rule(EVERYONE, (Probe({}),)),
    # Served without a token: the dashboard's files hold no data (its requests are scoped), metrics no business
    # figures.
    "/metrics": Rule(EVERYONE, (Probe({}),), public=True),
    "/dashboard": Rule(EVERYONE, (Probe({}),), public=True),
    "/dashboard/{name}": Rule(EVERYONE, (Probe({"name": "app.js"}),), public=True),
    "/v1/sales": Rule(
        READERS,
        (
            *drill_probes(at_level(), "outlet", own_sales="value"),
            Probe({"level": "outlet", "format": "csv"}, csv_rows("outlet", "id")),
        ),
    ),
    "/v1/sales/daily": Rule(WITH_REP, CELL_PROBES),
    "/v1/sales/sources": Rule(
        READERS,
        (Probe({}, own_sales="value"), Probe({"distributor": "{distributor}"}), Probe({"format": "csv"})),
    ),
    # Field verification (api/geo.py): rows by rep are checked at the rep's distributor.
    "/v1/field/geo-verification": Rule(
        WITH_REP,
        (
            Probe({}, rep_rows("rows", "key")),
            Probe({"by": "distributor"}, each("rows", "distributor", "key"), level="distributor"),
            Probe({"by": "region"}, each("rows", "region", "key"), level="region"),
        ),
    ),
    "/v1/field/off-site-alerts": Rule(WITH_REP, (Probe({}, rep_rows("reps", "rep_id")),)),
    "/v1/field/sync-delays": Rule(WITH_REP, (Probe({}, rep_rows("rows", "key")), Probe({"by": "device"}))),
    "/v1/field/geotag-proposals": Rule(WITH_REP, (Probe({}, each("proposals", "distributor", "distributor_id")),)),
    "/v1/field/clock-skew": Rule(WITH_REP, (Probe({}, rep_rows("devices", "rep_id")),)),
    "/v1/sales/events": Rule(
        WITH_REP,
        (
            *(Probe(p.params, EVENT_ROWS) for p in CELL_PROBES),
            Probe({"format": "csv"}, csv_rows("outlet", "outlet_id")),
        ),
    ),
    "/v1/kpis": Rule(
        WITH_REP,
        (
            *drill_probes(at_level(), "outlet", own_sales="value"),
            Probe({"level": "outlet", "rep": "{rep}"}, at_level()),
        ),
    ),
    "/v1/sales/by": Rule(
        WITH_REP,
        (
            Probe({"dimension": "distributor"}, each("rows", "distributor", "id")),
            Probe({"dimension": "region"}, each("rows", "region", "id"), level="region"),
            Probe({"dimension": "distributor", "rep": "{rep}"}, each("rows", "distributor", "id")),
            *(
                Probe({"dimension": "distributor", "within": w}, each("rows", "distributor", "id"))
                for w in WITHIN_PROBES
            ),
        ),
    ),
    "/v1/outlets/ranking": Rule(
        WITH_REP,
        tuple(
            Probe({"n": "100", **({"within": w} if w else {})}, each("rows", "outlet", "id"))
            for w in (None, *WITHIN_PROBES)
        ),
    ),
    "/v1/regions/underperforming": Rule(
        WITH_REP,
        tuple(
            Probe({"threshold_pct": "0", **({"within": w} if w else {})}, each("rows", "region", "id"), level="region")
            for w in (None, *WITHIN_PROBES)
        ),
    ),
    "/v1/outlets/map": Rule(
        READERS,
        tuple(Probe({"within": w} if w else {}, each("outlets", "outlet", "id")) for w in (None, *WITHIN_PROBES)),
    ),
    "/v1/outlets/{outlet_id}/activity": Rule(
        READERS, (Probe({"outlet_id": "{outlet}"}, lambda body, _: [("outlet", body["outlet"]["outlet_id"])]),)
    ),
    "/v1/stock": Rule(READERS, drill_probes(at_level(), "sku")),
    "/v1/alerts": Rule(READERS, drill_probes(both(at_level(), each("alerts", "distributor", "distributor_id")), "sku")),
    "/v1/primary-vs-secondary": Rule(READERS, drill_probes(at_level(), "sku")),
    "/v1/anomalies": Rule(
        READERS, drill_probes(both(at_level(id_field="node_id"), each("rows", "distributor", "distributor_id")), "sku")
    ),
    "/v1/reconciliation": Rule(
        READERS,
        (
            Probe({}, each("rows", "distributor", "distributor_id")),
            Probe({"distributor_id": "{distributor}"}, each("rows", "distributor", "distributor_id")),
            Probe({"format": "csv"}, csv_rows("distributor", "distributor_id")),
        ),
    ),
    # Alerts that reach people (api/notify.py): subscriptions and deliveries are the admin's; the review pack is
    # the caller's own week.
    "/v1/subscriptions": Rule(frozenset({"admin"}), (Probe({}),)),
    "/v1/deliveries": Rule(frozenset({"admin"}), (Probe({}),)),
    "/v1/review": Rule(READERS, (Probe({}, review_rows),)),
    "/v1/stock/turn": Rule(
        READERS,
        (
            Probe({}, each("rows", "distributor", "distributor_id")),
            Probe({"distributor_id": "{distributor}"}, each("rows", "distributor", "distributor_id")),
            Probe({"format": "csv"}, csv_rows("distributor", "distributor_id")),
        ),
    ),
    "/v1/claims": Rule(
        READERS,
        (
            Probe({}, each("claims", "distributor", "distributor_id")),
            Probe({"distributor_id": "{distributor}"}, each("claims", "distributor", "distributor_id")),
        ),
    ),
    "/v1/forecasts": Rule(
        READERS,
        (Probe({"distributor_id": "{distributor}"}, forecast_rows),),
    ),
    # Field figures group reps by their home distributor; a rep reads its own row and its own days only.
    "/v1/field/performance": Rule(
        WITH_REP,
        (
            Probe({"group_by": "region"}, each("rows", "region", "id"), level="region"),
            Probe({"group_by": "distributor"}, each("rows", "distributor", "id")),
            Probe({"group_by": "distributor", "region": "{region}"}, each("rows", "distributor", "id")),
            Probe({"group_by": "distributor", "distributor": "{distributor}"}, each("rows", "distributor", "id")),
            Probe({"group_by": "distributor", "rep": "{rep}"}, each("rows", "distributor", "id")),
        ),
    ),
    "/v1/field/reps/{rep_id}/days/{day}": Rule(WITH_REP, (Probe({"rep_id": "{rep}", "day": "2026-10-01"}),)),
    # A scheme's figures, lift and leakage span every distributor: national roles only.
    "/v1/schemes": Rule(NATIONAL, (Probe({}),)),
    "/v1/schemes/{scheme_id}": Rule(NATIONAL, (Probe({"scheme_id": "SCH-NONE"}, ok=404),)),
}

# Sales posted by the fixture: (outlet, SKU, quantity); each outlet's value is what /v1/sales must report for it.
SALES = [("O1", "S1", 4), ("O3", "S2", 5), ("O4", "S3", 6)]
PRICES = {"S1": Decimal("10.50"), "S2": Decimal("4.00"), "S3": Decimal("7.25")}
REP_SALES = {"REP-1": {"O1"}}


def own_sales(role: str) -> Decimal:
    territory = TERRITORIES[role]
    outlets = REP_SALES["REP-1"] if role == "rep1" else territory.outlets
    return sum((PRICES[s] * q for o, s, q in SALES if o in outlets), Decimal(0))


@dataclass(frozen=True)
class Request:
    path: str
    params: dict[str, str]
    expect: int
    probe: Probe

    def __str__(self) -> str:
        return f"GET {self.path} {self.params} -> {self.expect}"


PLACEHOLDER = re.compile(r"\{(\w+)\}")


def _fill(value: str, values: dict[str, str]) -> str:
    return PLACEHOLDER.sub(lambda m: values[m.group(1)], value)


def requests_for(role: str, route: str, rule: Rule) -> Iterator[Request]:
    """Each probe of the route, with objects inside and outside the role's scope, and the answer expected."""
    territory = TERRITORIES[role]
    for probe in rule.probes:
        kinds = {m for v in probe.params.values() for m in PLACEHOLDER.findall(v)} - {"top"}
        variants: list[tuple[str, dict[str, str]]] = [("none", {})] if not kinds else []
        for side, objects in (("inside", territory.inside), ("outside", territory.outside)):
            if kinds and kinds <= objects.keys():
                variants.append((side, objects))
        if "{top}" in probe.params.values() and territory.top is None:
            continue
        for side, objects in variants:
            values = {**objects, "top": territory.top or ""}
            filled = {k: _fill(v, values) for k, v in probe.params.items()}
            path = route
            for name in PLACEHOLDER.findall(route):
                path = path.replace("{" + name + "}", filled.pop(name))
            yield Request(path, filled, _expected(role, rule, probe, side, filled), probe)


def _expected(role: str, rule: Rule, probe: Probe, side: str, params: dict[str, str]) -> int:
    if role not in rule.readers:
        return 403
    if side == "outside":
        return 403
    level = params.get("level", probe.level)
    top = TERRITORIES[role].top
    if role in SCOPED and level is not None and top is not None and RANK[level] < RANK[top]:
        return 403
    return probe.ok


@pytest.fixture(scope="module")
def tokens(tokens: Tokens, tmp_path_factory: pytest.TempPathFactory) -> Tokens:
    """The shared tokens and a manager of two regions in different zones (R1 in Z1, R3 in Z2)."""
    directory = tmp_path_factory.mktemp("scope-tokens")
    extra = issue_tokens(
        [("manager_r1_r3", Role.REGIONAL_MANAGER, "RM-R1-R3", {"geo_ids": ["R1", "R3"]})],
        directory / "extra.json",
        directory / "extra.env",
    )
    entries = (
        json.loads(tokens.file.read_text())["tokens"] + json.loads((directory / "extra.json").read_text())["tokens"]
    )
    (directory / "tokens.json").write_text(json.dumps({"tokens": entries}))
    return Tokens(directory / "tokens.json", {**tokens.issued, **extra})


@pytest.fixture(scope="module")
def services(infra: Infra, tokens: Tokens) -> Iterator[dict[str, ServiceProcess]]:
    names = ["order-capture", "stock-ledger", "query-api"]
    with running_with_reference_data(infra, tokens, names) as running:
        api = Api(running, tokens)
        yesterday = datetime.now(UTC) - timedelta(days=1)
        today = datetime.now(UTC).date().isoformat()
        api.post(
            [order(o, [(s, q)], occurred_at=yesterday) for o, s, q in SALES]
            + [invoice(today, distributor_id=d) for d in ("D1", "D3")]
            + [stock_count(f"{today}T06:00:00Z", distributor_id=d, quantity=50) for d in ("D1", "D2", "D3")]
        )
        api.wait(lambda: int(api.get("/v1/sales")["total"]["lines"]) == len(SALES), "the sales")
        api.wait(lambda: int(api.get("/v1/stock", level="distributor")["total"]["rows"]) == 3, "the stock")
        yield running


ADMIN_WRITES = {"/v1/subscriptions", "/v1/subscriptions/{subscription_id}", "/v1/deliveries/{delivery_id}/retry"}


@pytest.fixture(scope="module")
def document(services: dict[str, ServiceProcess], tokens: Tokens) -> dict[str, Any]:
    response = httpx.get(f"{services['query-api'].url}/openapi.json", headers=tokens.header("analyst"), timeout=10)
    assert response.status_code == 200
    return dict(response.json())


def test_every_route_is_classified(document: dict[str, Any]) -> None:
    routes = {path for path, operations in document["paths"].items() if "get" in operations}
    assert not routes - RULES.keys(), f"classify these routes in RULES: {sorted(routes - RULES.keys())}"
    assert not RULES.keys() - routes, f"RULES names routes that no longer exist: {sorted(RULES.keys() - routes)}"
    writes = {path for path, operations in document["paths"].items() if set(operations) - {"get"}}
    # query-api only reads, but for the admin's alert subscriptions and delivery retries (api/notify.py).
    assert writes <= ADMIN_WRITES, f"query-api writes at {sorted(writes - ADMIN_WRITES)}"


@pytest.mark.parametrize("role", ROLES)
def test_every_route_answers_each_role_within_its_scope(
    services: dict[str, ServiceProcess], document: dict[str, Any], tokens: Tokens, role: str
) -> None:
    territory = TERRITORIES[role]
    failures: list[str] = []
    checked = 0
    with httpx.Client(base_url=services["query-api"].url, headers=tokens.header(role), timeout=30) as client:
        for route in (path for path, operations in document["paths"].items() if "get" in operations):
            for request in requests_for(role, route, RULES[route]):
                checked += 1
                response = client.get(request.path, params=request.params)
                if response.status_code != request.expect:
                    failures.append(f"{request}: got {response.status_code} {response.text[:300]}")
                    continue
                if response.status_code == 403:
                    if response.headers["content-type"] != "application/problem+json":
                        failures.append(f"{request}: 403 without problem+json")
                    continue
                if response.status_code != 200:
                    continue
                body: dict[str, Any]
                if response.headers["content-type"].startswith("text/csv"):
                    body = {"csv": list(csv.DictReader(io.StringIO(response.text)))}
                elif not response.headers["content-type"].startswith("application/json"):
                    continue  # metrics, the dashboard's files: no rows
                else:
                    body = response.json()
                outside = [
                    (kind, node)
                    for kind, node in request.probe.rows(body, request.params)
                    if not territory.holds(kind, node)
                ]
                if outside:
                    failures.append(f"{request}: rows outside the scope: {outside}")
                field_name = request.probe.own_sales
                if field_name:
                    total = body["total"][field_name] if "total" in body else None
                    if total is None:  # the daily trend: its days add up
                        total = sum(Decimal(d[field_name]) for d in body["days"])
                    if Decimal(total) != own_sales(role):
                        failures.append(f"{request}: net sales {total}, its own are {own_sales(role)}")
    assert checked > 20
    assert not failures, "\n".join(failures)


def test_the_scope_route_says_whose_scope_it_is(services: dict[str, ServiceProcess], tokens: Tokens) -> None:
    with httpx.Client(base_url=services["query-api"].url, timeout=10) as client:
        r3 = client.get("/v1/scope", headers=tokens.header("manager_r3")).json()
        d1 = client.get("/v1/scope", headers=tokens.header("distributor1")).json()
        z1 = client.get("/v1/scope", headers=tokens.header("manager_z1")).json()
        analyst = client.get("/v1/scope", headers=tokens.header("analyst")).json()
        rep = client.get("/v1/scope", headers=tokens.header("rep1")).json()
        two = client.get("/v1/scope", headers=tokens.header("manager_r1_r3")).json()
    assert (r3["top_level"], r3["roots"]) == ("region", [{"id": "R3", "name": "Karnataka"}])
    assert (z1["top_level"], z1["roots"]) == ("zone", [{"id": "Z1", "name": "North"}])
    assert (d1["top_level"], [r["id"] for r in d1["roots"]], d1["national"]) == ("distributor", ["D1"], False)
    assert (analyst["top_level"], analyst["national"], analyst["roots"]) == ("national", True, [])
    assert (rep["top_level"], rep["reads_dashboard"]) == (None, False)
    assert (two["top_level"], [r["id"] for r in two["roots"]]) == ("region", ["R1", "R3"])


def test_a_scoped_drill_down_adds_up_to_its_own_sales(services: dict[str, ServiceProcess], tokens: Tokens) -> None:
    """The region manager's distributors and the distributor's outlets: exactly their rows, with their totals."""
    with httpx.Client(base_url=services["query-api"].url, timeout=10) as client:
        r3 = client.get("/v1/sales", params={"level": "distributor"}, headers=tokens.header("manager_r3")).json()
        d1 = client.get("/v1/sales", params={"level": "outlet"}, headers=tokens.header("distributor1")).json()
        z1 = client.get("/v1/sales", params={"level": "zone"}, headers=tokens.header("manager_z1")).json()
    assert [(r["id"], Decimal(r["value"])) for r in r3["rows"]] == [("D3", Decimal("43.50"))]
    assert Decimal(r3["total"]["value"]) == Decimal("43.50")
    assert [(r["id"], Decimal(r["value"])) for r in d1["rows"]] == [("O1", Decimal("42.00"))]
    assert [(r["id"], Decimal(r["value"])) for r in z1["rows"]] == [("Z1", Decimal("62.00"))]


def test_a_refused_scope_is_told_before_a_bad_period(services: dict[str, ServiceProcess], tokens: Tokens) -> None:
    """The period is a dependency (query_api.api.params); the scope's checks that opened these routes still come first:
    a distributor asking for region rows, or another distributor's reconciliation, gets 403 whatever the range."""
    reversed_range = {"from": "2026-03-02", "to": "2026-03-01"}
    asks = [
        ("/v1/regions/underperforming", {}),
        ("/v1/sales/by", {"dimension": "region"}),
        ("/v1/reconciliation", {"distributor_id": "D2"}),
        ("/v1/stock/turn", {"distributor_id": "D2"}),
    ]
    with httpx.Client(base_url=services["query-api"].url, timeout=30) as client:
        for path, params in asks:
            refused = client.get(path, params=params | reversed_range, headers=tokens.header("distributor1"))
            assert refused.status_code == 403, (path, refused.text)
            bad_range = client.get(path, params=reversed_range, headers=tokens.header("analyst"))
            assert bad_range.json()["type"].endswith("invalid-range"), (path, bad_range.text)


def test_order_captures_reference_status_is_for_those_who_post_masters_or_bulk(
    services: dict[str, ServiceProcess], tokens: Tokens
) -> None:
    """National counts of masters: admin and analyst read them, a connector checks them before a bulk post;
    every other role is refused (they are not within a territory)."""
    allowed = {"admin", "analyst", "connector"}
    with httpx.Client(base_url=services["order-capture"].url, timeout=10) as client:
        for role in ROLES:
            response = client.get("/v1/reference/status", headers=tokens.header(role))
            assert response.status_code == (200 if role in allowed else 403), (role, response.text)
