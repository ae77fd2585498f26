package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"time"

	"github.com/hookstream/hookstream/anomaly"
	"github.com/hookstream/hookstream/journeys"
	"github.com/hookstream/hookstream/process"
	"github.com/hookstream/hookstream/store"
	"github.com/hookstream/hookstream/stream"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
)

// processConfig is everything the process role is configured with (the
// connection settings are in common).
type processConfig struct {
	consumer        string
	workers         int
	batchSize       int
	block           time.Duration
	maxDeliveries   int
	claimIdle       time.Duration
	retention       time.Duration
	consumerIdle    time.Duration
	breakerFailures uint
	breakerOpen     time.Duration
	shutdownWait    time.Duration
	liveRetention   time.Duration
	noWindows       bool
	windows         windowFlags
	journeys        journeyFlags
	anomalySeries   string
	noAnomalies     bool
}

func (c *processConfig) register(fs *flag.FlagSet) {
	fs.StringVar(&c.consumer, "consumer", "", "consumer name of this processor in the group (default host-pid; each worker adds -<n>)")
	fs.IntVar(&c.workers, "workers", 2, "batches processed at once, each worker over its share of the partitions")
	fs.IntVar(&c.batchSize, "batch-size", 500, "most entries read per partition per batch; one PostgreSQL transaction per batch")
	fs.DurationVar(&c.block, "read-block", time.Second, "how long a read waits for new entries")
	fs.IntVar(&c.maxDeliveries, "max-deliveries", 5, "an entry delivered more often than this is judged alone: dead-lettered only if it fails again while a canary event stores fine (more than twice this: dead-lettered untried)")
	fs.DurationVar(&c.claimIdle, "claim-idle", 30*time.Second, "entries another consumer has held unacknowledged this long are taken over")
	fs.DurationVar(&c.retention, "retention", 24*time.Hour, "stream entries older than this are trimmed once the group has acknowledged them (kept for replay)")
	fs.DurationVar(&c.consumerIdle, "consumer-idle", time.Hour, "consumers idle this long with nothing pending are removed from the group")
	fs.UintVar(&c.breakerFailures, "breaker-failures", 5, "consecutive PostgreSQL failures that open the circuit breaker (reading stops while it is open)")
	fs.DurationVar(&c.breakerOpen, "breaker-open", 5*time.Second, "how long the breaker stays open before a half-open probe")
	fs.DurationVar(&c.shutdownWait, "shutdown-wait", 30*time.Second, "on shutdown, how long the batch in flight may take to commit and be acknowledged")
	fs.DurationVar(&c.liveRetention, "live-retention", 2*time.Minute, "how long stored events stay announced for the API's live feed: how far back a live client can resume (Redis holds ~420 bytes per event for it)")
	fs.BoolVar(&c.noWindows, "no-windows", false, "store events only; fold neither window aggregates nor journeys (benchmarks)")
	c.windows.register(fs)
	c.journeys.register(fs)
	fs.StringVar(&c.anomalySeries, "anomaly-series", "", "the series scored for anomalies as their windows close (YAML; see docs/anomaly.md); default: the built-in set")
	fs.BoolVar(&c.noAnomalies, "no-anomalies", false, "score no series for anomalies")
}

// roleConfig maps the flags onto the process role's configuration; the role
// validates it. The journey definitions are loaded here, once.
func (c *processConfig) roleConfig(log *slog.Logger) (process.RoleConfig, error) {
	rc := process.RoleConfig{
		Processor: process.Options{
			Consumer: c.consumer, Workers: c.workers, BatchSize: c.batchSize, Block: c.block,
			MaxDeliveries: c.maxDeliveries, ClaimIdle: c.claimIdle, Retention: c.retention, ConsumerIdle: c.consumerIdle,
			BreakerFailures: uint32(c.breakerFailures), BreakerOpen: c.breakerOpen, ShutdownWait: c.shutdownWait,
			AnnounceStored: c.liveRetention,
			Logger:         log,
		},
		EventsOnly:     c.noWindows,
		JourneyCacheMB: c.journeys.cache,
	}
	if c.noWindows {
		return rc, nil
	}
	var err error
	if rc.Windows, err = c.windows.config(); err != nil {
		return rc, err
	}
	if rc.Journeys, err = c.journeys.load(); err != nil {
		return rc, err
	}
	if !c.noAnomalies {
		rc.Anomalies, err = anomaly.LoadWatch(c.anomalySeries, rc.Windows)
	}
	return rc, err
}

// journeyFlags configure the journeys.
type journeyFlags struct {
	path  string
	off   bool
	cache int
}

func (j *journeyFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&j.path, "journeys", "", "journey definitions (YAML; see docs/journeys.md); default: the built-in set for Dwolla")
	fs.BoolVar(&j.off, "no-journeys", false, "do not follow journeys")
	fs.IntVar(&j.cache, "journey-cache-mb", journeys.DefaultCacheMB, "megabytes of memory for journey instances the processor keeps, so progress need not read them back (at least 32; 0: none)")
}

// load reads the journey definitions; nil with --no-journeys.
func (j *journeyFlags) load() (*journeys.Set, error) {
	if j.off {
		return nil, nil
	}
	set, warnings, err := journeys.Load(j.path)
	for _, w := range warnings {
		slog.Warn("journey definitions", "warning", w)
	}
	return set, err
}

// serveProcess runs the process role until ctx ends. started, if non-nil,
// receives the role once it runs (for dev's status lines).
func serveProcess(ctx context.Context, cm *common, cfg *processConfig, started chan<- *process.Role) error {
	log := slog.Default()
	rc, err := cfg.roleConfig(log)
	if err != nil {
		return err
	}
	// Reads block for up to --read-block, so the timeout must exceed it.
	rdb, err := stream.NewClient(cm.redisURL, cfg.block+5*time.Second, cfg.workers+4)
	if err != nil {
		return err
	}
	defer rdb.Close()
	pool, err := openWaiting(ctx, cm.dbURL, log)
	if err != nil {
		return err
	}
	defer pool.Close()
	role, err := process.NewRole(rdb, pool, stream.NewKeys(cm.namespace, cm.partitions), rc)
	if err != nil {
		return err
	}
	if started != nil {
		started <- role
	}
	return role.Run(ctx)
}

// roleConns opens what a background role (alert, reconcile) needs: a small
// Redis client and a PostgreSQL pool, waiting for PostgreSQL when it is not
// up yet. done closes both.
func roleConns(ctx context.Context, cfg *serveConfig, log *slog.Logger) (redis.UniversalClient, *pgxpool.Pool, func(), error) {
	rdb, err := stream.NewClient(cfg.redisURL, 5*time.Second, 4)
	if err != nil {
		return nil, nil, nil, err
	}
	pool, err := openWaiting(ctx, cfg.dbURL, log)
	if err != nil {
		rdb.Close()
		return nil, nil, nil, err
	}
	return rdb, pool, func() { pool.Close(); rdb.Close() }, nil
}

// openWaiting connects to PostgreSQL, waiting for it when it is not up yet
// (the processor starts; the backlog waits in Redis). A malformed URL fails
// at once.
func openWaiting(ctx context.Context, url string, log *slog.Logger) (*pgxpool.Pool, error) {
	if _, err := pgxpool.ParseConfig(url); err != nil {
		return nil, fmt.Errorf("parse database URL: %w; expected postgres://user@host:port/db", err)
	}
	for attempt := 0; ; attempt++ {
		pool, err := store.Open(ctx, url)
		if err == nil {
			return pool, nil
		}
		if attempt%10 == 0 {
			log.Warn("waiting for PostgreSQL", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}
