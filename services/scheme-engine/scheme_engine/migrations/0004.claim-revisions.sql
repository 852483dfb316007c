-- depends: 0003.retailer-returns
-- A claim id submitted again is a new revision of the claim (claims.py): every submission is kept, numbered in
-- the order received; the claim is assessed on the latest by occurred_at, so one received late never replaces
-- a newer one.
CREATE TABLE claim_submissions (
    distributor_id text           NOT NULL,
    claim_id       text           NOT NULL,
    revision       integer        NOT NULL,
    event_id       uuid           NOT NULL UNIQUE,
    occurred_at    timestamptz    NOT NULL,
    claimed_amount numeric(18, 4) NOT NULL,
    body           jsonb          NOT NULL,
    PRIMARY KEY (distributor_id, claim_id, revision)
);

-- Before, a resubmission replaced the stored one: what is left of each claim is its revision 1.
INSERT INTO claim_submissions (distributor_id, claim_id, revision, event_id, occurred_at, claimed_amount, body)
SELECT distributor_id, claim_id, 1, (body ->> 'event_id')::uuid, (body ->> 'occurred_at')::timestamptz,
       (body -> 'payload' ->> 'claimed_amount')::numeric, body
FROM claims;

-- Which submission `claims.body` (the one assessed) is.
ALTER TABLE claims ADD COLUMN claim_revision integer NOT NULL DEFAULT 1;
ALTER TABLE claims ALTER COLUMN claim_revision DROP DEFAULT;
