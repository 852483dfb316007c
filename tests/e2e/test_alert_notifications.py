"""Alerts that reach people, against real local receivers: webhooks signed, retried with backoff and dead-lettered
(a receiver started here), the daily digest and the Monday review pack over SMTP (aiosmtpd started here), with the
figures in the mails equal to the API's."""

import itertools
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from email.message import Message
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from sellthrough_devstack.services import ServiceProcess
from tests.conftest import Infra, Tokens
from tests.e2e.test_stock_flow import count, invoice, post
from tests.support.brand import order
from tests.support.receivers import SmtpServer, WebhookReceiver, smtp_server, webhook_receiver
from tests.support.services import running_with_reference_data
from tests.support.waiting import eventually

if TYPE_CHECKING:
    from playwright.sync_api import Browser

pytestmark = pytest.mark.e2e

NOW = datetime.now(UTC)
MAX_ATTEMPTS = 4
BACKOFF_BASE = 0.4


@pytest.fixture(scope="module")
def receiver() -> Iterator[WebhookReceiver]:
    # flaky: 2 failures per delivery, then accepted; dead: never accepted; outside: never called (D2 only).
    with webhook_receiver({"flaky": 2, "dead": None, "outside": 0}) as running:
        yield running


@pytest.fixture(scope="module")
def smtp() -> Iterator[SmtpServer]:
    with smtp_server() as running:
        yield running


@pytest.fixture(scope="module")
def services(infra: Infra, tokens: Tokens, smtp: SmtpServer) -> Iterator[dict[str, ServiceProcess]]:
    env = {
        "SELLTHROUGH_MAX_COVER_DAYS": "45",
        "SELLTHROUGH_MIN_COVER_DAYS": "7",
        "SELLTHROUGH_DEMAND_WINDOW_DAYS": "28",
        "SELLTHROUGH_NOTIFY_POLL_SECONDS": "0.3",
        "SELLTHROUGH_NOTIFY_WEBHOOK_MAX_ATTEMPTS": str(MAX_ATTEMPTS),
        "SELLTHROUGH_NOTIFY_BACKOFF_BASE_SECONDS": str(BACKOFF_BASE),
        "SELLTHROUGH_NOTIFY_BACKOFF_MAX_SECONDS": "5",
        "SELLTHROUGH_NOTIFY_SCHEDULES": "false",  # the test sends the digest and pack with sellthrough-notify
        "SELLTHROUGH_SMTP_HOST": "127.0.0.1",
        "SELLTHROUGH_SMTP_PORT": str(smtp.port),
        "SELLTHROUGH_SMTP_TLS": "none",
        "SELLTHROUGH_SMTP_FROM": "alerts@brand.example",
    }
    with running_with_reference_data(infra, tokens, ["order-capture", "stock-ledger", "query-api"], env) as running:
        yield running


def api(services: dict[str, ServiceProcess], tokens: Tokens, who: str = "admin") -> httpx.Client:
    return httpx.Client(base_url=services["query-api"].url, headers=tokens.header(who), timeout=30)


