package alert

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/hookstream/hookstream/store"
	"github.com/jackc/pgx/v5"
)

// The PostgreSQL side of alerting (migration 00009): alert state and
// history, silences, and what the CLI and the API read. The outbox is in
// outbox.go.

// Beginner starts transactions: a *pgxpool.Pool.
type Beginner interface {
	Begin(ctx context.Context) (pgx.Tx, error)
}

// DB is what alerting reads and writes PostgreSQL through: a *pgxpool.Pool.
type DB interface {
	store.Querier
	Beginner
}

// ErrNotFound is an alert or silence id that does not exist.
var ErrNotFound = errors.New("not found")

// View is an alert as the CLI and the API show it.
type View struct {
	Fingerprint   string            `json:"fingerprint"`
	Rule          string            `json:"rule"`
	Severity      Severity          `json:"severity"`
	State         State             `json:"state"`
	Labels        map[string]string `json:"labels"`
	Value         float64           `json:"value"`
	Op            Op                `json:"op,omitempty"`
	Threshold     float64           `json:"threshold,omitempty"`
	Expected      *Range            `json:"expected,omitempty"`
	Window        string            `json:"window,omitempty"`
	Summary       string            `json:"summary,omitempty"`
	Description   string            `json:"description,omitempty"`
	RunbookURL    string            `json:"runbook_url,omitempty"`
	ActiveSince   time.Time         `json:"active_since,omitzero"`
	FiringSince   time.Time         `json:"firing_since,omitzero"`
	ResolvedAt    time.Time         `json:"resolved_at,omitzero"`
	LastEvaluated time.Time         `json:"last_evaluated,omitzero"`
	AckedBy       string            `json:"acked_by,omitempty"`
	AckedAt       time.Time         `json:"acked_at,omitzero"`
	SilencedBy    []string          `json:"silenced_by"`
}

// HistoryEntry is one state change of an alert (or an acknowledgement, or a
// notification a silence held back).
type HistoryEntry struct {
	At    time.Time `json:"at"`
	From  State     `json:"from"`
	To    State     `json:"to"`
	Value float64   `json:"value"`
	Note  string    `json:"note,omitempty"`
}

// Detail is one alert with its history and the notifications of its group,
// each with its delivery attempts.
type Detail struct {
	View
	History       []HistoryEntry `json:"history"`
	Notifications []Delivery     `json:"notifications"`
}

// row is an alert as the evaluator keeps it.
type row struct {
	Alert
	Severity     Severity
	Announced    bool
	Held         bool // a silence held back a firing notification
	Notification Notification
}

const alertColumns = `fingerprint, rule, labels, severity, state, value, active_since, firing_since, clear_since,
	resolved_at, last_evaluated, last_notified, acked_by, acked_at, announced, held, notification`

func scanRow(r pgx.Row) (*row, error) {
	var (
		a                                          row
		labels, notification                       []byte
		active, firing, clear, resolved, evaluated *time.Time
		notified, acked                            *time.Time
	)
	if err := r.Scan(&a.Fingerprint, &a.Rule, &labels, &a.Severity, &a.State, &a.Value, &active, &firing, &clear,
		&resolved, &evaluated, &notified, &a.AckedBy, &acked, &a.Announced, &a.Held, &notification); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(labels, &a.Labels); err != nil {
		return nil, fmt.Errorf("alert %s: labels: %w", a.Fingerprint, err)
	}
	if err := json.Unmarshal(notification, &a.Notification); err != nil {
		return nil, fmt.Errorf("alert %s: notification: %w", a.Fingerprint, err)
	}
	for _, p := range []struct {
		dst *time.Time
		src *time.Time
	}{{&a.ActiveSince, active}, {&a.FiringSince, firing}, {&a.ClearSince, clear}, {&a.ResolvedAt, resolved},
		{&a.LastEvaluated, evaluated}, {&a.LastNotified, notified}, {&a.AckedAt, acked}} {
		if p.src != nil {
			*p.dst = p.src.UTC()
		}
	}
	return &a, nil
}

