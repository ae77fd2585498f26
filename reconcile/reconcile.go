// Package reconcile compares hookstream's events with Dwolla's events API,
// recovers what never arrived as a webhook through the same exactly-once
// path (ingest's atomic dedup-and-append, source "reconcile"), audits the
// webhook subscription's deliveries, checks stuck journeys against the
// resources' current status, and reports the comparison (issue 14;
// docs/reconcile.md).
package reconcile

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/hookstream/hookstream/dwolla"
	"github.com/hookstream/hookstream/journeys"
	"github.com/hookstream/hookstream/store"
	"github.com/hookstream/hookstream/stream"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
)

// API is what reconciliation asks Dwolla: dwolla.Client.
type API interface {
	Events(ctx context.Context, limit int) (dwolla.EventsPage, error)
	EventsAt(ctx context.Context, href string) (dwolla.EventsPage, error)
	Subscriptions(ctx context.Context) ([]dwolla.Subscription, error)
	WebhooksAt(ctx context.Context, href string) (dwolla.WebhooksPage, error)
	RetryWebhook(ctx context.Context, webhookID string) (string, error)
	Resource(ctx context.Context, href string) (dwolla.Resource, error)
}

// Options configure a Reconciler; zero values take the defaults.
type Options struct {
	// PageSize is the limit of each /events page (default 200).
	PageSize int
	// Overlap is how far before the last complete run's high-water mark a
	// run starts (default 1h): events Dwolla lists late, or with a created
	// time a little in the past, are still compared.
	Overlap time.Duration
	// Settle is how old an event must be to be compared when a run's
	// until is not given (default 1m): a newer one may have its webhook
	// in flight, or be on its way through the streams.
	Settle time.Duration
	// Horizon is how long Dwolla keeps events (default 30 days): a first
	// run, and any --since, reach back at most this far.
	Horizon time.Duration
	// SeenTTL is how long the dedup step remembers a recovered event's id
	// (ingest's --seen-ttl; default 72h).
	SeenTTL time.Duration
	// RetryFailed asks Dwolla to deliver again the webhooks whose delivery
	// failed and whose events are still missing after recovery.
	RetryFailed bool
	// StuckLimit is how many journey instances past their deadline one run
	// checks against Dwolla (default 100; negative: none).
	StuckLimit int
	// Journeys are the journey definitions, for checking stuck instances
	// (nil: no check).
	Journeys *journeys.Set
	// Holder names this process in reconcile_runs (default host-pid).
	Holder string
	Logger *slog.Logger
	Now    func() time.Time
}

