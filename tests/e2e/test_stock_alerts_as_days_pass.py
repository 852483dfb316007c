"""A distributor whose retailers stop ordering is flagged overstocked once its last sale leaves the demand window,
though no event arrives: stock-ledger's re-evaluation job, as a real process, through the broker to query-api.

The window is one day here and the job runs every second, so "days passing" takes seconds: the order is placed
just inside the window and leaves it while the test waits."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from sellthrough_devstack.services import ServiceProcess
from tests.conftest import Infra, Tokens
from tests.e2e.test_stock_flow import invoice, post, query
from tests.support.brand import OUTLETS, order
from tests.support.services import running_with_reference_data
from tests.support.waiting import eventually

pytestmark = pytest.mark.e2e

LEAVES_THE_WINDOW_IN = timedelta(seconds=20)


@pytest.fixture(scope="module")
def services(infra: Infra, tokens: Tokens) -> Iterator[dict[str, ServiceProcess]]:
    settings = {
        "SELLTHROUGH_DEMAND_WINDOW_DAYS": "1",
        "SELLTHROUGH_MIN_COVER_DAYS": "7",
        "SELLTHROUGH_MAX_COVER_DAYS": "45",
        "SELLTHROUGH_ALERT_REEVALUATION_SECONDS": "1",
    }
    with running_with_reference_data(
        infra, tokens, ["order-capture", "stock-ledger", "query-api"], settings
    ) as running:
        yield running


def alert_kinds(body: dict[str, object]) -> set[tuple[str, str, str]]:
    return {(a["distributor_id"], a["sku_id"], a["kind"]) for a in body["alerts"]}  # type: ignore[attr-defined]


async def test_stock_no_one_buys_any_more_is_flagged_once_its_last_sale_leaves_the_window(
    services: dict[str, ServiceProcess], tokens: Tokens
) -> None:
    now = datetime.now(UTC)
    distributor = OUTLETS["O3"]
    post(services, tokens, [invoice(distributor, [("S3", 100)], now - timedelta(days=2))])
    post(
        services,
        tokens,
        [order("O3", [("S3", 10)], occurred_at=now - timedelta(days=1) + LEAVES_THE_WINDOW_IN)],
    )
    await eventually(
        lambda: query(services, tokens, "/v1/stock", level="sku", parent_id=distributor),
        lambda body: {r["id"]: r["on_hand"] for r in body["rows"]} == {"S3": 90},
        what="90 on hand",
    )
    # 90 on hand and 10 sold in the last day: 9 days of cover, inside the norms.
    alerts = await query(services, tokens, "/v1/alerts", level="national")
    assert (distributor, "S3", "overstock") not in alert_kinds(alerts)

    alerts = await eventually(
        lambda: query(services, tokens, "/v1/alerts", level="national"),
        lambda body: (distributor, "S3", "overstock") in alert_kinds(body),
        timeout=60,
        what="the overstock raised once the sale left the one-day window",
    )
    raised = next(a for a in alerts["alerts"] if (a["distributor_id"], a["sku_id"]) == (distributor, "S3"))
    assert raised["days_of_cover"] is None  # no demand left at all