// nullTime is t for PostgreSQL: NULL when zero.
func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// resolvedKept is how long the evaluator keeps a resolved alert in mind,
// so that when it fires again its history reads resolved -> pending.
const resolvedKept = 24 * time.Hour

// loadAlerts reads the alerts that are pending or firing, or resolved
// since resolvedSince, by fingerprint.
func loadAlerts(ctx context.Context, q store.Querier, resolvedSince time.Time) (map[string]*row, error) {
	rows, err := q.Query(ctx, `SELECT `+alertColumns+` FROM alerts
		WHERE state IN ('pending', 'firing') OR (state = 'resolved' AND resolved_at >= $1)`, resolvedSince)
	if err != nil {
		return nil, fmt.Errorf("read alerts: %w", err)
	}
	defer rows.Close()
	out := map[string]*row{}
	for rows.Next() {
		a, err := scanRow(rows)
		if err != nil {
			return nil, fmt.Errorf("read alerts: %w", err)
		}
		out[a.Fingerprint] = a
	}
	return out, rows.Err()
}

// saveAlert writes a's state.
func saveAlert(ctx context.Context, tx pgx.Tx, a *row) error {
	labels, err := json.Marshal(a.Labels)
	if err != nil {
		return err
	}
	n, err := json.Marshal(a.Notification)
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `INSERT INTO alerts (`+alertColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
		ON CONFLICT (fingerprint) DO UPDATE SET severity = $4, state = $5, value = $6, active_since = $7,
			firing_since = $8, clear_since = $9, resolved_at = $10, last_evaluated = $11, last_notified = $12,
			acked_by = $13, acked_at = $14, announced = $15, held = $16, notification = $17`,
		a.Fingerprint, a.Rule, labels, a.Severity, a.State, a.Value, nullTime(a.ActiveSince), nullTime(a.FiringSince),
		nullTime(a.ClearSince), nullTime(a.ResolvedAt), nullTime(a.LastEvaluated), nullTime(a.LastNotified),
		a.AckedBy, nullTime(a.AckedAt), a.Announced, a.Held, n)
	if err != nil {
		return fmt.Errorf("save alert %s: %w", a.Fingerprint, err)
	}
	return nil
}

func addHistory(ctx context.Context, tx pgx.Tx, a *row, from State, at time.Time, note string) error {
	_, err := tx.Exec(ctx, `INSERT INTO alert_history (fingerprint, rule, at, from_state, to_state, value, note)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, a.Fingerprint, a.Rule, at, from, a.State, a.Value, note)
	if err != nil {
		return fmt.Errorf("record the history of alert %s: %w", a.Fingerprint, err)
	}
	return nil
}

func (a *row) view(silences []*Silence, now time.Time) View {
	n := a.Notification
	v := View{
		Fingerprint: a.Fingerprint, Rule: a.Rule, Severity: a.Severity, State: a.State, Labels: a.Labels,
		Value: a.Value, Op: n.Op, Threshold: n.Threshold, Expected: n.Expected, Window: n.Window,
		Summary: n.Summary, Description: n.Description, RunbookURL: n.RunbookURL,
		ActiveSince: a.ActiveSince, FiringSince: a.FiringSince, ResolvedAt: a.ResolvedAt,
		LastEvaluated: a.LastEvaluated, AckedBy: a.AckedBy, AckedAt: a.AckedAt,
		SilencedBy: a.SilencedBy(silences, now),
	}
	if v.Labels == nil {
		v.Labels = map[string]string{}
	}
	if v.SilencedBy == nil {
		v.SilencedBy = []string{}
	}
	return v
}

// States a list can ask for.
const (
	ListFiring   = "firing"   // firing (pending ones too: about to fire)
	ListResolved = "resolved" // resolved
	ListAll      = "all"      // every alert ever pending
)

