package windows

import (
	"bytes"
	"context"
	"math"
	"slices"
	"time"

	"github.com/hookstream/hookstream/store"
	"github.com/jackc/pgx/v5"
)

// Refold recomputes, from the events table, every window that holds an
// event created in [from, to) ("hookstream refold"): on event time the
// windows covering the range, on received time those covering when the
// range's events were received. Each base window is recomputed whole, from
// all of its events, and the larger windows that have closed are rolled up
// again from them, so the result equals folding the events afresh and
// running it twice changes nothing. topics narrows which events pick the
// windows, but every window is recomputed for all its events (a window's
// "all" and family rows depend on every topic). Closed windows stay closed,
// keep their late counts and have their revision raised.
func (f *Fold) Refold(ctx context.Context, tx pgx.Tx, from, to time.Time, topics []string) error {
	// Exclusively: folds in flight commit first (so the events read below
	// include them) and new ones wait (so none is overwritten), and the
	// closer waits too.
	cursors, err := lockCursors(ctx, tx)
	if err != nil {
		return err
	}
	closed := map[cursorKey]time.Time{}
	for _, c := range cursors {
		closed[cursorKey{c.Basis, c.Size}] = c.ClosedUntil
	}
	// Windows this creates in a closed range close now, on the fold's clock.
	now, err := timeOn(ctx, f.now, tx)
	if err != nil {
		return err
	}
	span := f.alignment()
	for _, b := range Bases {
		lo, hi := from, to
		if b == ReceivedTime || len(topics) > 0 {
			col := "created"
			if b == ReceivedTime {
				col = "received_at"
			}
			first, last, ok, err := (store.EventRange{From: from, To: to, Topics: topics}).Span(ctx, tx, col)
			if err != nil {
				return err
			}
			if !ok {
				continue
			}
			lo, hi = first, last.Add(time.Nanosecond)
		}
		lo, hi = Start(lo, span), Start(hi.Add(-time.Nanosecond), span).Add(span)
		if err := f.recompute(ctx, tx, b, lo, hi, closed, now); err != nil {
			return err
		}
	}
	return nil
}

// alignment is a span every window size divides: the largest size when
// all the others divide it, else a day.
func (f *Fold) alignment() time.Duration {
	largest := slices.Max(f.cfg.Sizes)
	for _, s := range f.cfg.Sizes {
		if largest%s != 0 {
			return 24 * time.Hour
		}
	}
	return largest
}

// recompute refolds the base windows of basis b starting in [lo, hi) (a
// range aligned to every size) from the events, then rolls up again the
// larger windows of the range that have closed. Rows it creates in a closed
// range are stamped closed at now.
func (f *Fold) recompute(ctx context.Context, tx pgx.Tx, b Basis, lo, hi time.Time, closed map[cursorKey]time.Time, now time.Time) error {
	fresh := map[Key]*Agg{}
	col := "created"
	if b == ReceivedTime {
		col = "received_at"
	}
	err := store.EachEvent(ctx, tx, col, lo, hi, func(ev *store.Event) error {
		AssignBase(ev, &f.cfg, func(k Key) {
			if k.Basis != b {
				return
			}
			a := fresh[k]
			if a == nil {
				a = NewAgg()
				fresh[k] = a
			}
			a.Add(ev)
		})
		return nil
	})
	if err != nil {
		return err
	}
	dims := f.cfg.AllDims()
	if err := replaceRows(ctx, tx, b, f.cfg.Base(), lo, hi, fresh, dims, closed[cursorKey{b, f.cfg.Base()}], true, now); err != nil {
		return err
	}
	for _, size := range f.cfg.Sizes[1:] {
		until := closed[cursorKey{b, size}]
		if until.After(hi) {
			until = hi
		}
		if until.After(lo) {
			if err := rollUp(ctx, tx, b, f.cfg.Base(), size, lo, until, dims, closed[cursorKey{b, size}], true, now); err != nil {
				return err
			}
		}
	}
	return nil
}

// rollUp (re)writes the windows of size starting in [from, until) from the
// base windows they hold (see replaceRows for closedUntil, bump and now).
func rollUp(ctx context.Context, tx pgx.Tx, b Basis, base, size time.Duration, from, until time.Time, dims []string, closedUntil time.Time, bump bool, now time.Time) error {
	rows, err := aggRowsIn(ctx, tx, string(b), int32(base/time.Second), from, until, false)
	if err != nil {
		return err
	}
	small := make(map[Key]*Agg, len(rows))
	for i := range rows {
		a, err := fromRow(&rows[i])
		if err != nil {
			return err
		}
		small[keyOf(&rows[i])] = a
	}
	big, err := RollUp(small, size)
	if err != nil {
		return err
	}
	return replaceRows(ctx, tx, b, size, from, until, big, dims, closedUntil, bump, now)
}

// replaceRows makes the rows of basis b and size (of dims) starting in
// [lo, hi) hold exactly fresh: rows not in fresh are deleted, the others
// overwritten. Rows of other dimensions are left alone. Late counts and
// close times carry over, and a new row in a closed range (its end at or
// before closedUntil) is closed at now. With bump, a closed row whose values
// changed has its revision raised.
func replaceRows(ctx context.Context, tx pgx.Tx, b Basis, size time.Duration, lo, hi time.Time, fresh map[Key]*Agg, dims []string, closedUntil time.Time, bump bool, now time.Time) error {
	old, err := aggRowsIn(ctx, tx, string(b), int32(size/time.Second), lo, hi, true)
	if err != nil {
		return err
	}
	oldRows := map[Key]aggRow{}
	var gone []aggRow
	for i := range old {
		if !slices.Contains(dims, old[i].Dim) {
			continue
		}
		k := keyOf(&old[i])
		oldRows[k] = old[i]
		if _, ok := fresh[k]; !ok {
			gone = append(gone, old[i])
		}
	}
	if err := deleteAggRows(ctx, tx, gone); err != nil {
		return err
	}
	keys, locked, err := lockRows(ctx, tx, fresh)
	if err != nil {
		return err
	}
	for i, k := range keys {
		row := &locked[i]
		if err := fresh[k].toRow(row); err != nil {
			return err
		}
		prev, existed := oldRows[k]
		switch {
		case existed:
			row.Late, row.Revision, row.ClosedAt = prev.Late, prev.Revision, prev.ClosedAt
			if bump && prev.ClosedAt != nil && !sameValues(&prev, row) {
				row.Revision++
			}
		case !closedUntil.IsZero() && !k.End().After(closedUntil):
			row.ClosedAt = &now
			if bump {
				row.Revision = 1
			}
		}
	}
	return writeAggRows(ctx, tx, locked)
}

// sameValues reports whether two rows hold the same aggregate.
func sameValues(a, b *aggRow) bool {
	return a.Count == b.Count && a.Successes == b.Successes && a.Failures == b.Failures && a.Terminal == b.Terminal &&
		math.Abs(a.LagSumMs-b.LagSumMs) <= 1e-6*max(1, math.Abs(a.LagSumMs)) && // summation order
		bytes.Equal(a.Lag, b.Lag) && bytes.Equal(a.Customers, b.Customers)
}
