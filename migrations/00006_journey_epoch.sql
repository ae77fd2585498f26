-- +goose Up
-- Raised by every journeys rebuild, in the rebuild's transaction. A
-- processor keeps a cache of journey instances; a rebuild can remove
-- reaches from an instance, which nothing else does, so a processor that
-- sees the number change empties its cache (journey.Folder).
CREATE TABLE journey_epoch (
    one boolean PRIMARY KEY DEFAULT true CHECK (one), -- a single row
    n   bigint  NOT NULL
);
INSERT INTO journey_epoch (n) VALUES (0);

-- +goose Down
DROP TABLE journey_epoch;
