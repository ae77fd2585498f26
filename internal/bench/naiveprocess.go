package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/hookstream/hookstream/process"
	"github.com/hookstream/hookstream/stream"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
)

// NaiveProcess is the reference processor the process benchmark compares
// against: what one writes first. It reads entries through a consumer group
// and, for each entry, runs one autocommitted INSERT ... ON CONFLICT DO
// NOTHING and one XACK. It stops after limit entries and returns how many
// it stored.
func NaiveProcess(ctx context.Context, rdb redis.UniversalClient, db *pgxpool.Pool, keys stream.Keys, group string, limit int64) (int64, error) {
	g := stream.NewGroup(rdb, keys, group)
	if err := g.Ensure(ctx); err != nil {
		return 0, err
	}
	parts := make([]int, keys.Partitions)
	for i := range parts {
		parts[i] = i
	}
	var done int64
	for done < limit {
		msgs, err := g.Read(ctx, "naive", parts, 100, 100*time.Millisecond)
		if err != nil {
			return done, err
		}
		for _, m := range msgs {
			if done >= limit {
				break
			}
			ev, err := process.Enrich(m)
			if err != nil {
				return done, fmt.Errorf("naive processor: %w", err)
			}
			_, err = db.Exec(ctx, `INSERT INTO events (id, topic, family, outcome, terminal, resource_type, resource_id,
				customer_id, correlation_id, created, received_at, source, body)
				VALUES ($1, $2, NULLIF($3, ''), NULLIF($4, ''), $5, NULLIF($6, ''), NULLIF($7, ''), NULLIF($8, ''), NULLIF($9, ''), $10, $11, $12, $13)
				ON CONFLICT (id) DO NOTHING`,
				ev.ID, ev.Topic, ev.Family, ev.Outcome, ev.Terminal, ev.ResourceType, ev.ResourceID, ev.CustomerID,
				ev.CorrelationID, ev.Created, ev.Received, ev.Source, ev.Body)
			if err != nil {
				return done, fmt.Errorf("naive insert: %w", err)
			}
			if err := rdb.XAck(ctx, keys.Stream(m.Partition), group, m.ID).Err(); err != nil {
				return done, fmt.Errorf("naive ack: %w", err)
			}
			done++
		}
	}
	return done, nil
}
