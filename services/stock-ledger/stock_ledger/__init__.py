"""stock-ledger: Distributor book stock, variances and stock alerts (issue 3)."""
