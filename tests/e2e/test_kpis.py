"""KPIs and breakdowns through real order-capture, broker and query-api processes, against hand-computed figures.

The brand (tests/support/brand.py): Z1 North = R1 (D1: O1, O2) + R2 (D2: O3); Z2 South = R3 (D3: O4, O5).
S1 Sunrise Tea 10.50, S2 Sunrise Tea 4.00, S3 Koko Biscuits 7.25. Period 2026-10-01..10 (10 days); the
previous period of equal length is 2026-09-21..30.
"""

import csv
import io
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings

from sellthrough_devstack.demo import wait_for_masters
from sellthrough_devstack.services import ServiceProcess
from tests.conftest import Infra, Tokens
from tests.e2e.test_fuzz_api import check, operations
from tests.support.brand import OUTLETS, event, order, reference_events
from tests.support.services import running_services
from tests.support.waiting import eventually

pytestmark = pytest.mark.e2e

PERIOD = {"from": "2026-10-01", "to": "2026-10-10"}
KPI_PATHS = ("/v1/kpis", "/v1/sales/by", "/v1/outlets/ranking", "/v1/regions/underperforming")
REP_CELL_PATHS = ("/v1/sales/daily", "/v1/sales/events")
"""Also open to reps, with the cell's rep forced to the caller (tests/e2e/test_read_scopes.py covers them)."""
FIELD_PATHS = (
    "/v1/field/performance",
    "/v1/field/reps/{rep_id}/days/{day}",
    "/v1/field/geo-verification",
    "/v1/field/off-site-alerts",
    "/v1/field/sync-delays",
    "/v1/field/clock-skew",
    "/v1/field/geotag-proposals",
)
"""Field figures and days (test_field.py) and field verification (test_field_verification.py): open to reps,
narrowed to their own (test_read_scopes.py)."""


def at(day: str, hour: int = 10) -> datetime:
    return datetime.fromisoformat(f"{day}T{hour:02d}:00:00+00:00").astimezone(UTC)


# Current period. Value, units, lines per order: A 134.00/14/2, B 20.00/5/1, C 47.50/7/3, D 58.00/8/1.
ORDER_A = order("O1", [("S1", 10), ("S3", 4)], occurred_at=at("2026-10-02"))
ORDER_B = order("O2", [("S2", 5)], occurred_at=at("2026-10-05"))
ORDER_C = order("O3", [("S1", 2), ("S2", 3), ("S3", 2)], occurred_at=at("2026-10-03"))
ORDER_D = order("O4", [("S3", 8)], occurred_at=at("2026-10-09"))
# Previous period: E 210.00/20, F 29.00/4, G 40.00/10 (O5's last order: dormant over a 10-day window).
ORDER_E = order("O1", [("S1", 20)], occurred_at=at("2026-09-25"))
ORDER_F = order("O4", [("S3", 4)], occurred_at=at("2026-09-28"))
ORDER_G = order("O5", [("S2", 10)], occurred_at=at("2026-09-22"))
ORDERS = [ORDER_A, ORDER_B, ORDER_C, ORDER_D, ORDER_E, ORDER_F, ORDER_G]


def visit(outlet: str, day: str, productive: bool, reason: str | None = None, rep: str | None = None) -> dict[str, Any]:
    distributor = OUTLETS[outlet]
    rep_id = rep or {"D1": "REP-1", "D2": "REP-2", "D3": "REP-3"}[distributor]
    payload = {
        "visit_id": f"V-{uuid.uuid4().hex[:10]}",
        "outlet_id": outlet,
        "distributor_id": distributor,
        "rep_id": rep_id,
        "productive": productive,
        "no_order_reason": reason,
        "gps": {"lat": 28.6, "lon": 77.2, "accuracy_m": 9.0},
    }
    return event("VisitRecorded", payload, actor=rep_id, occurred_at=at(day, 9))


