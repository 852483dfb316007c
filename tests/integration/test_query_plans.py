"""query-api's connections plan each read for its own parameters. Prepared drill-down statements otherwise
switch to a generic plan after five runs, which the benchmark measured ~20x slower (docs/benchmarks.md)."""

from fastapi import FastAPI

from query_api.main import create_app
from query_api.settings import QueryApiSettings
from sellthrough_runtime.app import ServiceContext
from tests.conftest import Infra, Tokens


async def test_every_pooled_connection_forces_custom_plans(infra: Infra, tokens: Tokens) -> None:
    app: FastAPI = create_app(
        QueryApiSettings(
            database_url=infra.database_url,
            kafka_bootstrap_servers=infra.kafka_bootstrap_servers,
            tokens_file=tokens.file,
        )
    )
    async with app.router.lifespan_context(app):
        context: ServiceContext = app.state.context
        async with context.pool.acquire() as first, context.pool.acquire() as second:
            modes = {await conn.fetchval("SHOW plan_cache_mode") for conn in (first, second)}
            search_path = await first.fetchval("SHOW search_path")

    assert modes == {"force_custom_plan"}
    assert search_path == "query_api", "extra settings must not replace the schema's search_path"