func (o *Options) defaults() {
	if o.PageSize <= 0 {
		o.PageSize = 200
	}
	if o.Overlap <= 0 {
		o.Overlap = time.Hour
	}
	if o.Settle <= 0 {
		o.Settle = time.Minute
	}
	if o.Horizon <= 0 {
		o.Horizon = 30 * 24 * time.Hour
	}
	if o.SeenTTL <= 0 {
		o.SeenTTL = 72 * time.Hour
	}
	if o.StuckLimit == 0 {
		o.StuckLimit = 100
	}
	if o.Holder == "" {
		host, _ := os.Hostname()
		o.Holder = fmt.Sprintf("%s-%d", host, os.Getpid())
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Reconciler runs reconciliations of one installation.
type Reconciler struct {
	db       *pgxpool.Pool
	api      API
	keys     stream.Keys
	producer *stream.Producer
	opts     Options
}

// New reconciles the events of the namespace of keys (Redis: where
// recovered events are appended) and db against api.
func New(db *pgxpool.Pool, rdb redis.UniversalClient, keys stream.Keys, api API, opts Options) *Reconciler {
	opts.defaults()
	return &Reconciler{db: db, api: api, keys: keys, producer: stream.NewProducer(rdb, keys, opts.SeenTTL), opts: opts}
}

// Window is what a run compares: events created in [Since, Until). Zero
// values are chosen by the run: Since from the last complete run's
// high-water mark minus the overlap (the whole horizon the first time),
// Until now minus Options.Settle. A dry run compares and reports but recovers nothing, retries
// nothing, and does not move the high-water mark.
type Window struct {
	Since, Until time.Time
	DryRun       bool
}

// Run is one reconciliation's record (a row of reconcile_runs).
type Run struct {
	ID           int64     `json:"id"`
	StartedAt    time.Time `json:"started_at"`
	FinishedAt   time.Time `json:"finished_at,omitzero"`
	Status       string    `json:"status"` // running | complete | failed | dry_run
	Since        time.Time `json:"since"`
	Until        time.Time `json:"until"`
	HighWater    time.Time `json:"high_water,omitzero"`
	Pages        int       `json:"pages"`
	APICalls     int       `json:"api_calls"`
	Compared     int64     `json:"compared"`
	Missing      int64     `json:"missing"`
	Recovered    int64     `json:"recovered"`
	InFlight     int64     `json:"in_flight"`
	DeadLettered int64     `json:"dead_lettered"`
	// Unrecovered are the gaps that could not be appended (outcome
	// failed): derived from reconcile_gaps. Errors counts every failure
	// (unparsable events, unrecovered gaps, audit or journey-check calls).
	Unrecovered int64   `json:"unrecovered"`
	Errors      int64   `json:"errors"`
	Error       string  `json:"error,omitempty"`
	Holder      string  `json:"holder"`
	Audit       *Audit  `json:"audit,omitempty"`
	Repair      *Repair `json:"repair,omitempty"`
	DurationMS  float64 `json:"duration_ms"`

	// recoveredBy counts the events recovered or in flight by the subjects
	// they name (customer, resource, correlation), for the journey check.
	recoveredBy map[string]int
	// gapFrom and gapTo span the created times of the gaps found: the
	// days whose deliveries the audit lists.
	gapFrom, gapTo time.Time
}

// Run statuses.
const (
	StatusRunning  = "running"
	StatusComplete = "complete"
	StatusFailed   = "failed"
	StatusDryRun   = "dry_run"
)

// Gap outcomes.
const (
	GapRecovered    = "recovered"     // appended to its partition stream: the processors store it
	GapInFlight     = "in_flight"     // the dedup step already had it: received, not stored yet
	GapDeadLettered = "dead_lettered" // in the dead-letter queue: requeue it there, not here
	GapFailed       = "failed"        // could not be appended (Redis); the next run tries again
	GapDryRun       = "dry_run"       // a dry run found it and left it
)

// ErrBusy is a run refused because another is running.
var ErrBusy = errors.New("another reconciliation is running")

var (
	runsComplete    = metrics.NewCounter(`hookstream_reconcile_runs_total{status="complete"}`)
	runsFailed      = metrics.NewCounter(`hookstream_reconcile_runs_total{status="failed"}`)
	eventsCompared  = metrics.NewCounter(`hookstream_reconcile_events_compared_total`)
	eventsMissing   = metrics.NewCounter(`hookstream_reconcile_events_missing_total`)
	eventsRecovered = metrics.NewCounter(`hookstream_reconcile_events_recovered_total`)
	// unrecovered is the last complete run's gaps it could not recover.
	unrecovered  = metrics.NewGauge(`hookstream_reconcile_unrecovered`, nil)
	lastComplete = metrics.NewGauge(`hookstream_reconcile_last_complete_timestamp_seconds`, nil)
)

// Run reconciles the window once. It refuses with ErrBusy while another
// run holds the lock. On failure the run is recorded as failed with the
// reason, and the next run covers its window again.
func (r *Reconciler) Run(ctx context.Context, w Window) (Run, error) {
	conn, err := r.db.Acquire(ctx)
	if err != nil {
		return Run{}, fmt.Errorf("reconcile: connect to PostgreSQL: %w", err)
	}
	defer conn.Release()
	var got bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1, hashtext(current_schema()))`, store.ReconcileLock).Scan(&got); err != nil {
		return Run{}, fmt.Errorf("reconcile: take the lock: %w", err)
	}
	if !got {
		return Run{}, ErrBusy
	}
	defer conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1, hashtext(current_schema()))`, store.ReconcileLock)
	// Holding the lock, any run still marked running belongs to a process
	// that died mid-run (the lock is its session's): close it as failed.
	// Its window is covered again, as it never moved the high-water mark.
	if _, err := conn.Exec(ctx, `UPDATE reconcile_runs SET status = 'failed', finished_at = now(),
		error = 'abandoned: the process running it ended before it finished; a later run covered its window again'
		WHERE status = 'running'`); err != nil {
		return Run{}, fmt.Errorf("reconcile: close abandoned runs: %w", err)
	}

	now := r.opts.Now().UTC()
	run := Run{StartedAt: now, Status: StatusRunning, Holder: r.opts.Holder, Since: w.Since.UTC(), Until: w.Until.UTC()}
	horizon := now.Add(-r.opts.Horizon)
	if run.Until.IsZero() {
		run.Until = now.Add(-r.opts.Settle)
	}
	if run.Since.IsZero() {
		hw, ok, err := lastHighWater(ctx, r.db)
		if err != nil {
			return run, err
		}
		run.Since = horizon
		if ok {
			run.Since = hw.Add(-r.opts.Overlap)
		}
	}
	if run.Since.Before(horizon) {
		run.Since = horizon // Dwolla has nothing older
	}
	if !run.Until.After(run.Since) {
		return run, fmt.Errorf("reconcile: until %s is not after since %s", run.Until.Format(time.RFC3339), run.Since.Format(time.RFC3339))
	}
	if err := insertRun(ctx, r.db, &run); err != nil {
		return run, err
	}
	log := r.opts.Logger.With("run", run.ID)
	log.Info("reconciliation started", "since", run.Since, "until", run.Until, "dry_run", w.DryRun)

	err = r.compare(ctx, &run, w.DryRun)
	if err == nil {
		run.Audit, err = r.audit(ctx, &run, w.DryRun)
	}
	if err == nil && r.opts.StuckLimit > 0 {
		run.Repair, err = r.repair(ctx, &run, w.DryRun)
	}
	run.FinishedAt = r.opts.Now().UTC()
	run.DurationMS = float64(run.FinishedAt.Sub(run.StartedAt).Microseconds()) / 1000
	switch {
	case err != nil:
		run.Status, run.Error = StatusFailed, err.Error()
		runsFailed.Inc()
	case w.DryRun:
		run.Status = StatusDryRun
	default:
		run.Status = StatusComplete
		runsComplete.Inc()
		unrecovered.Set(float64(run.Unrecovered))
		lastComplete.Set(float64(run.FinishedAt.Unix()))
	}
	if uerr := finishRun(context.WithoutCancel(ctx), r.db, &run); uerr != nil && err == nil {
		err = uerr
	}
	log.Info("reconciliation finished", "status", run.Status, "compared", run.Compared, "missing", run.Missing,
		"recovered", run.Recovered, "in_flight", run.InFlight, "unrecovered", run.Unrecovered, "pages", run.Pages, "api_calls", run.APICalls, "err", run.Error)
	return run, err
}

