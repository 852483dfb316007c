-- depends: 0002.claim-reassessment
-- Retailer returns (ReturnRecorded from_retailer with an outlet) reverse scheme benefits (domain/returns.py).
-- One row per (distributor, return id): the same return sent again, under another event id, counts once; the
-- first in event time (occurred_at, then event id) is kept whichever arrives first.
CREATE TABLE retailer_returns (
    distributor_id text        NOT NULL,
    return_id      text        NOT NULL,
    outlet_id      text        NOT NULL,
    occurred_at    timestamptz NOT NULL,
    event_id       uuid        NOT NULL,
    units_by_sku   jsonb       NOT NULL,
    PRIMARY KEY (distributor_id, return_id)
);
CREATE INDEX retailer_returns_by_outlet ON retailer_returns (outlet_id);
-- Which schemes granted something at an outlet: the schemes a new return there may revise.
CREATE INDEX applied_by_outlet ON applied (outlet_id);
