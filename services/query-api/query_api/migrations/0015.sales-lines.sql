-- depends: 0014.field
-- Issue 18: one append-only order-line fact table, sales_lines, replaces the per-line cube sales_daily (upserted)
-- and sales_order_skus (updated with what of a cancellation and deliveries the cube held). Every change to a
-- figure is a row appended: an order's lines ('order'), the compensating entries a cancellation, an
-- un-cancellation (a delivery after the cancellation) or a delivery make ('adjust'), retailer returns ('return'),
-- their revaluation at a new list price ('revalue'), and the figures applied before this migration that no kept
-- fact explains ('legacy'). Nothing is updated in place; a figure is the sum of its rows.
-- sales_daily and sales_order_skus remain, as a view and a function over sales_lines, for their readers.

CREATE TABLE sales_lines (
    day                    date           NOT NULL,
    distributor_id         text           NOT NULL,
    document_id            text           NOT NULL,  -- the order id ('order', 'adjust'), the return id otherwise
    kind                   text           NOT NULL,
    outlet_id              text           NOT NULL,
    sku_id                 text           NOT NULL,
    rep_id                 text           NOT NULL,  -- '' for retailer returns: no rep takes them
    cancel_mark            smallint       NOT NULL DEFAULT 0,  -- +1 cancellation counted, -1 taken back
    value                  numeric(18, 4) NOT NULL DEFAULT 0,
    units                  bigint         NOT NULL DEFAULT 0,
    lines                  integer        NOT NULL DEFAULT 0,
    ordered_value          numeric(18, 4) NOT NULL DEFAULT 0,
    ordered_units          bigint         NOT NULL DEFAULT 0,
    cancelled_value        numeric(18, 4) NOT NULL DEFAULT 0,
    cancelled_units        bigint         NOT NULL DEFAULT 0,
    returned_value         numeric(18, 4) NOT NULL DEFAULT 0,
    returned_units         bigint         NOT NULL DEFAULT 0,
    returned_damaged_units bigint         NOT NULL DEFAULT 0,
    returned_expired_units bigint         NOT NULL DEFAULT 0,
    returned_unsold_units  bigint         NOT NULL DEFAULT 0,
    delivered_units        bigint         NOT NULL DEFAULT 0
) PARTITION BY RANGE (day);
-- Rows of a month without its partition land here rather than being refused (sales_lines_month below).
CREATE TABLE sales_lines_default PARTITION OF sales_lines DEFAULT;

-- An order's rows (reconciling a late cancellation or delivery, provenance, fill rate); an outlet's days (outlet
-- level with a brand or SKU filter, re-homing an outlet); a SKU's days (SKU filters, re-branding); day ranges.
CREATE INDEX sales_lines_by_document ON sales_lines (distributor_id, document_id);
CREATE INDEX sales_lines_by_outlet ON sales_lines (outlet_id, day);
CREATE INDEX sales_lines_by_sku ON sales_lines (sku_id, day);
CREATE INDEX sales_lines_by_day ON sales_lines USING brin (day);

-- The month's partition of `day`, created when missing and the default partition holds none of its rows (those
-- would make CREATE fail; they stay in the default partition, still counted). Taken under an advisory lock, so
-- two consumers creating the same month wait for each other instead of failing.
CREATE FUNCTION sales_lines_month(day date) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    first date := date_trunc('month', day)::date;
    name text := format('sales_lines_%s', to_char(day, 'YYYY_MM'));
BEGIN
    IF to_regclass(quote_ident(name)) IS NOT NULL THEN
        RETURN;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('query-api:sales-lines-partitions'));
    IF to_regclass(quote_ident(name)) IS NOT NULL
       OR EXISTS (SELECT 1 FROM sales_lines_default d WHERE d.day >= first AND d.day < first + interval '1 month') THEN
        RETURN;
    END IF;
    EXECUTE format('CREATE TABLE %I PARTITION OF sales_lines FOR VALUES FROM (%L) TO (%L)',
                   name, first, (first + interval '1 month')::date);
END
$$;

