-- +goose Up
-- One row per unique Dwolla event: the exact, unbounded dedup (the Redis seen
-- keys only cover Dwolla's 72 h retry span).
CREATE TABLE events (
    id             text        PRIMARY KEY,          -- Dwolla event id, lower-cased
    topic          text        NOT NULL,
    resource_type  text,                             -- customers, transfers, funding-sources, ...
    resource_id    text,                             -- lower-cased
    customer_id    text,                             -- from _links.customer, lower-cased
    correlation_id text,
    created        timestamptz NOT NULL,             -- event time (Dwolla's created/timestamp)
    received_at    timestamptz NOT NULL,             -- when hookstream's receiver got it
    stored_at      timestamptz NOT NULL DEFAULT now(),
    source         text        NOT NULL,             -- webhook | reconcile | replay
    body           bytea       NOT NULL              -- the raw signed body, byte for byte
);
CREATE INDEX events_created_idx ON events (created);
CREATE INDEX events_customer_idx ON events (customer_id, created) WHERE customer_id IS NOT NULL;
CREATE INDEX events_resource_idx ON events (resource_id, created);
CREATE INDEX events_topic_idx ON events (topic, created);

-- Entries the processor could not store, with why; replayable.
CREATE TABLE dead_letters (
    id           bigserial   PRIMARY KEY,
    stream       text        NOT NULL,               -- partition stream the entry came from
    entry_id     text        NOT NULL,               -- its stream entry id
    event_id     text,                               -- when it could be read
    reason       text        NOT NULL,
    deliveries   integer     NOT NULL DEFAULT 0,     -- times it was delivered before it was dead-lettered
    fields       jsonb       NOT NULL,               -- the stream entry's fields, body included
    dead_at      timestamptz NOT NULL DEFAULT now(),
    replayed_at  timestamptz,
    discarded_at timestamptz,
    UNIQUE (stream, entry_id)
);
CREATE INDEX dead_letters_open_idx ON dead_letters (dead_at) WHERE replayed_at IS NULL AND discarded_at IS NULL;

-- +goose Down
DROP TABLE dead_letters;
DROP TABLE events;
