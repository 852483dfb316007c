-- depends: 0012.claim-revisions
-- Field verification (field_checks.py): the location verdict order-capture gave each order and visit when it
-- accepted it (LocationChecked), with the sync delay and the device clock skew it saw.
CREATE TABLE location_checks (
    subject_event_id   uuid PRIMARY KEY,
    subject_event_type text NOT NULL,
    outlet_id          text NOT NULL,
    distributor_id     text NOT NULL,
    rep_id             text NOT NULL,
    device             text NOT NULL,
    channel            text,
    verdict            text NOT NULL,
    distance_m         double precision,
    lat                double precision,
    lon                double precision,
    accuracy_m         double precision,
    radius_m           double precision NOT NULL,
    sync_delay_s       double precision NOT NULL,
    device_clock_skew_s double precision,
    checked_at         timestamptz NOT NULL
);
CREATE INDEX location_checks_rep ON location_checks (rep_id, checked_at);
CREATE INDEX location_checks_distributor ON location_checks (distributor_id, checked_at);
CREATE INDEX location_checks_device ON location_checks (device, checked_at);

-- The outlets an admin geotagged (OutletGeotagged), latest first wins: an outlet here has no geotag proposal.
CREATE TABLE outlet_geotags (
    outlet_id   text PRIMARY KEY,
    lat         double precision NOT NULL,
    lon         double precision NOT NULL,
    occurred_at timestamptz NOT NULL
);