-- The lines of orders already applied, their cancellation and deliveries as the old rows counted them, retailer
-- returns at their counted value, then what of sales_daily none of those explains (orders applied before 0008
-- kept no facts), so every figure stays as it was.
DO $$
BEGIN
    PERFORM sales_lines_month(m) FROM (SELECT DISTINCT date_trunc('month', day)::date AS m FROM sales_daily) AS months;
END
$$;

INSERT INTO sales_lines (day, distributor_id, document_id, kind, outlet_id, sku_id, rep_id, value, units, lines,
                         ordered_value, ordered_units)
SELECT o.day, s.distributor_id, s.order_id, 'order', o.outlet_id, s.sku_id, o.rep_id,
       s.ordered_value, s.ordered_units, s.lines, s.ordered_value, s.ordered_units
FROM sales_order_skus s
JOIN sales_orders o ON o.distributor_id = s.distributor_id AND o.order_id = s.order_id
WHERE s.ordered_units <> 0 OR s.ordered_value <> 0 OR s.lines <> 0;

INSERT INTO sales_lines (day, distributor_id, document_id, kind, outlet_id, sku_id, rep_id, cancel_mark, value,
                         units, lines, cancelled_value, cancelled_units, delivered_units)
SELECT o.day, s.distributor_id, s.order_id, 'adjust', o.outlet_id, s.sku_id, o.rep_id,
       s.cancelled_counted::int,
       CASE WHEN s.cancelled_counted THEN -s.ordered_value ELSE 0 END,
       CASE WHEN s.cancelled_counted THEN -s.ordered_units ELSE 0 END,
       CASE WHEN s.cancelled_counted THEN -s.lines ELSE 0 END,
       CASE WHEN s.cancelled_counted THEN s.ordered_value ELSE 0 END,
       CASE WHEN s.cancelled_counted THEN s.ordered_units ELSE 0 END,
       s.delivered_counted
FROM sales_order_skus s
JOIN sales_orders o ON o.distributor_id = s.distributor_id AND o.order_id = s.order_id
WHERE s.cancelled_counted OR s.delivered_counted <> 0;

INSERT INTO sales_lines (day, distributor_id, document_id, kind, outlet_id, sku_id, rep_id, value, units,
                         returned_value, returned_units, returned_damaged_units, returned_expired_units,
                         returned_unsold_units)
SELECT r.day, r.distributor_id, r.return_id, 'return', r.outlet_id, l.sku_id, '',
       -coalesce(l.counted_value, 0), -l.units, coalesce(l.counted_value, 0), l.units,
       CASE r.reason WHEN 'damaged' THEN l.units ELSE 0 END,
       CASE r.reason WHEN 'expired' THEN l.units ELSE 0 END,
       CASE r.reason WHEN 'unsold' THEN l.units ELSE 0 END
FROM sales_return_lines l
JOIN sales_returns r ON r.distributor_id = l.distributor_id AND r.return_id = l.return_id
WHERE r.direction = 'from_retailer' AND r.outlet_id IS NOT NULL;

INSERT INTO sales_lines (day, distributor_id, document_id, kind, outlet_id, sku_id, rep_id, value, units, lines,
                         ordered_value, ordered_units, cancelled_value, cancelled_units, returned_value,
                         returned_units, returned_damaged_units, returned_expired_units, returned_unsold_units,
                         delivered_units)
SELECT day, '', '', 'legacy', outlet_id, sku_id, rep_id, sum(value), sum(units), sum(lines), sum(ordered_value),
       sum(ordered_units), sum(cancelled_value), sum(cancelled_units), sum(returned_value), sum(returned_units),
       sum(returned_damaged_units), sum(returned_expired_units), sum(returned_unsold_units), sum(delivered_units)
FROM (
    SELECT day, outlet_id, sku_id, rep_id, value, units, lines, ordered_value, ordered_units, cancelled_value,
           cancelled_units, returned_value, returned_units, returned_damaged_units, returned_expired_units,
           returned_unsold_units, delivered_units
    FROM sales_daily
    UNION ALL
    SELECT day, outlet_id, sku_id, rep_id, -value, -units, -lines, -ordered_value, -ordered_units, -cancelled_value,
           -cancelled_units, -returned_value, -returned_units, -returned_damaged_units, -returned_expired_units,
           -returned_unsold_units, -delivered_units
    FROM sales_lines
) AS d
GROUP BY day, outlet_id, sku_id, rep_id
HAVING sum(value) <> 0 OR sum(units) <> 0 OR sum(lines) <> 0 OR sum(ordered_value) <> 0 OR sum(ordered_units) <> 0
    OR sum(cancelled_value) <> 0 OR sum(cancelled_units) <> 0 OR sum(returned_value) <> 0
    OR sum(returned_units) <> 0 OR sum(returned_damaged_units) <> 0 OR sum(returned_expired_units) <> 0
    OR sum(returned_unsold_units) <> 0 OR sum(delivered_units) <> 0;

