package process_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hookstream/hookstream/internal/testenv"
	"github.com/hookstream/hookstream/process"
	"github.com/hookstream/hookstream/sim"
	"github.com/hookstream/hookstream/stream"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
)

// env is one test's private namespace in the real Redis and schema in the
// real PostgreSQL, migrated.
type env struct {
	*testenv.Pipeline
	rdb   *redis.Client
	ns    string
	keys  stream.Keys
	db    *pgxpool.Pool
	dbURL string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	p := testenv.NewPipeline(t, 4)
	return &env{Pipeline: p, rdb: p.Redis, ns: p.Keys.Namespace, keys: p.Keys, db: p.DB, dbURL: p.DBURL}
}

// add appends the events' entries straight to their partition streams
// (testenv.Pipeline.Append: no dedup, so a test can deliver twice).
func (e *env) add(t *testing.T, evs []sim.Event) { e.Append(t, evs) }

// addRaw appends one entry with the given fields to partition p.
func (e *env) addRaw(t *testing.T, p int, fields ...string) string {
	t.Helper()
	id, err := e.rdb.XAdd(context.Background(), &redis.XAddArgs{Stream: e.keys.Stream(p), Values: fields}).Result()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// fastOptions make the timings short enough for tests. ClaimIdle (and with
// it TxTimeout, 2/3 of it) leaves a loaded machine (make test runs every
// package at once, under the race detector) time to commit a batch: an
// attempt past TxTimeout is retried whole, and a batch that never fits in it
// never commits.
func fastOptions() process.Options {
	return process.Options{
		Block: 100 * time.Millisecond, ClaimIdle: 3 * time.Second, ClaimEvery: 200 * time.Millisecond,
		RetryBase: 20 * time.Millisecond, RetryMax: 200 * time.Millisecond,
		BreakerFailures: 3, BreakerOpen: 500 * time.Millisecond, ControlEvery: 100 * time.Millisecond,
		ShutdownWait: 5 * time.Second,
	}
}

// run starts a processor; the returned stop cancels it and waits for Run.
func (e *env) run(t *testing.T, db *pgxpool.Pool, opts process.Options) (*process.Processor, func()) {
	t.Helper()
	p, err := process.New(e.rdb, db, e.keys, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("processor did not stop within 30s")
		}
	}
	t.Cleanup(stop)
	return p, stop
}

func (e *env) count(t *testing.T, query string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := e.db.QueryRow(context.Background(), query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// pending is the number of entries the group has not acknowledged.
func (e *env) pending(t *testing.T) int64 {
	n, _ := e.Backlog(t)
	return n
}

// waitControlRounds waits until the processors of e have published n more
// heartbeats. Each is a round of their control loop (ControlEvery), and an
// idle worker looks at the switch and its streams at least as often, so it
// is how a test lets "nothing happens" happen without sleeping blindly.
func (e *env) waitControlRounds(t *testing.T, n int) {
	t.Helper()
	var last time.Time
	seen := -1 // the first heartbeat read is the baseline
	testenv.WaitFor(t, 10*time.Second, fmt.Sprintf("%d more processor heartbeats", n), func() bool {
		hbs, err := process.Heartbeats(context.Background(), e.rdb, e.keys)
		if err != nil {
			t.Fatalf("read heartbeats: %v", err)
		}
		if len(hbs) > 0 && hbs[0].Updated.After(last) {
			last, seen = hbs[0].Updated, seen+1
		}
		return seen >= n
	})
}

// waitFor polls cond until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	testenv.WaitFor(t, timeout, what, cond)
}

func ids(evs []sim.Event) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.ID
	}
	return out
}
