package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/hookstream/hookstream/dwolla"
	"github.com/hookstream/hookstream/journeys"
	"github.com/hookstream/hookstream/process"
	"github.com/hookstream/hookstream/sim"
	"github.com/hookstream/hookstream/store"
	"github.com/hookstream/hookstream/stream"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
)

// copyRows COPYs rows into the events table over conns connections at once
// (as many as the processor has workers, so both may use every core).
func copyRows(ctx context.Context, db *pgxpool.Pool, rows []store.Event, conns int) (int64, error) {
	cols := []string{"id", "topic", "family", "outcome", "terminal", "resource_type", "resource_id", "customer_id",
		"correlation_id", "created", "received_at", "source", "body"}
	type result struct {
		n   int64
		err error
	}
	res := make(chan result, conns)
	per := (len(rows) + conns - 1) / conns
	for i := range conns {
		part := rows[min(i*per, len(rows)):min((i+1)*per, len(rows))]
		go func() {
			n, err := db.CopyFrom(ctx, pgx.Identifier{"events"}, cols, pgx.CopyFromSlice(len(part), func(i int) ([]any, error) {
				e := &part[i]
				return []any{e.ID, e.Topic, nullable(e.Family), nullable(e.Outcome), e.Terminal, nullable(e.ResourceType),
					nullable(e.ResourceID), nullable(e.CustomerID), nullable(e.CorrelationID), e.Created, e.Received, e.Source, e.Body}, nil
			}))
			res <- result{n, err}
		}()
	}
	var total int64
	var first error
	for range conns {
		r := <-res
		total += r.n
		if r.err != nil && first == nil {
			first = r.err
		}
	}
	return total, first
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// prefill appends n unique simulated events to the partition streams in
// the order Dwolla would send them (by created time, lifecycles
// interleaved), pipelined, as the receiver stores them (fields id and
// body): a backlog as it builds up while processing is paused or behind.
func prefill(ctx context.Context, rdb redis.UniversalClient, keys stream.Keys, n int, span time.Duration) error {
	src := sim.NewOrdered(sim.Config{Customers: n/10 + 1, Seed: 42, Start: time.Now().Add(-span - 4*time.Hour), Span: span})
	pipe := rdb.Pipeline()
	for added := 0; added < n; {
		ev := src.Next()
		parsed, err := dwolla.ParseEvent(ev.Body)
		if err != nil {
			return err
		}
		en := stream.NewEntry(keys.Partition(parsed.PartitionKey()), parsed.ID, ev.Body, "")
		pipe.XAdd(ctx, &redis.XAddArgs{Stream: keys.Stream(en.Partition), Values: en.Fields})
		added++
		if pipe.Len() >= 2000 || added == n {
			if _, err := pipe.Exec(ctx); err != nil {
				return fmt.Errorf("pre-fill: %w", err)
			}
		}
	}
	return nil
}

// readBacklog reads every entry back and derives its row, as the processor does.
func readBacklog(ctx context.Context, rdb redis.UniversalClient, keys stream.Keys) ([]store.Event, error) {
	var out []store.Event
	for p := range keys.Partitions {
		start := "-"
		for {
			msgs, err := rdb.XRangeN(ctx, keys.Stream(p), start, "+", 10_000).Result()
			if err != nil {
				return nil, err
			}
			for _, m := range msgs {
				ev, err := process.Enrich(stream.Message{Partition: p, ID: m.ID, Values: m.Values})
				if err != nil {
					return nil, err
				}
				out = append(out, ev)
			}
			if len(msgs) < 10_000 {
				break
			}
			start = "(" + msgs[len(msgs)-1].ID
		}
	}
	return out, nil
}

// seedJourneys fills journey_instances with n bank_transfer instances
// entered over the last 30 days (80% completed a day later, some failed,
// some after completing, 5% cancelled, the rest in flight) and computes
// their funnel aggregates.
func seedJourneys(ctx context.Context, db *pgxpool.Pool, n int) (int64, error) {
	tag, err := db.Exec(ctx, `
INSERT INTO journey_instances (journey, subject, step_at, step_event, status, current_step, entered_at, last_at, deadline, check_at, conflict, entry_topic)
SELECT 'bank_transfer', 'seed-' || g,
       ARRAY[t, CASE WHEN r < 0.8 THEN t + interval '1 day' END, NULL, CASE WHEN r >= 0.8 AND r < 0.85 THEN t + interval '2 hours' END,
             CASE WHEN r >= 0.85 AND r < 0.92 OR r < 0.008 THEN t + interval '3 days' END],
       ARRAY['c-' || g, CASE WHEN r < 0.8 THEN 'd-' || g END, NULL, CASE WHEN r >= 0.8 AND r < 0.85 THEN 'x-' || g END,
             CASE WHEN r >= 0.85 AND r < 0.92 OR r < 0.008 THEN 'f-' || g END],
       CASE WHEN r < 0.008 OR (r >= 0.85 AND r < 0.92) THEN 'failed' WHEN r < 0.8 THEN 'completed' WHEN r < 0.85 THEN 'failed' ELSE 'in_progress' END,
       CASE WHEN r < 0.008 OR (r >= 0.85 AND r < 0.92) THEN 'failed' WHEN r < 0.8 THEN 'completed' WHEN r < 0.85 THEN 'cancelled' ELSE 'created' END,
       t, t + interval '1 day', CASE WHEN r >= 0.92 THEN t + interval '168 hours' END, CASE WHEN r >= 0.92 THEN t + interval '168 hours' END, NULL,
       CASE WHEN r < 0.3 THEN 'bank_transfer_created' ELSE 'customer_bank_transfer_created' END
FROM (SELECT g, now() - random() * interval '30 days' AS t, random() AS r FROM generate_series(1, $1) g) s`, n)
	if err != nil {
		return 0, fmt.Errorf("seed journey instances: %w", err)
	}
	d, _ := journeys.Default().Get("bank_transfer")
	if err := pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error { return journeys.RebuildFunnel(ctx, tx, d) }); err != nil {
		return 0, err
	}
	// As a table that has been in use is: vacuumed and analyzed. Otherwise
	// autovacuum works through the million fresh rows during the drain.
	if _, err := db.Exec(ctx, `VACUUM ANALYZE journey_instances, journey_funnel`); err != nil {
		return 0, err
	}
	return tag.RowsAffected(), nil
}
