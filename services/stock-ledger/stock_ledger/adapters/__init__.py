"""PostgreSQL: the event-time ledger's SQL and the handler's LedgerStore."""
