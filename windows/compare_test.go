package windows_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hookstream/hookstream/store"
	"github.com/hookstream/hookstream/windows"
)

// Transfer failures at 50 an hour against 75 an hour over two hours each
// are a significant rise; the failure ratio compares failures of terminal
// events; and a metric that is not a count or a ratio is refused.
func TestCompareMetric(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	wf, err := windows.NewFold(windows.Config{})
	if err != nil {
		t.Fatal(err)
	}
	base := time.Date(2025, 6, 2, 0, 0, 0, 0, time.UTC)
	var evs []store.Event
	add := func(from time.Duration, n int, topic string) {
		for i := range n {
			at := base.Add(from + time.Duration(i)*(2*time.Hour)/time.Duration(n))
			evs = append(evs, store.Event{ID: fmt.Sprintf("%s-%d-%d", topic, from/time.Hour, i), Topic: topic, Family: "transfer", Outcome: map[bool]string{true: "failure", false: "success"}[topic == "customer_bank_transfer_failed"],
				Terminal: true, Created: at, Received: at})
		}
	}
	add(0, 100, "customer_bank_transfer_failed")
	add(0, 900, "customer_bank_transfer_completed")
	add(2*time.Hour, 150, "customer_bank_transfer_failed")
	add(2*time.Hour, 850, "customer_bank_transfer_completed")
	fold(t, e, wf, evs...)
	cfg := wf.Config()
	q := windows.MetricQuery{Window: time.Hour, Metric: windows.MetricCount, Filter: map[string][]string{"topic": {"customer_bank_transfer_failed"}}}
	c, err := windows.CompareMetric(ctx, e.db, cfg, q, base, base.Add(2*time.Hour), base.Add(2*time.Hour), base.Add(4*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if c.A.Total != 100 || c.B.Total != 150 || c.A.Rate != 50 || c.Ratio != 1.5 || !c.Significant || c.Test != "poisson-rates" {
		t.Fatalf("failures: %+v", c)
	}
	q.Metric, q.Filter = windows.MetricFailureRatio, nil
	c, err = windows.CompareMetric(ctx, e.db, cfg, q, base, base.Add(2*time.Hour), base.Add(2*time.Hour), base.Add(4*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if c.A.Total != 100 || c.A.Of != 1000 || c.B.Total != 150 || c.Test != "two-proportions" || !c.Significant || c.A.Low >= 0.1 || c.A.High <= 0.1 {
		t.Fatalf("failure ratio: %+v", c)
	}
	// The same period against itself: no difference.
	c, err = windows.CompareMetric(ctx, e.db, cfg, q, base, base.Add(2*time.Hour), base, base.Add(2*time.Hour))
	if err != nil || c.Significant || c.P < 0.99 {
		t.Fatalf("a period against itself: %+v %v", c, err)
	}
	q.Metric = windows.MetricLagP99
	if _, err := windows.CompareMetric(ctx, e.db, cfg, q, base, base.Add(time.Hour), base.Add(time.Hour), base.Add(2*time.Hour)); err == nil {
		t.Fatal("lag_p99 compared")
	}
}
