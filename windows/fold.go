package windows

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/hookstream/hookstream/store"
	"github.com/jackc/pgx/v5"
)

// lateEvents counts events folded into windows already closed, per clock and
// size: never silently dropped, but counted and visible. An event is counted
// once the transaction that folded it commits (TxEnded): a batch that is
// rolled back and retried folds it again and must not count it twice.
func lateEvents(b Basis, size time.Duration) *metrics.Counter {
	return metrics.GetOrCreateCounter(fmt.Sprintf(`hookstream_windows_late_events_total{basis=%q,size=%q}`, b, size))
}

// Fold keeps the window aggregates in PostgreSQL: the processor calls Fold
// inside each batch's transaction with the newly inserted events only, and
// TxEnded once that transaction has ended (process.TxWatcher). Whoever runs
// Fold must report every transaction's end that way: late events are
// counted only once the transaction that folded them is known to have
// committed.
type Fold struct {
	cfg Config
	// now is the clock partition activity and close times are stamped
	// with; nil: the database's, the closer's default too. A fold and the
	// closer judging its watermarks must share one clock.
	now func() time.Time

	mu   sync.Mutex
	late map[pgx.Tx]map[cursorKey]int // late events folded by transactions in flight, counted once they commit
}

// NewFold returns the windows folding step for cfg (defaults filled in).
func NewFold(cfg Config) (*Fold, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Fold{cfg: cfg}, nil
}

// TxEnded learns how tx ended: if it committed, the late events it folded
// are counted; if not (or if the outcome is unknown), they are forgotten,
// so the counter may miss a late event but never counts one twice.
func (f *Fold) TxEnded(tx pgx.Tx, committed bool) {
	f.mu.Lock()
	late := f.late[tx]
	delete(f.late, tx)
	f.mu.Unlock()
	if !committed {
		return
	}
	for k, n := range late {
		lateEvents(k.basis, k.size).Add(n)
	}
}

// Config is the fold's configuration, defaults filled in.
func (f *Fold) Config() Config { return f.cfg }

// Name names the step in logs and errors.
func (f *Fold) Name() string { return "windows" }

// Fold merges evs into their windows. Rows are created if missing and
// locked in key order (so concurrent folds cannot deadlock), merged in Go
// (the sketches are not SQL types) and written back. A window that has
// already closed still takes the event: its late counter and revision go up.
// The windows lock is held shared meanwhile (the closer takes it
// exclusively), so no window closes under a fold: an event is either in the
// window when it closes, or late.
func (f *Fold) Fold(ctx context.Context, tx pgx.Tx, evs []store.Event) error {
	if len(evs) == 0 {
		return nil
	}
	cursors, err := shareCursors(ctx, tx)
	if err != nil {
		return err
	}
	closedUntil := map[cursorKey]time.Time{}
	for _, c := range cursors {
		closedUntil[cursorKey{c.Basis, c.Size}] = c.ClosedUntil
	}
	deltas := AggregateBase(evs, &f.cfg)
	if err := f.addLateRollUps(deltas, closedUntil); err != nil {
		return err
	}
	late, err := f.merge(ctx, tx, deltas, closedUntil)
	if err != nil {
		return err
	}
	var seen time.Time // zero: the database's now()
	if f.now != nil {
		seen = f.now()
	}
	if err := advanceMarks(ctx, tx, marksOf(evs, seen)); err != nil {
		return err
	}
	if len(late) > 0 {
		f.mu.Lock()
		if f.late == nil {
			f.late = map[pgx.Tx]map[cursorKey]int{}
		}
		if pending := f.late[tx]; pending != nil {
			for k, n := range late {
				pending[k] += n
			}
		} else {
			f.late[tx] = late
		}
		f.mu.Unlock()
	}
	return nil
}

// addLateRollUps adds to deltas, for every base window that has closed,
// the larger windows holding it that have closed too: those were rolled up
// already, so a late event must reach them directly. (Larger windows still
// open are read from the base windows and rolled up when they close.)
func (f *Fold) addLateRollUps(deltas map[Key]*Agg, closedUntil map[cursorKey]time.Time) error {
	base := f.cfg.Base()
	late := map[Key]*Agg{}
	for k, d := range deltas {
		until, ok := closedUntil[cursorKey{k.Basis, base}]
		if !ok || k.End().After(until) {
			continue
		}
		for _, size := range f.cfg.Sizes[1:] {
			lk := k
			lk.Size, lk.Start = size, Start(k.Start, size)
			if u, ok := closedUntil[cursorKey{k.Basis, size}]; !ok || lk.End().After(u) {
				continue
			}
			a := late[lk]
			if a == nil {
				a = NewAgg()
				late[lk] = a
			}
			if err := a.Merge(d); err != nil {
				return err
			}
		}
	}
	for k, a := range late {
		deltas[k] = a
	}
	return nil
}

