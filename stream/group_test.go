package stream_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hookstream/hookstream/internal/testenv"
	"github.com/hookstream/hookstream/stream"
	"github.com/redis/go-redis/v9"
)

// TestTrimNeverPassesUnacknowledgedEntries: trimming by age removes old
// acknowledged entries but stops at the oldest pending entry, and at the
// first entry not yet delivered to the group.
func TestTrimNeverPassesUnacknowledgedEntries(t *testing.T) {
	t.Parallel()
	rdb, ns := testenv.Redis(t)
	ctx := context.Background()
	keys := stream.NewKeys(ns, 1)
	g := stream.NewGroup(rdb, keys, "process")
	if err := g.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	// Ten entries two hours old (explicit ids), ten fresh ones.
	old := time.Now().Add(-2 * time.Hour).UnixMilli()
	for i := range 10 {
		rdb.XAdd(ctx, &redis.XAddArgs{Stream: keys.Stream(0), ID: fmt.Sprintf("%d-%d", old, i), Values: []string{"id", "x"}})
	}
	for range 10 {
		rdb.XAdd(ctx, &redis.XAddArgs{Stream: keys.Stream(0), Values: []string{"id", "y"}})
	}
	cutoff := time.Now().Add(-time.Hour)

	// Nothing delivered yet: nothing may go.
	if n, err := g.Trim(ctx, 0, cutoff); err != nil || n != 0 {
		t.Fatalf("trim before any delivery removed %d (%v), want 0", n, err)
	}
	// Six old ones delivered, the first four acknowledged: entries 4 and 5
	// are pending, so only 0-3 may go.
	msgs, err := g.Read(ctx, "c", []int{0}, 6, -1)
	if err != nil || len(msgs) != 6 {
		t.Fatalf("read %d: %v", len(msgs), err)
	}
	if err := g.Ack(ctx, msgs[:4]); err != nil {
		t.Fatal(err)
	}
	if n, err := g.Trim(ctx, 0, cutoff); err != nil || n != 4 {
		t.Fatalf("trim with pending entries removed %d (%v), want 4", n, err)
	}
	// All delivered and acknowledged: every old entry goes, no fresh one.
	if err := g.Ack(ctx, msgs[4:]); err != nil {
		t.Fatal(err)
	}
	rest, err := g.Read(ctx, "c", []int{0}, 100, -1)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Ack(ctx, rest); err != nil {
		t.Fatal(err)
	}
	if n, err := g.Trim(ctx, 0, cutoff); err != nil || n != 6 {
		t.Fatalf("final trim removed %d (%v), want the 6 remaining old entries", n, err)
	}
	if n, err := rdb.XLen(ctx, keys.Stream(0)).Result(); err != nil || n != 10 {
		t.Fatalf("stream length %d (%v), want the 10 fresh entries", n, err)
	}
	st, err := g.Status(ctx)
	if err != nil || st[0].Length != 10 || st[0].Pending != 0 || st[0].Lag != 0 || st[0].Consumers != 1 {
		t.Fatalf("status %+v, %v", st, err)
	}
}

func TestStatusAndIdleConsumerRemoval(t *testing.T) {
	t.Parallel()
	rdb, ns := testenv.Redis(t)
	ctx := context.Background()
	keys := stream.NewKeys(ns, 2)
	g := stream.NewGroup(rdb, keys, "process")
	if err := g.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	// Entries a minute old, so their pending age is certain to be positive.
	old := time.Now().Add(-time.Minute).UnixMilli()
	for i := range 5 {
		if err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: keys.Stream(1), ID: fmt.Sprintf("%d-%d", old, i+1), Values: []string{"id", "x"}}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	msgs, err := g.Read(ctx, "busy", []int{0, 1}, 2, -1)
	if err != nil || len(msgs) != 2 || msgs[0].Partition != 1 || msgs[0].Deliveries != 1 {
		t.Fatalf("read %+v, %v", msgs, err)
	}
	if _, err := g.Read(ctx, "idle", []int{0, 1}, 0, -1); err != nil { // registers, reads nothing pending
		t.Fatal(err)
	}
	st, err := g.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if p := st[1]; p.Length != 5 || p.Pending != 5 || p.Lag != 0 || p.OldestAge < time.Minute || p.Consumers != 2 {
		t.Fatalf("partition 1 status %+v", p) // "idle" read the other 3 (count 0 = all)
	}
	// Only a consumer without pending entries, idle for long enough, is
	// removed.
	removed, err := g.RemoveIdleConsumers(ctx, 1, 0, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 0 {
		t.Fatalf("removed %v; both consumers hold pending entries", removed)
	}
	if err := g.Ack(ctx, msgs); err != nil {
		t.Fatal(err)
	}
	if removed, err = g.RemoveIdleConsumers(ctx, 1, time.Hour, ""); err != nil || len(removed) != 0 {
		t.Fatalf("removed %v (%v); no consumer has been idle for an hour", removed, err)
	}
	removed, err = g.RemoveIdleConsumers(ctx, 1, 0, "")
	if err != nil || len(removed) != 1 || removed[0] != "busy" {
		t.Fatalf("removed %v (%v), want [busy]", removed, err)
	}
	// A reread of pending entries reports delivery counts.
	again, err := g.ReadOwnPending(ctx, "idle", []int{1}, 10)
	if err != nil || len(again) != 3 || again[0].Deliveries != 2 {
		t.Fatalf("own pending %+v, %v; want 3 entries delivered twice", again, err)
	}
}

// TestStatusIgnoresAPhantomLag: Redis derives a group's lag from a count of
// entries read, which a failover can leave wrong on Redis 7.0
// (redis/redis#12898). XGROUP SETID ... ENTRIESREAD makes the same wrong
// count here: every entry delivered, yet Redis reports a lag. Status must
// say 0, and still report a real lag.
func TestStatusIgnoresAPhantomLag(t *testing.T) {
	t.Parallel()
	rdb, ns := testenv.Redis(t)
	ctx := context.Background()
	keys := stream.NewKeys(ns, 1)
	g := stream.NewGroup(rdb, keys, "process")
	if err := g.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	for range 10 {
		if err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: keys.Stream(0), Values: []string{"id", "x"}}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if err := rdb.Do(ctx, "XGROUP", "SETID", keys.Stream(0), "process", "$", "ENTRIESREAD", 2).Err(); err != nil {
		t.Fatal(err)
	}
	gs, err := rdb.XInfoGroups(ctx, keys.Stream(0)).Result()
	if err != nil || len(gs) != 1 || gs[0].Lag != 8 {
		t.Fatalf("groups %+v, %v: want Redis itself to report the phantom lag of 8", gs, err)
	}
	st, err := g.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st[0].Lag != 0 {
		t.Fatalf("lag %d, want 0: nothing lies after the last delivered entry", st[0].Lag)
	}
	// Three new entries: a real lag, reported as Redis counts it.
	for range 3 {
		if err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: keys.Stream(0), Values: []string{"id", "y"}}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if st, err = g.Status(ctx); err != nil || st[0].Lag != 11 {
		t.Fatalf("lag %d (%v), want Redis's 11 once entries wait", st[0].Lag, err)
	}
}
