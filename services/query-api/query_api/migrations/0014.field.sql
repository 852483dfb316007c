-- depends: 0013.location-checks
-- Field force (issue 16): each visit with its check-in and check-out, each rep's beat plan per day, and each
-- rep's attendance per day. Figures (beat compliance, productive calls, time in market...) are computed at read
-- time from these rows (field_figures.py), so a late plan or visit re-states them.
CREATE TABLE field_visits (
    rep_id          text             NOT NULL,
    visit_id        text             NOT NULL,
    event_id        uuid             NOT NULL,
    outlet_id       text             NOT NULL,
    distributor_id  text             NOT NULL,
    day             date             NOT NULL,
    checked_in_at   timestamptz      NOT NULL,
    checked_out_at  timestamptz,
    occurred_at     timestamptz      NOT NULL,
    productive      boolean          NOT NULL,
    no_order_reason text,
    lat             double precision,
    lon             double precision,
    accuracy_m      double precision,
    mock_location   boolean          NOT NULL,
    PRIMARY KEY (rep_id, visit_id)
);
CREATE INDEX field_visits_by_day ON field_visits (day, rep_id);

-- The plan in force for a rep and day: the one with the latest occurred_at.
CREATE TABLE field_beat_plans (
    rep_id      text        NOT NULL,
    plan_date   date        NOT NULL,
    outlet_ids  text[]      NOT NULL,
    occurred_at timestamptz NOT NULL,
    PRIMARY KEY (rep_id, plan_date)
);
CREATE INDEX field_beat_plans_by_day ON field_beat_plans (plan_date);

-- A rep's working day: its first start and its last end.
CREATE TABLE field_attendance (
    rep_id     text        NOT NULL,
    day        date        NOT NULL,
    started_at timestamptz,
    ended_at   timestamptz,
    start_lat  double precision,
    start_lon  double precision,
    end_lat    double precision,
    end_lon    double precision,
    PRIMARY KEY (rep_id, day)
);
CREATE INDEX field_attendance_by_day ON field_attendance (day);
