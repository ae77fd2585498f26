package testenv

import (
	"context"
	"testing"
	"time"

	"github.com/hookstream/hookstream/dwolla"
	"github.com/hookstream/hookstream/migrations"
	"github.com/hookstream/hookstream/sim"
	"github.com/hookstream/hookstream/stream"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
)

// Pipeline is one test's hookstream installation on the test servers: a
// private Redis namespace and a migrated private PostgreSQL schema.
type Pipeline struct {
	Redis *redis.Client
	Keys  stream.Keys
	DB    *pgxpool.Pool
	DBURL string // selects the schema, for binaries the test starts
}

// NewPipeline sets one up with partitions partition streams.
func NewPipeline(t testing.TB, partitions int) *Pipeline {
	t.Helper()
	rdb, ns := Redis(t)
	db, url := Postgres(t)
	if _, err := migrations.Up(context.Background(), db); err != nil {
		t.Fatal(err)
	}
	return &Pipeline{Redis: rdb, Keys: stream.NewKeys(ns, partitions), DB: db, DBURL: url}
}

// Append adds the events' entries straight to their partition streams, as
// the receiver would but without its dedup, so a test can deliver the same
// event twice (as after the seen keys expire, or on replay).
func (p *Pipeline) Append(t testing.TB, evs []sim.Event) {
	t.Helper()
	ctx := context.Background()
	pipe := p.Redis.Pipeline()
	for _, ev := range evs {
		parsed, err := dwolla.ParseEvent(ev.Body)
		if err != nil {
			t.Fatalf("sim event %s: %v", ev.ID, err)
		}
		en := stream.NewEntry(p.Keys.Partition(parsed.PartitionKey()), parsed.ID, ev.Body, "")
		pipe.XAdd(ctx, &redis.XAddArgs{Stream: p.Keys.Stream(en.Partition), Values: en.Fields})
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

// Backlog is what the "process" group has not finished: entries pending
// (delivered, not acknowledged) and lag (not yet delivered).
func (p *Pipeline) Backlog(t testing.TB) (pending, lag int64) {
	t.Helper()
	st, err := stream.NewGroup(p.Redis, p.Keys, "process").Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range st {
		pending += s.Pending
		lag += s.Lag
	}
	return pending, lag
}

// Drained reports whether the group has finished every entry.
func (p *Pipeline) Drained(t testing.TB) bool {
	pending, lag := p.Backlog(t)
	return pending == 0 && lag == 0
}

// WaitFor polls cond until it holds, failing the test after timeout.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
