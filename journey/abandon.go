package journey

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/hookstream/hookstream/store"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
)

var abandonedTotal = metrics.NewCounter(`hookstream_journeys_abandoned_total`)

// Abandoner marks in-progress instances abandoned once the event-time
// watermark passes their deadline (judged on the watermark, not the wall
// clock, so replaying old events does not abandon everything), records it
// and publishes a "journey abandoned" entry for alerts and the live feed.
// Progress later un-abandons the instance (Folder.Fold).
type Abandoner struct {
	DB     *pgxpool.Pool
	Redis  redis.UniversalClient // nil: not published
	Stream string
	// Watermark is the event-time watermark; ok false means it cannot be
	// told now (nothing is abandoned then).
	Watermark func(ctx context.Context) (wm time.Time, ok bool, err error)
	Every     time.Duration // default 5s
	Batch     int           // candidates looked at per transaction (default 10,000)
	Set       *Set          // the definitions, to keep the funnel aggregates in step
	Log       *slog.Logger
}

// Run scans every Every until ctx ends.
func (a *Abandoner) Run(ctx context.Context) {
	every := a.Every
	if every <= 0 {
		every = 5 * time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if _, err := a.Tick(ctx); err != nil && ctx.Err() == nil {
			a.log().Warn("abandonment scan failed; retrying", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (a *Abandoner) log() *slog.Logger {
	if a.Log == nil {
		return slog.Default()
	}
	return a.Log
}

// Tick abandons what the watermark has passed and returns those instances.
func (a *Abandoner) Tick(ctx context.Context) ([]Row, error) {
	if a.Set == nil {
		return nil, errors.New("journey abandoner: no definitions (Set)")
	}
	wm, ok, err := a.Watermark(ctx)
	if err != nil || !ok {
		return nil, err
	}
	var done []Row
	// In transactions of at most Batch candidates, until one finds fewer
	// (what another transaction holds locked waits for the next tick).
	// What a transaction abandoned is counted and published once it
	// commits, whatever the next one does.
	for {
		rows, full, err := a.abandon(ctx, wm)
		if err != nil {
			return done, err
		}
		abandonedTotal.Add(len(rows))
		a.publish(ctx, rows, wm)
		done = append(done, rows...)
		if !full {
			return done, nil
		}
	}
}

// abandon looks at one batch of candidates in one transaction; full says
// whether a whole batch was looked at (there may be more).
func (a *Abandoner) abandon(ctx context.Context, wm time.Time) (done []Row, full bool, err error) {
	err = pgx.BeginFunc(ctx, a.DB, func(tx pgx.Tx) error {
		if err := store.Lock(ctx, tx, store.JourneysLock, false); err != nil {
			return err
		}
		batch := a.Batch
		if batch <= 0 {
			batch = 10_000
		}
		rows, checked, err := abandonRows(ctx, tx, wm, batch)
		if err != nil {
			return err
		}
		full = checked == batch
		recs := make([]Record, len(rows))
		for i, r := range rows {
			step := ""
			if r.CurrentStep != nil {
				step = *r.CurrentStep
			}
			recs[i] = Record{Journey: r.Journey, Subject: r.Subject, Kind: "abandoned", Step: step,
				Detail: "no progress by " + r.Deadline.UTC().Format(time.RFC3339) + "; watermark " + wm.Format(time.RFC3339)}
		}
		done = rows
		funnel := map[FunnelKey]int64{}
		for i := range rows {
			if d, ok := a.Set.Get(rows[i].Journey); ok {
				steps := ReachesOf(&rows[i])
				Contribution(d, steps, d.Derive(steps, false), -1, funnel)
				Contribution(d, steps, d.Derive(steps, true), +1, funnel)
			}
		}
		if err := addFunnel(ctx, tx, funnelRows(funnel)); err != nil {
			return err
		}
		return insertRecords(ctx, tx, recs)
	})
	if err != nil {
		return nil, false, err
	}
	return done, full, nil
}

// publish adds a "journey abandoned" entry per instance to the stream.
func (a *Abandoner) publish(ctx context.Context, done []Row, wm time.Time) {
	if a.Redis != nil && len(done) > 0 {
		_, err := a.Redis.Pipelined(ctx, func(pipe redis.Pipeliner) error {
			for _, r := range done {
				step := ""
				if r.CurrentStep != nil {
					step = *r.CurrentStep
				}
				pipe.XAdd(ctx, &redis.XAddArgs{Stream: a.Stream, MaxLen: 100_000, Approx: true,
					Values: []string{"journey", r.Journey, "subject", r.Subject, "step", step, "watermark", wm.Format(time.RFC3339)}})
			}
			return nil
		})
		if err != nil {
			a.log().Warn("publish abandoned journeys", "err", err, "instances", len(done))
		}
	}
}
