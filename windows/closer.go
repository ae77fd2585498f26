package windows

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/hookstream/hookstream/internal/periodic"
	"github.com/hookstream/hookstream/store"
	"github.com/hookstream/hookstream/stream"
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

// Closer closes windows as the watermark passes them, writes and publishes
// their close records, and prunes windows past their retention. Any number
// of processors may run one; an advisory lock lets one work at a time.
type Closer struct {
	DB         *pgxpool.Pool
	Redis      redis.UniversalClient // publishes close records; nil: not published
	Stream     string                // the stream they are published on
	Partitions int                   // partition streams, for the watermark
	Config     Config
	Every      time.Duration // how often to look (default 1s)
	// Hold reports the partitions with entries waiting in their streams
	// (not yet delivered, or pending) and whether processing is paused.
	// While paused nothing closes; a partition with entries waiting never
	// counts as idle. nil: every partition is caught up.
	Hold func(ctx context.Context) (backlogged map[int32]bool, paused bool, err error)
	// Now is the closer's one clock: idleness (against the times folds
	// stamped partition activity with), close times and retention are all
	// judged on it. Default: the database's, as the folds' default. A test
	// that sets it gives its folds the same clock (Fold.WithClock).
	Now func() time.Time
	Log *slog.Logger

	initialised bool
	lastPrune   time.Time
}

// Run closes windows every Every until ctx ends, logging a failed tick and
// trying again at the next. It returns once ctx has ended, never in the
// middle of a tick.
func (c *Closer) Run(ctx context.Context) {
	periodic.Run(ctx, cmp.Or(c.Every, time.Second), c.log(), "closing windows", func(ctx context.Context) error {
		_, err := c.Tick(ctx)
		return err
	})
}

func (c *Closer) log() *slog.Logger {
	return cmp.Or(c.Log, slog.Default())
}

func (c *Closer) now(ctx context.Context) (time.Time, error) { return timeOn(ctx, c.Now, c.DB) }

// step is one (clock, size) with windows to close.
type step struct {
	basis Basis
	size  time.Duration
	from  time.Time // the cursor (zero: nothing closed yet)
	until time.Time
	wm    time.Time
}

// plan is what may close now, read from cursors and watermarks.
func (c *Closer) plan(ctx context.Context, q store.Querier, cursors []Cursor, now time.Time, backlogged map[int32]bool, cfg *Config) ([]step, error) {
	from := map[cursorKey]time.Time{}
	for _, cu := range cursors {
		from[cursorKey{cu.Basis, cu.Size}] = cu.ClosedUntil
	}
	var steps []step
	for _, b := range Bases {
		marks, err := readMarks(ctx, q, b)
		if err != nil {
			return nil, err
		}
		wm, ok := Watermark(marks, c.Partitions, now, cfg, backlogged)
		if !ok {
			continue
		}
		for _, size := range cfg.Sizes {
			st := step{basis: b, size: size, from: from[cursorKey{b, size}], until: ClosedUntil(wm, size, cfg), wm: wm}
			if st.from.IsZero() {
				// Nothing closed yet: only once there is a window to close.
				first, ok, err := firstWindowStart(ctx, q, string(b), int32(cfg.Base()/time.Second))
				if err != nil {
					return nil, err
				}
				if !ok || !Start(first, size).Before(st.until) {
					continue
				}
			}
			if st.until.After(st.from) {
				steps = append(steps, st)
			}
		}
	}
	return steps, nil
}