# 7 visits in the period, 4 productive; Z1 5 (3 productive), Z2 2 (1). One more in the previous period.
VISITS = [
    visit("O1", "2026-10-02", True),
    visit("O2", "2026-10-05", True),
    visit("O2", "2026-10-07", False, "owner absent"),
    visit("O3", "2026-10-03", True),
    visit("O4", "2026-10-09", True),
    visit("O5", "2026-10-08", False, "stock sufficient"),
    visit("O1", "2026-09-25", True),
]
REP_VISIT = visit("O1", "2026-10-06", False, "shop closed")  # posted with REP-1's own token


def delivery(of: dict[str, Any], lines: list[tuple[str, int]], day: str) -> dict[str, Any]:
    p = of["payload"]
    payload = {
        "delivery_id": f"DLV-{uuid.uuid4().hex[:8]}",
        "order_id": p["order_id"],
        "outlet_id": p["outlet_id"],
        "distributor_id": p["distributor_id"],
        "lines": [{"sku_id": s, "quantity": q} for s, q in lines],
    }
    return event("OrderDelivered", payload, actor="erp-1", occurred_at=at(day, 15))


# Fill rate: A ordered 14, delivered 8 + 4 = 12; C ordered 7, delivered 2 + 1 (S3 not delivered) = 3;
# D ordered 8, delivered 10 but capped at 8. B has no delivery, so it is left out. National 23 / 29.
DELIVERIES = [
    delivery(ORDER_A, [("S1", 8), ("S3", 4)], "2026-10-03"),
    delivery(ORDER_C, [("S1", 2), ("S2", 1)], "2026-10-04"),
    delivery(ORDER_D, [("S3", 10)], "2026-10-10"),
]


def invoice(distributor: str, quantity: int, day: str) -> dict[str, Any]:
    payload = {
        "invoice_number": f"INV-{uuid.uuid4().hex[:8]}",
        "distributor_id": distributor,
        "invoice_date": day,
        "lines": [{"sku_id": "S1", "quantity": quantity, "unit_price": "8.00"}],
    }
    return event("PrimaryInvoiced", payload, actor="erp-1", occurred_at=at(day))


# Primary in the period: D1 100 x 8.00 = 800.00. D3's invoice falls before the period.
INVOICES = [invoice("D1", 100, "2026-10-04"), invoice("D3", 50, "2026-09-15")]


def post(services: dict[str, ServiceProcess], tokens: Tokens, events: list[dict[str, Any]], who: str = "admin") -> None:
    response = httpx.post(
        f"{services['order-capture'].url}/v1/events", json={"events": events}, headers=tokens.header(who), timeout=30
    )
    assert response.status_code == 200, response.text
    assert response.json()["rejected"] == 0, response.json()


@pytest.fixture(scope="module")
def services(infra: Infra, tokens: Tokens) -> Iterator[dict[str, ServiceProcess]]:
    # The figures are pinned to calendar days of 2026; a rep may post only 45 days back by default.
    wide_windows = {f"SELLTHROUGH_OCCURRED_AT_MAX_AGE_DAYS_{role}": "36500" for role in ("REP", "CONNECTOR", "ADMIN")}
    with running_services(infra, tokens, ["order-capture", "query-api"], wide_windows) as running:
        post(running, tokens, reference_events())
        wait_for_masters(running["order-capture"].url, tokens.issued["admin"].token, reference_events())
        post(running, tokens, ORDERS + VISITS + DELIVERIES + INVOICES)
        post(running, tokens, [REP_VISIT], who="rep1")
        yield running


async def get(services: dict[str, ServiceProcess], tokens: Tokens, path: str, **params: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=services["query-api"].url, headers=tokens.header("analyst")) as client:
        return await client.get(path, params=params, timeout=10)


async def kpis(services: dict[str, ServiceProcess], tokens: Tokens, **params: str) -> dict[str, Any]:
    response = await get(services, tokens, "/v1/kpis", **{**PERIOD, **params})
    assert response.status_code == 200, response.text
    return dict(response.json())


