"""RFC 9457 problem details: every error a client sees is application/problem+json, never a bare 500."""

import logging
from typing import Any

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

log = logging.getLogger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_BASE = "https://sellthrough.dev/problems/"


class ProblemError(Exception):
    """Raise anywhere in a request to answer with a problem+json body."""

    def __init__(
        self,
        status: int,
        slug: str,
        title: str,
        detail: str | None = None,
        *,
        headers: dict[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail or title)
        self.status = status
        self.slug = slug
        self.title = title
        self.detail = detail
        self.headers = headers
        self.extensions = extensions


def problem_response(
    status: int,
    slug: str,
    title: str,
    detail: str | None = None,
    *,
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    **extensions: Any,
) -> JSONResponse:
    body: dict[str, Any] = {"type": PROBLEM_BASE + slug, "title": title, "status": status}
    if detail:
        body["detail"] = detail
    if instance:
        body["instance"] = instance
    body.update(extensions)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


DATABASE_UNAVAILABLE: tuple[type[Exception], ...] = (
    OSError,  # refused or reset connections; TimeoutError (a pool acquire or connect timing out) is one too
    asyncpg.PostgresConnectionError,  # includes a connection found dead mid-query
    asyncpg.InterfaceError,  # "connection is closed", "pool is closing"
    asyncpg.CannotConnectNowError,  # starting up or in recovery
    asyncpg.AdminShutdownError,  # the server shut down under a running statement
    asyncpg.CrashShutdownError,
    asyncpg.TooManyConnectionsError,
    # The client's protocol state broken by a connection lost between two messages ("cannot switch to state
    # 12; another operation is in progress"), as when the server shuts down under a request.
    asyncpg.InternalClientError,
)
"""Errors meaning the database cannot be used right now, not that the request is wrong: answered 503 with
Retry-After, so clients (the phone app's sync, connectors) back off and retry instead of giving up on a 500."""

UNAVAILABLE_RETRY_AFTER_S = 2
"""Long enough for a pool to reconnect after a restart; short enough that a sync resumes promptly."""

_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
_STATUS_SLUGS = {
    400: "bad-request",
    401: "unauthorized",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    413: "payload-too-large",
    415: "unsupported-media-type",
    429: "too-many-requests",
}


def _allowed_methods(request: Request) -> str:
    """Every method some route serves at this path (RFC 9110's Allow). Starlette names only the first route's,
    so a path with a GET route and a POST route (query-api's /v1/subscriptions) would answer Allow: GET. Each
    method is tried against the router's own matching, so routers included in routers are seen too."""
    allowed = []
    for method in _METHODS:
        scope = {**request.scope, "method": method}
        if any(route.matches(scope)[0] is Match.FULL for route in request.app.router.routes):
            allowed.append(method)
    return ", ".join(allowed)


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(ProblemError)
    async def _problem(request: Request, error: ProblemError) -> JSONResponse:
        return problem_response(
            error.status,
            error.slug,
            error.title,
            error.detail,
            instance=request.url.path,
            headers=error.headers,
            **error.extensions,
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": ".".join(str(p) for p in e.get("loc", ())), "message": e.get("msg", "")} for e in error.errors()
        ]
        return problem_response(
            422,
            "invalid-request",
            "The request parameters are not valid.",
            "; ".join(f"{e['field']}: {e['message']}" for e in errors),
            instance=request.url.path,
            errors=errors,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, error: StarletteHTTPException) -> JSONResponse:
        slug = _STATUS_SLUGS.get(error.status_code, "http-error")
        headers = getattr(error, "headers", None)
        if error.status_code == 405:
            headers = {**(headers or {}), "Allow": _allowed_methods(request)}
        return problem_response(
            error.status_code,
            slug,
            str(error.detail),
            instance=request.url.path,
            headers=headers,
        )

    @app.exception_handler(asyncpg.DataError)
    async def _unstorable(request: Request, error: asyncpg.DataError) -> JSONResponse:
        # Postgres refused a value that passed validation (say, a character it cannot store): the input's fault.
        log.info("value refused by the database", extra={"path": request.url.path, "error": str(error)})
        return problem_response(
            422, "invalid-value", "A value in the request cannot be used.", str(error), instance=request.url.path
        )

    async def _unavailable(request: Request, error: Exception) -> JSONResponse:
        log.warning("database unavailable", extra={"path": request.url.path, "error": repr(error)})
        return problem_response(
            503,
            "unavailable",
            "The service cannot reach its database; retry shortly.",
            instance=request.url.path,
            headers={"Retry-After": str(UNAVAILABLE_RETRY_AFTER_S)},
        )

    for unavailable in DATABASE_UNAVAILABLE:
        app.add_exception_handler(unavailable, _unavailable)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, error: Exception) -> JSONResponse:
        log.exception("unhandled error", extra={"path": request.url.path})
        return problem_response(500, "internal", "Internal error; it has been logged.", instance=request.url.path)
