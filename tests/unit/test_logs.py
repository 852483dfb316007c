import json
import logging

import pytest
from opentelemetry.sdk.trace import TracerProvider

from sellthrough_runtime.logs import configure_logging


def test_log_lines_are_json_with_service_trace_and_event_ids(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("order-capture")
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("request") as span:
        logging.getLogger("order_capture.api.events").info("event rejected", extra={"event_id": "e-1", "reason": "x"})
    line = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert line["message"] == "event rejected"
    assert line["service"] == "order-capture"
    assert (line["event_id"], line["reason"], line["level"]) == ("e-1", "x", "INFO")
    assert line["trace_id"] == format(span.get_span_context().trace_id, "032x")
    assert line["span_id"] == format(span.get_span_context().span_id, "016x")
