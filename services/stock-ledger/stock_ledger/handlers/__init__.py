"""The ledger consumer's batch and the alert re-evaluation: they decide, storage is behind ports.LedgerStore."""