@pytest.fixture(scope="module")
async def national(services: dict[str, ServiceProcess], tokens: Tokens) -> dict[str, Any]:
    """Once everything has arrived: sales, visits, deliveries, primary and the outlets all complete (the reference
    topic is read by one of query-api's two consumers, the trade topic partly by the other)."""
    return await eventually(
        lambda: kpis(services, tokens),
        lambda body: (
            body["total"]["active_outlets"] + body["total"]["dormant_outlets"] == 5
            and Decimal(body["total"]["value"]) == Decimal("259.50")
            and body["total"]["visits"] == 7
            and body["total"]["fill_ordered_units"] == 29
            and Decimal(body["total"]["primary_value"] or 0) == Decimal("800")
        ),
        timeout=30,
        what="every KPI event projected",
    )


def by_id(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {row["id"]: row for row in rows}


async def test_national_kpis(national: dict[str, Any]) -> None:
    total = national["total"]
    assert (national["previous_from"], national["previous_to"]) == ("2026-09-21", "2026-09-30")
    assert (Decimal(total["value"]), total["units"], total["lines"]) == (Decimal("259.50"), 34, 7)
    assert (Decimal(total["previous_value"]), total["previous_units"]) == (Decimal("279.00"), 34)
    assert total["value_change_pct"] == -6.99  # (259.50 - 279.00) / 279.00
    assert total["units_change_pct"] == 0.0
    assert (Decimal(total["primary_value"]), total["primary_units"]) == (Decimal("800"), 100)
    assert (total["orders"], total["order_lines"], total["lines_per_call"]) == (4, 7, 1.75)
    assert (total["visits"], total["productive_visits"], total["strike_rate"]) == (7, 4, 0.5714)
    assert (total["fill_ordered_units"], total["fill_delivered_units"], total["fill_rate"]) == (29, 23, 0.7931)
    assert (total["active_outlets"], total["dormant_outlets"]) == (5, 0), "every outlet ordered within 30 days"
    assert [r["id"] for r in national["rows"]] == ["national"]
    assert national["rows"][0]["contribution_pct"] == 100.0
    assert set(national["freshness"]) == {"kpi_sales", "kpi_visits", "kpi_deliveries"}
    assert national["freshness"]["kpi_visits"]["newest_occurred_at"].startswith(
        "2026-10-09T09:00"
    )  # O4's visit, the newest


async def test_zone_kpis_contribution_and_dormant_outlets(
    services: dict[str, ServiceProcess], tokens: Tokens, national: dict[str, Any]
) -> None:
    body = await kpis(services, tokens, level="zone", dormant_days="10")
    assert [r["id"] for r in body["rows"]] == ["Z1", "Z2"], "largest value first"
    z1, z2 = by_id(body["rows"])["Z1"], by_id(body["rows"])["Z2"]
    assert (Decimal(z1["value"]), Decimal(z1["previous_value"]), z1["value_change_pct"]) == (
        Decimal("201.50"),
        Decimal("210.00"),
        -4.05,
    )
    assert (Decimal(z2["value"]), Decimal(z2["previous_value"]), z2["value_change_pct"]) == (
        Decimal("58.00"),
        Decimal("69.00"),
        -15.94,
    )
    assert (z1["contribution_pct"], z2["contribution_pct"]) == (77.65, 22.35)
    assert (z1["strike_rate"], z2["strike_rate"]) == (0.6, 0.5)
    assert (z1["fill_rate"], z2["fill_rate"]) == (0.7143, 1.0)  # (12 + 3) / (14 + 7) and 8 / 8
    assert (Decimal(z1["primary_value"]), Decimal(z2["primary_value"])) == (Decimal("800"), Decimal("0"))
    # Over 2026-10-01..10 only O5 did not order.
    assert (z1["active_outlets"], z1["dormant_outlets"], z2["active_outlets"], z2["dormant_outlets"]) == (3, 0, 1, 1)
    assert (body["total"]["active_outlets"], body["total"]["dormant_outlets"]) == (4, 1)


async def test_outlet_level_under_a_distributor(
    services: dict[str, ServiceProcess], tokens: Tokens, national: dict[str, Any]
) -> None:
    body = await kpis(services, tokens, level="outlet", parent_id="D1")
    o1, o2 = by_id(body["rows"])["O1"], by_id(body["rows"])["O2"]
    assert [r["id"] for r in body["rows"]] == ["O1", "O2"]
    assert (o1["contribution_pct"], o2["contribution_pct"]) == (87.01, 12.99)  # 134 / 154, 20 / 154
    assert (o1["lines_per_call"], o1["strike_rate"], o1["fill_rate"]) == (2.0, 0.5, 0.8571)
    assert (o2["lines_per_call"], o2["strike_rate"], o2["fill_rate"]) == (1.0, 0.5, None), "B was not delivered"
    assert o1["primary_value"] is None, "primary sales are not attributed to outlets"
    assert o1["name"] == "Shop O1"


async def test_rep_and_brand_filters(
    services: dict[str, ServiceProcess], tokens: Tokens, national: dict[str, Any]
) -> None:
    rep = (await kpis(services, tokens, rep="REP-1"))["total"]
    assert (Decimal(rep["value"]), rep["units"], Decimal(rep["previous_value"])) == (
        Decimal("154.00"),
        19,
        Decimal(210),
    )
    assert (rep["lines_per_call"], rep["visits"], rep["strike_rate"], rep["fill_rate"]) == (1.5, 4, 0.5, 0.8571)
    koko = (await kpis(services, tokens, brand="Koko Biscuits"))["total"]
    assert (Decimal(koko["value"]), koko["units"], Decimal(koko["previous_value"])) == (
        Decimal("101.50"),
        14,
        Decimal(29),
    )
    # S3 ordered on delivered orders: A 4 (4 delivered), C 2 (none), D 8 (8).
    assert (koko["fill_ordered_units"], koko["fill_delivered_units"]) == (14, 12)


async def test_sales_by_brand_rep_and_sku(
    services: dict[str, ServiceProcess], tokens: Tokens, national: dict[str, Any]
) -> None:
    response = await get(services, tokens, "/v1/sales/by", dimension="brand", **PERIOD)
    assert response.status_code == 200, response.text
    brands = by_id(response.json()["rows"])
    assert list(brands) == ["Sunrise Tea", "Koko Biscuits"]
    tea, koko = brands["Sunrise Tea"], brands["Koko Biscuits"]
    assert (Decimal(tea["value"]), tea["units"], tea["lines"], tea["share_pct"]) == (Decimal("158"), 20, 4, 60.89)
    assert (Decimal(tea["previous_value"]), tea["value_change_pct"]) == (Decimal("250"), -36.8)
    assert (Decimal(koko["value"]), koko["share_pct"], koko["value_change_pct"]) == (Decimal("101.5"), 39.11, 250.0)
    assert Decimal(response.json()["total_value"]) == Decimal("259.50")

    reps = (await get(services, tokens, "/v1/sales/by", dimension="rep", **PERIOD)).json()["rows"]
    assert [(r["id"], Decimal(r["value"]), r["name"]) for r in reps] == [
        ("REP-1", Decimal("154"), "Rep REP-1"),
        ("REP-3", Decimal("58"), "Rep REP-3"),
        ("REP-2", Decimal("47.5"), "Rep REP-2"),
    ]
    skus = (await get(services, tokens, "/v1/sales/by", dimension="sku", **PERIOD)).json()["rows"]
    assert [(r["id"], Decimal(r["value"])) for r in skus] == [
        ("S1", Decimal("126")),
        ("S3", Decimal("101.5")),
        ("S2", Decimal("32")),
    ]
    regions = (await get(services, tokens, "/v1/sales/by", dimension="region", rep="REP-1", **PERIOD)).json()
    assert [(r["id"], Decimal(r["value"])) for r in regions["rows"]] == [("R1", Decimal("154"))]
    north = (await get(services, tokens, "/v1/sales/by", dimension="distributor", within="Z1", **PERIOD)).json()
    assert [(r["id"], Decimal(r["value"])) for r in north["rows"]] == [("D1", Decimal(154)), ("D2", Decimal("47.5"))]


async def test_top_and_bottom_outlets(
    services: dict[str, ServiceProcess], tokens: Tokens, national: dict[str, Any]
) -> None:
    top = (await get(services, tokens, "/v1/outlets/ranking", order="top", n="3", **PERIOD)).json()
    assert [(r["rank"], r["id"], Decimal(r["value"])) for r in top["rows"]] == [
        (1, "O1", Decimal("134")),
        (2, "O4", Decimal("58")),
        (3, "O3", Decimal("47.5")),
    ]
    bottom = (await get(services, tokens, "/v1/outlets/ranking", order="bottom", n="2", **PERIOD)).json()
    assert [(r["id"], Decimal(r["value"])) for r in bottom["rows"]] == [("O5", Decimal(0)), ("O2", Decimal(20))]
    under_d1 = (await get(services, tokens, "/v1/outlets/ranking", order="bottom", within="D1", **PERIOD)).json()
    assert [r["id"] for r in under_d1["rows"]] == ["O2", "O1"]


async def test_underperforming_regions(
    services: dict[str, ServiceProcess], tokens: Tokens, national: dict[str, Any]
) -> None:
    # R1 154 vs 210 (-26.67 %), R3 58 vs 69 (-15.94 %), R2 47.50 vs nothing (no base: never listed).
    body = (await get(services, tokens, "/v1/regions/underperforming", threshold_pct="10", **PERIOD)).json()
    assert [(r["id"], r["value_change_pct"]) for r in body["rows"]] == [("R1", -26.67), ("R3", -15.94)]
    body = (await get(services, tokens, "/v1/regions/underperforming", threshold_pct="20", **PERIOD)).json()
    assert [r["id"] for r in body["rows"]] == ["R1"]
    south = {"threshold_pct": "10", "within": "Z2", **PERIOD}
    assert [r["id"] for r in (await get(services, tokens, "/v1/regions/underperforming", **south)).json()["rows"]] == [
        "R3"
    ]


async def test_csv_export(services: dict[str, ServiceProcess], tokens: Tokens, national: dict[str, Any]) -> None:
    response = await get(services, tokens, "/v1/outlets/ranking", order="top", n="2", format="csv", **PERIOD)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0] == ["rank", "id", "name", "distributor_id", "value", "units", "lines"]
    assert [(r[1], Decimal(r[4]), r[5]) for r in rows[1:]] == [("O1", Decimal(134), "14"), ("O4", Decimal(58), "8")]

    response = await get(services, tokens, "/v1/kpis", level="zone", format="csv", **PERIOD)
    table = list(csv.DictReader(io.StringIO(response.text)))
    assert [(r["id"], r["name"], r["strike_rate"]) for r in table] == [("Z1", "North", "0.6"), ("Z2", "South", "0.5")]
    assert list(table[0])[:3] == ["id", "name", "value"]

    response = await get(services, tokens, "/v1/sales/by", dimension="brand", format="csv", **PERIOD)
    assert response.text.splitlines()[0].startswith("id,name,value,units,lines,share_pct")
    assert len(response.text.splitlines()) == 3


