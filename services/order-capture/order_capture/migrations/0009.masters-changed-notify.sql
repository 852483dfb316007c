-- depends: 0008.order-owners-in-business-keys
-- Each worker keeps the masters its batches named in memory (adapters/masters_cache.py) instead of reading them
-- once per batch. Any change to the tables they come from, by any writer (the reference consumer, a migration, a
-- hand-run fix), notifies channel 'order_capture_masters' with the schema's name when its transaction commits;
-- every worker listens and drops its copy. Per statement, not per row: PostgreSQL folds the notifications of one
-- transaction with the same channel and payload into one.
CREATE FUNCTION masters_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('order_capture_masters', TG_TABLE_SCHEMA);
    RETURN NULL;
END
$$;
CREATE TRIGGER masters_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON known_outlets
    FOR EACH STATEMENT EXECUTE FUNCTION masters_changed();
CREATE TRIGGER masters_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON outlet_geotags
    FOR EACH STATEMENT EXECUTE FUNCTION masters_changed();
CREATE TRIGGER masters_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON known_skus
    FOR EACH STATEMENT EXECUTE FUNCTION masters_changed();
CREATE TRIGGER masters_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON known_reps
    FOR EACH STATEMENT EXECUTE FUNCTION masters_changed();
CREATE TRIGGER masters_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON known_distributors
    FOR EACH STATEMENT EXECUTE FUNCTION masters_changed();
