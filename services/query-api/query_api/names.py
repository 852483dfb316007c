"""What names query-api's data: its schema, its consumer group and topics, its migrations. Apart from main.py so
that a job (query_api.jobs.rebuild) has them without importing the app and its routers (seconds of start-up)."""

from pathlib import Path

from sellthrough_contracts.topics import FIELD_CHECKS, REFERENCE, SCHEME_RESULTS, SCHEMES, STOCK, TRADE

SERVICE = "query-api"
SCHEMA = "query_api"
PROJECTION_GROUP = "query-api.projections"
PROJECTION_TOPICS = (REFERENCE.name, TRADE.name, STOCK.name, SCHEMES.name, SCHEME_RESULTS.name, FIELD_CHECKS.name)
MIGRATIONS = Path(__file__).parent / "migrations"
