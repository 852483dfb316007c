-- depends: 0000.runtime-outbox
-- W3C trace context of the request (or consumed event) that produced each outbox row, published as Kafka
-- headers so consumers continue the same trace.
ALTER TABLE outbox ADD COLUMN trace_headers jsonb NOT NULL DEFAULT '{}';
