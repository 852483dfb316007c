"""Typed FastAPI dependencies for routes: the service context, its settings, a pooled connection, the outbox relay
and the caller. The one place a route's needs are read from the app; routes never read `app.state` (the
architecture test holds them to it)."""

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, TypeVar

import asyncpg
from fastapi import Depends, Request

from sellthrough_runtime.app import Relay, ServiceContext
from sellthrough_runtime.auth import CurrentPrincipal, Principal
from sellthrough_runtime.settings import ServiceSettings

S = TypeVar("S", bound=ServiceSettings)

# Every dependency here is `async def`, even those that only read: FastAPI runs a plain `def` dependency in a worker
# thread, a hop per request on the ingest path.


async def service_context(request: Request) -> ServiceContext:
    context: ServiceContext = request.app.state.context
    return context


ContextDep = Annotated[ServiceContext, Depends(service_context)]


async def service_settings(context: ContextDep) -> ServiceSettings:
    return context.settings


SettingsDep = Annotated[ServiceSettings, Depends(service_settings)]


def settings_of(kind: type[S]) -> Callable[[ServiceContext], Awaitable[S]]:
    """A dependency giving a service's own settings class: `Annotated[MySettings, Depends(settings_of(MySettings))]`."""

    async def settings(context: ContextDep) -> S:
        if not isinstance(context.settings, kind):
            raise TypeError(f"The service runs with {type(context.settings).__name__}, not {kind.__name__}.")
        return context.settings

    return settings


async def connection(context: ContextDep) -> AsyncIterator[asyncpg.Connection]:
    async with context.pool.acquire() as conn:
        yield conn


# scope="function": the connection goes back to the pool when the route returns, not after the response is sent.
# Cached per request, so a route and its dependencies (the caller's scope) share one connection.
ConnectionDep = Annotated[asyncpg.Connection, Depends(connection, scope="function")]


async def relay(context: ContextDep) -> Relay:
    if context.relay is None:
        raise RuntimeError(f"{context.service} runs no outbox relay.")
    return context.relay


RelayDep = Annotated[Relay, Depends(relay)]

PrincipalDep = CurrentPrincipal
"""The authenticated caller (auth.authenticated: the token checked, the rate limit counted)."""

__all__ = [
    "ConnectionDep",
    "ContextDep",
    "Principal",
    "PrincipalDep",
    "RelayDep",
    "SettingsDep",
    "settings_of",
]
