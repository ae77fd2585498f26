package alert

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/hookstream/hookstream/store"
	"github.com/hookstream/hookstream/stream"
	"github.com/hookstream/hookstream/windows"
	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
)

// EvaluatorOptions configure an Evaluator; zero values take the defaults.
type EvaluatorOptions struct {
	// Interval is how often the rules are evaluated (default 15s).
	Interval time.Duration
	// Poll is how often a process checks whether an evaluation is due: with
	// several processes, whichever holds the lock when one is due runs it,
	// so when the evaluating process dies another takes over within Poll of
	// the next due time (default 1s, at most Interval).
	Poll time.Duration
	// Holder names this process in alert_evaluator (default host-pid).
	Holder string
	// ConsoleURL is hookstream's API as people reach it
	// (http://hookstream.example:8081): notifications link each alert to
	// the console's view of it, ConsoleURL/#alert=<fingerprint>. GrafanaURL, if set, is the
	// link of the Grafana button. Both optional.
	ConsoleURL, GrafanaURL string
	Logger                 *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Evaluator evaluates the rules every interval, moves each alert through
// its lifecycle, and writes the notifications that fall due, grouped, into
// the outbox, all in one transaction under an advisory lock.
type Evaluator struct {
	db    DB
	rdb   redis.UniversalClient
	keys  stream.Keys
	rules *Rules
	wcfg  windows.Config
	opts  EvaluatorOptions
	// Notified, if set, is called after an evaluation wrote notifications
	// (the role wakes its notifier).
	Notified func()

	lastPrune time.Time
}

// What is kept, and how long: the record of what was sent and what
// happened, well past any investigation, but not forever.
const (
	pruneEvery        = time.Hour
	keepNotifications = 30 * 24 * time.Hour // sent or given up: alert_outbox and alert_deliveries
	keepHistory       = 90 * 24 * time.Hour // alert_history, and alerts resolved or inactive that long
	keepSilences      = 30 * 24 * time.Hour // after they ended
)

// NewEvaluator evaluates rules against the namespace of keys (Redis, for
// the operational signals and announcements) and db (windows, anomalies,
// dead letters, journeys; the alert tables). wcfg is the windows
// configuration the processors run with.
func NewEvaluator(db DB, rdb redis.UniversalClient, keys stream.Keys, rules *Rules, wcfg windows.Config, opts EvaluatorOptions) *Evaluator {
	if opts.Interval <= 0 {
		opts.Interval = 15 * time.Second
	}
	if opts.Poll <= 0 {
		opts.Poll = time.Second
	}
	opts.Poll = min(opts.Poll, opts.Interval)
	if opts.Holder == "" {
		host, _ := os.Hostname()
		opts.Holder = fmt.Sprintf("%s-%d", host, os.Getpid())
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Evaluator{db: db, rdb: rdb, keys: keys, rules: rules, wcfg: wcfg.WithDefaults(), opts: opts}
}

var (
	evaluations      = metrics.NewCounter(`hookstream_alert_evaluations_total`)
	evaluationErrors = metrics.NewCounter(`hookstream_alert_evaluation_errors_total`)
	evaluationTime   = metrics.NewHistogram(`hookstream_alert_evaluation_seconds`)
)

// Run evaluates until ctx ends.
func (e *Evaluator) Run(ctx context.Context) {
	t := time.NewTicker(e.opts.Poll)
	defer t.Stop()
	for {
		if _, err := e.Tick(ctx); err != nil && ctx.Err() == nil {
			evaluationErrors.Inc()
			e.opts.Logger.Warn("alert evaluation failed; the next one retries", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Tick evaluates the rules if an evaluation is due (Interval since the
// last one, by any process) and this process gets the lock, and reports
// whether it did.
func (e *Evaluator) Tick(ctx context.Context) (bool, error) {
	now := e.opts.Now().UTC()
	var (
		did     bool
		changes []change
	)
	err := pgx.BeginFunc(ctx, e.db, func(tx pgx.Tx) error {
		got, err := store.TryLock(ctx, tx, store.AlertLock)
		if err != nil || !got {
			return err
		}
		var last time.Time
		err = tx.QueryRow(ctx, `SELECT last_tick FROM alert_evaluator WHERE id = 1`).Scan(&last)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("read when alerts were last evaluated: %w", err)
		}
		if err == nil && now.Before(last.Add(e.opts.Interval)) {
			return nil
		}
		start := time.Now()
		if changes, err = e.evaluate(ctx, tx, now); err != nil {
			return err
		}
		if now.Sub(e.lastPrune) >= pruneEvery {
			if err := prune(ctx, tx, now); err != nil {
				return err
			}
			e.lastPrune = now
		}
		if _, err := tx.Exec(ctx, `INSERT INTO alert_evaluator (id, last_tick, holder) VALUES (1, $1, $2)
			ON CONFLICT (id) DO UPDATE SET last_tick = $1, holder = $2`, now, e.opts.Holder); err != nil {
			return fmt.Errorf("record the evaluation: %w", err)
		}
		evaluations.Inc()
		evaluationTime.UpdateDuration(start)
		did = true
		return nil
	})
	if err != nil || !did {
		return false, err
	}
	e.announce(ctx, changes)
	for _, c := range changes {
		if c.queued && e.Notified != nil {
			e.Notified()
			break
		}
	}
	return true, nil
}

// prune deletes what is older than it is kept for.
func prune(ctx context.Context, tx pgx.Tx, now time.Time) error {
	for _, q := range []struct {
		sql    string
		before time.Duration
	}{
		{`DELETE FROM alert_outbox WHERE delivered_at < $1 OR gave_up_at < $1`, keepNotifications},
		{`DELETE FROM alert_history WHERE at < $1`, keepHistory},
		{`DELETE FROM alerts WHERE state IN ('inactive', 'resolved') AND coalesce(resolved_at, last_evaluated) < $1`, keepHistory},
		{`DELETE FROM alert_silences WHERE ends_at < $1`, keepSilences},
	} {
		if _, err := tx.Exec(ctx, q.sql, now.Add(-q.before)); err != nil {
			return fmt.Errorf("prune old alert records: %w", err)
		}
	}
	return nil
}

// change is one alert's state change in an evaluation, for the live feed.
type change struct {
	row    *row
	from   State
	queued bool // a notification was written
}

// evaluate runs every rule once at now inside tx.
func (e *Evaluator) evaluate(ctx context.Context, tx pgx.Tx, now time.Time) ([]change, error) {
	alerts, err := loadAlerts(ctx, tx, now.Add(-resolvedKept))
	if err != nil {
		return nil, err
	}
	silences, err := activeSilences(ctx, tx, now)
	if err != nil {
		return nil, err
	}
	m := &measurer{e: e, q: tx, now: now}
	var changes []change
	rules := map[string]bool{}
	for _, r := range e.rules.Rules {
		rules[r.Name] = true
		samples, err := m.measure(ctx, r)
		if err != nil {
			// Unknown is not clear: the rule's alerts keep their state.
			evaluationErrors.Inc()
			metrics.GetOrCreateCounter(fmt.Sprintf(`hookstream_alert_rule_errors_total{rule=%q}`, r.Name)).Inc()
			e.opts.Logger.Warn("alert rule not evaluated", "rule", r.Name, "err", err)
			continue
		}
		timing := TimingOf(e.rules, r)
		seen := map[string]bool{}
		for _, s := range samples {
			labels := maps.Clone(r.Labels)
			if labels == nil {
				labels = map[string]string{}
			}
			maps.Copy(labels, s.Labels)
			fp := Fingerprint(r.Name, labels)
			seen[fp] = true
			a := alerts[fp]
			if a == nil {
				a = &row{Alert: NewAlert(r.Name, labels)}
			}
			c, err := e.step(ctx, tx, r, a, timing, s, silences, now)
			if err != nil {
				return nil, err
			}
			if c != nil {
				changes = append(changes, *c)
			}
		}
		// Label sets no longer measured (a group gone quiet, an anomaly no
		// longer the latest) are clear.
		for _, fp := range sortedFingerprints(alerts) {
			a := alerts[fp]
			if a.Rule != r.Name || seen[fp] || a.State == StateResolved {
				continue
			}
			c, err := e.step(ctx, tx, r, a, timing, sample{Value: a.Value, Expected: a.Notification.Expected}, silences, now)
			if err != nil {
				return nil, err
			}
			if c != nil {
				changes = append(changes, *c)
			}
		}
	}
	// The alerts of rules taken out of the file resolve at once.
	for _, fp := range sortedFingerprints(alerts) {
		a := alerts[fp]
		if rules[a.Rule] || a.State == StateResolved {
			continue
		}
		gone := &Rule{Name: a.Rule, Severity: a.Severity}
		c, err := e.step(ctx, tx, gone, a, Timing{}, sample{Value: a.Value}, silences, now)
		if err != nil {
			return nil, err
		}
		if c != nil {
			changes = append(changes, *c)
		}
	}
	if err := e.flush(ctx, tx, now); err != nil {
		return nil, err
	}
	return changes, nil
}

// step evaluates one alert: its new state, its history, and the notice
// for its group when a notification falls due (unless a silence holds it
// back).
func (e *Evaluator) step(ctx context.Context, tx pgx.Tx, r *Rule, a *row, t Timing, s sample, silences []*Silence, now time.Time) (*change, error) {
	from := a.State
	next, notify := Step(a.Alert, t, s.Holds, s.Value, now)
	a.Alert = next
	a.Severity = r.Severity
	if from == StateInactive && a.State == StateInactive {
		return nil, nil // never held: nothing to keep
	}
	n, err := e.notification(r, a, s)
	if err != nil {
		return nil, err
	}
	a.Notification = n
	c := &change{row: a, from: from}
	note := ""
	silencedBy := a.SilencedBy(silences, now)
	if notify == NotifyNone && a.Held && a.State == StateFiring && len(silencedBy) == 0 && !a.Acknowledged() {
		// The silence that held its firing notification back has ended.
		notify, a.LastNotified = NotifyFiring, now
		note = "the silence ended: firing notification sent"
	}
	if a.State != StateFiring {
		a.Held = false
	}
	if notify != NotifyNone {
		switch {
		case len(silencedBy) > 0:
			note = fmt.Sprintf("%s notification silenced by %s", notify, strings.Join(silencedBy, ", "))
			a.Held = a.State == StateFiring && !a.Announced
		case notify == NotifyResolved && !a.Announced:
			note = "resolved before a firing notification went out: none sent"
		default:
			a.Held = false
			if err := addNotice(ctx, tx, a, notify, now); err != nil {
				return nil, err
			}
			c.queued = true
		}
	}
	if err := saveAlert(ctx, tx, a); err != nil {
		return nil, err
	}
	if from == a.State && note == "" {
		if notify == NotifyNone {
			return nil, nil
		}
		return c, nil
	}
	if err := addHistory(ctx, tx, a, from, now, note); err != nil {
		return nil, err
	}
	return c, nil
}

// notification is what a's notifications show after this evaluation.
func (e *Evaluator) notification(r *Rule, a *row, s sample) (Notification, error) {
	n := Notification{
		Rule: r.Name, Severity: r.Severity, State: StateFiring, Fingerprint: a.Fingerprint, Value: a.Value,
		Expected: s.Expected, Window: r.Window, Labels: a.Labels, StartedAt: a.FiringSince, ResolvedAt: a.ResolvedAt,
		RunbookURL: r.Runbook, GrafanaURL: e.opts.GrafanaURL,
	}
	if a.State == StateResolved {
		n.State = StateResolved
	}
	if n.StartedAt.IsZero() {
		n.StartedAt = a.ActiveSince
	}
	if r.Kind == KindThreshold || r.Kind == KindOperational {
		n.Op = r.Op
		if r.Value != nil {
			n.Threshold = *r.Value
		}
	}
	if e.opts.ConsoleURL != "" {
		n.ConsoleURL = e.opts.ConsoleURL + "/#alert=" + url.QueryEscape(a.Fingerprint)
	}
	d := TemplateData{Rule: r.Name, Severity: r.Severity, Labels: a.Labels, Value: a.Value, Op: n.Op, Threshold: n.Threshold,
		Score: s.Score, Window: r.Window, Metric: r.Metric, Signal: r.Signal}
	if r.Kind == KindAnomaly {
		d.Metric = a.Labels["series"]
		d.Window = s.Window
		n.Window = s.Window
	}
	if s.Expected != nil {
		d.Expected = formatValue(s.Expected.Low) + " – " + formatValue(s.Expected.High)
	}
	var err error
	n.Summary, n.Description, err = r.Render(d)
	return n, err
}

func addNotice(ctx context.Context, tx pgx.Tx, a *row, kind Notify, now time.Time) error {
	n, err := json.Marshal(a.Notification)
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `INSERT INTO alert_notices (group_key, fingerprint, kind, at, notification) VALUES ($1, $2, $3, $4, $5)`,
		GroupKey(a.Rule), a.Fingerprint, string(kind), now, n)
	if err != nil {
		return fmt.Errorf("queue a notification of alert %s: %w", a.Fingerprint, err)
	}
	return nil
}

// flush turns the notices of every group that is due into one notification
// per target in the outbox, as Alertmanager does: a new group (none of its
// alerts notified as firing) waits group_wait after its oldest notice, so
// alerts that fire together go out together; a group already notified
// sends changes group_interval after its last notification. Within a group
// the latest notice of each alert stands.
func (e *Evaluator) flush(ctx context.Context, tx pgx.Tx, now time.Time) error {
	rows, err := tx.Query(ctx, `SELECT n.group_key, min(n.at), g.last_flushed,
			EXISTS (SELECT 1 FROM alerts a WHERE a.announced AND $1 || a.rule = n.group_key)
		FROM alert_notices n LEFT JOIN alert_groups g USING (group_key)
		GROUP BY n.group_key, g.last_flushed ORDER BY n.group_key`, GroupKey(""))
	if err != nil {
		return fmt.Errorf("read the alert groups: %w", err)
	}
	var due []string
	for rows.Next() {
		var (
			key    string
			first  time.Time
			last   *time.Time
			active bool
		)
		if err := rows.Scan(&key, &first, &last, &active); err != nil {
			rows.Close()
			return fmt.Errorf("read the alert groups: %w", err)
		}
		at := first.Add(e.rules.GroupWaitDuration)
		if active && last != nil {
			at = last.Add(e.rules.GroupIntervalDuration)
		}
		if !now.Before(at) {
			due = append(due, key)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, key := range due {
		if err := e.flushGroup(ctx, tx, key, now); err != nil {
			return err
		}
	}
	return nil
}

func (e *Evaluator) flushGroup(ctx context.Context, tx pgx.Tx, key string, now time.Time) error {
	rows, err := tx.Query(ctx, `DELETE FROM alert_notices WHERE group_key = $1 RETURNING id, fingerprint, notification`, key)
	if err != nil {
		return fmt.Errorf("read the notices of group %s: %w", key, err)
	}
	type notice struct {
		id int64
		n  Notification
	}
	latest := map[string]notice{}
	for rows.Next() {
		var (
			id int64
			fp string
			b  []byte
			n  Notification
		)
		if err := rows.Scan(&id, &fp, &b); err != nil {
			rows.Close()
			return err
		}
		if err := json.Unmarshal(b, &n); err != nil {
			rows.Close()
			return fmt.Errorf("notice %d: %w", id, err)
		}
		if l, ok := latest[fp]; !ok || id > l.id {
			latest[fp] = notice{id, n}
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	g := Group{Key: key, Status: StateResolved, CreatedAt: now}
	var fired, resolved []string
	for _, fp := range sortedFingerprints(latest) {
		n := latest[fp].n
		g.Rule = n.Rule
		if n.State == StateFiring {
			g.Status = StateFiring
			fired = append(fired, fp)
		} else {
			resolved = append(resolved, fp)
		}
		if g.Severity == "" || severityRank(n.Severity) > severityRank(g.Severity) {
			g.Severity = n.Severity
		}
		g.Alerts = append(g.Alerts, n)
	}
	if len(g.Alerts) == 0 {
		return nil
	}
	if _, err := tx.Exec(ctx, `UPDATE alerts SET announced = true WHERE fingerprint = ANY($1)`, fired); err != nil {
		return fmt.Errorf("mark alerts announced: %w", err)
	}
	if _, err := tx.Exec(ctx, `UPDATE alerts SET announced = false WHERE fingerprint = ANY($1)`, resolved); err != nil {
		return fmt.Errorf("mark alerts announced: %w", err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO alert_groups (group_key, last_flushed) VALUES ($1, $2)
		ON CONFLICT (group_key) DO UPDATE SET last_flushed = $2`, key, now); err != nil {
		return fmt.Errorf("record the flush of group %s: %w", key, err)
	}
	var rule *Rule
	for _, r := range e.rules.Rules {
		if r.Name == g.Rule {
			rule = r
		}
	}
	targets := e.rules.Targets
	if rule != nil {
		targets = e.rules.TargetsOf(rule)
	}
	for _, t := range targets {
		g.ID = NewID("ntf_")
		if err := enqueue(ctx, tx, t, g); err != nil {
			return err
		}
		metrics.GetOrCreateCounter(fmt.Sprintf(`hookstream_alert_notifications_queued_total{target=%q}`, t.Name)).Inc()
	}
	return nil
}

func severityRank(s Severity) int {
	switch s {
	case SeverityCritical:
		return 3
	case SeverityWarning:
		return 2
	case SeverityInfo:
		return 1
	}
	return 0
}

// Announcement is an alert's state change on the live feed.
type Announcement struct {
	Fingerprint string            `json:"fingerprint"`
	Rule        string            `json:"rule"`
	Severity    Severity          `json:"severity"`
	From        State             `json:"from"`
	State       State             `json:"state"`
	Labels      map[string]string `json:"labels"`
	Value       float64           `json:"value"`
	Summary     string            `json:"summary,omitempty"`
	At          time.Time         `json:"at"`
}

// announcementsKept is how many announcements the live feed's stream keeps.
const announcementsKept = 10000

// announce publishes the state changes of an evaluation on the alerts
// stream for the live feed. Best effort: the alerts table is the record.
func (e *Evaluator) announce(ctx context.Context, changes []change) {
	if e.rdb == nil || len(changes) == 0 {
		return
	}
	pipe := e.rdb.Pipeline()
	for _, c := range changes {
		a := c.row
		b, err := json.Marshal(Announcement{Fingerprint: a.Fingerprint, Rule: a.Rule, Severity: a.Severity, From: c.from,
			State: a.State, Labels: a.Labels, Value: a.Value, Summary: a.Notification.Summary, At: a.LastEvaluated})
		if err != nil {
			continue
		}
		pipe.XAdd(ctx, &redis.XAddArgs{Stream: e.keys.Alerts(), MaxLen: announcementsKept, Approx: true, Values: []any{"alert", b}})
	}
	if _, err := pipe.Exec(ctx); err != nil {
		e.opts.Logger.Warn("announce alert changes on the live feed", "err", err)
	}
}

// DecodeAnnouncement reads an entry of the alerts stream.
func DecodeAnnouncement(values map[string]any) (Announcement, error) {
	var a Announcement
	s, ok := values["alert"].(string)
	if !ok {
		return a, fmt.Errorf("alert announcement: no alert field")
	}
	if err := json.Unmarshal([]byte(s), &a); err != nil {
		return a, fmt.Errorf("alert announcement: %w", err)
	}
	return a, nil
}
