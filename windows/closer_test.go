package windows_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hookstream/hookstream/store"
	"github.com/hookstream/hookstream/windows"
	"github.com/jackc/pgx/v5"
)

// fold folds evs in one transaction and reports how it ended, as the
// processor does.
func fold(t *testing.T, e *env, f *windows.Fold, evs ...store.Event) {
	t.Helper()
	var used pgx.Tx
	err := pgx.BeginFunc(context.Background(), e.db, func(tx pgx.Tx) error {
		used = tx
		return f.Fold(context.Background(), tx, evs)
	})
	f.TxEnded(used, err == nil)
	if err != nil {
		t.Fatal(err)
	}
}

func TestWindowsCloseOnTheWatermarkOnceEachAndIdlePartitionsDoNotHoldThem(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	clock := mustTime("2026-11-28T10:06:00Z")
	now := func() time.Time { return clock }
	wf, err := windows.NewFold(windows.Config{Sizes: []time.Duration{time.Minute}, Dims: []string{}, Delay: 30 * time.Second, Idle: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	wf.WithClock(now)
	cfg := wf.Config()
	closer := &windows.Closer{DB: e.db, Partitions: 4, Config: cfg, Now: now}
	if _, err := closer.Tick(ctx); err != nil { // creates the cursors
		t.Fatal(err)
	}
	ev := func(id string, partition int, created string) store.Event {
		c := mustTime(created)
		return store.Event{ID: id, Topic: "customer_created", Created: c, Received: clock, Partition: partition}
	}
	// Partition 0 is slow (10:00), partition 1 is ahead (10:05); 2 and 3
	// never saw anything.
	fold(t, e, wf, ev("a", 0, "2026-11-28T10:00:10Z"), ev("b", 1, "2026-11-28T10:05:00Z"))
	closes, err := closer.Tick(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range closes {
		if c.Basis == "event" {
			t.Fatalf("closed %+v while partition 0 holds the event-time watermark at 09:59:40", c)
		}
	}
	// Partition 0 goes quiet; partition 1 keeps going. Past the idle time
	// partition 0 follows the clock, so the watermark is partition 1's:
	// 10:06:00 - 30s = 10:05:30, and every 1m window ending by 10:04:30
	// (lateness 1m) closes, the empty ones included.
	clock = clock.Add(40 * time.Second)
	fold(t, e, wf, ev("c", 1, "2026-11-28T10:06:00Z"))
	closes, err = closer.Tick(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range closes {
		if !c.ClosedAt.Equal(clock) {
			t.Errorf("close record %+v: closed at %s, not on the closer's clock (%s)", c, c.ClosedAt, clock)
		}
		if c.Basis == "event" {
			got = append(got, c.Start.Format("15:04"))
			if (c.Start.Format("15:04") == "10:00") != (c.Count == 1) {
				t.Errorf("close record %+v: only the 10:00 window holds an event", c)
			}
		}
	}
	if want := []string{"10:00", "10:01", "10:02", "10:03"}; len(got) != len(want) || got[0] != want[0] || got[3] != want[3] {
		t.Fatalf("closed event windows %v, want %v", got, want)
	}
	// Once each: another tick with the same watermark closes nothing.
	if again, err := closer.Tick(ctx); err != nil || len(again) != 0 {
		t.Fatalf("second tick closed %+v (%v), want nothing", again, err)
	}
	var rows int
	if err := e.db.QueryRow(ctx, `SELECT count(*) FROM window_closes WHERE basis = 'event'`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != 4 {
		t.Fatalf("%d event close records stored, want 4", rows)
	}

	// A late event for the closed 10:00 window updates it, raises its
	// revision and late count, and does not close it again.
	fold(t, e, wf, ev("d", 2, "2026-11-28T10:00:30Z"))
	var count, late int64
	var revision int32
	var closedAt *time.Time
	if err := e.db.QueryRow(ctx, `SELECT count, late, revision, closed_at FROM window_aggs WHERE basis = 'event' AND size_s = 60 AND dim = 'all' AND start = '2026-11-28T10:00:00Z'`).
		Scan(&count, &late, &revision, &closedAt); err != nil {
		t.Fatal(err)
	}
	if count != 2 || late != 1 || revision != 1 || closedAt == nil {
		t.Fatalf("10:00 window after a late event: count %d late %d revision %d closed %v; want 2, 1, 1, closed", count, late, revision, closedAt)
	}
	// A late event into a window that was empty when it closed: its row
	// is created closed, on the fold's clock (the closer's).
	clock = clock.Add(5 * time.Second)
	fold(t, e, wf, ev("e", 2, "2026-11-28T10:02:30Z"))
	if err := e.db.QueryRow(ctx, `SELECT count, late, revision, closed_at FROM window_aggs WHERE basis = 'event' AND size_s = 60 AND dim = 'all' AND start = '2026-11-28T10:02:00Z'`).
		Scan(&count, &late, &revision, &closedAt); err != nil {
		t.Fatal(err)
	}
	if count != 1 || late != 1 || revision != 1 || closedAt == nil || !closedAt.Equal(clock) {
		t.Fatalf("10:02 window: count %d late %d revision %d closed %v; want 1, 1, 1, closed at %s", count, late, revision, closedAt, clock)
	}
	if again, err := closer.Tick(ctx); err != nil || len(again) != 0 {
		t.Fatalf("a late event made the closer close again: %+v (%v)", again, err)
	}
}

// TestNothingClosesOverEventsStillWaitingInTheStreams: while processing is
// paused nothing closes, and a quiet partition with entries waiting keeps
// the watermark at its own time.
func TestNothingClosesOverEventsStillWaitingInTheStreams(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	clock := mustTime("2026-11-28T10:10:00Z")
	now := func() time.Time { return clock }
	wf, err := windows.NewFold(windows.Config{Sizes: []time.Duration{time.Minute}, Dims: []string{}, Delay: 30 * time.Second, Idle: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	wf.WithClock(now)
	var backlog map[int32]bool
	var paused bool
	closer := &windows.Closer{DB: e.db, Partitions: 2, Config: wf.Config(), Now: now,
		Hold: func(context.Context) (map[int32]bool, bool, error) { return backlog, paused, nil }}
	if _, err := closer.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	fold(t, e, wf,
		store.Event{ID: "a", Topic: "t", Created: mustTime("2026-11-28T10:00:00Z"), Received: clock, Partition: 0},
		store.Event{ID: "b", Topic: "t", Created: mustTime("2026-11-28T10:09:00Z"), Received: clock, Partition: 1})
	clock = clock.Add(10 * time.Minute) // both partitions quiet for 10 minutes

	paused = true
	if got, err := closer.Tick(ctx); err != nil || len(got) != 0 {
		t.Fatalf("closed %+v (%v) while paused", got, err)
	}
	paused, backlog = false, map[int32]bool{0: true} // partition 0 has entries waiting
	got, err := closer.Tick(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range got {
		if c.Basis == "event" && !c.Start.Before(mustTime("2026-11-28T09:59:00Z")) {
			t.Fatalf("closed the %s window while partition 0 (at 10:00) still has entries waiting", c.Start)
		}
	}
	backlog = nil // drained: now it is idle, and the clock closes everything up to 10:18:30 - 1m
	got, err = closer.Tick(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var last time.Time
	for _, c := range got {
		if c.Basis == "event" && c.Start.After(last) {
			last = c.Start
		}
	}
	if !last.Equal(mustTime("2026-11-28T10:17:00Z")) {
		t.Fatalf("last closed event window %s, want 10:17", last)
	}
}

// TestTheClosersOneClockDecidesIdlenessCloseTimesAndRetention: a fold and
// the closer given one clock judge everything on it, far in the past as far
// in the future: a quiet partition turns idle after Idle on that clock (not
// on the wall clock), windows are stamped closed at its time, and retention
// counts from it.
func TestTheClosersOneClockDecidesIdlenessCloseTimesAndRetention(t *testing.T) {
	t.Parallel()
	for _, base := range []time.Time{farPast, farFuture} {
		t.Run(fmt.Sprint(base.Year()), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			ctx := context.Background()
			clock := newTestClock(base.Add(10 * time.Minute))
			wf, err := windows.NewFold(windows.Config{Sizes: []time.Duration{time.Minute}, Dims: []string{}, Delay: 30 * time.Second, Idle: time.Minute})
			if err != nil {
				t.Fatal(err)
			}
			wf.WithClock(clock.Now)
			closer := &windows.Closer{DB: e.db, Partitions: 2, Config: wf.Config(), Now: clock.Now}
			at := func(d time.Duration) time.Time { return base.Add(d) }
			fold(t, e, wf,
				store.Event{ID: "a", Topic: "t", Created: at(0), Received: at(time.Second), Partition: 0},
				store.Event{ID: "b", Topic: "t", Created: at(9 * time.Minute), Received: at(9*time.Minute + time.Second), Partition: 1})
			var seen time.Time
			if err := e.db.QueryRow(ctx, `SELECT max(seen_at) FROM window_marks`).Scan(&seen); err != nil {
				t.Fatal(err)
			}
			if !seen.Equal(clock.Now()) {
				t.Fatalf("partition activity stamped %s, not on the fold's clock (%s)", seen.UTC(), clock.Now())
			}
			// Partition 1 goes on; partition 0 (at base) holds the event-time
			// watermark until it has been quiet for Idle on the shared clock.
			clock.Add(30 * time.Second)
			fold(t, e, wf, store.Event{ID: "c", Topic: "t", Created: at(9*time.Minute + 30*time.Second), Received: at(10 * time.Minute), Partition: 1})
			clock.Add(29 * time.Second)
			closes, err := closer.Tick(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range closes {
				if c.Basis == "event" {
					t.Fatalf("closed %+v before partition 0 was idle on the shared clock", c)
				}
			}
			clock.Add(time.Second) // idle now: the watermark is partition 1's, 9m30s - 30s
			closes, err = closer.Tick(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var event []time.Time
			for _, c := range closes {
				if !c.ClosedAt.Equal(clock.Now()) {
					t.Errorf("close record %+v: closed at %s, not on the closer's clock (%s)", c, c.ClosedAt, clock.Now())
				}
				if c.Basis == "event" {
					event = append(event, c.Start)
				}
			}
			// Watermark base+9m, lateness 1m: the windows ending by base+8m.
			if len(event) != 8 || !event[0].Equal(base) || !event[7].Equal(at(7*time.Minute)) {
				t.Fatalf("closed event windows %v, want the 8 from %s", event, base)
			}
			var wrong int
			if err := e.db.QueryRow(ctx, `SELECT count(*) FROM window_aggs WHERE closed_at IS NOT NULL AND closed_at <> $1`, clock.Now()).Scan(&wrong); err != nil {
				t.Fatal(err)
			}
			if wrong != 0 {
				t.Fatalf("%d window rows closed at another time than the closer's clock", wrong)
			}
			// Retention (1m windows: 7 days) counts on the same clock.
			clock.Add(7*24*time.Hour + time.Hour)
			if _, err := closer.Tick(ctx); err != nil {
				t.Fatal(err)
			}
			var left int
			if err := e.db.QueryRow(ctx, `SELECT count(*) FROM window_aggs WHERE basis = 'event' AND start < $1`, at(8*time.Minute)).Scan(&left); err != nil {
				t.Fatal(err)
			}
			if left != 0 {
				t.Fatalf("%d closed event windows older than the retention on the closer's clock left", left)
			}
		})
	}
}

// TestWithoutATestClockFoldsAndTheCloserUseTheDatabaseClock: in production
// neither is given a clock, and both read the database's, so partition
// activity, idleness and close times agree whatever the processes' clocks.
func TestWithoutATestClockFoldsAndTheCloserUseTheDatabaseClock(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	dbNow := func() time.Time {
		t.Helper()
		now, err := store.DBNow(ctx, e.db)
		if err != nil {
			t.Fatal(err)
		}
		return now
	}
	// Idle 1ns: a partition is idle as soon as the database's clock has
	// moved on from its last fold, so no test waits for time to pass.
	wf, err := windows.NewFold(windows.Config{Sizes: []time.Duration{time.Minute}, Dims: []string{}, Idle: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	closer := &windows.Closer{DB: e.db, Partitions: 2, Config: wf.Config()}
	before := dbNow()
	then := before.Add(-10 * time.Minute)
	fold(t, e, wf, store.Event{ID: "a", Topic: "t", Created: then, Received: then, Partition: 0})
	afterFold := dbNow()
	var seen time.Time
	if err := e.db.QueryRow(ctx, `SELECT max(seen_at) FROM window_marks`).Scan(&seen); err != nil {
		t.Fatal(err)
	}
	if seen.Before(before) || seen.After(afterFold) {
		t.Fatalf("partition activity stamped %s, not on the database clock (%s..%s)", seen.UTC(), before, afterFold)
	}
	closes, err := closer.Tick(ctx)
	if err != nil {
		t.Fatal(err)
	}
	after := dbNow()
	found := false
	for _, c := range closes {
		if c.ClosedAt.Before(afterFold) || c.ClosedAt.After(after) {
			t.Errorf("close record %+v: closed at %s, not on the database clock (%s..%s)", c, c.ClosedAt, afterFold, after)
		}
		found = found || (c.Basis == "event" && c.Start.Equal(windows.Start(then, time.Minute)) && c.Count == 1)
	}
	if !found {
		t.Fatalf("the window of an event 10 minutes old on the database clock did not close: %+v", closes)
	}
}
