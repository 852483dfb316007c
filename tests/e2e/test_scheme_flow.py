"""Launch a scheme, post orders and a distributor claim through order-capture, and read the granted benefits,
the claim's over-claim and the scheme's lift from query-api: order-capture, scheme-engine and query-api as
real processes against the broker and Postgres."""

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest

from sellthrough_devstack.demo import wait_for_masters
from sellthrough_devstack.services import ServiceProcess
from tests.conftest import Infra, Tokens
from tests.support.brand import OUTLETS, event, order, reference_events
from tests.support.services import running_services
from tests.support.waiting import eventually

pytestmark = pytest.mark.e2e

NOW = datetime.now(UTC)
SCHEME = f"SCH-{uuid.uuid4().hex[:8]}"
YOUNG_SCHEME = f"SCH-{uuid.uuid4().hex[:8]}"
VALID_FROM = NOW - timedelta(days=10)
VALID_TO = NOW + timedelta(days=10)


@pytest.fixture(scope="module")
def services(infra: Infra, tokens: Tokens) -> Iterator[dict[str, ServiceProcess]]:
    with running_services(infra, tokens, ["order-capture", "scheme-engine", "query-api"]) as running:
        post(running, tokens, "admin", reference_events())
        wait_for_masters(running["order-capture"].url, tokens.issued["admin"].token, outlets=len(OUTLETS))
        yield running


def post(services: dict[str, ServiceProcess], tokens: Tokens, who: str, events: list[dict[str, Any]]) -> httpx.Response:
    response = httpx.post(
        f"{services['order-capture'].url}/v1/events", json={"events": events}, headers=tokens.header(who), timeout=30
    )
    return response


def accepted(response: httpx.Response) -> None:
    assert response.status_code == 200, response.text
    assert response.json()["rejected"] == 0, response.json()


async def query(services: dict[str, ServiceProcess], tokens: Tokens, path: str, **params: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=services["query-api"].url, headers=tokens.header("analyst")) as client:
        response = await client.get(path, params=params, timeout=10)
    assert response.status_code == 200, response.text
    return dict(response.json())


def launch(
    scheme_id: str = SCHEME, valid_from: datetime = VALID_FROM, skus: tuple[str, ...] = ("S1", "S2")
) -> dict[str, Any]:
    # 10% off Sunrise Tea SKUs for the outlets of distributor D1 (O1, O2); O3-O5 are the same channel and
    # class, untargeted: the control group.
    return event(
        "SchemeLaunched",
        {
            "scheme_id": scheme_id,
            "name": "Monsoon tea push",
            "valid_from": valid_from.isoformat(),
            "valid_to": VALID_TO.isoformat(),
            "benefit": {"kind": "percent_discount", "percent": "10"},
            "applies_to": {"sku_ids": list(skus)},
            "targeting": {"distributor_ids": ["D1"]},
            "total_budget": "1000.00",
        },
        occurred_at=valid_from - timedelta(days=1),
    )


