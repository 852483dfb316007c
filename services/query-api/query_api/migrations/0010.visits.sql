-- depends: 0009.reconciliation
-- Each visit a rep recorded, for an outlet's page: when, by whom, where, and why no order was taken.
CREATE TABLE visits (
    event_id        uuid             PRIMARY KEY,
    visit_id        text             NOT NULL,
    distributor_id  text             NOT NULL,
    outlet_id       text             NOT NULL,
    rep_id          text             NOT NULL,
    day             date             NOT NULL,
    occurred_at     timestamptz      NOT NULL,
    recorded_at     timestamptz,
    source          text             NOT NULL,
    productive      boolean          NOT NULL,
    no_order_reason text,
    lat             double precision,
    lon             double precision,
    accuracy_m      double precision
);
CREATE INDEX visits_by_outlet ON visits (outlet_id, day);
