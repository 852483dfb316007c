"""Development and test stack: real PostgreSQL and a real Kafka-compatible broker, no Docker, no root."""
