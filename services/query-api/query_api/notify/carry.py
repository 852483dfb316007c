"""What a projection rebuild's swap carries from the live schema into the rebuilt one: the notify tables are not
projections (no event rebuilds a subscription or the record of a delivery), so without this a rebuild would drop
every subscription and, its idempotency keys gone, send every raised alert again."""

CARRIED_TABLES = ("notify_subscriptions", "notify_deliveries", "notify_schedule_marks")


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def carry_statements(source: str, target: str) -> list[str]:
    """Statements run in the swap's transaction, before the renames (both schemas have migration 0023)."""
    src, dst = _quoted(source), _quoted(target)
    statements = [f"DELETE FROM {dst}.{t}" for t in reversed(CARRIED_TABLES)]  # noqa: S608
    statements += [f"INSERT INTO {dst}.{t} SELECT * FROM {src}.{t}" for t in CARRIED_TABLES]  # noqa: S608
    statements.append(
        f"SELECT setval(pg_get_serial_sequence('{dst}.notify_deliveries', 'delivery_id'), "  # noqa: S608
        f"coalesce((SELECT max(delivery_id) FROM {dst}.notify_deliveries), 0) + 1, false)"
    )
    return statements
