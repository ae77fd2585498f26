package main

import (
	"context"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/hookstream/hookstream/dwolla"
	"github.com/hookstream/hookstream/internal/bench"
	"github.com/hookstream/hookstream/internal/testenv"
	"github.com/hookstream/hookstream/stream"
	"github.com/peterbourgon/ff/v3/ffcli"
	"github.com/redis/go-redis/v9"
)

func benchMemoryCommand() *ffcli.Command {
	fs := flag.NewFlagSet("hookstream bench memory", flag.ContinueOnError)
	var c common
	c.register(fs)
	events := fs.Int("events", 1_000_000, "events to store")
	return &ffcli.Command{
		Name:       "memory",
		ShortUsage: "hookstream bench memory [--events N] [flags]",
		ShortHelp:  "Redis memory per event: the dedup (seen) keys and the stream entries",
		LongHelp: `Stores --events unique benchmark events (UUID-shaped ids, ~850-byte bodies)
through the real append script under a fresh namespace, reading Redis's
used_memory before, after, and after deleting the streams, so the seen keys and
the stream entries are measured apart. Everything it wrote is deleted at the
end. Run it against a Redis nothing else writes to (make bench-memory starts a
private one), or the figures include other clients' writes.`,
		FlagSet: fs,
		Options: envOptions(),
		Exec: func(ctx context.Context, _ []string) error {
			return runBenchMemory(ctx, &c, *events)
		},
	}
}

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

func runBenchMemory(ctx context.Context, c *common, n int) error {
	rdb, err := redisClient(c.redisURL, 10*time.Second, 2)
	if err != nil {
		return err
	}
	defer rdb.Close()
	ns := testenv.Name("m") // short, like the default "hs", so key sizes are realistic
	keys := stream.NewKeys(ns, c.partitions)
	defer stream.DeleteKeys(context.Background(), rdb, keys.Pattern())
	prod := stream.NewProducer(rdb, keys, 72*time.Hour)
	if err := prod.Load(ctx); err != nil {
		return fmt.Errorf("redis at %s: %w", c.redisURL, err)
	}
	before, err := usedMemory(ctx, rdb)
	if err != nil {
		return err
	}
	bodies := bench.NewBodies([]byte("memory"), ns)
	var buf []byte
	var bodyBytes int64
	const batch = 1000
	entries := make([]stream.Entry, 0, batch)
	res := make([]stream.Result, batch)
	for done := 0; done < n; {
		entries = entries[:0]
		for ; len(entries) < batch && done < n; done++ {
			var body []byte
			body, _ = bodies.Next(buf)
			ev, err := dwolla.ParseEvent(body)
			if err != nil {
				return err
			}
			bodyBytes += int64(len(body))
			entries = append(entries, stream.NewEntry(keys.Partition(ev.PartitionKey()), ev.ID, body, stream.SourceWebhook))
		}
		if err := prod.AppendBatch(ctx, entries, res[:len(entries)]); err != nil {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	after, err := usedMemory(ctx, rdb)
	if err != nil {
		return err
	}
	for p := range keys.Partitions {
		rdb.Del(ctx, keys.Stream(p))
	}
	seenOnly, err := usedMemory(ctx, rdb)
	if err != nil {
		return err
	}
	perEvent := func(b int64) float64 { return float64(b) / float64(n) }
	fmt.Printf("events: %d, average body %d bytes, %d partitions\n", n, bodyBytes/int64(n), keys.Partitions)
	fmt.Printf("seen keys (dedup, kept --seen-ttl): %6.0f bytes/event, %7.1f MB per million events\n", perEvent(seenOnly-before), perEvent(seenOnly-before))
	fmt.Printf("stream entries:                     %6.0f bytes/event, %7.1f MB per million events\n", perEvent(after-seenOnly), perEvent(after-seenOnly))
	return nil
}
