"""The OpenAPI document every service publishes, completed from what each route's dependencies imply, so no
route module has to repeat it and none can forget it:

- a route depending on `authenticated` declares the bearer scheme and answers 401 (no, bad or expired token),
  403 (a role or scope refused) and 429 (its token's rate limit, with Retry-After);
- a route with parameters answers 422 (invalid ones) and 404 (one naming nothing known);
- a route with a request body answers 400 (not JSON), 413 (too large), 415 (not JSON's media type) and 422;
- every /v1 route and readiness answer 503 (the database unavailable, or a costly read busy; Retry-After);
- every error is application/problem+json with the Problem schema (FastAPI's own 422 schema is replaced).

Success content types are those routes declare (/metrics is text/plain; the dashboard files are HTML,
JavaScript and CSS), plus text/csv, Parquet and Excel for every operation whose `format` query parameter offers
them.
"""

from collections.abc import Callable, Iterator
from typing import Any

from fastapi import FastAPI, routing
from fastapi.dependencies.models import Dependant

from sellthrough_runtime.auth import authenticated
from sellthrough_runtime.problems import PROBLEM_MEDIA_TYPE

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "RFC 9457 problem details; some problems add members of their own (errors, violations, limit).",
    "type": "object",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string", "description": "A URI naming the kind of problem."},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string"},
        "instance": {"type": "string", "description": "The request's path."},
    },
    "additionalProperties": True,
}

RETRY_AFTER = {"description": "Seconds to wait before retrying.", "schema": {"type": "integer", "minimum": 1}}

DESCRIPTIONS = {
    400: "The body is not valid JSON.",
    401: "No bearer token, or one that is unknown or expired.",
    403: "The token's role or scope may not do this.",
    404: "A path or query parameter names nothing known.",
    413: "The body or the batch is too large.",
    415: "The body is not application/json.",
    422: "Parameters or body not valid.",
    429: "The token used up its rate limit; retry after Retry-After seconds.",
    503: "A dependency is unavailable or busy (with Retry-After when retrying helps).",
}

BEARER = "bearer"


def _calls(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    for dependency in dependant.dependencies:
        if dependency.call is not None:
            yield dependency.call
        yield from _calls(dependency)


CSV = "text/csv"
_BINARY = {"type": "string", "format": "binary"}
FILE_FORMATS: dict[str, tuple[str, dict[str, str]]] = {
    "csv": (CSV, {"type": "string"}),
    "parquet": ("application/vnd.apache.parquet", _BINARY),
    "xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", _BINARY),
}
"""A `format` value offered -> the media type the operation then answers (query-api's exports)."""


def _offered_formats(operation: dict[str, Any]) -> list[str]:
    """The file formats a `format` query parameter offers."""
    return [
        value
        for parameter in operation.get("parameters", [])
        if parameter.get("in") == "query" and parameter.get("name") == "format"
        for value in _enum(parameter["schema"])
        if value in FILE_FORMATS
    ]


def _enum(schema: dict[str, Any]) -> list[Any]:
    return [*schema.get("enum", []), *(value for option in schema.get("anyOf", []) for value in _enum(option))]


def _errors_of(route: Any, operation: dict[str, Any]) -> tuple[set[int], bool]:
    """The error statuses a route can answer, and whether it authenticates its caller."""
    statuses: set[int] = set()
    authenticates = authenticated in set(_calls(route.dependant))
    if authenticates:
        statuses |= {401, 403, 429}
    if operation.get("parameters"):
        statuses |= {404, 422}
    if "requestBody" in operation:
        statuses |= {400, 413, 415, 422}
    if route.path.startswith("/v1/") or route.path == "/readyz":
        statuses.add(503)
    return statuses, authenticates


def _drop_null(parameter: dict[str, Any]) -> None:
    """An optional `str | None` parameter is published by FastAPI as anyOf [string, null], but a query string has
    no null: leaving the parameter out is the None. Left in, a client (or schemathesis) may send the text 'null',
    read by the API as an id."""
    schema = parameter.get("schema", {})
    options = [option for option in schema.get("anyOf", []) if option.get("type") != "null"]
    if len(options) == len(schema.get("anyOf", [])):
        return
    rest = {key: value for key, value in schema.items() if key != "anyOf"}
    parameter["schema"] = {**options[0], **rest} if len(options) == 1 else {**rest, "anyOf": options}
    if parameter["schema"].get("default", "") is None:
        del parameter["schema"]["default"]


def install(app: FastAPI) -> None:
    """Serve the app's OpenAPI document completed (module docstring): FastAPI builds it once, on first use, and
    it is completed then, in place."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            _complete(app, build())
        return app.openapi_schema  # type: ignore[return-value]

    app.openapi = openapi  # type: ignore[method-assign]


def _complete(app: FastAPI, document: dict[str, Any]) -> None:
    components = document.setdefault("components", {})
    components.setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
    problem = {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    secured = False
    # Route contexts, as FastAPI's own OpenAPI walks them: the routes of included routers, with their dependencies.
    for route in routing.iter_route_contexts(app.routes):
        if not isinstance(route.original_route, routing.APIRoute) or not route.include_in_schema:
            continue
        for method in route.methods or ():
            operation = document["paths"].get(route.path_format, {}).get(method.lower())
            if operation is None:
                continue
            statuses, authenticates = _errors_of(route, operation)
            for parameter in operation.get("parameters", []):
                _drop_null(parameter)
            responses = operation.setdefault("responses", {})
            if "200" in responses:
                for offered in _offered_formats(operation):
                    media_type, schema = FILE_FORMATS[offered]
                    responses["200"].setdefault("content", {}).setdefault(media_type, {"schema": schema})
            for status in statuses:
                responses.setdefault(str(status), {"description": DESCRIPTIONS[status]})
            for status, response in responses.items():
                if status[0] in "45":
                    response["content"] = dict(problem)
            if "429" in responses:
                responses["429"]["headers"] = {"Retry-After": {**RETRY_AFTER, "required": True}}
            if "503" in responses:
                responses["503"]["headers"] = {"Retry-After": RETRY_AFTER}
            operation["responses"] = dict(sorted(responses.items()))
            if authenticates:
                operation["security"] = [{BEARER: []}]
                secured = True
    if secured:
        components.setdefault("securitySchemes", {})[BEARER] = {
            "type": "http",
            "scheme": "bearer",
            "description": "An API token (see the README's roles); sent as 'Authorization: Bearer <token>'.",
        }
    # FastAPI's own validation-error schemas are no longer referenced once every 422 is a problem.
    for unused in ("HTTPValidationError", "ValidationError"):
        components["schemas"].pop(unused, None)
