package alert

import (
	"context"
	"fmt"
	"time"

	"github.com/hookstream/hookstream/store"
	"github.com/jackc/pgx/v5"
)

// The durable outbox (alert_outbox) and its delivery log
// (alert_deliveries). The evaluator writes a notification in the same
// transaction as the state change that made it due, so a notification is
// never lost nor made twice; the notifier sends it at least once.

// Delivery is one notification to one target, with every attempt.
type Delivery struct {
	ID            string    `json:"id"`
	Target        string    `json:"target"`
	Kind          string    `json:"kind"`
	GroupKey      string    `json:"group_key"`
	Status        State     `json:"status"`
	Fingerprints  []string  `json:"fingerprints"`
	CreatedAt     time.Time `json:"created_at"`
	Attempts      int       `json:"attempts"`
	NextAttemptAt time.Time `json:"next_attempt_at,omitzero"`
	DeliveredAt   time.Time `json:"delivered_at,omitzero"`
	GaveUpAt      time.Time `json:"gave_up_at,omitzero"`
	LastError     string    `json:"last_error,omitempty"`
	Log           []Attempt `json:"log"`
}

// Attempt is one try at delivering a notification.
type Attempt struct {
	Attempt    int       `json:"attempt"`
	At         time.Time `json:"at"`
	DurationMS float64   `json:"duration_ms"`
	Status     int       `json:"status"` // the HTTP status; 0: no answer
	Error      string    `json:"error,omitempty"`
}

// enqueue writes g for target t into the outbox, due at once.
func enqueue(ctx context.Context, tx pgx.Tx, t *Target, g Group) error {
	body, err := Body(t.Kind, g)
	if err != nil {
		return err
	}
	fps := make([]string, len(g.Alerts))
	for i, n := range g.Alerts {
		fps[i] = n.Fingerprint
	}
	// One id per target: a receiver deduplicates by it, and two targets
	// are two deliveries.
	_, err = tx.Exec(ctx, `INSERT INTO alert_outbox (id, target, kind, group_key, status, fingerprints, body, created_at, next_attempt_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)`, g.ID, t.Name, t.Kind, g.Key, g.Status, fps, body, g.CreatedAt)
	if err != nil {
		return fmt.Errorf("write a notification for target %s to the outbox: %w", t.Name, err)
	}
	return nil
}

// deliveries reads the latest 20 notifications that carried the alert
// fingerprint, newest first, each with its attempts.
func deliveries(ctx context.Context, q store.Querier, fingerprint string) ([]Delivery, error) {
	return readDeliveries(ctx, q, `WHERE $1 = ANY(fingerprints) ORDER BY created_at DESC, id LIMIT 20`, fingerprint)
}

// Deliveries reads the latest limit notifications (of target, unless ""),
// newest first, each with its attempts.
func Deliveries(ctx context.Context, q store.Querier, target string, limit int) ([]Delivery, error) {
	return readDeliveries(ctx, q, `WHERE $1 = '' OR target = $1 ORDER BY created_at DESC, id LIMIT `+fmt.Sprint(limit), target)
}

func readDeliveries(ctx context.Context, q store.Querier, where string, arg any) ([]Delivery, error) {
	rows, err := q.Query(ctx, `SELECT id, target, kind, group_key, status, fingerprints, created_at, attempts,
			next_attempt_at, delivered_at, gave_up_at, last_error FROM alert_outbox `+where, arg)
	if err != nil {
		return nil, fmt.Errorf("read notifications: %w", err)
	}
	out := []Delivery{}
	index := map[string]int{}
	var ids []string
	for rows.Next() {
		var (
			d                 Delivery
			delivered, gaveUp *time.Time
		)
		if err := rows.Scan(&d.ID, &d.Target, &d.Kind, &d.GroupKey, &d.Status, &d.Fingerprints, &d.CreatedAt, &d.Attempts,
			&d.NextAttemptAt, &delivered, &gaveUp, &d.LastError); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read notifications: %w", err)
		}
		d.CreatedAt, d.NextAttemptAt = d.CreatedAt.UTC(), d.NextAttemptAt.UTC()
		if delivered != nil {
			d.DeliveredAt, d.NextAttemptAt = delivered.UTC(), time.Time{}
		}
		if gaveUp != nil {
			d.GaveUpAt, d.NextAttemptAt = gaveUp.UTC(), time.Time{}
		}
		d.Log = []Attempt{}
		index[d.ID] = len(out)
		ids = append(ids, d.ID)
		out = append(out, d)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read notifications: %w", err)
	}
	if len(ids) == 0 {
		return out, nil
	}
	rows, err = q.Query(ctx, `SELECT outbox_id, attempt, at, duration_ms, status, error FROM alert_deliveries
		WHERE outbox_id = ANY($1) ORDER BY id`, ids)
	if err != nil {
		return nil, fmt.Errorf("read delivery attempts: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			id string
			a  Attempt
		)
		if err := rows.Scan(&id, &a.Attempt, &a.At, &a.DurationMS, &a.Status, &a.Error); err != nil {
			return nil, fmt.Errorf("read delivery attempts: %w", err)
		}
		a.At = a.At.UTC()
		d := &out[index[id]]
		d.Log = append(d.Log, a)
	}
	return out, rows.Err()
}

