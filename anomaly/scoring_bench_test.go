package anomaly_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hookstream/hookstream/anomaly"
	"github.com/hookstream/hookstream/dwolla"
	"github.com/hookstream/hookstream/store"
	"github.com/hookstream/hookstream/windows"
)

// BenchmarkScoringMinute5000Series is the scorer's cost per minute with
// 5,000 watched series on 1m windows (100 series configurations, each
// grouped by topic over 50 topics), after a warm-up on 2,000 minutes of
// history: one op folds and closes the next minute (not timed) and scores
// it (timed: one Tick, every series' new window read, scored, recorded).
// s-warm-up is the first tick after a start: every detector warmed up on
// its 2,000 windows of history.
// The time is wall time of one goroutine waiting on PostgreSQL in turn,
// so it bounds the CPU both the scorer and PostgreSQL spend on it.
func BenchmarkScoringMinute5000Series(b *testing.B) {
	const topics, configs, history = 50, 100, 2000
	s := newScoringWith(b, windows.Config{Sizes: []time.Duration{time.Minute, 5 * time.Minute, time.Hour}, Dims: []string{windows.DimTopic, windows.DimFamily}, Delay: time.Second, Idle: time.Hour})
	names := dwolla.Topics()[:topics]
	var yaml strings.Builder
	yaml.WriteString("series:\n")
	for i := range configs {
		fmt.Fprintf(&yaml, "  - {name: s%d, metric: count, window: 1m, group_by: topic}\n", i)
	}
	var err error
	if s.watch, err = anomaly.ParseWatch([]byte(yaml.String()), s.wf.Config()); err != nil {
		b.Fatal(err)
	}
	minute := func(from time.Time, n int) {
		var evs []store.Event
		for m := range n {
			at := from.Add(time.Duration(m) * time.Minute)
			for i, topic := range names {
				for k := range 1 + (m+i)%3 {
					s.n++
					t := at.Add(time.Duration(k) * time.Second)
					evs = append(evs, store.Event{ID: fmt.Sprint("e", s.n), Topic: topic, Created: t, Received: t, Source: "webhook", Body: []byte("{}")})
				}
			}
			if len(evs) >= 5000 || m == n-1 {
				s.clock = at.Add(time.Minute) // the events arrive as they happen
				s.fold(b, evs)
				evs = evs[:0]
			}
		}
		s.clock = from.Add(time.Duration(n)*time.Minute + time.Minute)
		if _, err := s.closer.Tick(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
	ctx := context.Background()
	minute(day0, history)
	sc := s.scorer()
	sc.Batch = 1
	if _, err := sc.Tick(ctx); err != nil { // cursors start here
		b.Fatal(err)
	}
	at := day0.Add(history * time.Minute)
	minute(at, 1)
	began := time.Now()
	if n, err := sc.Tick(ctx); err != nil || n != topics*configs { // the warm-up
		b.Fatalf("warm-up tick scored %d, %v", n, err)
	}
	warmUp := time.Since(began)
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		at = at.Add(time.Minute)
		minute(at, 1)
		b.StartTimer()
		n, err := sc.Tick(ctx)
		if err != nil || n != topics*configs {
			b.Fatalf("scored %d, %v", n, err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/float64(topics*configs), "µs/series")
	b.ReportMetric(warmUp.Seconds(), "s-warm-up")
}
