package windows

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/hookstream/hookstream/store"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
)

var (
	closesTotal = metrics.NewCounter(`hookstream_windows_closed_total`)
	prunedTotal = metrics.NewCounter(`hookstream_windows_pruned_total`)
)

// maxEmptyCloses bounds the close records written for windows without
// events in one pass: a first close over a long history records only the
// windows that had events.
const maxEmptyCloses = 1440

// closerLock is the advisory lock id that makes one closer run at a time
// across every processor of the database.
const closerLock = 0x686f6f6b77696e // "hookwin"

// Closer closes windows as the watermark passes them, writes and publishes
// their close records, and prunes windows past their retention. Any number
// of processors may run one; an advisory lock lets one work at a time.
type Closer struct {
	DB         *pgxpool.Pool
	Redis      redis.UniversalClient // publishes close records; nil: not published
	Stream     string                // the stream they are published on
	Partitions int                   // partition streams, for the watermark
	Config     Config
	Every      time.Duration    // how often to look (default 1s)
	Now        func() time.Time // the wall clock (tests set it)
	Log        *slog.Logger

	initialised bool
	lastPrune   time.Time
}

// Run closes windows every Every until ctx ends.
func (c *Closer) Run(ctx context.Context) {
	every := c.Every
	if every <= 0 {
		every = time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if _, err := c.Tick(ctx); err != nil && ctx.Err() == nil {
			c.log().Warn("closing windows failed; retrying", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (c *Closer) log() *slog.Logger {
	if c.Log == nil {
		return slog.Default()
	}
	return c.Log
}

func (c *Closer) now() time.Time {
	if c.Now == nil {
		return time.Now().UTC()
	}
	return c.Now().UTC()
}

// Tick closes what the watermark allows now and returns the close records
// it wrote.
func (c *Closer) Tick(ctx context.Context) ([]store.WindowClose, error) {
	cfg := c.Config.WithDefaults()
	if !c.initialised {
		// Cursors exist before anything closes, so every fold holds them
		// FOR SHARE from the start (see Folder.Fold).
		for _, b := range Bases {
			for _, size := range cfg.Sizes {
				if err := store.EnsureWindowCursor(ctx, c.DB, string(b), int32(size/time.Second)); err != nil {
					return nil, err
				}
			}
		}
		c.initialised = true
		return nil, nil
	}
	var closes []store.WindowClose
	err := pgx.BeginFunc(ctx, c.DB, func(tx pgx.Tx) error {
		var got bool
		if err := tx.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock($1)`, int64(closerLock)).Scan(&got); err != nil || !got {
			return err // another processor's closer is at work
		}
		now := c.now()
		for _, b := range Bases {
			marks, err := store.ReadWindowMarks(ctx, tx, string(b))
			if err != nil {
				return err
			}
			wm := Watermark(marks, c.Partitions, now, &cfg)
			for _, size := range cfg.Sizes {
				cl, err := c.closeSize(ctx, tx, b, size, wm, &cfg)
				if err != nil {
					return err
				}
				closes = append(closes, cl...)
			}
		}
		if now.Sub(c.lastPrune) > 10*time.Minute {
			for _, size := range cfg.Sizes {
				n, err := store.PruneWindows(ctx, tx, int32(size/time.Second), now.Add(-cfg.Retention[size]))
				if err != nil {
					return err
				}
				prunedTotal.Add(int(n))
			}
			c.lastPrune = now
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	closesTotal.Add(len(closes))
	c.publish(ctx, closes)
	return closes, nil
}

func (c *Closer) closeSize(ctx context.Context, tx pgx.Tx, b Basis, size time.Duration, wm time.Time, cfg *Config) ([]store.WindowClose, error) {
	sizeS := int32(size / time.Second)
	from, err := store.LockWindowCursor(ctx, tx, string(b), sizeS)
	if err != nil {
		return nil, err
	}
	until := ClosedUntil(wm, size, cfg)
	if !until.After(from) {
		return nil, nil
	}
	base := cfg.Base()
	if from.IsZero() {
		// First close: start at the first window with events.
		first, ok, err := store.FirstWindowStart(ctx, tx, string(b), int32(base/time.Second))
		if err != nil {
			return nil, err
		}
		first = Start(first, size)
		if !ok || !first.Before(until) {
			return nil, nil // nothing to close yet; the cursor waits for the first window
		}
		from = first
	}
	if size != base {
		// Larger windows are rolled up from the base windows they hold, all
		// closed by now (their lateness is at least the base's).
		if err := rollUp(ctx, tx, b, base, size, from, until, false); err != nil {
			return nil, err
		}
	}
	withEmpty := until.Sub(from)/size <= maxEmptyCloses
	return store.CloseWindows(ctx, tx, string(b), sizeS, from, until, wm, withEmpty && !from.Equal(until))
}

// publish announces close records on the stream, best effort: the
// window_closes table is the record, and readers that missed one find it
// there.
func (c *Closer) publish(ctx context.Context, closes []store.WindowClose) {
	if c.Redis == nil || len(closes) == 0 {
		return
	}
	_, err := c.Redis.Pipelined(ctx, func(pipe redis.Pipeliner) error {
		for _, cl := range closes {
			pipe.XAdd(ctx, &redis.XAddArgs{Stream: c.Stream, MaxLen: 100_000, Approx: true, Values: []string{
				"basis", cl.Basis, "size", (time.Duration(cl.SizeS) * time.Second).String(), "start", cl.Start.Format(time.RFC3339),
				"count", fmt.Sprint(cl.Count), "watermark", cl.Watermark.Format(time.RFC3339Nano),
			}})
		}
		return nil
	})
	if err != nil && !errors.Is(err, context.Canceled) {
		c.log().Warn("publish window close records", "err", err, "records", len(closes))
	}
}
