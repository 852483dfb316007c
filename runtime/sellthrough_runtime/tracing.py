"""OpenTelemetry traces across HTTP and Kafka, so one order is one trace from the phone to every projection.

Off by default. Set OTEL_TRACES_EXPORTER=otlp (with the standard OTEL_EXPORTER_OTLP_* variables) or
=console to export; OTEL_SERVICE_NAME overrides the service name. Context travels as W3C `traceparent`:
in HTTP headers, in each outbox row, and from there in the Kafka record headers.
"""

import contextlib
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from uuid import UUID

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

tracer = trace.get_tracer("sellthrough")

_applying: ContextVar[Mapping[UUID, Context] | None] = ContextVar("sellthrough_applying", default=None)
"""While a consumer applies a batch: each event's consumer-span context, for events derived from it."""


def configure_tracing(service: str) -> None:
    """Install an exporting tracer provider if OTEL_TRACES_EXPORTER asks for one (and none is installed)."""
    exporter_name = os.environ.get("OTEL_TRACES_EXPORTER", "none").strip().lower()
    if exporter_name == "none" or isinstance(trace.get_tracer_provider(), TracerProvider):
        return
    exporter: SpanExporter
    if exporter_name == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter()
    elif exporter_name == "console":
        exporter = ConsoleSpanExporter()
    else:
        raise ValueError(f"OTEL_TRACES_EXPORTER={exporter_name!r}: use otlp, console or none")
    provider = TracerProvider(resource=Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", service)}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)


def carrier_for(causation_id: UUID | None) -> dict[str, str]:
    """Trace headers for an event being queued now: its cause's span if it is derived from an event being
    applied, else the current span (the HTTP request)."""
    carrier: dict[str, str] = {}
    contexts = _applying.get()
    context = contexts.get(causation_id) if contexts is not None and causation_id else None
    propagate.inject(carrier, context=context)
    return carrier


def carriers_for(causation_ids: Iterable[UUID | None]) -> dict[UUID | None, dict[str, str]]:
    """`carrier_for` of each distinct cause, as one shared dict for every cause with no context being applied
    (on the HTTP path, all of them): the current span's carrier is injected once, not once per cause."""
    contexts = _applying.get()
    carriers: dict[UUID | None, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for causation_id in causation_ids:
        if causation_id in carriers:
            continue
        if contexts is not None and causation_id and causation_id in contexts:
            carriers[causation_id] = carrier_for(causation_id)
        else:
            if current is None:
                current = carrier_for(None)
            carriers[causation_id] = current
    return carriers


def tracing_enabled() -> bool:
    """Whether a real tracer provider is installed (configure_tracing, or a test's in-memory exporter). Without
    one every span is a no-op, and creating them per consumed event is pure overhead."""
    return not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider | trace.NoOpTracerProvider)


def context_from_kafka(headers: Sequence[tuple[str, bytes]] | None) -> Context:
    return propagate.extract({key: bytes(value).decode(errors="replace") for key, value in headers or ()})


class ProducerContexts(Mapping[UUID, Context]):
    """Event id -> the context of the span that produced the event (from its Kafka headers), extracted only when
    asked for: what `applying` needs when tracing is off. A derived event still continues its cause's trace, as
    under the no-op tracer (whose span for an event is the producer's span, not recording), without extracting
    headers for every event consumed."""

    def __init__(self, headers: Mapping[UUID, Sequence[tuple[str, bytes]] | None]) -> None:
        self._headers = headers

    def __getitem__(self, event_id: UUID) -> Context:
        return trace.set_span_in_context(trace.get_current_span(context_from_kafka(self._headers[event_id])))

    def __iter__(self) -> Iterator[UUID]:
        return iter(self._headers)

    def __len__(self) -> int:
        return len(self._headers)


@contextlib.contextmanager
def applying(contexts: Mapping[UUID, Context]) -> Iterator[None]:
    token = _applying.set(contexts)
    try:
        yield
    finally:
        _applying.reset(token)