// claimed is an outbox row a notifier holds the lease of.
type claimed struct {
	ID        string
	Kind      TargetKind
	Body      []byte
	CreatedAt time.Time
	Attempt   int // this attempt's number, from 1
}

// claim leases the next due notification of each group of target (the
// oldest undelivered one of the group: a group's notifications go out in
// order, so a resolution never overtakes its firing) until now+lease.
// Rows another notifier leased, and whose lease has not run out, are not
// taken: a notifier that dies mid-delivery loses its lease, not the
// notification.
func claim(ctx context.Context, q store.Querier, target string, now time.Time, lease time.Duration, limit int) ([]claimed, error) {
	rows, err := q.Query(ctx, `WITH head AS (
			SELECT DISTINCT ON (group_key) id, created_at, next_attempt_at, lease_until FROM alert_outbox
			WHERE target = $1 AND delivered_at IS NULL AND gave_up_at IS NULL
			ORDER BY group_key, created_at, id),
		due AS (
			SELECT id FROM head WHERE next_attempt_at <= $2 AND (lease_until IS NULL OR lease_until <= $2)
			ORDER BY created_at, id LIMIT $4)
		UPDATE alert_outbox o SET lease_until = $3, attempts = o.attempts + 1 FROM due
		WHERE o.id = due.id AND o.delivered_at IS NULL AND (o.lease_until IS NULL OR o.lease_until <= $2)
		RETURNING o.id, o.kind, o.body, o.created_at, o.attempts`, target, now, now.Add(lease), limit)
	if err != nil {
		return nil, fmt.Errorf("claim notifications of target %s: %w", target, err)
	}
	defer rows.Close()
	var out []claimed
	for rows.Next() {
		var c claimed
		if err := rows.Scan(&c.ID, &c.Kind, &c.Body, &c.CreatedAt, &c.Attempt); err != nil {
			return nil, fmt.Errorf("claim notifications of target %s: %w", target, err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// release hands a claimed notification back unsent, due at retryAt; the
// attempt it was counted as is taken back.
func release(ctx context.Context, q store.Querier, c claimed, retryAt time.Time, why string) error {
	_, err := q.Exec(ctx, `UPDATE alert_outbox SET lease_until = NULL, attempts = attempts - 1, next_attempt_at = $2, last_error = $3
		WHERE id = $1`, c.ID, retryAt, why)
	if err != nil {
		return fmt.Errorf("hand back notification %s: %w", c.ID, err)
	}
	return nil
}

// outcome is what one attempt came to.
type outcome struct {
	Status    int           // HTTP status, 0 when no answer
	Err       string        // why it failed; "" when delivered
	Delivered bool          //
	GiveUp    bool          // permanent failure: do not retry
	RetryAt   time.Time     // when to try again (not delivered, not given up)
	Took      time.Duration //
}

// record writes an attempt's outcome and its log row in one transaction.
func record(ctx context.Context, db Beginner, c claimed, target string, at time.Time, o outcome) error {
	return pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		var err error
		switch {
		case o.Delivered:
			_, err = tx.Exec(ctx, `UPDATE alert_outbox SET delivered_at = $2, lease_until = NULL, last_error = '' WHERE id = $1`, c.ID, at)
		case o.GiveUp:
			_, err = tx.Exec(ctx, `UPDATE alert_outbox SET gave_up_at = $2, lease_until = NULL, last_error = $3 WHERE id = $1`, c.ID, at, o.Err)
		default:
			_, err = tx.Exec(ctx, `UPDATE alert_outbox SET next_attempt_at = $2, lease_until = NULL, last_error = $3 WHERE id = $1`, c.ID, o.RetryAt, o.Err)
		}
		if err != nil {
			return fmt.Errorf("record the delivery of notification %s: %w", c.ID, err)
		}
		_, err = tx.Exec(ctx, `INSERT INTO alert_deliveries (outbox_id, target, attempt, at, duration_ms, status, error)
			VALUES ($1, $2, $3, $4, $5, $6, $7)`, c.ID, target, c.Attempt, at, float64(o.Took.Microseconds())/1000, o.Status, o.Err)
		if err != nil {
			return fmt.Errorf("log the delivery of notification %s: %w", c.ID, err)
		}
		return nil
	})
}