async def test_scheme_benefits_claim_leakage_and_lift(services: dict[str, ServiceProcess], tokens: Tokens) -> None:
    # A connector may not define schemes; an admin may.
    assert post(services, tokens, "connector", [{**launch(), "actor": "erp-1"}]).status_code == 403
    # The second scheme runs 19 days to today, so its pre-period of 19 days starts 37 days ago: recorded sales
    # begin 22 days ago (the first order below), 4 days before it starts.
    accepted(post(services, tokens, "admin", [launch(), launch(YOUNG_SCHEME, NOW - timedelta(days=18), ("S2",))]))
    pre, during = NOW - timedelta(days=15), NOW - timedelta(days=1)
    accepted(
        post(
            services,
            tokens,
            "admin",
            [
                # The first recorded sale, before the first scheme's pre-period began (21 days ago): it is
                # wholly within recorded history. S3 is not a scheme product, so it counts in no lift.
                order("O4", [("S3", 1)], occurred_at=NOW - timedelta(days=22)),
                order("O1", [("S1", 5)], occurred_at=pre),  # targeted, before the scheme
                order("O3", [("S1", 5)], occurred_at=pre),  # control, before the scheme
                order("O1", [("S1", 10)], occurred_at=during),  # 105.00: 10.50 off
                order("O2", [("S1", 10), ("S3", 4)], occurred_at=during),  # S3 does not qualify: 10.50 off
                order("O3", [("S1", 6)], occurred_at=during),  # control, during: not targeted
            ],
        )
    )
    claim = event(
        "SchemeClaimSubmitted",
        {
            "claim_id": "CLM-1",
            "scheme_id": SCHEME,
            "distributor_id": "D1",
            "period_from": VALID_FROM.isoformat(),
            "period_to": VALID_TO.isoformat(),
            "claimed_amount": "50.00",
        },
        actor="erp-1",
        occurred_at=NOW - timedelta(minutes=1),
    )

    detail = await eventually(
        lambda: query(services, tokens, f"/v1/schemes/{SCHEME}"),
        lambda d: d["orders"] == 2,
        timeout=60,
        what="both targeted orders granted",
    )
    assert (detail["outlets_reached"], detail["units"]) == (2, 20)
    assert Decimal(detail["discount_value"]) == Decimal("21.00")
    assert Decimal(detail["cost"]) == Decimal("21.00")

    # The claim goes in after the orders were applied, so its entitlement is complete.
    accepted(post(services, tokens, "connector", [claim]))
    claims = await eventually(
        lambda: query(services, tokens, "/v1/claims", scheme_id=SCHEME, distributor_id="D1"),
        lambda c: len(c["claims"]) == 1,
        timeout=60,
        what="the claim assessed",
    )
    (assessed,) = claims["claims"]
    assert Decimal(assessed["entitled"]) == Decimal("21.00")
    assert Decimal(assessed["approved"]) == Decimal("21.00")
    assert Decimal(assessed["over_claim"]) == Decimal("29.00")
    assert "claimed_more_than_entitled" in assessed["reasons"]
    assert (await query(services, tokens, "/v1/claims", distributor_id="D3"))["claims"] == []

    detail = await eventually(
        lambda: query(services, tokens, f"/v1/schemes/{SCHEME}"),
        lambda d: d["over_claim"] != "0" and d["lift"] is not None and d["lift"]["control"]["during_units"] == 6,
        timeout=60,
        what="leakage and lift",
    )
    assert [(row["distributor_id"], Decimal(row["over_claim"])) for row in detail["leakage"]] == [
        ("D1", Decimal("29.00"))
    ]
    lift = detail["lift"]
    assert lift["reason"] is None
    assert lift["pre_period_days_covered"] == lift["pre_period_days_needed"] == lift["days"]
    assert (lift["targeted"]["outlets"], lift["control"]["outlets"]) == (2, 3)
    assert (lift["targeted"]["pre_units"], lift["targeted"]["during_units"]) == (5, 20)
    assert (lift["control"]["pre_units"], lift["control"]["during_units"]) == (5, 6)
    # Control grew 20%, so 6 units were expected of the targeted outlets: 14 incremental, 21.00 / 14 each.
    assert lift["expected_units"] == pytest.approx(6.0)
    assert lift["incremental_units"] == pytest.approx(14.0)
    assert lift["cost_per_incremental_unit"] == "1.5000"  # money: a decimal string, like every amount
    assert Decimal(lift["targeted"]["during_value"]) > Decimal(lift["targeted"]["pre_value"]) > 0

    young = (await query(services, tokens, f"/v1/schemes/{YOUNG_SCHEME}"))["lift"]
    assert young["reason"] == "insufficient_history"
    assert (young["pre_period_days_covered"], young["pre_period_days_needed"]) == (4, 19)
    assert (young["expected_units"], young["incremental_units"], young["cost_per_incremental_unit"]) == (None,) * 3
    assert young["control"]["outlets"] == 3

    # The retailer O1 hands back 4 of its 10 units of S1: its order keeps the discount of 6 units (6.30), and
    # the scheme's cost and the claim's entitlement drop by 4.20.
    back = event(
        "ReturnRecorded",
        {
            "return_id": "RET-1",
            "distributor_id": "D1",
            "outlet_id": "O1",
            "direction": "from_retailer",
            "reason": "unsold",
            "lines": [{"sku_id": "S1", "quantity": 4}],
        },
        actor="erp-1",
        occurred_at=NOW - timedelta(hours=2),
    )
    accepted(post(services, tokens, "connector", [back]))
    detail = await eventually(
        lambda: query(services, tokens, f"/v1/schemes/{SCHEME}"),
        lambda d: Decimal(d["discount_value"]) == Decimal("16.80"),
        timeout=60,
        what="the returned units' discount reversed",
    )
    assert (detail["units"], detail["orders"]) == (16, 2)
    claims = await eventually(
        lambda: query(services, tokens, "/v1/claims", scheme_id=SCHEME, distributor_id="D1"),
        lambda c: Decimal(c["claims"][0]["entitled"]) == Decimal("16.80"),
        timeout=60,
        what="the claim's entitlement lowered",
    )
    assert Decimal(claims["claims"][0]["over_claim"]) == Decimal("33.20")

    listed = await query(services, tokens, "/v1/schemes")
    summary = next(s for s in listed["schemes"] if s["scheme_id"] == SCHEME)
    assert Decimal(summary["over_claim"]) == Decimal("33.20")
    assert summary["orders"] == 2
    assert listed["freshness"]["newest_recorded_at"] is not None, "scheme results record their freshness"


@pytest.mark.parametrize(
    ("path", "params", "status", "problem"),
    [
        ("/v1/schemes/NO-SUCH-SCHEME", {}, 404, "unknown-scheme"),
        ("/v1/schemes/bad%20id", {}, 422, "invalid-request"),
        ("/v1/schemes", {"limit": "0"}, 422, "invalid-request"),
        ("/v1/claims", {"distributor_id": "no spaces please"}, 422, "invalid-request"),
        ("/v1/claims", {"limit": "lots"}, 422, "invalid-request"),
    ],
)
async def test_bad_scheme_parameters_get_problem_json(
    services: dict[str, ServiceProcess], tokens: Tokens, path: str, params: dict[str, str], status: int, problem: str
) -> None:
    async with httpx.AsyncClient(base_url=services["query-api"].url, headers=tokens.header("analyst")) as client:
        response = await client.get(path, params=params, timeout=10)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"].endswith("/" + problem)
