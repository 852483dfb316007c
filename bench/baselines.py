"""PostgreSQL COPY of the pipeline's rows into a plain table (reported beside the pipeline's figure). The Kafka raw
paths are in bench/raw_kafka.py, the rebuild's COPY baselines in bench/rebuild.py."""

import time
import uuid
from collections.abc import Sequence

import asyncpg

from bench.data import LineRow

COPY_COLUMNS = ("day", "outlet_id", "sku_id", "value", "units", "lines")


async def postgres_copy(database_url: str, rows: Sequence[LineRow]) -> float:
    """Seconds to COPY the rows into a plain table shaped like sales_daily (no index), committed."""
    table = f"bench_copy_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            f"CREATE TABLE public.{table} (day date NOT NULL, outlet_id text NOT NULL, sku_id text NOT NULL, "
            "value numeric(18, 4) NOT NULL, units bigint NOT NULL, lines integer NOT NULL)"
        )
        started = time.perf_counter()
        async with conn.transaction():
            await conn.copy_records_to_table(table, records=rows, columns=COPY_COLUMNS, schema_name="public")
        seconds = time.perf_counter() - started
        await conn.execute(f"DROP TABLE public.{table}")
        return seconds
    finally:
        await conn.close()
