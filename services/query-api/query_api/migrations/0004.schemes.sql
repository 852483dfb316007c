-- Scheme definitions from the schemes topic: the latest recorded definition (launch or amendment) gives the
-- validity, targeting and products used for scheme performance and lift.
CREATE TABLE scheme_definitions (
    scheme_id       text           PRIMARY KEY,
    name            text           NOT NULL,
    benefit_kind    text           NOT NULL,
    valid_from      timestamptz    NOT NULL,
    valid_to        timestamptz    NOT NULL,
    total_budget    numeric(18, 4),
    zone_ids        text[]         NOT NULL,
    region_ids      text[]         NOT NULL,
    distributor_ids text[]         NOT NULL,
    channels        text[]         NOT NULL,
    outlet_classes  text[]         NOT NULL,
    outlet_ids      text[]         NOT NULL,
    sku_ids         text[]         NOT NULL,
    brands          text[]         NOT NULL,
    recorded_at     timestamptz    NOT NULL,
    recorded_event  uuid           NOT NULL
);

-- Early ends, apart from definitions: an end may arrive before the launch it ends.
CREATE TABLE scheme_ends (
    scheme_id      text        PRIMARY KEY,
    ended_at       timestamptz NOT NULL,
    recorded_at    timestamptz NOT NULL,
    recorded_event uuid        NOT NULL
);

-- SchemeApplied from scheme-engine: the newest revision per (scheme, order event) wins.
CREATE TABLE scheme_applied (
    scheme_id         text           NOT NULL,
    order_event_id    uuid           NOT NULL,
    order_id          text           NOT NULL,
    outlet_id         text           NOT NULL,
    distributor_id    text           NOT NULL,
    order_occurred_at timestamptz    NOT NULL,
    qualifying_units  integer        NOT NULL,
    discount_value    numeric(18, 4) NOT NULL,
    free_units        integer        NOT NULL,
    free_units_cost   numeric(18, 4) NOT NULL,
    revision          integer        NOT NULL,
    PRIMARY KEY (scheme_id, order_event_id)
);

-- ClaimAssessed from scheme-engine: the newest revision per (distributor, claim) wins.
CREATE TABLE claim_assessments (
    distributor_id text           NOT NULL,
    claim_id       text           NOT NULL,
    scheme_id      text           NOT NULL,
    claimed        numeric(18, 4) NOT NULL,
    entitled       numeric(18, 4) NOT NULL,
    approved       numeric(18, 4) NOT NULL,
    over_claim     numeric(18, 4) NOT NULL,
    reasons        text[]         NOT NULL,
    lines          jsonb          NOT NULL,
    assessed_at    timestamptz    NOT NULL,
    revision       integer        NOT NULL,
    PRIMARY KEY (distributor_id, claim_id)
);
CREATE INDEX claim_assessments_by_scheme ON claim_assessments (scheme_id);
