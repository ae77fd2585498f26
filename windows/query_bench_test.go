package windows_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hookstream/hookstream/internal/testenv"
	"github.com/hookstream/hookstream/store"
	"github.com/hookstream/hookstream/windows"
	"github.com/jackc/pgx/v5"
)

// A day of 1m windows grouped by topic over 50 topics (72,000 rows): what
// a metric read costs when it needs no sketch (count), the lag sketch
// (lag_p99) or the customer sketch (distinct_customers).
// go test ./windows -run XXX -bench QueryMetricsDay -benchtime 10x
func BenchmarkQueryMetricsDay(b *testing.B) {
	p := testenv.NewPipeline(b, 4)
	ctx := context.Background()
	cfg := windows.Config{Dims: []string{windows.DimTopic}}
	f, err := windows.NewFold(cfg)
	if err != nil {
		b.Fatal(err)
	}
	start := time.Date(2025, 6, 2, 0, 0, 0, 0, time.UTC)
	var evs []store.Event
	flush := func() {
		var used pgx.Tx
		err := pgx.BeginFunc(ctx, p.DB, func(tx pgx.Tx) error {
			used = tx
			if _, err := store.InsertEvents(ctx, tx, evs); err != nil {
				return err
			}
			return f.Fold(ctx, tx, evs)
		})
		f.TxEnded(used, err == nil)
		if err != nil {
			b.Fatal(err)
		}
		evs = evs[:0]
	}
	for m := range 1440 {
		for topic := range 50 {
			at := start.Add(time.Duration(m)*time.Minute + time.Duration(topic)*time.Second)
			for k := range 2 {
				evs = append(evs, store.Event{ID: fmt.Sprintf("e%d-%d-%d", m, topic, k), Topic: fmt.Sprintf("topic_%02d", topic), Created: at,
					Received: at.Add(time.Duration(100+topic*k) * time.Millisecond), CustomerID: fmt.Sprint("c", (m*50+topic)%997), Source: "webhook", Body: []byte("{}")})
			}
		}
		if len(evs) >= 5000 {
			flush()
		}
	}
	flush()
	if _, err := p.DB.Exec(ctx, `ANALYZE window_aggs`); err != nil {
		b.Fatal(err)
	}
	for _, m := range []windows.Metric{windows.MetricCount, windows.MetricLagP99, windows.MetricDistinct} {
		b.Run(string(m), func(b *testing.B) {
			q := windows.MetricQuery{Window: time.Minute, Metric: m, GroupBy: windows.DimTopic, From: start, To: start.Add(24 * time.Hour)}
			for b.Loop() {
				res, err := windows.QueryMetrics(ctx, p.DB, cfg, q)
				if err != nil || len(res.Points) != 72000 {
					b.Fatalf("%d points, %v", len(res.Points), err)
				}
			}
		})
	}
}
