-- depends: 0005.outlet-geotags
-- Idempotency keys are deleted once no retry of their event could still be accepted (adapters/retention.py). A
-- BRIN index finds the old ones: keys are appended in accepted_at order, so a few pages summarise the table,
-- where a btree would cost every accepted event an index write.
CREATE INDEX idempotency_keys_accepted_at ON idempotency_keys USING brin (accepted_at);
