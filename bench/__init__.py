"""`make bench`: throughput and latency of Sellthrough against baselines measured in the same run.

Each scenario has its own module (ingest, pipeline, freshness, field_load, location, rebuild, queries);
`runner` starts the embedded Postgres and Tansu (or uses DATABASE_URL / KAFKA_BOOTSTRAP_SERVERS), runs the real service
processes and the scenarios in order, and `results` writes bench/results.json and prints the table.
"""
