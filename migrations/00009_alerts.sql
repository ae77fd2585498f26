-- +goose Up
-- Alerting (issue 13). The evaluator owns alerts, alert_history,
-- alert_notices, alert_groups and alert_evaluator; the notifier owns
-- alert_outbox and alert_deliveries; people own alert_silences (through the
-- CLI and the API).

-- One row per rule and label set (the fingerprint) that has ever been
-- pending: its lifecycle state (alert.Alert) and what its notifications show.
CREATE TABLE alerts (
    fingerprint    text             PRIMARY KEY,
    rule           text             NOT NULL,
    labels         jsonb            NOT NULL,
    severity       text             NOT NULL,
    state          text             NOT NULL,   -- inactive | pending | firing | resolved
    value          double precision NOT NULL DEFAULT 0,
    active_since   timestamptz,
    firing_since   timestamptz,
    clear_since    timestamptz,
    resolved_at    timestamptz,
    last_evaluated timestamptz,
    last_notified  timestamptz,
    acked_by       text             NOT NULL DEFAULT '',
    acked_at       timestamptz,
    -- a firing notification of this episode went out, so its resolution does too
    announced      boolean          NOT NULL DEFAULT false,
    -- a silence held back a firing notification: it goes out when the silence ends
    held           boolean          NOT NULL DEFAULT false,
    notification   jsonb            NOT NULL    -- alert.Notification at the last evaluation
);
CREATE INDEX alerts_state_idx ON alerts (state, rule);

-- Every state change, acknowledgement and silenced notification.
CREATE TABLE alert_history (
    id          bigserial        PRIMARY KEY,
    fingerprint text             NOT NULL,
    rule        text             NOT NULL,
    at          timestamptz      NOT NULL,
    from_state  text             NOT NULL,
    to_state    text             NOT NULL,
    value       double precision NOT NULL,
    note        text             NOT NULL DEFAULT ''
);
CREATE INDEX alert_history_fp_idx ON alert_history (fingerprint, at);
CREATE INDEX alert_history_at_idx ON alert_history (at);

CREATE TABLE alert_silences (
    id         text        PRIMARY KEY,
    matchers   jsonb       NOT NULL,
    starts_at  timestamptz NOT NULL,
    ends_at    timestamptz NOT NULL,
    created_by text        NOT NULL,
    comment    text        NOT NULL,
    created_at timestamptz NOT NULL
);
CREATE INDEX alert_silences_ends_idx ON alert_silences (ends_at);

-- Notifications made due and not yet sent: a group (one rule) collects them
-- until group_wait / group_interval let it flush into the outbox.
CREATE TABLE alert_notices (
    id           bigserial   PRIMARY KEY,
    group_key    text        NOT NULL,
    fingerprint  text        NOT NULL,
    kind         text        NOT NULL,        -- firing | resolved | repeat
    at           timestamptz NOT NULL,
    notification jsonb       NOT NULL
);
CREATE INDEX alert_notices_group_idx ON alert_notices (group_key, id);

CREATE TABLE alert_groups (
    group_key    text        PRIMARY KEY,
    last_flushed timestamptz NOT NULL
);

-- When the evaluator last ran: with several processes, whoever holds the
-- advisory lock when an interval is due evaluates.
CREATE TABLE alert_evaluator (
    id        integer     PRIMARY KEY CHECK (id = 1),
    last_tick timestamptz NOT NULL,
    holder    text        NOT NULL
);

-- The durable outbox: one row per notification and target, its body
-- rendered once so every retry sends the same bytes under the same id.
CREATE TABLE alert_outbox (
    id              text        PRIMARY KEY,  -- the notification id (webhook-id)
    target          text        NOT NULL,
    kind            text        NOT NULL,     -- slack | webhook
    group_key       text        NOT NULL,
    status          text        NOT NULL,     -- firing | resolved
    fingerprints    text[]      NOT NULL,     -- the alerts it carries
    body            bytea       NOT NULL,
    created_at      timestamptz NOT NULL,
    next_attempt_at timestamptz NOT NULL,
    lease_until     timestamptz,              -- a notifier is sending it until then
    attempts        integer     NOT NULL DEFAULT 0,
    delivered_at    timestamptz,
    gave_up_at      timestamptz,
    last_error      text        NOT NULL DEFAULT ''
);
CREATE INDEX alert_outbox_fingerprints_idx ON alert_outbox USING gin (fingerprints);
CREATE INDEX alert_outbox_due_idx ON alert_outbox (target, group_key, created_at)
    WHERE delivered_at IS NULL AND gave_up_at IS NULL;

-- Every delivery attempt.
CREATE TABLE alert_deliveries (
    id          bigserial        PRIMARY KEY,
    outbox_id   text             NOT NULL REFERENCES alert_outbox (id) ON DELETE CASCADE,
    target      text             NOT NULL,
    attempt     integer          NOT NULL,
    at          timestamptz      NOT NULL,
    duration_ms double precision NOT NULL,
    status      integer          NOT NULL,    -- HTTP status; 0: no answer
    error       text             NOT NULL DEFAULT ''
);
CREATE INDEX alert_deliveries_outbox_idx ON alert_deliveries (outbox_id, id);

-- +goose Down
DROP TABLE alert_deliveries;
DROP TABLE alert_outbox;
DROP TABLE alert_evaluator;
DROP TABLE alert_groups;
DROP TABLE alert_notices;
DROP TABLE alert_silences;
DROP TABLE alert_history;
DROP TABLE alerts;
