-- +goose Up
-- Anomaly scores (issue 12): one row per watched series, closed window and
-- revision of that window scored. A window is scored once when it closes
-- (revision as it closed); a later revision (late events) is scored again
-- and recorded as a row of its own, never overwriting the first.
CREATE TABLE anomalies (
    series    text             NOT NULL,  -- the watched series, e.g. failure_ratio/15m/family=transfer
    start     timestamptz      NOT NULL,  -- the window's start
    size_s    integer          NOT NULL,  -- the window's size
    revision  integer          NOT NULL,  -- the window's revision scored
    value     double precision NOT NULL,
    expected  double precision,           -- NULL while the detector cannot say
    low       double precision,
    high      double precision,
    score     double precision NOT NULL,  -- 0..1
    anomaly   boolean          NOT NULL,  -- score at or above the series' threshold when scored
    reason    text             NOT NULL,
    scored_at timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (series, start, revision)
);
CREATE INDEX anomalies_start_idx ON anomalies (start);
CREATE INDEX anomalies_found_idx ON anomalies (start) WHERE anomaly;

-- How far each watched series (the configured name, before any group_by
-- expansion) has been scored: every closed window starting before
-- scored_until is. Moved in the scoring transaction, so with several
-- processors each window is scored exactly once.
CREATE TABLE anomaly_cursors (
    name         text        PRIMARY KEY,
    scored_until timestamptz NOT NULL
);

-- +goose Down
DROP TABLE anomaly_cursors;
DROP TABLE anomalies;
