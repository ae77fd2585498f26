package windows_test

import (
	"context"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

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

func (e *env) add(t *testing.T, evs []sim.Event) { e.Append(t, evs) }

// run starts a processor folding windows; stop cancels it. With a tiny
// shutdown wait a stop is as good as a crash: the batch in flight is rolled
// back and left pending.
func (e *env) run(t *testing.T, folder *windows.Folder, shutdownWait time.Duration) (*process.Processor, func()) {
	t.Helper()
	p, err := process.New(e.rdb, e.db, e.keys, process.Options{
		Block: 50 * time.Millisecond, ClaimIdle: 300 * time.Millisecond, ClaimEvery: 100 * time.Millisecond,
		TxTimeout: 200 * time.Millisecond, BatchSize: 40, ShutdownWait: shutdownWait, ControlEvery: 50 * time.Millisecond,
		RetryBase: 10 * time.Millisecond, RetryMax: 100 * time.Millisecond, ConsumerIdle: time.Hour,
		Folders: []process.Folder{folder},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); p.Run(ctx) }()
	var once atomic.Bool
	stop := func() {
		if once.CompareAndSwap(false, true) {
			cancel()
			<-done
		}
	}
	t.Cleanup(stop)
	return p, stop
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	testenv.WaitFor(t, timeout, what, cond)
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
	err := store.EachEvent(context.Background(), e.db, "created", time.Unix(0, 0), time.Now().Add(24*time.Hour), func(ev *store.Event) error {
		evs = append(evs, *ev)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return windows.Aggregate(evs, cfg)
}

// folded reads every stored aggregate.
func (e *env) folded(t *testing.T) (map[windows.Key]*windows.Agg, map[windows.Key]store.WindowRow) {
	t.Helper()
	aggs, rows := map[windows.Key]*windows.Agg{}, map[windows.Key]store.WindowRow{}
	for _, b := range windows.Bases {
		rs, err := store.WindowRowsIn(context.Background(), e.db, string(b), 0, time.Unix(0, 0), time.Now().Add(24*time.Hour), false)
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
// every size and dimension, to a recomputation from the events table.
func TestFoldedWindowsEqualABruteForceRecomputation(t *testing.T) {
	t.Parallel()
	for _, seed := range []uint64{1, 2} {
		e := newEnv(t)
		ctx := context.Background()
		rng := rand.New(rand.NewPCG(seed, 99))
		start := time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)
		sc := sim.Generate(sim.Config{Customers: 150, Seed: int64(seed), Start: start, Span: 90 * time.Minute, StepDelay: 3 * time.Minute})
		evs := append([]sim.Event(nil), sc.Events...)
		for _, i := range rng.Perm(len(evs))[:len(evs)/5] { // 20% duplicates
			evs = append(evs, evs[i])
		}
		rng.Shuffle(len(evs), func(i, j int) { evs[i], evs[j] = evs[j], evs[i] })
		// Hold back a tenth to arrive after their windows closed.
		late := evs[:len(evs)/10]
		early := evs[len(evs)/10:]

		folder, err := windows.NewFolder(windows.Config{})
		if err != nil {
			t.Fatal(err)
		}
		cfg := folder.Config()
		e.add(t, early[:len(early)/2])
		_, crash := e.run(t, folder, time.Millisecond)
		waitFor(t, 30*time.Second, "some events stored", func() bool { return e.stored(t) > 100 })
		crash() // mid-way: whatever batch is in flight is rolled back and left pending
		e.add(t, early[len(early)/2:])
		p, stop := e.run(t, folder, 5*time.Second)
		waitFor(t, 60*time.Second, "the early events stored", func() bool { return p.Stats().Acked >= int64(len(early))/2 && pending(t, e) == 0 && lag(t, e) == 0 })

		// Close everything so far: the wall clock runs a day ahead, every
		// partition is idle, so the watermark passes every window.
		closer := &windows.Closer{DB: e.db, Partitions: e.keys.Partitions, Config: cfg, Now: func() time.Time { return start.Add(24 * time.Hour) }}
		for range 2 {
			if _, err := closer.Tick(ctx); err != nil {
				t.Fatal(err)
			}
		}
		e.add(t, late)
		waitFor(t, 60*time.Second, "the late events stored", func() bool { return pending(t, e) == 0 && lag(t, e) == 0 })
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
}

func pending(t *testing.T, e *env) int64 {
	n, _ := e.Backlog(t)
	return n
}

func lag(t *testing.T, e *env) int64 {
	_, n := e.Backlog(t)
	return n
}