async def test_an_empty_range_gives_zero_figures(
    services: dict[str, ServiceProcess], tokens: Tokens, national: dict[str, Any]
) -> None:
    empty = {"from": "2025-01-01", "to": "2025-01-10"}
    body = (await get(services, tokens, "/v1/kpis", level="zone", **empty)).json()
    total = body["total"]
    assert (Decimal(total["value"]), total["units"], total["orders"], total["visits"]) == (Decimal(0), 0, 0, 0)
    assert (total["strike_rate"], total["fill_rate"], total["lines_per_call"], total["value_change_pct"]) == (
        None,
        None,
        None,
        None,
    )
    # Rows still carry the outlets, all dormant: nothing was ordered in the window.
    assert (total["active_outlets"], total["dormant_outlets"]) == (0, 5)
    assert all(Decimal(r["value"]) == 0 for r in body["rows"])
    by = (await get(services, tokens, "/v1/sales/by", dimension="sku", **empty)).json()
    assert (by["rows"], Decimal(by["total_value"]), by["total_units"]) == ([], Decimal(0), 0)
    assert (await get(services, tokens, "/v1/regions/underperforming", **empty)).json()["rows"] == []
    csv_text = (await get(services, tokens, "/v1/sales/by", dimension="sku", format="csv", **empty)).text
    assert csv_text.splitlines() == ["id,name,value,units,lines,share_pct,previous_value,value_change_pct"]