// Tick closes what the watermark allows now and returns the close records
// it wrote.
func (c *Closer) Tick(ctx context.Context) ([]CloseRecord, error) {
	cfg := c.Config.WithDefaults()
	if !c.initialised {
		// Cursors exist before anything closes.
		for _, b := range Bases {
			for _, size := range cfg.Sizes {
				if err := ensureCursor(ctx, c.DB, string(b), int32(size/time.Second)); err != nil {
					return nil, err
				}
			}
		}
		c.initialised = true
	}
	var backlogged map[int32]bool
	if c.Hold != nil {
		var paused bool
		var err error
		if backlogged, paused, err = c.Hold(ctx); err != nil {
			return nil, fmt.Errorf("read the streams' backlog: %w", err)
		}
		if paused {
			return nil, nil // events wait in the streams: their windows must not close
		}
	}
	now, err := c.now(ctx)
	if err != nil {
		return nil, err
	}
	// Look without locks first: most ticks close nothing, and the lock
	// makes every fold wait.
	cursors, err := ReadCursors(ctx, c.DB)
	if err != nil {
		return nil, err
	}
	steps, err := c.plan(ctx, c.DB, cursors, now, backlogged, &cfg)
	if err != nil {
		return nil, err
	}
	var closes []CloseRecord
	if len(steps) > 0 {
		err = pgx.BeginFunc(ctx, c.DB, func(tx pgx.Tx) error {
			if got, err := store.TryLock(ctx, tx, store.CloserLock); err != nil || !got {
				return err // another processor's closer is at work
			}
			cursors, err := lockCursors(ctx, tx)
			if err != nil {
				return err
			}
			steps, err := c.plan(ctx, tx, cursors, now, backlogged, &cfg)
			if err != nil {
				return err
			}
			for _, st := range steps { // smallest size first: larger ones roll up from it
				cl, err := c.closeStep(ctx, tx, st, now, &cfg)
				if err != nil {
					return err
				}
				closes = append(closes, cl...)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		closesTotal.Add(len(closes))
		c.publish(ctx, closes)
	}
	if now.Sub(c.lastPrune) > 10*time.Minute {
		if err := c.prune(ctx, now, &cfg); err != nil {
			return closes, err
		}
		c.lastPrune = now
	}
	return closes, nil
}

// prune deletes closed windows past their retention, in batches outside
// the closing transaction (folds do not wait for it).
func (c *Closer) prune(ctx context.Context, now time.Time, cfg *Config) error {
	for _, b := range Bases {
		for _, size := range cfg.Sizes {
			n, err := pruneWindows(ctx, c.DB, string(b), int32(size/time.Second), now.Add(-cfg.Retention[size]))
			if err != nil {
				return err
			}
			prunedTotal.Add(int(n))
		}
	}
	return nil
}

// closeStep closes the windows of st, stamping them closed at now.
func (c *Closer) closeStep(ctx context.Context, tx pgx.Tx, st step, now time.Time, cfg *Config) ([]CloseRecord, error) {
	sizeS := int32(st.size / time.Second)
	base := cfg.Base()
	from := st.from
	if from.IsZero() {
		// First close: start at the first window with events.
		first, ok, err := firstWindowStart(ctx, tx, string(st.basis), int32(base/time.Second))
		if err != nil {
			return nil, err
		}
		first = Start(first, st.size)
		if !ok || !first.Before(st.until) {
			return nil, nil // nothing to close yet; the cursor waits for the first window
		}
		from = first
	}
	if st.size != base {
		// Larger windows are rolled up from the base windows they hold, all
		// closed by now (their lateness is at least the base's).
		if err := rollUp(ctx, tx, st.basis, base, st.size, from, st.until, cfg.AllDims(), time.Time{}, false, now); err != nil {
			return nil, err
		}
	}
	withEmpty := st.until.Sub(from)/st.size <= maxEmptyCloses
	return closeWindows(ctx, tx, string(st.basis), sizeS, from, st.until, st.wm, now, withEmpty)
}

// publish announces close records on the stream, best effort: the
// window_closes table is the record, and readers that missed one find it
// there.
func (c *Closer) publish(ctx context.Context, closes []CloseRecord) {
	records := make([][]string, len(closes))
	for i, cl := range closes {
		records[i] = []string{
			"basis", string(cl.Basis), "size", (time.Duration(cl.SizeS) * time.Second).String(), "start", cl.Start.Format(time.RFC3339),
			"count", strconv.FormatInt(cl.Count, 10), "watermark", cl.Watermark.Format(time.RFC3339Nano),
		}
	}
	if err := stream.Announce(ctx, c.Redis, c.Stream, records); err != nil && ctx.Err() == nil {
		c.log().Warn("windows are closed but not announced; the window_closes table has them", "err", err, "records", len(closes))
	}
}

// Watermark is basis's watermark now, as the closer judges it (the
// journeys' abandonment scanner uses the event-time one); ok is false when
// it cannot be told (processing paused, or a partition with entries waiting
// that never folded anything).
func (c *Closer) Watermark(ctx context.Context, b Basis) (time.Time, bool, error) {
	cfg := c.Config.WithDefaults()
	var backlogged map[int32]bool
	if c.Hold != nil {
		var paused bool
		var err error
		if backlogged, paused, err = c.Hold(ctx); err != nil {
			return time.Time{}, false, fmt.Errorf("read the streams' backlog: %w", err)
		}
		if paused {
			return time.Time{}, false, nil
		}
	}
	now, err := c.now(ctx)
	if err != nil {
		return time.Time{}, false, err
	}
	marks, err := readMarks(ctx, c.DB, b)
	if err != nil {
		return time.Time{}, false, err
	}
	wm, ok := Watermark(marks, c.Partitions, now, &cfg, backlogged)
	return wm, ok, nil
}