// found is one event at Dwolla the run found missing.
type found struct {
	ev   dwolla.Event
	body []byte
}

// compare pages /events from the newest until it passes run.Since,
// compares each page's ids with the events table in one query, and
// recovers what is missing.
func (r *Reconciler) compare(ctx context.Context, run *Run, dry bool) error {
	seen := map[string]struct{}{}
	page, err := r.api.Events(ctx, r.opts.PageSize)
	run.APICalls++
	for {
		if err != nil {
			return fmt.Errorf("reconcile: list Dwolla's events (page %d): %w", run.Pages+1, err)
		}
		run.Pages++
		var (
			ids   []string
			evs   = map[string]found{}
			older bool
		)
		for i, raw := range page.Embedded.Events {
			ev, perr := dwolla.ParseEvent(raw)
			if perr != nil {
				run.Errors++
				r.opts.Logger.Warn("reconcile: an event Dwolla listed does not parse; skipped", "page", run.Pages, "index", i, "err", perr)
				continue
			}
			if ev.Created.Before(run.Since) {
				older = true
				continue
			}
			if !ev.Created.Before(run.Until) {
				continue
			}
			if _, dup := seen[ev.ID]; dup {
				continue // listed again: a newer event shifted the offsets
			}
			seen[ev.ID] = struct{}{}
			if ev.Created.After(run.HighWater) {
				run.HighWater = ev.Created
			}
			ids = append(ids, ev.ID)
			evs[ev.ID] = found{ev: ev, body: raw}
		}
		run.Compared += int64(len(ids))
		eventsCompared.Add(len(ids))
		if err := r.comparePage(ctx, run, ids, evs, dry); err != nil {
			return err
		}
		next := page.Links["next"].Href
		if older || next == "" || len(page.Embedded.Events) == 0 {
			return nil
		}
		page, err = r.api.EventsAt(ctx, next)
		run.APICalls++
	}
}