@pytest.mark.parametrize(
    ("path", "params", "status"),
    [
        ("/v1/kpis", {"level": "planet"}, 422),
        ("/v1/kpis", {"from": "2026-10-10", "to": "2026-10-01"}, 422),
        ("/v1/kpis", {"level": "zone", "parent_id": "Z1"}, 422),
        ("/v1/kpis", {"level": "region", "parent_id": "Z9"}, 404),
        ("/v1/kpis", {"dormant_days": "0"}, 422),
        ("/v1/kpis", {"format": "xml"}, 422),
        ("/v1/kpis", {"from": "0001-01-05", "to": "0001-01-10"}, 422),
        ("/v1/sales/by", {"dimension": "sku", "to": "0001-01-01"}, 422),
        ("/v1/kpis", {"rep": "bad rep id"}, 422),
        ("/v1/sales/by", {}, 422),
        ("/v1/sales/by", {"dimension": "colour"}, 422),
        ("/v1/outlets/ranking", {"order": "middle"}, 422),
        ("/v1/outlets/ranking", {"n": "0"}, 422),
        ("/v1/outlets/ranking", {"within": "Z9"}, 404),
        ("/v1/regions/underperforming", {"threshold_pct": "-1"}, 422),
    ],
)
async def test_bad_parameters_are_problems(
    services: dict[str, ServiceProcess], tokens: Tokens, path: str, params: dict[str, str], status: int
) -> None:
    response = await get(services, tokens, path, **params)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")


