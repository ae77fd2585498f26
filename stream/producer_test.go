package stream_test

import (
	"context"
	"fmt"
	"github.com/hookstream/hookstream/stream"
	"testing"
	"time"

	"github.com/hookstream/hookstream/internal/testenv"
	"github.com/redis/go-redis/v9"
)

func TestAppendBatchDedup(t *testing.T) {
	t.Parallel()
	rdb, ns := testenv.Redis(t)
	keys := stream.NewKeys(ns, 4)
	p := stream.NewProducer(rdb, keys, time.Hour)
	ctx := context.Background()
	mk := func(id string) stream.Entry {
		return stream.Entry{Partition: keys.Partition(id), ID: id, Fields: []string{"id", id, "body", "{}"}}
	}
	// The same id twice in one batch: the first is stored, the second is a
	// duplicate pointing at the same entry.
	batch := []stream.Entry{mk("a"), mk("b"), mk("a")}
	res := make([]stream.Result, len(batch))
	if err := p.AppendBatch(ctx, batch, res); err != nil {
		t.Fatal(err)
	}
	if res[0].Duplicate || res[1].Duplicate || !res[2].Duplicate || res[2].EntryID != res[0].EntryID {
		t.Fatalf("results %+v", res)
	}
	ttl, err := rdb.TTL(ctx, keys.Seen(batch[0].Partition, "a")).Result()
	if err != nil || ttl <= 59*time.Minute || ttl > time.Hour {
		t.Fatalf("seen TTL %v (%v), want about 1h", ttl, err)
	}
	total := totalLen(t, rdb, keys)
	if total != 2 {
		t.Fatalf("streams hold %d entries, want 2", total)
	}
}

// TestAppendAfterScriptFlush uses a private server, since SCRIPT FLUSH would
// touch other tests' scripts on a shared one.
func TestAppendAfterScriptFlush(t *testing.T) {
	t.Parallel()
	srv := testenv.StartRedisServer(t)
	rdb := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", srv.Port)})
	defer rdb.Close()
	keys := stream.NewKeys("hs", 2)
	p := stream.NewProducer(rdb, keys, time.Hour)
	ctx := context.Background()
	if err := p.Load(ctx); err != nil {
		t.Fatal(err)
	}
	rdb.ScriptFlush(ctx)
	res := make([]stream.Result, 1)
	if err := p.AppendBatch(ctx, []stream.Entry{{Partition: 1, ID: "x", Fields: []string{"id", "x"}}}, res); err != nil || res[0].Err != nil {
		t.Fatalf("append after SCRIPT FLUSH: %v %v", err, res[0].Err)
	}
}

func TestKeys(t *testing.T) {
	k := stream.NewKeys("hs", 16)
	if k.Stream(3) != "hs:{3}:events" || k.Seen(3, "abc") != "hs:{3}:seen:abc" {
		t.Fatalf("key names %s %s", k.Stream(3), k.Seen(3, "abc"))
	}
	// The partition function is part of the storage format: pin it.
	f := func(key string, want int) {
		t.Helper()
		if got := k.Partition(key); got != want {
			t.Fatalf("Partition(%q) = %d, want %d", key, got, want)
		}
	}
	f("", 5) // FNV-1a offset basis 0x811C9DC5 mod 16
	f("customer-1", 7)
	f("a6f09251-c2de-4833-94a8-5c70916cebbc", 3)
	seen := map[int]bool{}
	for i := range 1000 {
		seen[k.Partition(fmt.Sprintf("customer-%d", i))] = true
	}
	if len(seen) != 16 {
		t.Fatalf("1000 customers spread over %d of 16 partitions", len(seen))
	}
}

