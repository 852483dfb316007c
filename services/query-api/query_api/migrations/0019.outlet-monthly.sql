-- depends: 0018.sales-fold
-- Issue 18, outlet level at 10M lines: across all distributors (no parent) the drill-down summed every
-- (outlet, day) row of the range, ~450k rows over 90 days for 5,000 outlets (2.1 s). Per outlet and month, the
-- whole months of a range are read from here (a row per outlet and month) and only the days of the partial months
-- at its two ends from sales_outlet_daily (reads/sales.py: _WHOLE_MONTHS). Keyed like sales_outlet_daily and
-- carrying the measures, so one outlet's months are an index-only range; by month for the no-parent read.
-- Kept like the other rollups: added set-based from each batch (projections/sales_monthly.py) and regrouped from
-- the lines by the bulk loader; it is keyed by outlet, so a re-homed outlet's rows stay where they are.
CREATE TABLE sales_outlet_monthly (
    outlet_id              text           NOT NULL,
    month                  date           NOT NULL,  -- its first day
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
    CONSTRAINT sales_outlet_monthly_pkey PRIMARY KEY (outlet_id, month)
        INCLUDE (value, units, lines, ordered_value, ordered_units, cancelled_value, cancelled_units, returned_value,
                 returned_units, returned_damaged_units, returned_expired_units, returned_unsold_units,
                 delivered_units)
) WITH (fillfactor = 70);
CREATE INDEX sales_outlet_monthly_by_month ON sales_outlet_monthly (month);

INSERT INTO sales_outlet_monthly (outlet_id, month, value, units, lines, ordered_value, ordered_units,
                                  cancelled_value, cancelled_units, returned_value, returned_units,
                                  returned_damaged_units, returned_expired_units, returned_unsold_units,
                                  delivered_units)
SELECT outlet_id, date_trunc('month', day)::date, sum(value), sum(units), sum(lines), sum(ordered_value),
       sum(ordered_units), sum(cancelled_value), sum(cancelled_units), sum(returned_value), sum(returned_units),
       sum(returned_damaged_units), sum(returned_expired_units), sum(returned_unsold_units), sum(delivered_units)
FROM sales_outlet_daily
GROUP BY 1, 2;

-- A brand filter at national to distributor level reads the brand's rows of sales_distributor_brand_daily (a row
-- per distributor and day, each on a page of its own in arrival order: ~1k buffers over 90 days at 2M lines for
-- 40 distributors); carrying the distributor and the measures, its brand index answers alone, as 0017 did for the
-- SKU rollup.
CREATE INDEX sales_distributor_brand_daily_by_brand_covering ON sales_distributor_brand_daily (brand, day)
    INCLUDE (distributor_id, value, units, lines, ordered_value, ordered_units, cancelled_value, cancelled_units,
             returned_value, returned_units, returned_damaged_units, returned_expired_units, returned_unsold_units,
             delivered_units);
DROP INDEX sales_distributor_brand_daily_by_brand;