async def as_rep1(services: dict[str, ServiceProcess], tokens: Tokens, path: str, **params: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=services["query-api"].url, headers=tokens.header("rep1")) as client:
        return await client.get(path, params=params, timeout=10)


async def test_a_rep_reads_only_its_own_kpis(
    services: dict[str, ServiceProcess], tokens: Tokens, national: dict[str, Any]
) -> None:
    """REP-1 took orders A and B (154.00, 19 units) and made 4 visits, 2 productive; the country sold 259.50."""
    own = await as_rep1(services, tokens, "/v1/kpis", **PERIOD)
    assert own.status_code == 200, own.text
    total = own.json()["total"]
    assert own.json()["rep_id"] == "REP-1", "the filter is forced to the token's own rep"
    assert (Decimal(total["value"]), total["units"], Decimal(total["previous_value"])) == (
        Decimal("154.00"),
        19,
        Decimal(210),
    )
    assert (total["visits"], total["productive_visits"], total["orders"]) == (4, 2, 2)
    assert total["primary_value"] is None, "sell-in is the distributor's figure, not the rep's"
    assert Decimal(national["total"]["value"]) == Decimal("259.50"), "an analyst still sees every rep"

    distributors = await as_rep1(services, tokens, "/v1/kpis", level="distributor", **PERIOD)
    assert {r["id"]: Decimal(r["value"]) for r in distributors.json()["rows"]} == {"D1": Decimal("154.00")}, (
        "other reps' distributors are not listed, not even at zero"
    )
    assert all(r["primary_value"] is None for r in distributors.json()["rows"])

    reps = await as_rep1(services, tokens, "/v1/sales/by", dimension="rep", **PERIOD)
    assert [(r["id"], Decimal(r["value"])) for r in reps.json()["rows"]] == [("REP-1", Decimal("154"))]
    top = await as_rep1(services, tokens, "/v1/outlets/ranking", order="top", n="3", **PERIOD)
    assert [(r["id"], Decimal(r["value"])) for r in top.json()["rows"]] == [
        ("O1", Decimal("134")),
        ("O2", Decimal("20")),
    ], "only REP-1's outlets: other reps' outlets are neither counted nor listed at zero"
    bottom = await as_rep1(services, tokens, "/v1/outlets/ranking", order="bottom", n="5", **PERIOD)
    assert [r["id"] for r in bottom.json()["rows"]] == ["O2", "O1"]
    explicit = await as_rep1(services, tokens, "/v1/sales/by", dimension="rep", rep="REP-1", **PERIOD)
    assert explicit.json()["rows"] == reps.json()["rows"]
    regions = await as_rep1(services, tokens, "/v1/regions/underperforming", threshold_pct="10", **PERIOD)
    assert [r["id"] for r in regions.json()["rows"]] == ["R1"], "R3 fell too, but not by REP-1's orders"


