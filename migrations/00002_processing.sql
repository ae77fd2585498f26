-- +goose Up
-- What the processor derives from each event when it stores it (issue 3).
ALTER TABLE events
    ADD COLUMN family  text,                              -- topic family from the catalogue (verification, transfer, ...)
    ADD COLUMN outcome text,                              -- success | failure (from the catalogue), else NULL
    ADD COLUMN terminal boolean NOT NULL DEFAULT false,   -- the topic ends its lifecycle
    ADD COLUMN delivery_lag interval GENERATED ALWAYS AS (received_at - created) STORED;

-- A dead letter keeps the entry's raw body byte for byte (a poison body may
-- not be valid UTF-8 or may hold NUL, which jsonb cannot); `fields` keeps the
-- entry's other fields, made printable.
ALTER TABLE dead_letters ADD COLUMN body bytea;

-- +goose Down
ALTER TABLE dead_letters DROP COLUMN body;
ALTER TABLE events DROP COLUMN delivery_lag, DROP COLUMN terminal, DROP COLUMN outcome, DROP COLUMN family;
