package bench

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/hookstream/hookstream/dwolla"
	"github.com/hookstream/hookstream/internal/scratch"
	"github.com/hookstream/hookstream/stream"
	"github.com/redis/go-redis/v9"
)

// MemoryConfig configures Memory; each field is the flag of `hookstream bench
// memory` named in its comment. Zero values take the defaults in parentheses.
type MemoryConfig struct {
	// RedisURL is the Redis measured; nothing else should write to it while
	// Memory runs, or the figures include other clients' writes
	// (--redis-url, default redis://127.0.0.1:6379/0).
	RedisURL string
	// Partitions is the number of partition streams (--partitions, default 16).
	Partitions int
	// Events is how many unique events to store (--events, default 1,000,000).
	Events int
	// Out receives the report (nil: discarded).
	Out io.Writer
}

func (c MemoryConfig) withDefaults() (MemoryConfig, error) {
	c.RedisURL = cmp.Or(c.RedisURL, defaultRedisURL)
	c.Partitions = cmp.Or(c.Partitions, defaultPartitions)
	c.Events = cmp.Or(c.Events, 1_000_000)
	c.Out = orDiscard(c.Out)
	return c, errors.Join(notNegative("--partitions", c.Partitions), notNegative("--events", c.Events))
}

// MemoryReport is what Memory measured.
type MemoryReport struct {
	Events     int
	Partitions int
	BodyBytes  int64 // all bodies stored
	// SeenBytes is Redis's used_memory taken by the dedup (seen) keys;
	// StreamBytes that taken by the stream entries.
	SeenBytes, StreamBytes int64
}

// PerEvent returns bytes divided by the number of events.
func (r MemoryReport) PerEvent(bytes int64) float64 { return float64(bytes) / float64(r.Events) }

// Memory measures Redis memory per event. It stores c.Events unique
// benchmark events (UUID-shaped ids, ~850-byte bodies) through the real
// append script under a fresh namespace, reading Redis's used_memory before,
// after, and after deleting the streams, so the seen keys and the stream
// entries are measured apart. Everything it wrote is deleted at the end.
func Memory(ctx context.Context, c MemoryConfig) (MemoryReport, error) {
	c, err := c.withDefaults()
	if err != nil {
		return MemoryReport{}, err
	}
	rep := MemoryReport{Events: c.Events, Partitions: c.Partitions}
	rdb, err := stream.NewClient(c.RedisURL, 10*time.Second, 2)
	if err != nil {
		return rep, err
	}
	defer rdb.Close()
	ns := scratch.Name("m") // short, like the default "hs", so key sizes are realistic
	keys := stream.NewKeys(ns, c.Partitions)
	defer stream.DeleteKeys(context.Background(), rdb, keys.Pattern())
	prod := stream.NewProducer(rdb, keys, 72*time.Hour)
	if err := prod.Load(ctx); err != nil {
		return rep, fmt.Errorf("redis at %s: %w", c.RedisURL, err)
	}
	before, err := usedMemory(ctx, rdb)
	if err != nil {
		return rep, err
	}
	bodies := NewBodies([]byte("memory"), ns)
	var buf []byte
	const batch = 1000
	entries := make([]stream.Entry, 0, batch)
	res := make([]stream.Result, batch)
	for done := 0; done < c.Events; {
		entries = entries[:0]
		for ; len(entries) < batch && done < c.Events; done++ {
			var body []byte
			body, _ = bodies.Next(buf)
			ev, err := dwolla.ParseEvent(body)
			if err != nil {
				return rep, err
			}
			rep.BodyBytes += int64(len(body))
			entries = append(entries, stream.NewEntry(keys.Partition(ev.PartitionKey()), ev.ID, body, stream.SourceWebhook))
		}
		if err := prod.AppendBatch(ctx, entries, res[:len(entries)]); err != nil {
			return rep, err
		}
		if ctx.Err() != nil {
			return rep, ctx.Err()
		}
	}
	after, err := usedMemory(ctx, rdb)
	if err != nil {
		return rep, err
	}
	for p := range keys.Partitions {
		rdb.Del(ctx, keys.Stream(p))
	}
	seenOnly, err := usedMemory(ctx, rdb)
	if err != nil {
		return rep, err
	}
	rep.SeenBytes, rep.StreamBytes = seenOnly-before, after-seenOnly
	fmt.Fprintf(c.Out, "events: %d, average body %d bytes, %d partitions\n", rep.Events, rep.BodyBytes/int64(rep.Events), rep.Partitions)
	fmt.Fprintf(c.Out, "seen keys (dedup, kept --seen-ttl): %6.0f bytes/event, %7.1f MB per million events\n", rep.PerEvent(rep.SeenBytes), rep.PerEvent(rep.SeenBytes))
	fmt.Fprintf(c.Out, "stream entries:                     %6.0f bytes/event, %7.1f MB per million events\n", rep.PerEvent(rep.StreamBytes), rep.PerEvent(rep.StreamBytes))
	return rep, nil
}

// usedMemory returns Redis's used_memory (INFO memory) in bytes.
func usedMemory(ctx context.Context, rdb redis.UniversalClient) (int64, error) {
	info, err := rdb.Info(ctx, "memory").Result()
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, "used_memory:"); ok {
			return strconv.ParseInt(v, 10, 64)
		}
	}
	return 0, fmt.Errorf("INFO memory has no used_memory")
}