@pytest.mark.parametrize("path", KPI_PATHS)
async def test_a_rep_asking_for_another_reps_figures_is_refused(
    services: dict[str, ServiceProcess], tokens: Tokens, path: str
) -> None:
    response = await as_rep1(services, tokens, path, rep="REP-2", dimension="rep")
    assert response.status_code == 403, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert "REP-1" in response.json()["detail"]


async def test_reads_that_cannot_be_narrowed_to_a_rep_stay_closed_to_reps(
    services: dict[str, ServiceProcess], tokens: Tokens
) -> None:
    document = (await as_rep1(services, tokens, "/openapi.json")).json()
    rep_readable = {*KPI_PATHS, *REP_CELL_PATHS, *FIELD_PATHS, "/v1/scope", "/v1/whoami"}
    others = [
        path
        for path, operations in document["paths"].items()
        if path.startswith("/v1/") and path not in rep_readable and "get" in operations
    ]
    assert {"/v1/sales", "/v1/stock", "/v1/alerts", "/v1/schemes", "/v1/forecasts", "/v1/outlets/map"} <= set(others)
    for path in others:
        concrete = path.replace("{scheme_id}", "SCH-1").replace("{outlet_id}", "O1")
        response = await as_rep1(services, tokens, concrete, distributor_id="D1")
        assert response.status_code == 403, f"{path}: {response.status_code} {response.text}"
        assert response.headers["content-type"] == "application/problem+json"
    async with httpx.AsyncClient(base_url=services["query-api"].url) as client:
        assert (await client.get("/v1/kpis")).status_code == 401


async def test_a_rep_may_not_post_another_reps_visit(services: dict[str, ServiceProcess], tokens: Tokens) -> None:
    other = visit("O3", "2026-10-03", True, rep="REP-2")
    other["actor"] = "REP-1"
    async with httpx.AsyncClient(base_url=services["order-capture"].url) as client:
        response = await client.post("/v1/events", json={"events": [other]}, headers=tokens.header("rep1"))
    assert response.status_code == 403, response.text


def test_kpi_endpoints_never_fail_with_a_server_error(services: dict[str, ServiceProcess], tokens: Tokens) -> None:
    """The shared fuzz test stops at the first failing operation; these are fuzzed on their own, with data."""
    fuzzed = []
    for operation in operations(services["query-api"]):
        if operation.path not in KPI_PATHS:
            continue

        @given(case=operation.as_strategy())
        @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def run(case: Any) -> None:
            check(case, services["query-api"].url, tokens.header("analyst"))

        run()
        fuzzed.append(operation.path)
    assert sorted(fuzzed) == sorted(KPI_PATHS)
