package process

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/hookstream/hookstream/internal/periodic"
	"github.com/hookstream/hookstream/store"
	"github.com/hookstream/hookstream/stream"
	"github.com/jackc/pgx/v5/pgxpool"
)

var (
	storedTotal    = metrics.NewCounter(`hookstream_process_entries_total{outcome="stored"}`)
	duplicateTotal = metrics.NewCounter(`hookstream_process_entries_total{outcome="duplicate"}`)
	deadTotal      = metrics.NewCounter(`hookstream_process_entries_total{outcome="dead"}`)
	batchesTotal   = metrics.NewCounter(`hookstream_process_batches_total`)
	batchSize      = metrics.NewHistogram(`hookstream_process_batch_size`)
	retriesTotal   = metrics.NewCounter(`hookstream_process_retries_total`)
	claimedTotal   = metrics.NewCounter(`hookstream_process_claimed_total`)
	trimmedTotal   = metrics.NewCounter(`hookstream_stream_trimmed_total`)
	deletedPending = metrics.NewCounter(`hookstream_process_vanished_pending_total`)
	// 0 closed, 1 half-open, 2 open (gobreaker's State values).
	breakerState = metrics.NewGauge(`hookstream_process_breaker_state`, nil)
	pausedGauge  = metrics.NewGauge(`hookstream_process_paused`, nil)
)

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// ExportStatus publishes the group's per-partition state (length, pending,
// lag, oldest pending age) and the open dead letters as metrics, at once and
// then every interval until ctx ends. A part that cannot be read keeps its
// last value and is logged.
func ExportStatus(ctx context.Context, g *stream.Group, db *pgxpool.Pool, interval time.Duration, log *slog.Logger) {
	periodic.Run(ctx, interval, log, "export the stream and dead-letter metrics", func(ctx context.Context) error {
		return exportStatus(ctx, g, db)
	})
}

func exportStatus(ctx context.Context, g *stream.Group, db *pgxpool.Pool) error {
	var errs []error
	if st, err := g.Status(ctx); err != nil {
		errs = append(errs, fmt.Errorf("read the stream status for hookstream_stream_* and hookstream_group_* (is Redis reachable?): %w", err))
	} else {
		for _, s := range st {
			lbl := fmt.Sprintf(`{partition="%d"}`, s.Partition)
			metrics.GetOrCreateGauge(`hookstream_stream_length`+lbl, nil).Set(float64(s.Length))
			metrics.GetOrCreateGauge(`hookstream_group_pending`+lbl, nil).Set(float64(s.Pending))
			metrics.GetOrCreateGauge(`hookstream_group_lag`+lbl, nil).Set(float64(s.Lag))
			metrics.GetOrCreateGauge(`hookstream_group_oldest_pending_seconds`+lbl, nil).Set(s.OldestAge.Seconds())
		}
	}
	if db != nil {
		if n, err := store.OpenDeadLetters(ctx, db); err != nil {
			errs = append(errs, fmt.Errorf("count open dead letters for hookstream_dead_letters_open (is PostgreSQL reachable and migrated?): %w", err))
		} else {
			metrics.GetOrCreateGauge(`hookstream_dead_letters_open`, nil).Set(float64(n))
		}
	}
	return errors.Join(errs...)
}