def subscribe(services: dict[str, ServiceProcess], tokens: Tokens, **body: Any) -> dict[str, Any]:
    with api(services, tokens) as client:
        response = client.post("/v1/subscriptions", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


def notify_cli(services: dict[str, ServiceProcess], command: str) -> str:
    env = {**os.environ, **services["query-api"].env}
    done = subprocess.run(
        [sys.executable, "-m", "query_api.notify", command, "--force"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def last_week_wednesday() -> datetime:
    today = NOW.date()
    monday = today - timedelta(days=today.weekday() + 7)
    return datetime(monday.year, monday.month, monday.day, 10, tzinfo=UTC) + timedelta(days=2)


@pytest.fixture(scope="module")
def subscribed(
    services: dict[str, ServiceProcess], tokens: Tokens, receiver: WebhookReceiver
) -> dict[str, dict[str, Any]]:
    subs = {
        "flaky": subscribe(
            services, tokens, role="regional_manager", region_ids=["R1"], webhook_url=receiver.url("flaky")
        ),
        "dead": subscribe(services, tokens, role="admin", kinds=["overstock"], webhook_url=receiver.url("dead")),
        "outside": subscribe(
            services, tokens, role="distributor", distributor_ids=["D2"], webhook_url=receiver.url("outside")
        ),
        "mail": subscribe(services, tokens, role="analyst", email="head.of.sales@brand.example"),
    }
    for name, sub in subs.items():
        if sub["secret"] is not None:
            receiver.secrets[name] = sub["secret"]
    # Stock at D1 (region R1): S1 overstocked, S2 at risk of a stock-out (tests/e2e/test_stock_flow.py), and an
    # order in last week for the review pack.
    post(services, tokens, [invoice("D1", [("S1", 1000), ("S2", 10)], NOW - timedelta(days=3))])
    post(services, tokens, [order("O1", [("S1", 5), ("S2", 9)], occurred_at=NOW - timedelta(days=1))])
    post(services, tokens, [order("O2", [("S1", 3)], occurred_at=last_week_wednesday())])
    post(services, tokens, [count("D1", [("S1", 990)], NOW - timedelta(hours=1))])
    return subs


async def test_subscriptions_are_admin_only_and_validated(
    services: dict[str, ServiceProcess], tokens: Tokens, subscribed: dict[str, dict[str, Any]]
) -> None:
    with api(services, tokens, "analyst") as client:
        assert client.get("/v1/subscriptions").status_code == 403
    with api(services, tokens) as client:
        listed = client.get("/v1/subscriptions").json()["subscriptions"]
        assert {s["subscription_id"] for s in listed} >= {s["subscription_id"] for s in subscribed.values()}
        assert all("secret" not in s for s in listed), "a secret is shown only when created"
        for bad in (
            {"role": "rep", "email": "a@b.example"},
            {"role": "regional_manager", "email": "a@b.example"},  # no territory
            {"role": "admin", "email": "a@b.example", "webhook_url": "http://127.0.0.1:1/x"},
            {"role": "admin", "email": "not-an-address"},
            {"role": "admin", "kinds": ["weather"], "email": "a@b.example"},
        ):
            response = client.post("/v1/subscriptions", json=bad)
            assert response.status_code == 422, (bad, response.text)
            assert response.headers["content-type"].startswith("application/problem+json")


async def test_webhooks_are_signed_retried_with_backoff_and_scoped(
    services: dict[str, ServiceProcess],
    tokens: Tokens,
    subscribed: dict[str, dict[str, Any]],
    receiver: WebhookReceiver,
) -> None:
    def accepted() -> list[Any]:
        return [a for a in receiver.of("flaky") if a.answered == 204]

    await eventually(
        lambda: _async(accepted),
        lambda got: (
            {(a.body["alert"]["sku_id"], a.body["alert"]["kind"]) for a in got}
            >= {("S1", "overstock"), ("S2", "stockout_risk")}
        ),
        what="both D1 alerts accepted by the flaky receiver after its failures",
    )
    arrivals = receiver.of("flaky")
    assert all(a.verified for a in arrivals), "every request carries a valid signature over its exact body"
    for got in accepted():
        tries = [a for a in arrivals if a.delivery == got.delivery]
        assert [a.answered for a in tries] == [500, 500, 204], "retried after each failure, then delivered once"
        assert {a.body["delivery"] for a in tries} == {got.delivery}, "the same body and key on every attempt"
        gaps = [b.at - a.at for a, b in itertools.pairwise(tries)]
        assert gaps[0] >= BACKOFF_BASE * 0.5 - 0.05, gaps
        assert gaps[1] >= BACKOFF_BASE * 1.0 - 0.05, ("the second wait is drawn from a doubled ceiling", gaps)
        assert got.body["type"] == "stock_alert.raised"
        assert got.body["alert"]["distributor_id"] == "D1"
    assert receiver.of("outside") == [], "D1's alerts are outside a D2 distributor's scope"

    with api(services, tokens) as client:
        flaky_id = subscribed["flaky"]["subscription_id"]
        rows = client.get("/v1/deliveries", params={"subscription_id": flaky_id}).json()["deliveries"]
    delivered = [r for r in rows if r["status"] == "delivered"]
    assert all(r["attempts"] == 3 for r in delivered), delivered
    assert len(delivered) == len(accepted()), "one delivery per alert change, however often the poller ran"
    assert len({r["idempotency_key"] for r in rows}) == len(rows)


async def test_a_receiver_that_always_fails_gets_a_dead_letter_with_the_last_error(
    services: dict[str, ServiceProcess],
    tokens: Tokens,
    subscribed: dict[str, dict[str, Any]],
    receiver: WebhookReceiver,
) -> None:
    dead_id = subscribed["dead"]["subscription_id"]

    def dead_letters() -> list[dict[str, Any]]:
        with api(services, tokens) as client:
            params = {"status": "dead", "subscription_id": dead_id}
            return list(client.get("/v1/deliveries", params=params).json()["deliveries"])

    rows = await eventually(lambda: _async(dead_letters), lambda got: len(got) >= 1, what="the dead letter")
    assert len(rows) == 1, "kinds=['overstock']: only S1's alert"
    assert rows[0]["attempts"] == MAX_ATTEMPTS
    assert rows[0]["last_status"] == 500
    assert "HTTP 500" in rows[0]["last_error"]
    assert "receiver says no" in rows[0]["last_error"]
    assert len(receiver.of("dead")) == MAX_ATTEMPTS, "no attempt after the last"
    with api(services, tokens) as client:
        assert client.post(f"/v1/deliveries/{rows[0]['delivery_id']}/retry").status_code == 202
    await eventually(
        lambda: _async(lambda: receiver.of("dead")), lambda got: len(got) > MAX_ATTEMPTS, what="the retried letter"
    )


def _mail(smtp: SmtpServer, subject_start: str) -> Message:
    found = [m for m in smtp.messages if str(m["Subject"]).startswith(subject_start)]
    assert found, [m["Subject"] for m in smtp.messages]
    return found[-1]


def _html(message: Message) -> str:
    for part in message.walk():
        if part.get_content_type() == "text/html":
            return str(part.get_content())  # type: ignore[attr-defined]
    raise AssertionError("no HTML part")


async def test_the_daily_digest_over_smtp_shows_the_apis_alert_figures(
    services: dict[str, ServiceProcess], tokens: Tokens, subscribed: dict[str, dict[str, Any]], smtp: SmtpServer
) -> None:
    await eventually(
        lambda: _async(lambda: api(services, tokens, "analyst").get("/v1/alerts").json()),
        lambda body: body["total"] >= 2,
        what="alerts projected",
    )
    assert "digest mails sent: 1" in notify_cli(services, "digest")
    mail = _mail(smtp, "Sellthrough alerts")
    assert mail["To"] == "head.of.sales@brand.example"
    assert mail["From"] == "alerts@brand.example"
    html = _html(mail)
    with api(services, tokens, "analyst") as client:
        body = client.get("/v1/alerts").json()
    total = int(re.search(r'data-total="alerts">(\d+)<', html).group(1))  # type: ignore[union-attr]
    assert total == body["total"]
    for kind in ("negative_stock", "stockout_risk", "overstock"):
        in_mail = int(re.search(rf'data-kind="{kind}">(\d+)<', html).group(1))  # type: ignore[union-attr]
        assert in_mail == sum(r[kind] for r in body["rows"]), kind


async def test_the_review_pack_by_mail_and_printable_page_equal_the_apis(
    services: dict[str, ServiceProcess], tokens: Tokens, subscribed: dict[str, dict[str, Any]], smtp: SmtpServer
) -> None:
    with api(services, tokens, "analyst") as client:
        pack = await eventually(
            lambda: _async(lambda: client.get("/v1/review").json()),
            lambda body: Decimal(body["secondary_value"]) > 0,
            what="last week's order in the pack",
        )
        kpis = client.get(
            "/v1/kpis", params={"level": "region", "from": pack["date_from"], "to": pack["date_to"]}
        ).json()
        sell_in = client.get(
            "/v1/primary-vs-secondary", params={"level": "region", "from": pack["date_from"], "to": pack["date_to"]}
        ).json()
        overstock = client.get("/v1/alerts", params={"kind": "overstock"}).json()
        page = client.get("/dashboard/review")
    assert date.fromisoformat(pack["date_to"]).weekday() == 6, "a whole Monday-Sunday week"
    assert Decimal(pack["secondary_value"]) == Decimal(kpis["total"]["value"]) >= Decimal("31.50"), "3 x S1 at 10.50"
    assert {r["id"]: Decimal(r["value"]) for r in pack["top_regions"]} == {
        r["id"]: Decimal(r["value"]) for r in kpis["rows"][:5]
    }
    assert {r["id"]: Decimal(r["primary_value"]) for r in pack["primary_vs_secondary"]} == {
        r["id"]: Decimal(r["primary_value"]) for r in sell_in["rows"]
    }
    assert pack["overstock_alerts"] == overstock["total"] >= 1
    assert page.status_code == 200
    assert "@media print" in page.text

    assert "review mails sent: 1" in notify_cli(services, "review")
    html = _html(_mail(smtp, "Weekly review"))
    for figure in ("secondary_value", "primary_value", "overstock_alerts"):
        found = re.search(rf'data-figure="{figure}" data-value="([^"]*)"', html)
        assert found is not None, figure
        assert Decimal(found.group(1)) == Decimal(str(pack[figure])), figure
        assert f'data-figure="{figure}" data-value="{found.group(1)}"' in page.text, "the page shows the same"


async def _async(fn: Any) -> Any:
    return fn()


def test_the_printable_review_page_in_a_browser_shows_the_apis_figures(
    services: dict[str, ServiceProcess], tokens: Tokens, subscribed: dict[str, dict[str, Any]], browser: "Browser"
) -> None:
    from playwright.sync_api import expect

    url = services["query-api"].url
    with api(services, tokens, "analyst") as client:
        pack = client.get("/v1/review").json()
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{url}/dashboard")  # the dashboard leads to the printable pack
    page.get_by_test_id("review-link").click()
    page.wait_for_url(f"{url}/dashboard/review.html")
    expect(page.get_by_test_id("status")).to_contain_text("No token")
    page.evaluate("token => sessionStorage.setItem('sellthrough.token', token)", tokens.issued["analyst"].token)
    page.reload()
    figure = page.locator('[data-figure="secondary_value"]')
    expect(figure).to_have_attribute("data-value", str(pack["secondary_value"]))
    overstock = page.locator('[data-figure="overstock_alerts"]')
    expect(overstock).to_have_attribute("data-value", str(pack["overstock_alerts"]))
    page.emulate_media(media="print")
    assert not page.locator("#print").is_visible(), "the print button is not printed"
    assert len(page.pdf(format="A4")) > 1000, "it prints"
    page.close()
