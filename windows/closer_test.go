package windows_test

import (
	"context"
	"testing"
	"time"

	"github.com/hookstream/hookstream/store"
	"github.com/hookstream/hookstream/windows"
	"github.com/jackc/pgx/v5"
)

// fold folds evs in one transaction, as the processor does.
func fold(t *testing.T, e *env, f *windows.Folder, evs ...store.Event) {
	t.Helper()
	if err := pgx.BeginFunc(context.Background(), e.db, func(tx pgx.Tx) error { return f.Fold(context.Background(), tx, evs) }); err != nil {
		t.Fatal(err)
	}
}

func TestWindowsCloseOnTheWatermarkOnceEachAndIdlePartitionsDoNotHoldThem(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	clock := mustTime("2026-11-28T10:06:00Z")
	now := func() time.Time { return clock }
	folder, err := windows.NewFolder(windows.Config{Sizes: []time.Duration{time.Minute}, Dims: []string{}, Delay: 30 * time.Second, Idle: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	folder.WithClock(now)
	cfg := folder.Config()
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
	fold(t, e, folder, ev("a", 0, "2026-11-28T10:00:10Z"), ev("b", 1, "2026-11-28T10:05:00Z"))
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
	fold(t, e, folder, ev("c", 1, "2026-11-28T10:06:00Z"))
	closes, err = closer.Tick(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range closes {
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
	e.db.QueryRow(ctx, `SELECT count(*) FROM window_closes WHERE basis = 'event'`).Scan(&rows)
	if rows != 4 {
		t.Fatalf("%d event close records stored, want 4", rows)
	}

	// A late event for the closed 10:00 window updates it, raises its
	// revision and late count, and does not close it again.
	fold(t, e, folder, ev("d", 2, "2026-11-28T10:00:30Z"))
	var count, late int64
	var revision int32
	var closedAt *time.Time
	e.db.QueryRow(ctx, `SELECT count, late, revision, closed_at FROM window_aggs WHERE basis = 'event' AND size_s = 60 AND dim = 'all' AND start = '2026-11-28T10:00:00Z'`).
		Scan(&count, &late, &revision, &closedAt)
	if count != 2 || late != 1 || revision != 1 || closedAt == nil {
		t.Fatalf("10:00 window after a late event: count %d late %d revision %d closed %v; want 2, 1, 1, closed", count, late, revision, closedAt)
	}
	// A late event into a window that was empty when it closed.
	fold(t, e, folder, ev("e", 2, "2026-11-28T10:02:30Z"))
	e.db.QueryRow(ctx, `SELECT count, late, revision, closed_at FROM window_aggs WHERE basis = 'event' AND size_s = 60 AND dim = 'all' AND start = '2026-11-28T10:02:00Z'`).
		Scan(&count, &late, &revision, &closedAt)
	if count != 1 || late != 1 || revision != 1 || closedAt == nil {
		t.Fatalf("10:02 window: count %d late %d revision %d closed %v; want 1, 1, 1, closed", count, late, revision, closedAt)
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
	folder, err := windows.NewFolder(windows.Config{Sizes: []time.Duration{time.Minute}, Dims: []string{}, Delay: 30 * time.Second, Idle: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	folder.WithClock(now)
	var backlog map[int32]bool
	var paused bool
	closer := &windows.Closer{DB: e.db, Partitions: 2, Config: folder.Config(), Now: now,
		Hold: func(context.Context) (map[int32]bool, bool, error) { return backlog, paused, nil }}
	closer.Tick(ctx)
	fold(t, e, folder,
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
