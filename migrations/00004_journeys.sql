-- +goose Up
-- Journey instances (issue 5): per journey and subject, the first time and
-- event that reached each step (arrays in the definition's step order), and
-- the state derived from them.
CREATE TABLE journey_instances (
    journey      text        NOT NULL,
    subject      text        NOT NULL,
    step_at      timestamptz[] NOT NULL,        -- NULL where the step was not reached
    step_event   text[]      NOT NULL,
    status       text        NOT NULL,          -- in_progress | completed | failed | abandoned
    current_step text,
    entered_at   timestamptz NOT NULL,          -- the cohort: earliest step time
    last_at      timestamptz NOT NULL,          -- the last progress
    deadline     timestamptz,                   -- in progress: abandoned past it (on the watermark)
    abandoned_at timestamptz,                   -- the watermark that abandoned it; cleared by progress
    conflict     text,
    entry_topic  text,                          -- the topic of the earliest reach: the funnels' breakdown
    version      bigint      NOT NULL DEFAULT 0, -- raised by every write: folds write only the version they read
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (journey, subject)
) WITH (fillfactor = 70);
CREATE INDEX journey_instances_cohort_idx ON journey_instances (journey, entered_at);
CREATE INDEX journey_instances_deadline_idx ON journey_instances (deadline) WHERE status = 'in_progress';

-- Funnel aggregates per journey and cohort (UTC day of entry), kept by the
-- fold as additive deltas, so a funnel over millions of instances reads a
-- few hundred rows. kind: entered | reached | gap (time from the step
-- before, as a log-scale bucket) | a status (in_progress, completed,
-- failed, abandoned) counted at the instance's current step.
CREATE TABLE journey_funnel (
    journey text    NOT NULL,
    day     date    NOT NULL,
    dim     text    NOT NULL,                   -- the instances' entry topic
    kind    text    NOT NULL,
    step    text    NOT NULL,                   -- '' for entered
    bucket  integer NOT NULL,                   -- gap bucket; 0 otherwise
    n       bigint  NOT NULL,
    PRIMARY KEY (journey, day, dim, kind, step, bucket)
);

-- What happened to instances: abandoned, unabandoned, conflict.
CREATE TABLE journey_records (
    id          bigserial   PRIMARY KEY,
    journey     text        NOT NULL,
    subject     text        NOT NULL,
    kind        text        NOT NULL,
    step        text,
    detail      text,
    at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX journey_records_subject_idx ON journey_records (journey, subject);

-- +goose Down
DROP TABLE journey_funnel;
DROP TABLE journey_records;
DROP TABLE journey_instances;