// comparePage finds which of ids the events table lacks (one query), and
// recovers them (one round trip to Redis, one insert of the gaps).
func (r *Reconciler) comparePage(ctx context.Context, run *Run, ids []string, evs map[string]found, dry bool) error {
	if len(ids) == 0 {
		return progress(ctx, r.db, run)
	}
	rows, err := r.db.Query(ctx, `SELECT i.id, EXISTS (SELECT 1 FROM dead_letters d WHERE d.event_id = i.id
			AND d.replayed_at IS NULL AND d.discarded_at IS NULL)
		FROM unnest($1::text[]) AS i(id) WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.id = i.id)`, ids)
	if err != nil {
		return fmt.Errorf("reconcile: compare with the events table: %w", err)
	}
	type gap struct {
		id, outcome, err string
	}
	var (
		gaps    []gap
		entries []stream.Entry
		at      []int
	)
	for rows.Next() {
		var (
			id   string
			dead bool
		)
		if err := rows.Scan(&id, &dead); err != nil {
			rows.Close()
			return fmt.Errorf("reconcile: compare with the events table: %w", err)
		}
		g := gap{id: id, outcome: GapDryRun}
		switch {
		case dead:
			g.outcome = GapDeadLettered
		case !dry:
			f := evs[id]
			at = append(at, len(gaps))
			entries = append(entries, stream.NewEntry(r.keys.Partition(f.ev.PartitionKey()), id, f.body, "reconcile"))
		}
		gaps = append(gaps, g)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("reconcile: compare with the events table: %w", err)
	}
	run.Missing += int64(len(gaps))
	eventsMissing.Add(len(gaps))
	if len(entries) > 0 {
		res := make([]stream.Result, len(entries))
		if err := r.producer.AppendBatch(ctx, entries, res); err != nil {
			for i := range entries {
				res[i].Err = err
			}
		}
		for i, rs := range res {
			g := &gaps[at[i]]
			switch {
			case rs.Err != nil:
				g.outcome, g.err = GapFailed, rs.Err.Error()
			case rs.Duplicate:
				g.outcome = GapInFlight
			default:
				g.outcome = GapRecovered
			}
		}
	}
	var (
		gid, gout, gerr, gtopic []string
		gcreated                []time.Time
	)
	for _, g := range gaps {
		f := evs[g.id]
		switch g.outcome {
		case GapRecovered:
			run.Recovered++
			eventsRecovered.Inc()
			run.noteRecovered(f.ev)
		case GapInFlight:
			run.InFlight++
			run.noteRecovered(f.ev)
		case GapDeadLettered:
			run.DeadLettered++
		case GapFailed:
			run.Unrecovered++
			run.Errors++
		}
		gid, gout, gerr, gtopic = append(gid, g.id), append(gout, g.outcome), append(gerr, g.err), append(gtopic, f.ev.Topic)
		gcreated = append(gcreated, f.ev.Created)
		if run.gapFrom.IsZero() || f.ev.Created.Before(run.gapFrom) {
			run.gapFrom = f.ev.Created
		}
		if f.ev.Created.After(run.gapTo) {
			run.gapTo = f.ev.Created
		}
	}
	if len(gid) == 0 {
		return progress(ctx, r.db, run)
	}
	// The gaps and the run's progress in one transaction: one commit (one
	// WAL flush) per page, not two.
	err = pgx.BeginFunc(ctx, r.db, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO reconcile_gaps (run_id, event_id, topic, created, outcome, error)
			SELECT $1, * FROM unnest($2::text[], $3::text[], $4::timestamptz[], $5::text[], $6::text[])
			ON CONFLICT (run_id, event_id) DO NOTHING`, run.ID, gid, gtopic, gcreated, gout, gerr); err != nil {
			return fmt.Errorf("reconcile: record the gaps: %w", err)
		}
		return progress(ctx, tx, run)
	})
	return err
}

func (run *Run) noteRecovered(ev dwolla.Event) {
	if run.recoveredBy == nil {
		run.recoveredBy = map[string]int{}
	}
	for _, s := range []string{ev.CustomerID(), ev.ResourceID, ev.CorrelationID} {
		if s != "" {
			run.recoveredBy[s]++
		}
	}
}

// lastHighWater is the high-water mark of the last complete run.
func lastHighWater(ctx context.Context, q store.Querier) (time.Time, bool, error) {
	var hw *time.Time
	err := q.QueryRow(ctx, `SELECT high_water FROM reconcile_runs WHERE status = 'complete' AND high_water IS NOT NULL
		ORDER BY high_water DESC LIMIT 1`).Scan(&hw)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && hw == nil) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, fmt.Errorf("reconcile: read the last complete run: %w", err)
	}
	return hw.UTC(), true, nil
}

func insertRun(ctx context.Context, q store.Querier, run *Run) error {
	err := q.QueryRow(ctx, `INSERT INTO reconcile_runs (started_at, status, since, until, holder) VALUES ($1, $2, $3, $4, $5) RETURNING id`,
		run.StartedAt, run.Status, run.Since, run.Until, run.Holder).Scan(&run.ID)
	if err != nil {
		return fmt.Errorf("reconcile: record the run: %w", err)
	}
	return nil
}

// progress writes the run's counts so far (a run killed midway shows how
// far it got).
func progress(ctx context.Context, q store.Querier, run *Run) error {
	_, err := q.Exec(ctx, `UPDATE reconcile_runs SET pages = $2, api_calls = $3, compared = $4, missing = $5, recovered = $6,
		in_flight = $7, dead_lettered = $8, errors = $9, high_water = $10 WHERE id = $1`,
		run.ID, run.Pages, run.APICalls, run.Compared, run.Missing, run.Recovered, run.InFlight, run.DeadLettered, run.Errors,
		nullTime(run.HighWater))
	if err != nil {
		return fmt.Errorf("reconcile: record the run's progress: %w", err)
	}
	return nil
}

func finishRun(ctx context.Context, q store.Querier, run *Run) error {
	if err := progress(ctx, q, run); err != nil {
		return err
	}
	audit, err := jsonOrNil(run.Audit)
	if err != nil {
		return err
	}
	repair, err := jsonOrNil(run.Repair)
	if err != nil {
		return err
	}
	_, err = q.Exec(ctx, `UPDATE reconcile_runs SET status = $2, finished_at = $3, error = $4, audit = $5, repair = $6 WHERE id = $1`,
		run.ID, run.Status, run.FinishedAt, run.Error, audit, repair)
	if err != nil {
		return fmt.Errorf("reconcile: record the end of the run: %w", err)
	}
	return nil
}

func jsonOrNil(v any) ([]byte, error) {
	switch v := v.(type) {
	case *Audit:
		if v == nil {
			return nil, nil
		}
	case *Repair:
		if v == nil {
			return nil, nil
		}
	}
	return json.Marshal(v)
}

func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}
