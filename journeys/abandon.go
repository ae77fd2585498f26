package journeys

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/hookstream/hookstream/internal/periodic"
	"github.com/hookstream/hookstream/store"
	"github.com/hookstream/hookstream/stream"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
)

var abandonedTotal = metrics.NewCounter(`hookstream_journeys_abandoned_total`)

// Abandoner marks in-progress instances abandoned once the event-time
// watermark passes their deadline (judged on the watermark, not the wall
// clock, so replaying old events does not abandon everything), records it
// and announces a "journey abandoned" entry for alerts and the live feed.
// Progress later un-abandons the instance (Fold.Fold).
type Abandoner struct {
	DB     *pgxpool.Pool
	Redis  redis.UniversalClient // nil: not announced
	Stream string
	// Watermark is the event-time watermark; ok false means it cannot be
	// told now (nothing is abandoned then).
	Watermark func(ctx context.Context) (wm time.Time, ok bool, err error)
	Every     time.Duration // default 5s
	Batch     int           // candidates looked at per transaction (default 10,000)
	Set       *Set          // the definitions, to keep the funnel aggregates in step
	Log       *slog.Logger
}

// Run scans at once and then every Every until ctx ends.
func (a *Abandoner) Run(ctx context.Context) {
	periodic.Run(ctx, cmp.Or(a.Every, 5*time.Second), a.log(), "abandonment scan", func(ctx context.Context) error {
		_, err := a.Tick(ctx)
		return err
	})
}

func (a *Abandoner) log() *slog.Logger {
	return cmp.Or(a.Log, slog.Default())
}

// Tick abandons what the watermark has passed and returns how many
// instances it abandoned.
func (a *Abandoner) Tick(ctx context.Context) (int, error) {
	if a.Set == nil {
		return 0, errors.New("journey abandoner: no definitions (Set)")
	}
	wm, ok, err := a.Watermark(ctx)
	if err != nil || !ok {
		return 0, err
	}
	// In transactions of at most Batch candidates, until one finds fewer
	// (what another transaction holds locked waits for the next tick).
	// What a transaction abandoned is counted and announced once it
	// commits, whatever the next one does, and then let go: a tick holds
	// one batch at a time.
	total := 0
	for {
		n, full, err := a.abandon(ctx, wm)
		total += n
		if err != nil || !full {
			return total, err
		}
	}
}

// abandon abandons one batch of candidates in one transaction and, once
// it committed, counts and announces them; full says whether a whole batch
// was looked at (there may be more).
func (a *Abandoner) abandon(ctx context.Context, wm time.Time) (n int, full bool, err error) {
	batch := a.Batch
	if batch <= 0 {
		batch = 10_000
	}
	var done []Row
	err = pgx.BeginFunc(ctx, a.DB, func(tx pgx.Tx) error {
		if err := store.Lock(ctx, tx, store.JourneysLock, false); err != nil {
			return err
		}
		rows, checked, err := abandonRows(ctx, tx, wm, batch)
		if err != nil {
			return err
		}
		full, done = checked == batch, rows
		recs := make([]Record, len(rows))
		funnel := map[FunnelKey]int64{}
		unknown := 0
		for i := range rows {
			r := &rows[i]
			step := ""
			if r.CurrentStep != nil {
				step = *r.CurrentStep
			}
			recs[i] = Record{Journey: r.Journey, Subject: r.Subject, Kind: RecordAbandoned, Step: step,
				Detail: "no progress by " + r.Deadline.UTC().Format(time.RFC3339) + "; watermark " + wm.Format(time.RFC3339)}
			d, ok := a.Set.Get(r.Journey)
			if !ok {
				unknown++
				continue
			}
			steps := ReachesOf(r)
			Contribution(d, steps, d.Derive(steps, false), -1, funnel)
			Contribution(d, steps, d.Derive(steps, true), +1, funnel)
		}
		if unknown > 0 {
			// Instances of a journey no longer defined: abandoned and
			// recorded all the same, but their funnel is no one's now.
			a.log().Warn("abandoned instances of journeys no longer defined; their funnel aggregates are left as they were",
				"instances", unknown)
		}
		if err := addFunnel(ctx, tx, funnelRows(funnel)); err != nil {
			return err
		}
		return insertRecords(ctx, tx, recs)
	})
	if err != nil {
		return 0, false, err
	}
	abandonedTotal.Add(len(done))
	a.announce(ctx, done, wm)
	return len(done), full, nil
}

// announce adds a "journey abandoned" entry per instance to the stream,
// best effort (journey_records holds the record).
func (a *Abandoner) announce(ctx context.Context, done []Row, wm time.Time) {
	if a.Redis == nil || len(done) == 0 {
		return
	}
	entries := make([][]string, len(done))
	for i, r := range done {
		step := ""
		if r.CurrentStep != nil {
			step = *r.CurrentStep
		}
		entries[i] = []string{"journey", r.Journey, "subject", r.Subject, "step", step, "watermark", wm.Format(time.RFC3339)}
	}
	if err := stream.Announce(ctx, a.Redis, a.Stream, entries); err != nil {
		a.log().Warn("announce abandoned journeys", "err", err, "instances", len(done))
	}
}
