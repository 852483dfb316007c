-- depends: 0022.sku-formats
-- Alerts that reach people (query_api/notify): subscriptions, the webhook delivery outbox, the schedules' marks.
-- These tables hold no projection: a rebuild's schema swap carries them over (query_api/notify/carry.py).

CREATE TABLE notify_subscriptions (
    subscription_id text        PRIMARY KEY,
    role            text        NOT NULL,
    region_ids      text[]      NOT NULL DEFAULT '{}',
    distributor_ids text[]      NOT NULL DEFAULT '{}',
    kinds           text[]      NOT NULL,
    webhook_url     text,
    email           text,
    -- Signs every webhook body (HMAC-SHA256); shown once, when the subscription is created.
    secret          text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CHECK ((webhook_url IS NULL) <> (email IS NULL)),
    CHECK (webhook_url IS NULL OR secret IS NOT NULL)
);

-- One row per alert state change per webhook subscription: the idempotency key is unique per subscription, so
-- the poller may write the same change again and again without a second delivery. `body` is the exact bytes
-- signed and sent, the same on every attempt.
CREATE TABLE notify_deliveries (
    delivery_id     bigserial   PRIMARY KEY,
    subscription_id text        NOT NULL REFERENCES notify_subscriptions ON DELETE CASCADE,
    idempotency_key text        NOT NULL,
    -- The alert whatever its state (kind, distributor, SKU): a cleared alert is sent only where its raise was.
    alert_ref       text        NOT NULL,
    body            text        NOT NULL,
    status          text        NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'dead')),
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text,
    last_status     integer,
    created_at      timestamptz NOT NULL DEFAULT now(),
    delivered_at    timestamptz,
    UNIQUE (subscription_id, idempotency_key)
);
CREATE INDEX notify_deliveries_due ON notify_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX notify_deliveries_alert ON notify_deliveries (subscription_id, alert_ref);
CREATE INDEX notify_deliveries_dead ON notify_deliveries (subscription_id) WHERE status = 'dead';

-- The last period each schedule sent (the digest: a business day; the review pack: a Monday), so a restart or a
-- second replica never sends one twice.
CREATE TABLE notify_schedule_marks (
    schedule     text        PRIMARY KEY,
    last_period  date        NOT NULL,
    sent_at      timestamptz NOT NULL
);
