package windows_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/hookstream/hookstream/internal/testenv"
	"github.com/hookstream/hookstream/process"
	"github.com/hookstream/hookstream/sim"
	"github.com/hookstream/hookstream/store"
	"github.com/hookstream/hookstream/windows"
	"github.com/jackc/pgx/v5"
)

// lateCounter reads the late events counter of one clock and size. Each
// test below uses a window size of its own, so tests running in parallel do
// not move each other's counters.
func lateCounter(b windows.Basis, size time.Duration) uint64 {
	return metrics.GetOrCreateCounter(fmt.Sprintf(`hookstream_windows_late_events_total{basis=%q,size=%q}`, b, size)).Get()
}

// lateConfig has one window size, size, kept long enough to close.
func lateConfig(size time.Duration) windows.Config {
	return windows.Config{Sizes: []time.Duration{size}, Dims: []string{}, Retention: map[time.Duration]time.Duration{size: 30 * 24 * time.Hour}}
}

// closeAll folds one event at start on a shared clock, moves the clock an
// hour past until and closes every window up to then.
func closeAll(t *testing.T, e *env, wf *windows.Fold, clock *testClock, start, until time.Time) {
	t.Helper()
	fold(t, e, wf, store.Event{ID: "first", Topic: "t", Created: start, Received: start})
	clock.Set(until.Add(time.Hour))
	closer := &windows.Closer{DB: e.db, Partitions: e.keys.Partitions, Config: wf.Config(), Now: clock.Now}
	closes, err := closer.Tick(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(closes) == 0 {
		t.Fatal("nothing closed")
	}
}

// TestLateEventsAreCountedOnceTheirTransactionCommits: a fold into closed
// windows whose transaction rolls back counts nothing; the same fold
// committed counts each late event once, per clock.
func TestLateEventsAreCountedOnceTheirTransactionCommits(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	size := 45 * time.Second
	clock := newTestClock(farPast)
	wf, err := windows.NewFold(lateConfig(size))
	if err != nil {
		t.Fatal(err)
	}
	wf.WithClock(clock.Now)
	closeAll(t, e, wf, clock, farPast, farPast.Add(time.Hour))

	late := []store.Event{
		{ID: "late-1", Topic: "t", Created: farPast.Add(time.Minute), Received: farPast.Add(time.Minute)},
		{ID: "late-2", Topic: "t", Created: farPast.Add(30 * time.Minute), Received: farPast.Add(30 * time.Minute), Partition: 1},
	}
	event, received := lateCounter(windows.EventTime, size), lateCounter(windows.ReceivedTime, size)
	// Folded, then rolled back (as a batch whose next step fails).
	errLater := errors.New("a later step failed")
	var used pgx.Tx
	err = pgx.BeginFunc(ctx, e.db, func(tx pgx.Tx) error {
		used = tx
		if err := wf.Fold(ctx, tx, late); err != nil {
			return err
		}
		return errLater
	})
	if !errors.Is(err, errLater) {
		t.Fatal(err)
	}
	wf.TxEnded(used, false)
	if de, dr := lateCounter(windows.EventTime, size)-event, lateCounter(windows.ReceivedTime, size)-received; de != 0 || dr != 0 {
		t.Fatalf("a rolled-back fold counted %d and %d late events", de, dr)
	}
	// Folded again, committed.
	fold(t, e, wf, late...)
	if de, dr := lateCounter(windows.EventTime, size)-event, lateCounter(windows.ReceivedTime, size)-received; de != 2 || dr != 2 {
		t.Fatalf("counted %d event-time and %d received-time late events, want 2 and 2", de, dr)
	}
}

// TestBatchesTheProcessorRetriesCountEachLateEventOnce: whatever the
// processor rolls back and retries (and its canaries, which always roll
// back), the late events counted are those PostgreSQL recorded.
func TestBatchesTheProcessorRetriesCountEachLateEventOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	size := 50 * time.Second
	start := farFuture
	clock := newTestClock(start)
	wf, err := windows.NewFold(lateConfig(size))
	if err != nil {
		t.Fatal(err)
	}
	wf.WithClock(clock.Now)
	sc := sim.Generate(sim.Config{Customers: 40, Seed: 9, Start: start, Span: 30 * time.Minute})
	last := start
	for _, ev := range sc.Events {
		if ev.Created.After(last) {
			last = ev.Created
		}
	}
	closeAll(t, e, wf, clock, start.Add(-time.Hour), last.Add(time.Second))
	event, received := lateCounter(windows.EventTime, size), lateCounter(windows.ReceivedTime, size)

	e.addReceivedAt(t, sc.Events, last.Add(time.Second)) // every window they fall in has closed
	flaky := &testenv.FlakyFold{Every: 3}
	// A transaction whose commit times out may have committed: the fold
	// treats it as rolled back and does not count it. A long TxTimeout
	// keeps the commits this test makes known.
	p, err := process.New(e.rdb, e.db, e.keys, process.Options{
		Block: 50 * time.Millisecond, TxTimeout: 10 * time.Second, BatchSize: 30, ShutdownWait: 5 * time.Second,
		ControlEvery: 50 * time.Millisecond, RetryBase: 10 * time.Millisecond, RetryMax: 100 * time.Millisecond,
		Folds: []process.Fold{wf, flaky},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	testenv.WaitFor(t, 60*time.Second, "every entry acknowledged", func() bool { return e.Drained(t) })
	cancel()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}

	var recordedEvent, recordedReceived uint64
	if err := e.db.QueryRow(context.Background(), `
SELECT coalesce(sum(late) FILTER (WHERE basis = 'event'), 0), coalesce(sum(late) FILTER (WHERE basis = 'received'), 0)
FROM window_aggs WHERE dim = 'all'`).Scan(&recordedEvent, &recordedReceived); err != nil {
		t.Fatal(err)
	}
	if flaky.Fails() == 0 || recordedEvent == 0 {
		t.Fatalf("%d failed calls, %d late events recorded: the test needs both", flaky.Fails(), recordedEvent)
	}
	de, dr := lateCounter(windows.EventTime, size)-event, lateCounter(windows.ReceivedTime, size)-received
	if de != recordedEvent || dr != recordedReceived {
		t.Fatalf("counted %d event-time and %d received-time late events; PostgreSQL recorded %d and %d", de, dr, recordedEvent, recordedReceived)
	}
}
