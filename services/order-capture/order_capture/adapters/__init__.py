"""PostgreSQL: accepted events, business keys and outbox rows; this service's copy of the masters."""