// List reads alerts in state (ListFiring, ListResolved or ListAll), the
// most recently active first, at most limit.
func List(ctx context.Context, q store.Querier, state string, limit int, now time.Time) ([]View, error) {
	where := ""
	switch state {
	case ListFiring, "":
		where = `WHERE state IN ('firing', 'pending')`
	case ListResolved:
		where = `WHERE state = 'resolved'`
	case ListAll:
	default:
		return nil, fmt.Errorf("state %q: use firing, resolved or all", state)
	}
	rows, err := q.Query(ctx, `SELECT `+alertColumns+` FROM alerts `+where+`
		ORDER BY state = 'firing' DESC, coalesce(firing_since, active_since, last_evaluated) DESC NULLS LAST, fingerprint
		LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("list alerts: %w", err)
	}
	var as []*row
	for rows.Next() {
		a, err := scanRow(rows)
		if err != nil {
			rows.Close()
			return nil, fmt.Errorf("list alerts: %w", err)
		}
		as = append(as, a)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list alerts: %w", err)
	}
	silences, err := activeSilences(ctx, q, now)
	if err != nil {
		return nil, err
	}
	out := make([]View, 0, len(as))
	for _, a := range as {
		out = append(out, a.view(silences, now))
	}
	return out, nil
}

// Get reads one alert by fingerprint with its history (the latest 100
// entries) and the notifications of its group that carried it (the latest
// 20), each with its attempts.
func Get(ctx context.Context, q store.Querier, fingerprint string, now time.Time) (Detail, error) {
	a, err := scanRow(q.QueryRow(ctx, `SELECT `+alertColumns+` FROM alerts WHERE fingerprint = $1`, fingerprint))
	if errors.Is(err, pgx.ErrNoRows) {
		return Detail{}, fmt.Errorf("alert %s: %w", fingerprint, ErrNotFound)
	}
	if err != nil {
		return Detail{}, fmt.Errorf("read alert %s: %w", fingerprint, err)
	}
	silences, err := activeSilences(ctx, q, now)
	if err != nil {
		return Detail{}, err
	}
	d := Detail{View: a.view(silences, now), History: []HistoryEntry{}}
	rows, err := q.Query(ctx, `SELECT at, from_state, to_state, value, note FROM (
			SELECT * FROM alert_history WHERE fingerprint = $1 ORDER BY at DESC, id DESC LIMIT 100) h
		ORDER BY at, id`, fingerprint)
	if err != nil {
		return d, fmt.Errorf("read the history of alert %s: %w", fingerprint, err)
	}
	for rows.Next() {
		var h HistoryEntry
		if err := rows.Scan(&h.At, &h.From, &h.To, &h.Value, &h.Note); err != nil {
			rows.Close()
			return d, err
		}
		h.At = h.At.UTC()
		d.History = append(d.History, h)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return d, err
	}
	d.Notifications, err = deliveries(ctx, q, fingerprint)
	return d, err
}

// Acknowledge records that by acknowledged the firing alert fingerprint:
// it gets no more repeat notifications until it resolves.
func Acknowledge(ctx context.Context, db Beginner, fingerprint, by string, now time.Time) (View, error) {
	var v View
	err := pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		a, err := scanRow(tx.QueryRow(ctx, `SELECT `+alertColumns+` FROM alerts WHERE fingerprint = $1 FOR UPDATE`, fingerprint))
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("alert %s: %w", fingerprint, ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("read alert %s: %w", fingerprint, err)
		}
		was := a.Acknowledged()
		acked, err := a.Alert.Acknowledge(by, now)
		if err != nil {
			return err
		}
		a.Alert = acked
		if !was {
			if err := saveAlert(ctx, tx, a); err != nil {
				return err
			}
			if err := addHistory(ctx, tx, a, a.State, now, "acknowledged by "+a.AckedBy); err != nil {
				return err
			}
		}
		silences, err := activeSilences(ctx, tx, now)
		if err != nil {
			return err
		}
		v = a.view(silences, now)
		return nil
	})
	return v, err
}

// CreateSilence validates s, gives it an id and stores it.
func CreateSilence(ctx context.Context, q store.Querier, s *Silence, now time.Time) error {
	if err := s.Validate(); err != nil {
		return err
	}
	if !s.EndsAt.After(now) {
		return fmt.Errorf("silence: ends %s, which has passed", s.EndsAt.Format(time.RFC3339))
	}
	s.ID = NewID("sil_")
	m, err := json.Marshal(s.Matchers)
	if err != nil {
		return err
	}
	_, err = q.Exec(ctx, `INSERT INTO alert_silences (id, matchers, starts_at, ends_at, created_by, comment, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, s.ID, m, s.StartsAt, s.EndsAt, s.CreatedBy, s.Comment, now)
	if err != nil {
		return fmt.Errorf("store the silence: %w", err)
	}
	return nil
}

// SilenceView is a silence with its status at the time it was read.
type SilenceView struct {
	Silence
	Status string `json:"status"`
}

// ListSilences reads the silences that have not expired, or with all every
// silence of the last 30 days too, the latest ending first.
func ListSilences(ctx context.Context, q store.Querier, all bool, now time.Time) ([]SilenceView, error) {
	since := now
	if all {
		since = now.Add(-30 * 24 * time.Hour)
	}
	ss, err := readSilences(ctx, q, `WHERE ends_at > $1`, since)
	if err != nil {
		return nil, err
	}
	out := make([]SilenceView, 0, len(ss))
	for _, s := range ss {
		out = append(out, SilenceView{Silence: *s, Status: s.Status(now)})
	}
	return out, nil
}

// GetSilence reads one silence.
func GetSilence(ctx context.Context, q store.Querier, id string, now time.Time) (SilenceView, error) {
	ss, err := readSilences(ctx, q, `WHERE id = $1`, id)
	if err != nil {
		return SilenceView{}, err
	}
	if len(ss) == 0 {
		return SilenceView{}, fmt.Errorf("silence %s: %w", id, ErrNotFound)
	}
	return SilenceView{Silence: *ss[0], Status: ss[0].Status(now)}, nil
}

// ExpireSilence ends the silence id at now (Alertmanager's expire): it
// stays listed with --all, as expired. Expiring an expired silence changes
// nothing.
func ExpireSilence(ctx context.Context, q store.Querier, id string, now time.Time) (SilenceView, error) {
	_, err := q.Exec(ctx, `UPDATE alert_silences SET ends_at = $2,
			starts_at = least(starts_at, $2) WHERE id = $1 AND ends_at > $2`, id, now)
	if err != nil {
		return SilenceView{}, fmt.Errorf("expire silence %s: %w", id, err)
	}
	return GetSilence(ctx, q, id, now)
}

// activeSilences reads the silences active at now.
func activeSilences(ctx context.Context, q store.Querier, now time.Time) ([]*Silence, error) {
	return readSilences(ctx, q, `WHERE starts_at <= $1 AND ends_at > $1`, now)
}

func readSilences(ctx context.Context, q store.Querier, where string, arg any) ([]*Silence, error) {
	rows, err := q.Query(ctx, `SELECT id, matchers, starts_at, ends_at, created_by, comment FROM alert_silences `+where+`
		ORDER BY ends_at DESC, id`, arg)
	if err != nil {
		return nil, fmt.Errorf("read silences: %w", err)
	}
	defer rows.Close()
	var out []*Silence
	for rows.Next() {
		var (
			s Silence
			m []byte
		)
		if err := rows.Scan(&s.ID, &m, &s.StartsAt, &s.EndsAt, &s.CreatedBy, &s.Comment); err != nil {
			return nil, fmt.Errorf("read silences: %w", err)
		}
		if err := json.Unmarshal(m, &s.Matchers); err != nil {
			return nil, fmt.Errorf("silence %s: matchers: %w", s.ID, err)
		}
		for _, mt := range s.Matchers {
			if err := mt.compile(); err != nil {
				return nil, fmt.Errorf("silence %s: %w", s.ID, err)
			}
		}
		s.StartsAt, s.EndsAt = s.StartsAt.UTC(), s.EndsAt.UTC()
		out = append(out, &s)
	}
	return out, rows.Err()
}

// sortedFingerprints lists the keys of m in order, so evaluations write
// rows in the same order every time (no deadlocks, reproducible history).
func sortedFingerprints[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
