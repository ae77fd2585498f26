-- +goose Up
-- Reconciliation with Dwolla's events API (issue 14).

-- One row per run: the window of event time it compared, what it found and
-- did. A run that never reached "complete" (killed, failed) does not move
-- the high-water mark: the next run covers its window again.
CREATE TABLE reconcile_runs (
    id            bigserial   PRIMARY KEY,
    started_at    timestamptz NOT NULL,
    finished_at   timestamptz,
    status        text        NOT NULL,   -- running | complete | failed | dry_run
    since         timestamptz NOT NULL,   -- events created from here ...
    until         timestamptz NOT NULL,   -- ... to here (exclusive) were compared
    high_water    timestamptz,            -- the newest event created seen at Dwolla in the window
    pages         integer     NOT NULL DEFAULT 0,
    api_calls     integer     NOT NULL DEFAULT 0,
    compared      bigint      NOT NULL DEFAULT 0,
    missing       bigint      NOT NULL DEFAULT 0,
    recovered     bigint      NOT NULL DEFAULT 0,
    in_flight     bigint      NOT NULL DEFAULT 0, -- received, not yet stored: the dedup step knew them
    dead_lettered bigint      NOT NULL DEFAULT 0, -- held in the dead-letter queue: not recovered again
    errors        bigint      NOT NULL DEFAULT 0,
    error         text        NOT NULL DEFAULT '',
    holder        text        NOT NULL,
    audit         jsonb,                  -- the delivery audit (subscriptions, failed deliveries, retries)
    repair        jsonb                   -- the journey check (stuck instances asked about, discrepancies)
);
CREATE INDEX reconcile_runs_complete_idx ON reconcile_runs (finished_at) WHERE status = 'complete';

-- Every event a run found missing, and what became of it.
CREATE TABLE reconcile_gaps (
    run_id   bigint      NOT NULL REFERENCES reconcile_runs (id) ON DELETE CASCADE,
    event_id text        NOT NULL,
    topic    text        NOT NULL,
    created  timestamptz NOT NULL,
    outcome  text        NOT NULL,        -- recovered | in_flight | dead_lettered | failed | dry_run
    error    text        NOT NULL DEFAULT '',
    PRIMARY KEY (run_id, event_id)
);
CREATE INDEX reconcile_gaps_created_idx ON reconcile_gaps (created);
CREATE INDEX reconcile_gaps_event_idx ON reconcile_gaps (event_id);

-- Journey instances whose resource Dwolla reports in another state than
-- the events we hold say.
CREATE TABLE reconcile_discrepancies (
    id            bigserial   PRIMARY KEY,
    run_id        bigint      NOT NULL REFERENCES reconcile_runs (id) ON DELETE CASCADE,
    journey       text        NOT NULL,
    subject       text        NOT NULL,
    resource      text        NOT NULL,   -- the href asked
    our_status    text        NOT NULL,
    our_step      text        NOT NULL,
    dwolla_status text        NOT NULL,
    note          text        NOT NULL,
    found_at      timestamptz NOT NULL
);
CREATE INDEX reconcile_discrepancies_subject_idx ON reconcile_discrepancies (journey, subject);

-- +goose Down
DROP TABLE reconcile_discrepancies;
DROP TABLE reconcile_gaps;
DROP TABLE reconcile_runs;
