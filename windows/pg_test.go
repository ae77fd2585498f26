package windows_test

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookstream/hookstream/dwolla"
	"github.com/hookstream/hookstream/internal/testenv"
	"github.com/hookstream/hookstream/process"
	"github.com/hookstream/hookstream/sim"
	"github.com/hookstream/hookstream/store"
	"github.com/hookstream/hookstream/stream"
	"github.com/hookstream/hookstream/windows"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
)

type env struct {
	*testenv.Pipeline
	rdb  *redis.Client
	keys stream.Keys
	db   *pgxpool.Pool
}

func newEnv(t *testing.T) *env {
	t.Helper()
	p := testenv.NewPipeline(t, 4)
	return &env{Pipeline: p, rdb: p.Redis, keys: p.Keys, db: p.DB}
}

// addReceivedAt appends evs as testenv.Pipeline.Append does, but received
// at the given time (plus up to a second, as a burst arrives) instead of the
// wall clock, so that every time a test sees derives from its scenario and
// none from today's date.
func (e *env) addReceivedAt(t *testing.T, evs []sim.Event, at time.Time) {
	t.Helper()
	ctx := context.Background()
	pipe := e.rdb.Pipeline()
	for _, ev := range evs {
		parsed, err := dwolla.ParseEvent(ev.Body)
		if err != nil {
			t.Fatalf("sim event %s: %v", ev.ID, err)
		}
		h := fnv.New32a()
		h.Write([]byte(ev.ID))
		received := at.Add(time.Duration(h.Sum32()%1000) * time.Millisecond)
		en := stream.NewEntry(e.keys.Partition(parsed.PartitionKey()), parsed.ID, ev.Body, "").WithReceived(received)
		pipe.XAdd(ctx, &redis.XAddArgs{Stream: e.keys.Stream(en.Partition), Values: en.Fields})
		if pipe.Len() >= 500 {
			if _, err := pipe.Exec(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
}

// testClock is a settable clock a test's folds and closer share.
type testClock struct{ ns atomic.Int64 }

func newTestClock(t time.Time) *testClock {
	c := &testClock{}
	c.Set(t)
	return c
}

func (c *testClock) Now() time.Time      { return time.Unix(0, c.ns.Load()).UTC() }
func (c *testClock) Set(t time.Time)     { c.ns.Store(t.UnixNano()) }
func (c *testClock) Add(d time.Duration) { c.ns.Add(int64(d)) }

// Far from today in both directions: nothing a test checks may depend on
// the date it runs.
var (
	farPast   = time.Date(1987, 3, 14, 9, 0, 0, 0, time.UTC)
	farFuture = time.Date(2187, 11, 28, 9, 0, 0, 0, time.UTC)
)

// allTime bounds every time a test stores.
var allTime = [2]time.Time{time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC)}

// run starts a processor folding windows; stop cancels it. With a tiny
// shutdown wait a stop is as good as a crash: the batch in flight is rolled
// back and left pending (and resumed by the next run, under the same
// consumer name). Transactions may take seconds: under -race on a busy
// machine a batch's fold is slow, and a timeout only makes it retry.
func (e *env) run(t *testing.T, wf *windows.Fold, shutdownWait time.Duration) (*process.Processor, func()) {
	t.Helper()
	p, err := process.New(e.rdb, e.db, e.keys, process.Options{
		Block: 50 * time.Millisecond, ClaimIdle: 5 * time.Second, ClaimEvery: time.Second,
		TxTimeout: 3 * time.Second, BatchSize: 40, ShutdownWait: shutdownWait, ControlEvery: 50 * time.Millisecond,
		RetryBase: 10 * time.Millisecond, RetryMax: 100 * time.Millisecond, ConsumerIdle: time.Hour,
		Folds: []process.Fold{wf},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	var runErr error
	go func() { defer close(done); runErr = p.Run(ctx) }()
	var once atomic.Bool
	stop := func() {
		if once.CompareAndSwap(false, true) {
			cancel()
			<-done
			if runErr != nil && !errors.Is(runErr, context.Canceled) {
				t.Errorf("processor: %v", runErr)
			}
		}
	}
	t.Cleanup(stop)
	return p, stop
}

func (e *env) stored(t *testing.T) int64 {
	var n int64
	if err := e.db.QueryRow(context.Background(), `SELECT count(*) FROM events`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// bruteForce recomputes every aggregate from the events table.
func (e *env) bruteForce(t *testing.T, cfg *windows.Config) map[windows.Key]*windows.Agg {
	t.Helper()
	var evs []store.Event
	err := store.EachEvent(context.Background(), e.db, "created", allTime[0], allTime[1], func(ev *store.Event) error {
		evs = append(evs, *ev)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return windows.Aggregate(evs, cfg)
}

// folded reads every stored aggregate.
func (e *env) folded(t *testing.T) (map[windows.Key]*windows.Agg, map[windows.Key]windows.Row) {
	t.Helper()
	aggs, rows := map[windows.Key]*windows.Agg{}, map[windows.Key]windows.Row{}
	for _, b := range windows.Bases {
		rs, err := windows.RowsIn(context.Background(), e.db, string(b), 0, allTime[0], allTime[1], false)
		if err != nil {
			t.Fatal(err)
		}
		for i := range rs {
			a, err := windows.FromRow(&rs[i])
			if err != nil {
				t.Fatal(err)
			}
			k := windows.KeyOf(&rs[i])
			aggs[k], rows[k] = a, rs[i]
		}
	}
	return aggs, rows
}

func compare(t *testing.T, want, got map[windows.Key]*windows.Agg) {
	t.Helper()
	n := 0
	for k, w := range want {
		if d := windows.Diff(w, got[k]); d != "" {
			t.Errorf("window %s: %s", k, d)
			if n++; n > 10 {
				t.FailNow()
			}
		}
	}
	for k, g := range got {
		if want[k] == nil && g.Count != 0 {
			t.Errorf("window %s holds %d events the events table does not explain", k, g.Count)
		}
	}
}

// TestFoldedWindowsEqualABruteForceRecomputation is the property: random
// traffic with duplicates, shuffled order, a processor crash mid-way and
// late arrivals beyond the allowed lateness leaves window rows equal, for
// every size and dimension, to a recomputation from the events table. The
// folds and the closer share one test clock, and the scenario is set far in
// the past (one seed) and far in the future (the other), so the result does
// not depend on today's date. The runs are sequential: each runs a
// processor with tight transaction timeouts.
func TestFoldedWindowsEqualABruteForceRecomputation(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		seed  uint64
		start time.Time
	}{{1, farPast}, {2, farFuture}} {
		t.Run(fmt.Sprintf("seed=%d/start=%d", c.seed, c.start.Year()), func(t *testing.T) {
			foldedEqualsBruteForce(t, c.seed, c.start)
		})
	}
}

func foldedEqualsBruteForce(t *testing.T, seed uint64, start time.Time) {
	e := newEnv(t)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(seed, 99))
	sc := sim.Generate(sim.Config{Customers: 150, Seed: int64(seed), Start: start, Span: 90 * time.Minute, StepDelay: 3 * time.Minute})
	evs := append([]sim.Event(nil), sc.Events...)
	for _, i := range rng.Perm(len(evs))[:len(evs)/5] { // 20% duplicates
		evs = append(evs, evs[i])
	}
	rng.Shuffle(len(evs), func(i, j int) { evs[i], evs[j] = evs[j], evs[i] })
	last := start
	for _, ev := range evs {
		if ev.Created.After(last) {
			last = ev.Created
		}
	}
	// Hold back a tenth to arrive after their windows closed.
	late := evs[:len(evs)/10]
	early := evs[len(evs)/10:]

	// The early events arrive in a burst just after the last was created
	// and are folded then.
	received := last.Add(time.Second)
	clock := newTestClock(received.Add(time.Second))
	wf, err := windows.NewFold(windows.Config{})
	if err != nil {
		t.Fatal(err)
	}
	wf.WithClock(clock.Now)
	cfg := wf.Config()
	e.addReceivedAt(t, early[:len(early)/2], received)
	_, crash := e.run(t, wf, time.Millisecond)
	testenv.WaitFor(t, 30*time.Second, "some events stored", func() bool { return e.stored(t) > 100 })
	crash() // mid-way: whatever batch is in flight is rolled back and left pending
	e.addReceivedAt(t, early[len(early)/2:], received)
	p, stop := e.run(t, wf, 5*time.Second)
	testenv.WaitFor(t, 60*time.Second, "the early events stored", func() bool { return p.Stats().Acked >= int64(len(early))/2 && e.Drained(t) })

	// Close everything so far: the clock moves a day on, every partition
	// is idle, so the watermark passes every window.
	clock.Add(24 * time.Hour)
	closer := &windows.Closer{DB: e.db, Partitions: e.keys.Partitions, Config: cfg, Now: clock.Now}
	for range 2 {
		if _, err := closer.Tick(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// Received with the burst but reaching the stream only now: late on
	// both clocks.
	e.addReceivedAt(t, late, received)
	testenv.WaitFor(t, 60*time.Second, "the late events stored", func() bool { return e.Drained(t) })
	stop()

	want := e.bruteForce(t, &cfg)
	got, rows := e.folded(t)
	compare(t, want, got)
	var lateCount int64
	var revised int
	for k, r := range rows {
		if k.Dim == windows.DimAll && k.Basis == windows.EventTime && k.Size == time.Minute {
			lateCount += r.Late
		}
		if r.Revision > 0 {
			revised++
			if r.ClosedAt == nil {
				t.Errorf("window %s revised but not closed", k)
			} else if !r.ClosedAt.Equal(clock.Now()) {
				t.Errorf("window %s closed at %s, not on the test clock (%s)", k, r.ClosedAt.UTC(), clock.Now())
			}
		}
	}
	if lateCount == 0 || revised == 0 {
		t.Fatalf("late events %d, revised windows %d: the held-back events should have arrived late", lateCount, revised)
	}
	if n := e.stored(t); n != int64(len(sc.Events)) {
		t.Fatalf("stored %d events, want %d", n, len(sc.Events))
	}
}
