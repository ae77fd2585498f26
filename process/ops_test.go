package process_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/hookstream/hookstream/process"
	"github.com/hookstream/hookstream/sim"
	"github.com/hookstream/hookstream/store"
	"github.com/jackc/pgx/v5"
)

// topicCounter is a folding step with state in PostgreSQL: events per topic
// and UTC day. It can recompute a range, so a refold can repair it.
type topicCounter struct{}

func (topicCounter) Name() string { return "topic-counter" }

func (topicCounter) Fold(ctx context.Context, tx pgx.Tx, evs []store.Event) error {
	for _, e := range evs {
		if _, err := tx.Exec(ctx, `INSERT INTO topic_counts (topic, day, n) VALUES ($1, date_trunc('day', $2::timestamptz AT TIME ZONE 'UTC'), 1)
			ON CONFLICT (topic, day) DO UPDATE SET n = topic_counts.n + 1`, e.Topic, e.Created); err != nil {
			return err
		}
	}
	return nil
}

// Refold works on whole days: the range is widened to the days it touches.
func (topicCounter) Refold(ctx context.Context, tx pgx.Tx, from, to time.Time, topics []string) error {
	from, to = from.UTC().Truncate(24*time.Hour), to.UTC().Add(24*time.Hour-1).Truncate(24*time.Hour)
	if _, err := tx.Exec(ctx, `DELETE FROM topic_counts WHERE day >= $1 AND day < $2 AND (coalesce(cardinality($3::text[]), 0) = 0 OR topic = ANY($3))`,
		from, to, topics); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, `INSERT INTO topic_counts (topic, day, n)
		SELECT topic, date_trunc('day', created AT TIME ZONE 'UTC'), count(*) FROM events
		WHERE created >= $1 AND created < $2 AND (coalesce(cardinality($3::text[]), 0) = 0 OR topic = ANY($3)) GROUP BY 1, 2`, from, to, topics)
	return err
}

func TestRefoldRecomputesARangeIdempotently(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	if _, err := e.db.Exec(ctx, `CREATE TABLE topic_counts (topic text, day timestamp, n bigint, PRIMARY KEY (topic, day))`); err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	sc := sim.Generate(sim.Config{Customers: 50, Seed: 4, Start: start, Span: 72 * time.Hour})
	e.add(t, sc.Events)
	opts := fastOptions()
	opts.Folds = []process.Fold{topicCounter{}, &countingFold{seen: map[string]int{}}}
	p, stop := e.run(t, e.db, opts)
	waitFor(t, 30*time.Second, "every event stored", func() bool { return p.Stats().Acked == int64(len(sc.Events)) })
	stop()

	truth := func() int64 {
		return e.count(t, `SELECT count(*) FROM (SELECT topic, date_trunc('day', created AT TIME ZONE 'UTC') d, count(*) n FROM events GROUP BY 1, 2
			EXCEPT SELECT topic, day, n FROM topic_counts) diff`)
	}
	if n := truth(); n != 0 {
		t.Fatalf("folded counts differ from the events table in %d rows", n)
	}
	// A folding bug corrupts a day; a refold of that day repairs it, and a
	// second refold changes nothing.
	if _, err := e.db.Exec(ctx, `UPDATE topic_counts SET n = n * 3 WHERE day = '2026-11-02'`); err != nil {
		t.Fatal(err)
	}
	if truth() == 0 {
		t.Fatal("the corruption did not show")
	}
	for range 2 {
		rep, err := process.Refold(ctx, e.db, opts.Folds, start.Add(24*time.Hour), start.Add(48*time.Hour), nil)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Events == 0 || len(rep.Refolded) != 1 || rep.Refolded[0] != "topic-counter" || len(rep.Skipped) != 1 {
			t.Fatalf("report %+v", rep)
		}
		if n := truth(); n != 0 {
			t.Fatalf("after the refold the counts differ from the events table in %d rows", n)
		}
	}
	if _, err := process.Refold(ctx, e.db, opts.Folds, start, start, nil); err == nil {
		t.Fatal("an empty range was accepted")
	}
}

func TestHeartbeatsNamesAnUndecodableOneAndReturnsTheOthers(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	good, err := json.Marshal(process.Heartbeat{Consumer: "good", Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{e.keys.Heartbeat("good"): string(good), e.keys.Heartbeat("garbled"): "{not json"} {
		if err := e.rdb.Set(ctx, k, v, time.Minute).Err(); err != nil {
			t.Fatal(err)
		}
	}
	hbs, err := process.Heartbeats(ctx, e.rdb, e.keys)
	if len(hbs) != 1 || hbs[0].Consumer != "good" {
		t.Fatalf("heartbeats %+v; want the decodable one", hbs)
	}
	if err == nil || !strings.Contains(err.Error(), e.keys.Heartbeat("garbled")) {
		t.Fatalf("error %v; want it to name the undecodable heartbeat", err)
	}
}
