-- +goose Up
-- Window aggregates (issue 4): one row per window (clock, size, start) and
-- dimension value. Counters are sums; lag and customers are mergeable
-- sketches (DDSketch, HyperLogLog++), merged by the processor in Go.
CREATE TABLE window_aggs (
    basis      text        NOT NULL,            -- event | received
    size_s     integer     NOT NULL,            -- window length in seconds
    start      timestamptz NOT NULL,            -- UTC-aligned start
    dim        text        NOT NULL,            -- all | topic | family | resource_type
    value      text        NOT NULL,            -- '' for all
    count      bigint      NOT NULL DEFAULT 0,
    successes  bigint      NOT NULL DEFAULT 0,
    failures   bigint      NOT NULL DEFAULT 0,
    terminal   bigint      NOT NULL DEFAULT 0,
    lag_sum_ms double precision NOT NULL DEFAULT 0,
    lag        bytea,                           -- DDSketch of delivery lag (ms), 1% relative accuracy
    customers  bytea,                           -- HyperLogLog++ (p=14) of customer ids
    late       bigint      NOT NULL DEFAULT 0,  -- events folded after the window closed
    revision   integer     NOT NULL DEFAULT 0,  -- raised by every change after the close
    closed_at  timestamptz,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (basis, size_s, dim, value, start)
) WITH (fillfactor = 50); -- every batch rewrites its windows' rows: room on the page keeps the updates HOT (no index writes)
CREATE INDEX window_aggs_start_idx ON window_aggs (basis, size_s, start);

-- Each partition's progress on each clock: the watermark's input.
CREATE TABLE window_marks (
    basis     text        NOT NULL,
    partition integer     NOT NULL,
    max_time  timestamptz NOT NULL,             -- largest event (or received) time folded
    seen_at   timestamptz NOT NULL,             -- wall clock of the last fold that touched it
    PRIMARY KEY (basis, partition)
);

-- Per clock and size, every window ending at or before closed_until is closed.
-- Folds read it FOR SHARE and the closer updates it, so a fold either sees a
-- window open and commits before the close, or sees it closed (and counts late).
CREATE TABLE window_cursors (
    basis        text        NOT NULL,
    size_s       integer     NOT NULL,
    closed_until timestamptz NOT NULL,
    PRIMARY KEY (basis, size_s)
);

-- One record per closed window, written once.
CREATE TABLE window_closes (
    basis     text        NOT NULL,
    size_s    integer     NOT NULL,
    start     timestamptz NOT NULL,
    closed_at timestamptz NOT NULL DEFAULT now(),
    watermark timestamptz NOT NULL,             -- the watermark that closed it
    count     bigint      NOT NULL,             -- events in the window at the close
    PRIMARY KEY (basis, size_s, start)
);

-- +goose Down
DROP TABLE window_closes;
DROP TABLE window_cursors;
DROP TABLE window_marks;
DROP TABLE window_aggs;
