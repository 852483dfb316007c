"""The OpenAPI document each service publishes, completed centrally (sellthrough_runtime/openapi.py): checked on
the documents themselves here; tests/e2e/test_fuzz_api.py holds the running services to them."""

from typing import Any

import pytest

from order_capture.main import create_app as order_capture_app
from order_capture.settings import OrderCaptureSettings
from query_api.main import create_app as query_api_app
from query_api.settings import QueryApiSettings

PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}


@pytest.fixture(scope="module", params=["order-capture", "query-api"])
def document(request: pytest.FixtureRequest) -> dict[str, Any]:
    app = (
        order_capture_app(OrderCaptureSettings())
        if request.param == "order-capture"
        else query_api_app(QueryApiSettings())
    )
    return app.openapi()


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(method, path, op) for path, ops in document["paths"].items() for method, op in ops.items()]


def test_every_authenticated_operation_documents_its_token_answers_as_problems(document: dict[str, Any]) -> None:
    v1 = [(method, path, op) for method, path, op in operations(document) if path.startswith("/v1/")]
    assert v1
    for method, path, op in v1:
        assert op["security"] == [{"bearer": []}], (method, path)
        for status in ("401", "403", "429", "503"):
            assert op["responses"][status]["content"] == PROBLEM, (method, path, status)
        assert op["responses"]["429"]["headers"]["Retry-After"]["required"] is True
        if op.get("parameters") or op.get("requestBody"):
            assert op["responses"]["422"]["content"] == PROBLEM, (method, path)
    assert document["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": document["components"]["securitySchemes"]["bearer"]["description"],
    }
    assert "HTTPValidationError" not in document["components"]["schemas"]


def test_every_error_anywhere_is_a_problem(document: dict[str, Any]) -> None:
    for method, path, op in operations(document):
        for status, response in op["responses"].items():
            if status[0] in "45":
                assert response["content"] == PROBLEM, (method, path, status)


def test_unauthenticated_operations_declare_no_token(document: dict[str, Any]) -> None:
    for path in ("/healthz", "/readyz", "/metrics"):
        op = document["paths"][path]["get"]
        assert "security" not in op
        assert "401" not in op["responses"]
    assert list(document["paths"]["/metrics"]["get"]["responses"]["200"]["content"]) == ["text/plain"]


def test_success_content_types_are_the_real_ones() -> None:
    queries = query_api_app(QueryApiSettings()).openapi()["paths"]
    # Every operation that takes format=csv documents text/csv beside JSON.
    for path, ops in queries.items():
        if "get" not in ops:  # the subscription admin's POST/DELETE-only paths (query_api/api/notify.py)
            continue
        names = {p["name"] for p in ops["get"].get("parameters", [])}
        content = ops["get"]["responses"]["200"]["content"]
        assert ("text/csv" in content) == ("format" in names), path
    assert {"/v1/sales", "/v1/kpis", "/v1/sales/events"} <= {
        p for p, o in queries.items() if "get" in o and "text/csv" in o["get"]["responses"]["200"]["content"]
    }
    assert list(queries["/dashboard"]["get"]["responses"]["200"]["content"]) == ["text/html"]
    assert set(queries["/dashboard/{name}"]["get"]["responses"]["200"]["content"]) == {
        "text/html",
        "text/javascript",
        "text/css",
    }
    events = order_capture_app(OrderCaptureSettings()).openapi()["paths"]["/v1/events"]["post"]
    assert {"400", "413", "415", "422"} <= set(events["responses"])


def test_no_parameter_can_be_null(document: dict[str, Any]) -> None:
    """A query string has no null (leaving a parameter out is its None), so no parameter schema offers one."""
    parameters = [p for _, _, op in operations(document) for p in op.get("parameters", [])]
    if "query-api" in document["info"]["title"]:
        assert any(not p.get("required") for p in parameters)
    for parameter in parameters:
        schema = parameter["schema"]
        assert schema.get("type") != "null", parameter
        assert all(option.get("type") != "null" for option in schema.get("anyOf", [])), parameter
        assert schema.get("default", "") is not None, parameter
