-- Rate-limit counters shared by every worker process and replica of a service (ratelimit.py): one row per token,
-- limit and fixed window. UNLOGGED: a crash may reset the counters, which only forgives a minute of requests.
-- `allowance` and `weight` carry a request's figures into ON CONFLICT DO UPDATE (EXCLUDED holds only columns).
CREATE UNLOGGED TABLE rate_limit_windows (
    key          text    NOT NULL,
    window_start bigint  NOT NULL,
    expires_at   bigint  NOT NULL,
    hits         integer NOT NULL,
    allowance    float8  NOT NULL,
    weight       integer NOT NULL,
    admitted     boolean NOT NULL,
    PRIMARY KEY (key, window_start)
);