type cursorKey struct {
	basis Basis
	size  time.Duration
}

// lockRows creates the rows of aggs' keys that are missing and locks them
// all, in key order (so concurrent folds cannot deadlock); the rows come
// back in the order of the returned keys.
func lockRows(ctx context.Context, tx pgx.Tx, aggs map[Key]*Agg) ([]Key, []aggRow, error) {
	keys := make([]Key, 0, len(aggs))
	for k := range aggs {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, Key.Compare)
	rows := make([]aggRow, len(keys))
	for i, k := range keys {
		rows[i] = rowKey(k)
	}
	locked, err := lockAggRows(ctx, tx, rows)
	if err != nil {
		return nil, nil, err
	}
	if len(locked) != len(keys) {
		return nil, nil, fmt.Errorf("locked %d window rows, expected %d", len(locked), len(keys))
	}
	return keys, locked, nil
}

// merge adds deltas into their rows and returns the late events among
// them, per clock and size.
func (f *Fold) merge(ctx context.Context, tx pgx.Tx, deltas map[Key]*Agg, closedUntil map[cursorKey]time.Time) (map[cursorKey]int, error) {
	keys, locked, err := lockRows(ctx, tx, deltas)
	if err != nil {
		return nil, err
	}
	var late map[cursorKey]int
	var closedAt *time.Time // read once, only if a window closed without a row takes an event
	for i, k := range keys {
		row, d := &locked[i], deltas[k]
		agg, err := fromRow(row)
		if err != nil {
			return nil, fmt.Errorf("window %s: %w", k, err)
		}
		if err := agg.Merge(d); err != nil {
			return nil, fmt.Errorf("window %s: %w", k, err)
		}
		if err := agg.toRow(row); err != nil {
			return nil, fmt.Errorf("window %s: %w", k, err)
		}
		if until, ok := closedUntil[cursorKey{k.Basis, k.Size}]; ok && !k.End().After(until) {
			row.Late += d.Count
			row.Revision++
			if row.ClosedAt == nil { // a window that was empty when it closed
				if closedAt == nil {
					t, err := timeOn(ctx, f.now, tx)
					if err != nil {
						return nil, err
					}
					closedAt = &t
				}
				row.ClosedAt = closedAt
			}
			if k.Dim == DimAll {
				if late == nil {
					late = map[cursorKey]int{}
				}
				late[cursorKey{k.Basis, k.Size}] += int(d.Count)
			}
		}
	}
	if err := writeAggRows(ctx, tx, locked); err != nil {
		return nil, err
	}
	return late, nil
}

// marksOf is each partition's largest event and received time in evs.
func marksOf(evs []store.Event, now time.Time) []Mark {
	type pk struct {
		b Basis
		p int
	}
	best := map[pk]time.Time{}
	for i := range evs {
		e := &evs[i]
		for _, b := range Bases {
			t := e.Created
			if b == ReceivedTime {
				t = e.Received
			}
			k := pk{b, e.Partition}
			if cur, ok := best[k]; !ok || t.After(cur) {
				best[k] = t
			}
		}
	}
	out := make([]Mark, 0, len(best))
	for k, t := range best {
		out = append(out, Mark{Basis: k.b, Partition: int32(k.p), MaxTime: t, SeenAt: now})
	}
	slices.SortFunc(out, func(a, b Mark) int {
		if a.Basis != b.Basis {
			if a.Basis < b.Basis {
				return -1
			}
			return 1
		}
		return int(a.Partition - b.Partition)
	})
	return out
}

// WithClock makes the fold stamp partition activity and close times on
// now instead of the database's clock (tests drive watermarks with it). Give
// the closer the same clock (Closer.Now): idleness compares the two.
func (f *Fold) WithClock(now func() time.Time) *Fold {
	f.now = now
	return f
}

// timeOn is the time on clock, or on the database's clock (the
// transaction's start, inside one) when clock is nil: the one time source of
// a fold, a refold or a closer tick.
func timeOn(ctx context.Context, clock func() time.Time, q store.Querier) (time.Time, error) {
	if clock != nil {
		return clock().UTC(), nil
	}
	return store.DBNow(ctx, q)
}
