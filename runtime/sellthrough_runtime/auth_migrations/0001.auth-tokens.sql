-- API tokens people manage with `sellthrough-tokens`, shared by every service that authenticates. Only a hash of
-- each token is kept (see token_store.py for why sha256); the token itself is shown once, when it is issued.
CREATE TABLE tokens (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    hash text NOT NULL UNIQUE CHECK (hash ~ '^[0-9a-f]{64}$'),
    role text NOT NULL,
    subject text NOT NULL CHECK (subject <> ''),
    device_id text CHECK (device_id <> ''),
    distributors text[] NOT NULL DEFAULT '{}',
    geo_ids text[] NOT NULL DEFAULT '{}',
    label text,
    issued_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz,
    revoked_at timestamptz,
    -- Set by a rotation: the token that took this one's place (this one then expires after the grace).
    replaced_by bigint REFERENCES tokens (id)
);

-- `bootstrap` asks whether an active admin token exists; `list --role` filters by role.
CREATE INDEX tokens_role ON tokens (role) WHERE revoked_at IS NULL;
