-- depends: 0025.outlet-monthly-now
-- Issue 18, outlet level across all distributors: ranking every outlet (5,000 in the bench) summed ~33 rollup rows
-- an outlet even with sales_outlet_monthly (0019: whole months, the partial months' days from sales_outlet_daily),
-- 350-460 ms at 2M-10M lines. Running totals make any range two rows an outlet: its figures up to the range's last
-- day minus its figures up to the day before its first (reads/sales.py: _DRILL_BY_OUTLET_RUNNING_SQL).
--
-- sales_outlet_running: an outlet's figures summed from its first day with sales up to and including `day`, and
-- `days`, how many of those days had sales (a row in sales_outlet_daily): a range holds sales of an outlet exactly
-- when the difference of `days` is positive, which is how the other statements list an outlet. Dense: a row for
-- every day from the outlet's first day with sales to its last, so the figures "as of day X" of every outlet are
-- the rows `day = X`, one index range (keyed by day first), not a search per outlet.
-- sales_outlet_totals: a row per outlet, its figures as of its last day with sales (`day`): the figures as of any
-- later day. Before its first day an outlet has no row: zero.
-- Kept by the fold with the other rollups (projections/sales_running.py), keyed by outlet: reference changes never
-- move them. A late line rewrites the outlet's rows from its day on (the price of exact two-row reads).
-- The key carries no figures (unlike sales_outlet_daily's): the fold rewrites an outlet's row of the day at every
-- fold, and figures in the index made each of those a new index entry (no HOT update: 1,925 against 1,563 WAL
-- bytes per folded row, docs/benchmarks.md round 4).
-- A day's rows are written together (live: the outlets selling that day; the bulk loader and this migration write
-- in day order), so the heap pages a read of one day visits are few.
CREATE TABLE sales_outlet_running (
    day                    date           NOT NULL,
    outlet_id              text           NOT NULL,
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
    delivered_units        bigint         NOT NULL,
    CONSTRAINT sales_outlet_running_pkey PRIMARY KEY (day, outlet_id)
) WITH (fillfactor = 70);

CREATE TABLE sales_outlet_totals (
    outlet_id              text           NOT NULL,
    day                    date           NOT NULL,  -- its last day with sales
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
    delivered_units        bigint         NOT NULL,
    CONSTRAINT sales_outlet_totals_pkey PRIMARY KEY (outlet_id)
) WITH (fillfactor = 70);

-- What is folded already (queued lines reach both tables when they are folded).
INSERT INTO sales_outlet_running (day, outlet_id, days, value, units, lines, ordered_value, ordered_units,
                                  cancelled_value, cancelled_units, returned_value, returned_units,
                                  returned_damaged_units, returned_expired_units, returned_unsold_units,
                                  delivered_units)
SELECT g.day::date, r.outlet_id, r.days, r.value, r.units, r.lines, r.ordered_value, r.ordered_units,
       r.cancelled_value, r.cancelled_units, r.returned_value, r.returned_units, r.returned_damaged_units,
       r.returned_expired_units, r.returned_unsold_units, r.delivered_units
FROM (
    SELECT outlet_id, day, lead(day) OVER o AS next_day, count(*) OVER w AS days, sum(value) OVER w AS value,
           sum(units) OVER w AS units, sum(lines) OVER w AS lines, sum(ordered_value) OVER w AS ordered_value,
           sum(ordered_units) OVER w AS ordered_units, sum(cancelled_value) OVER w AS cancelled_value,
           sum(cancelled_units) OVER w AS cancelled_units, sum(returned_value) OVER w AS returned_value,
           sum(returned_units) OVER w AS returned_units, sum(returned_damaged_units) OVER w AS returned_damaged_units,
           sum(returned_expired_units) OVER w AS returned_expired_units,
           sum(returned_unsold_units) OVER w AS returned_unsold_units, sum(delivered_units) OVER w AS delivered_units
    FROM sales_outlet_daily
    WINDOW o AS (PARTITION BY outlet_id ORDER BY day), w AS (o ROWS UNBOUNDED PRECEDING)
) AS r
CROSS JOIN LATERAL generate_series(r.day, coalesce(r.next_day - 1, r.day), interval '1 day') AS g(day)
ORDER BY 1, 2;

INSERT INTO sales_outlet_totals (outlet_id, day, days, value, units, lines, ordered_value, ordered_units,
                                 cancelled_value, cancelled_units, returned_value, returned_units,
                                 returned_damaged_units, returned_expired_units, returned_unsold_units,
                                 delivered_units)
SELECT DISTINCT ON (outlet_id) outlet_id, day, days, value, units, lines, ordered_value, ordered_units,
       cancelled_value, cancelled_units, returned_value, returned_units, returned_damaged_units,
       returned_expired_units, returned_unsold_units, delivered_units
FROM sales_outlet_running
ORDER BY outlet_id, day DESC;
