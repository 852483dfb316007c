"""Traces and metrics, with order-capture, stock-ledger and query-api running in this process against the real
broker and Postgres. One posted order is one trace: the HTTP request in order-capture, a consumer span in
every service that applies it, and the stock event derived from it. Metrics move with the traffic."""

import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from prometheus_client.parser import text_string_to_metric_families

from order_capture.main import create_app as order_capture_app
from order_capture.settings import OrderCaptureSettings
from query_api.main import create_app as query_api_app
from query_api.settings import QueryApiSettings
from stock_ledger.main import create_app as stock_ledger_app
from stock_ledger.settings import StockLedgerSettings
from tests.conftest import Infra, Tokens, post_events
from tests.support.brand import order, reference_events
from tests.support.waiting import eventually

EXPORTER = InMemorySpanExporter()


@pytest.fixture(scope="module")
async def clients(infra: Infra, tokens: Tokens) -> AsyncIterator[dict[str, httpx.AsyncClient]]:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(EXPORTER))
    trace.set_tracer_provider(provider)
    common: dict[str, Any] = {
        "database_url": infra.database_url,
        "tokens_file": tokens.file,
        "kafka_bootstrap_servers": infra.kafka_bootstrap_servers,
    }
    apps = {
        "order-capture": order_capture_app(OrderCaptureSettings(**common)),
        "stock-ledger": stock_ledger_app(StockLedgerSettings(**common)),
        "query-api": query_api_app(QueryApiSettings(**common)),
    }
    async with contextlib.AsyncExitStack() as stack:
        clients = {}
        for name, app in apps.items():
            await stack.enter_async_context(app.router.lifespan_context(app))
            clients[name] = await stack.enter_async_context(
                httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=f"http://{name}")
            )
        await post_events(clients["order-capture"], tokens.header("admin"), reference_events())
        await eventually(
            lambda: clients["order-capture"].get("/v1/reference/status", headers=tokens.header("admin")),
            lambda r: r.json()["outlets"] == 5,
            what="masters in order-capture",
        )
        yield clients


def ancestors(span: ReadableSpan) -> list[str]:
    """Names of the span's ancestors, nearest first (FastAPI adds its own spans under the request span)."""
    by_id = {s.context.span_id: s for s in EXPORTER.get_finished_spans()}  # type: ignore[union-attr]
    names = []
    while span.parent is not None and span.parent.span_id in by_id:
        span = by_id[span.parent.span_id]
        names.append(span.name)
    return names


def spans_of(event_id: str) -> list[ReadableSpan]:
    return [s for s in EXPORTER.get_finished_spans() if (s.attributes or {}).get("sellthrough.event_id") == event_id]


async def test_one_order_is_one_trace_from_the_request_to_every_projection(
    clients: dict[str, httpx.AsyncClient], tokens: Tokens
) -> None:
    EXPORTER.clear()
    captured = order("O1", [("S1", 2)])

    response = await post_events(clients["order-capture"], tokens.header("rep1"), [captured])
    assert response.json()["accepted"] == 1

    def groups(spans: list[ReadableSpan]) -> set[object]:
        return {(s.attributes or {}).get("messaging.consumer.group.name") for s in spans}

    applied = await eventually(
        lambda: _async(spans_of(captured["event_id"])),
        lambda spans: groups(spans) >= {"query-api.projections", "stock-ledger.ledger"},
        timeout=30,
        what="the order applied by query-api and stock-ledger",
    )
    for span in applied:
        assert span.kind is SpanKind.CONSUMER
        assert span.name == "apply OrderCaptured"
        assert "POST /v1/events" in ancestors(span), "the consumer span descends from the HTTP request's span"
    trace_id = applied[0].context.trace_id  # type: ignore[union-attr]
    assert {s.context.trace_id for s in applied} == {trace_id}  # type: ignore[union-attr]

    ledger_span = next(s for s in applied if groups([s]) == {"stock-ledger.ledger"})
    derived = await eventually(
        lambda: _async(
            [
                s
                for s in EXPORTER.get_finished_spans()
                if s.name == "apply StockPositionChanged" and s.context.trace_id == trace_id
            ]
        ),  # type: ignore[union-attr]
        bool,
        timeout=30,
        what="the derived stock position applied by query-api, in the same trace",
    )
    assert derived[0].parent is not None
    assert derived[0].parent.span_id == ledger_span.context.span_id, (  # type: ignore[union-attr]
        "the derived event continues from the stock-ledger span that applied its cause"
    )


async def _async(value: Any) -> Any:
    return value


def scrape(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(metrics: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    """Sum of the samples of `name` whose labels include `labels` (0 when there is none yet)."""
    return sum(v for (n, ls), v in metrics.items() if n == name and set(labels.items()) <= set(ls))


async def test_metrics_move_with_traffic(clients: dict[str, httpx.AsyncClient], tokens: Tokens) -> None:
    before = scrape((await clients["query-api"].get("/metrics")).text)
    good = [order("O2", [("S2", 1)]), order("O1", [("S3", 4)])]
    bad = order("O1", [("S1", 1)], occurred_at=datetime.now(UTC) + timedelta(days=1))

    await post_events(clients["order-capture"], tokens.header("rep1"), [*good, bad])
    # Both counts awaited: the relay (a thread of its own) counts its rows once it has marked them published, which
    # can be after query-api has already applied them.
    after = await eventually(
        lambda: _metrics(clients["query-api"]),
        lambda m: (
            value(m, "sellthrough_consumer_events_applied_total", group="query-api.projections")
            >= value(before, "sellthrough_consumer_events_applied_total", group="query-api.projections") + 2
            and value(m, "sellthrough_outbox_published_total", service="order-capture")
            >= value(before, "sellthrough_outbox_published_total", service="order-capture") + 2
        ),
        timeout=30,
        what="the two orders published, applied and counted",
    )

    def moved(name: str, by: float, **labels: str) -> bool:
        return value(after, name, **labels) - value(before, name, **labels) >= by

    assert moved("sellthrough_events_ingested_total", 2, outcome="accepted", event_type="OrderCaptured")
    assert moved("sellthrough_events_ingested_total", 1, outcome="rejected", reason="occurred_in_future")
    assert moved("sellthrough_http_requests_total", 1, service="order-capture", route="/v1/events", status="200")
    assert moved("sellthrough_outbox_published_total", 2, service="order-capture")
    assert moved("sellthrough_consumer_batch_size_count", 1, group="query-api.projections")
    freshness = value(
        after, "sellthrough_projection_freshness_seconds", group="query-api.projections", clock="recorded"
    )
    assert 0 <= freshness < 60, "seconds since the newest applied event was accepted"
    lag = [
        v
        for (n, ls), v in after.items()
        if n == "sellthrough_consumer_lag" and ("group", "query-api.projections") in ls
    ]
    assert lag, "a lag gauge per partition"
    assert all(v >= 0 for v in lag)
    assert ("sellthrough_outbox_backlog", (("service", "order-capture"),)) in after


async def _metrics(client: httpx.AsyncClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return scrape((await client.get("/metrics")).text)
