-- depends: 0002.stock-and-primary
-- Where a distributor-level row (distributor, SKU) sits on a requested rollup level: national, zone, region,
-- distributor, or per SKU under its distributor. One definition for every stock query.
CREATE FUNCTION stock_node(
    level text, distributor_id text, sku_id text, sku_name text, g distributor_geography,
    OUT node_id text, OUT node_name text, OUT parent_id text
) LANGUAGE sql IMMUTABLE AS $$
    SELECT
        CASE level WHEN 'national' THEN 'national' WHEN 'zone' THEN g.zone_id WHEN 'region' THEN g.region_id
                   WHEN 'distributor' THEN distributor_id ELSE sku_id END,
        CASE level WHEN 'national' THEN 'National' WHEN 'zone' THEN g.zone_name WHEN 'region' THEN g.region_name
                   WHEN 'distributor' THEN g.distributor_name ELSE sku_name END,
        CASE level WHEN 'region' THEN g.zone_id WHEN 'distributor' THEN g.region_id WHEN 'sku' THEN distributor_id
                   END
$$;