-- Per business day, distributor (of the outlet) and SKU: what a SKU filter reads at national to distributor level,
-- thousands of rows rather than every line of the SKU. Kept like the other distributor rollups: resolved when sales
-- are applied, moved when an outlet is re-homed (sales_rollups.py).
CREATE TABLE sales_distributor_sku_daily (
    day                    date           NOT NULL,
    distributor_id         text,
    sku_id                 text           NOT NULL,
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
    CONSTRAINT sales_distributor_sku_daily_key UNIQUE NULLS NOT DISTINCT (day, distributor_id, sku_id)
);
CREATE INDEX sales_distributor_sku_daily_by_sku ON sales_distributor_sku_daily (sku_id, day);
INSERT INTO sales_distributor_sku_daily (day, distributor_id, sku_id, value, units, lines, ordered_value,
                                         ordered_units, cancelled_value, cancelled_units, returned_value,
                                         returned_units, returned_damaged_units, returned_expired_units,
                                         returned_unsold_units, delivered_units)
SELECT s.day, o.distributor_id, s.sku_id, sum(s.value), sum(s.units), sum(s.lines), sum(s.ordered_value),
       sum(s.ordered_units), sum(s.cancelled_value), sum(s.cancelled_units), sum(s.returned_value),
       sum(s.returned_units), sum(s.returned_damaged_units), sum(s.returned_expired_units),
       sum(s.returned_unsold_units), sum(s.delivered_units)
FROM sales_lines s
LEFT JOIN outlets o ON o.outlet_id = s.outlet_id
GROUP BY s.day, o.distributor_id, s.sku_id;

DROP TABLE sales_daily;
DROP TABLE sales_order_skus;

-- The per-line cube as its readers knew it: a regrouping of the lines (a day range or outlet they filter on is
-- pushed into the scan).
CREATE VIEW sales_daily AS
SELECT day, outlet_id, sku_id, rep_id, sum(value) AS value, sum(units) AS units, sum(lines)::int AS lines,
       sum(ordered_value) AS ordered_value, sum(ordered_units) AS ordered_units,
       sum(cancelled_value) AS cancelled_value, sum(cancelled_units) AS cancelled_units,
       sum(returned_value) AS returned_value, sum(returned_units) AS returned_units,
       sum(returned_damaged_units) AS returned_damaged_units, sum(returned_expired_units) AS returned_expired_units,
       sum(returned_unsold_units) AS returned_unsold_units, sum(delivered_units) AS delivered_units
FROM sales_lines
GROUP BY day, outlet_id, sku_id, rep_id;

-- An order's lines per SKU and what of its cancellation and deliveries they hold, as sales_order_skus had them:
-- `JOIN LATERAL sales_order_skus(o.distributor_id, o.order_id) s ON true` (an inlined SQL function, so the
-- order's key reaches the index; a grouped view joined on it would be summed whole first).
CREATE FUNCTION sales_order_skus(distributor text, order_id text)
RETURNS TABLE (sku_id text, ordered_units bigint, ordered_value numeric, lines integer, cancelled_counted boolean,
               delivered_counted bigint)
LANGUAGE sql STABLE AS $$
    SELECT l.sku_id, sum(l.ordered_units)::bigint, sum(l.ordered_value),
           coalesce(sum(l.lines) FILTER (WHERE l.kind = 'order'), 0)::int, sum(l.cancel_mark) > 0,
           sum(l.delivered_units)::bigint
    FROM sales_lines l
    WHERE l.distributor_id = $1 AND l.document_id = $2 AND l.kind IN ('order', 'adjust')
    GROUP BY l.sku_id
$$;
