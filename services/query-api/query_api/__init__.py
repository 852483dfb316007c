"""query-api: projections built for reads, and the drill-down API over them."""