func TestAppendBatchShapesAndRange(t *testing.T) {
	t.Parallel()
	rdb, ns := testenv.Redis(t)
	keys := stream.NewKeys(ns, 2)
	p := stream.NewProducer(rdb, keys, time.Hour)
	ctx := context.Background()
	batch := []stream.Entry{
		{Partition: 0, ID: "a", Fields: []string{"id", "a", "source", "webhook"}},
		{Partition: 0, ID: "b", Fields: []string{"id", "b", "source", "reconcile", "extra", "1"}}, // another shape
		{Partition: 0, ID: "c", Fields: []string{"id", "c", "source", "webhook"}},
		{Partition: 5, ID: "d", Fields: []string{"id", "d"}}, // no such partition
	}
	res := make([]stream.Result, len(batch))
	if err := p.AppendBatch(ctx, batch, res); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if res[i].Err != nil || res[i].Duplicate || res[i].EntryID == "" {
			t.Fatalf("entry %d: %+v", i, res[i])
		}
	}
	if res[3].Err == nil {
		t.Fatal("partition 5 of 2 should be refused")
	}
	msgs, err := rdb.XRange(ctx, keys.Stream(0), "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 3 || msgs[1].Values["extra"] != "1" || msgs[2].Values["source"] != "webhook" {
		t.Fatalf("stream holds %+v", msgs)
	}
}

// TestAppendBatchPerPartition runs the Redis Cluster grouping (one script call
// per partition) against a single server, which accepts it too.
func TestAppendBatchPerPartition(t *testing.T) {
	t.Parallel()
	rdb, ns := testenv.Redis(t)
	keys := stream.NewKeys(ns, 4)
	p := stream.NewProducer(rdb, keys, time.Hour)
	stream.SetPerPartition(p, true)
	ctx := context.Background()
	var batch []stream.Entry
	for i := range 40 {
		id := fmt.Sprintf("e%d", i%30) // ten duplicates in the same batch
		batch = append(batch, stream.Entry{Partition: keys.Partition(id), ID: id, Fields: []string{"id", id}})
	}
	res := make([]stream.Result, len(batch))
	if err := p.AppendBatch(ctx, batch, res); err != nil {
		t.Fatal(err)
	}
	dups := 0
	for i, r := range res {
		if r.Err != nil || r.EntryID == "" {
			t.Fatalf("entry %d: %+v", i, r)
		}
		if r.Duplicate {
			dups++
			if r.EntryID != res[i-30].EntryID {
				t.Fatalf("duplicate %d points at %s, original at %s", i, r.EntryID, res[i-30].EntryID)
			}
		}
	}
	total := totalLen(t, rdb, keys)
	if dups != 10 || total != 30 {
		t.Fatalf("%d duplicates, %d entries; want 10 and 30", dups, total)
	}
}

// TestAppendBatchOnCluster runs the append script on a real three-master
// Redis Cluster: every call must stay within one slot, which the {p} hash tag
// and the per-partition grouping guarantee.
func TestAppendBatchOnCluster(t *testing.T) {
	t.Parallel()
	rdb := testenv.StartRedisCluster(t)
	keys := stream.NewKeys("hs", 16)
	p := stream.NewProducer(rdb, keys, time.Hour)
	ctx := context.Background()
	if err := p.Load(ctx); err != nil {
		t.Fatal(err)
	}
	var batch []stream.Entry
	for i := range 300 {
		id := fmt.Sprintf("ev-%d", i%200) // 100 duplicates within the batch
		batch = append(batch, stream.NewEntry(keys.Partition("cust-"+id), id, []byte(`{}`), stream.SourceWebhook))
	}
	res := make([]stream.Result, len(batch))
	if err := p.AppendBatch(ctx, batch, res); err != nil {
		t.Fatal(err)
	}
	dups := 0
	for i, r := range res {
		if r.Err != nil {
			t.Fatalf("entry %d: %v", i, r.Err)
		}
		if r.Duplicate {
			dups++
		}
	}
	total := totalLen(t, rdb, keys)
	if dups != 100 || total != 200 {
		t.Fatalf("%d duplicates and %d entries on the cluster; want 100 and 200", dups, total)
	}
}

// totalLen is the number of entries in all the partition streams of keys.
func totalLen(t *testing.T, rdb redis.UniversalClient, keys stream.Keys) int64 {
	t.Helper()
	var total int64
	for i := range keys.Partitions {
		n, err := rdb.XLen(context.Background(), keys.Stream(i)).Result()
		if err != nil {
			t.Fatalf("length of %s: %v", keys.Stream(i), err)
		}
		total += n
	}
	return total
}
