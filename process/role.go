package process

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"github.com/hookstream/hookstream/anomaly"
	"log/slog"
	"sync"
	"time"

	"github.com/hookstream/hookstream/journeys"
	"github.com/hookstream/hookstream/stream"
	"github.com/hookstream/hookstream/windows"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
)

// RoleConfig is everything the process role is configured with, validated
// once by NewRole. cmd maps flags onto it; tests fill it directly.
type RoleConfig struct {
	// Processor configures reading, storing and acknowledging. Its Folds
	// are filled by NewRole from the fields below; leave them empty.
	Processor Options

	// EventsOnly stores events and folds nothing: no windows, no journeys,
	// no closer, no abandoner (benchmarks of the storing step alone).
	EventsOnly bool
	// Windows configures the window aggregates and the closer.
	Windows windows.Config
	// Journeys are the journey definitions to follow; nil follows none.
	Journeys *journeys.Set
	// JourneyCacheMB is the memory of the journey instance cache (0: none).
	JourneyCacheMB int
	// Anomalies are the watched series scored as their windows close; nil
	// scores none.
	Anomalies *anomaly.Watch

	// StatusEvery is how often the group's state (length, pending, lag,
	// oldest pending age, open dead letters) is exported as metrics
	// (default 5s).
	StatusEvery time.Duration
}

// Role is the process role: the processor, and beside it the windows closer,
// the journey abandoner and the status exporter. Create it with NewRole and
// run it with Run.
type Role struct {
	cfg       RoleConfig
	rdb       redis.UniversalClient
	db        *pgxpool.Pool
	keys      stream.Keys
	proc      *Processor
	closer    *windows.Closer     // nil with EventsOnly
	abandoner *journeys.Abandoner // nil without journeys
	scorer    *anomaly.Scorer     // nil without anomalies
	log       *slog.Logger
}

// NewFolds builds the folding steps a processor runs on newly stored events,
// in order: window aggregates, then journey instances when set is not nil.
// "hookstream refold" refolds through the same steps.
func NewFolds(wcfg windows.Config, set *journeys.Set, journeyCacheMB int) ([]Fold, error) {
	wf, err := windows.NewFold(wcfg)
	if err != nil {
		return nil, err
	}
	folds := []Fold{wf}
	if set != nil {
		folds = append(folds, journeys.NewFold(set, journeyCacheMB))
	}
	return folds, nil
}

// NewRole validates cfg and builds the role over the partition streams of
// keys, storing into db. The caller owns rdb and db and closes them after Run
// has returned.
func NewRole(rdb redis.UniversalClient, db *pgxpool.Pool, keys stream.Keys, cfg RoleConfig) (*Role, error) {
	if len(cfg.Processor.Folds) > 0 {
		return nil, errors.New("process role: RoleConfig.Processor.Folds is filled by NewRole; configure Windows and Journeys instead")
	}
	if cfg.StatusEvery < 0 {
		return nil, fmt.Errorf("process role: status interval %s is negative", cfg.StatusEvery)
	}
	cfg.StatusEvery = cmp.Or(cfg.StatusEvery, 5*time.Second)
	cfg.Processor.Logger = cmp.Or(cfg.Processor.Logger, slog.Default())
	r := &Role{cfg: cfg, rdb: rdb, db: db, keys: keys, log: cfg.Processor.Logger}
	if !cfg.EventsOnly {
		cfg.Windows = cfg.Windows.WithDefaults()
		if err := cfg.Windows.Validate(); err != nil {
			return nil, fmt.Errorf("process role: windows: %w", err)
		}
		folds, err := NewFolds(cfg.Windows, cfg.Journeys, cfg.JourneyCacheMB)
		if err != nil {
			return nil, fmt.Errorf("process role: %w", err)
		}
		cfg.Processor.Folds = folds
		r.closer = NewCloser(rdb, db, keys, cfg.Processor.Group, cfg.Windows, r.log)
		if cfg.Journeys != nil {
			r.abandoner = &journeys.Abandoner{DB: db, Redis: rdb, Stream: keys.JourneysAbandoned(), Log: r.log, Set: cfg.Journeys,
				Watermark: func(ctx context.Context) (time.Time, bool, error) { return r.closer.Watermark(ctx, windows.EventTime) }}
		}
		if cfg.Anomalies != nil {
			r.scorer = &anomaly.Scorer{DB: db, Windows: cfg.Windows, Watch: cfg.Anomalies, Redis: rdb, Stream: keys.Anomalies(), Logger: r.log}
		}
	}
	p, err := New(rdb, db, keys, cfg.Processor)
	if err != nil {
		return nil, fmt.Errorf("process role: %w", err)
	}
	r.proc, r.cfg = p, cfg
	return r, nil
}

// NewCloser returns the windows closer of the namespace of keys, holding
// windows open while group has entries waiting or is paused. The role runs
// one; "hookstream status" builds the same one to tell the watermark, so both
// judge it with the same configuration.
func NewCloser(rdb redis.UniversalClient, db *pgxpool.Pool, keys stream.Keys, group string, cfg windows.Config, log *slog.Logger) *windows.Closer {
	g := stream.NewGroup(rdb, keys, cmp.Or(group, DefaultGroup))
	return &windows.Closer{DB: db, Redis: rdb, Stream: keys.WindowsClosed(), Partitions: keys.Partitions, Config: cfg, Log: log,
		Hold: func(ctx context.Context) (map[int32]bool, bool, error) { return backlog(ctx, rdb, g) }}
}

// backlog reports the partitions whose streams hold entries the group has not
// finished (undelivered or pending) and whether processing is paused: the
// windows closer must not treat those partitions as idle.
func backlog(ctx context.Context, rdb redis.UniversalClient, g *stream.Group) (map[int32]bool, bool, error) {
	paused, err := IsPaused(ctx, rdb, g.Keys(), g.Name())
	if err != nil {
		return nil, false, err
	}
	st, err := g.Status(ctx)
	if err != nil {
		return nil, false, err
	}
	out := map[int32]bool{}
	for _, s := range st {
		if s.Lag != 0 || s.Pending > 0 { // -1: Redis cannot tell, so assume some
			out[int32(s.Partition)] = true
		}
	}
	return out, paused, nil
}

// Processor is the role's processor (for its Stats).
func (r *Role) Processor() *Processor { return r.proc }

// Run runs every part of the role until ctx ends or the processor fails, and
// returns once all of them have stopped. Stop order: every part is told at
// once; the processor stops reading and finishes the batch in flight
// (commit, acknowledge; at most ShutdownWait); the closer, the abandoner and
// the status exporter abandon a step in flight, whose transaction rolls back
// whole (what it would have closed or abandoned is done by the next
// process's first step); Run returns when the last part has returned. The
// caller closes the clients afterwards.
func (r *Role) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	goRun := func(f func(context.Context)) {
		wg.Add(1)
		go func() { defer wg.Done(); f(ctx) }()
	}
	if r.closer != nil {
		goRun(r.closer.Run)
	}
	if r.abandoner != nil {
		goRun(r.abandoner.Run)
	}
	if r.scorer != nil {
		goRun(r.scorer.Run)
	}
	goRun(func(ctx context.Context) {
		ExportStatus(ctx, stream.NewGroup(r.rdb, r.keys, r.proc.opts.Group), r.db, r.cfg.StatusEvery, r.proc.log)
	})
	err := r.proc.Run(ctx)
	cancel() // a processor that failed takes the rest of the role down with it
	wg.Wait()
	return err
}
