-- +goose Up
-- Abandonments per window (issue 12's watched series "abandoned" of source
-- journeys): the instances abandoned, by the watermark that abandoned them.
-- abandoned_at changes only when an instance is abandoned or resumes, so
-- the folds' progress updates are not slowed by this index.
CREATE INDEX journey_instances_abandoned_idx ON journey_instances (abandoned_at, journey) WHERE abandoned_at IS NOT NULL;

-- +goose Down
DROP INDEX journey_instances_abandoned_idx;
