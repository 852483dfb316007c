-- depends: 0028.outlet-brand-running
-- Issue 18, the live path (round 5): the outlets' running totals (0027) were kept by every fold, and with lines
-- arriving for any of the last 30 days each fold rewrote an outlet's rows from its earliest new day to its last
-- (~3 running rows a folded line, 35-45% of the fold's CPU and WAL, docs/benchmarks.md). The fold now queues its
-- lines per (outlet, day) here instead, and a second, less frequent step (projections/sales_running.py,
-- `fold_running`) moves the queue into the running totals in one statement: an outlet's rows are rewritten once
-- per interval however many of its lines arrived in it. DELETE ... RETURNING from this table and the upserts of the
-- running totals commit together, as do the fold's DELETE from sales_lines_unfolded and its INSERT here, so a line
-- is always in exactly one of sales_lines_unfolded, this queue and the running totals; the read
-- (reads/sales.py, _DRILL_BY_OUTLET_RUNNING_SQL) adds both queues.
-- `days`: 1 when the fold that queued the row created the outlet's sales_outlet_daily row of that day (its first
-- sales that day), else 0: each (outlet, day) is counted once, whichever fold folds it into the running totals.
-- No index and no key, as sales_lines_unfolded: appended and deleted in bulk, read whole.
CREATE TABLE sales_outlet_running_unfolded (
    outlet_id              text           NOT NULL,
    day                    date           NOT NULL,
    days                   integer        NOT NULL,
    value                  numeric(18, 4) NOT NULL,
    units                  bigint         NOT NULL,
    lines                  integer        NOT NULL,
    ordered_value          numeric(18, 4) NOT NULL,
    ordered_units          bigint         NOT NULL,
    cancelled_value        numeric(18, 4) NOT NULL,
    cancelled_units        bigint         NOT NULL,
    returned_value         numeric(18, 4) NOT NULL,
    returned_units         bigint         NOT NULL,
    returned_damaged_units bigint         NOT NULL,
    returned_expired_units bigint         NOT NULL,
    returned_unsold_units  bigint         NOT NULL,
    delivered_units        bigint         NOT NULL
) WITH (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 20000,
        autovacuum_vacuum_insert_scale_factor = 0, autovacuum_vacuum_insert_threshold = 20000);
