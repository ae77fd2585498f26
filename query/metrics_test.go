package query_test

import (
	"strings"
	"testing"
	"time"

	"github.com/hookstream/hookstream/query"
	"github.com/hookstream/hookstream/windows"
)

func TestRequestsAreValidatedWithAClearError(t *testing.T) {
	cfg := windows.Config{}.WithDefaults()
	from := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	ok := func() query.MetricsRequest {
		return query.MetricsRequest{Window: time.Minute, Metric: query.Count, From: from, To: from.Add(time.Hour)}
	}
	f := func(mod func(*query.MetricsRequest), want string) {
		t.Helper()
		r := ok()
		mod(&r)
		err := r.Validate(&cfg)
		switch {
		case want == "" && err != nil:
			t.Errorf("rejected: %v", err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("error %v, want one saying %q", err, want)
		}
	}
	f(func(r *query.MetricsRequest) {}, "")
	f(func(r *query.MetricsRequest) { r.Window = 2 * time.Minute }, "window 2m0s is not kept")
	f(func(r *query.MetricsRequest) { r.Metric = "p95" }, `unknown metric "p95"`)
	f(func(r *query.MetricsRequest) { r.Basis = "wall" }, `basis "wall"`)
	f(func(r *query.MetricsRequest) { r.GroupBy = "colour" }, `cannot group by "colour"`)
	f(func(r *query.MetricsRequest) { r.GroupBy = "none" }, "")
	f(func(r *query.MetricsRequest) { r.Filter = map[string][]string{"topic": {"a"}, "family": {"b"}} }, "one dimension at a time")
	f(func(r *query.MetricsRequest) { r.GroupBy, r.Filter = "family", map[string][]string{"topic": {"a"}} }, "can only be combined")
	f(func(r *query.MetricsRequest) { r.Filter = map[string][]string{"topic": {" ", ""}} }, "names no value")
	f(func(r *query.MetricsRequest) { r.To = r.From }, "empty range")
	f(func(r *query.MetricsRequest) { r.To = r.From.Add(365 * 24 * time.Hour) }, "at most 100000")

	r := ok()
	r.Filter = map[string][]string{"topic": {"a", " b", "a"}}
	if err := r.Validate(&cfg); err != nil || len(r.Filter["topic"]) != 2 || r.Filter["topic"][1] != "b" {
		t.Fatalf("filter values not trimmed and deduplicated: %v %v", r.Filter, err)
	}
}

func TestWilsonInterval(t *testing.T) {
	f := func(x, n int64, rate, low, high float64) {
		t.Helper()
		c := query.Wilson(x, n)
		near := func(a, b float64) bool { return a-b < 1e-4 && b-a < 1e-4 }
		if !near(c.Rate, rate) || !near(c.Low, low) || !near(c.High, high) {
			t.Errorf("Wilson(%d, %d) = %+v, want %v [%v, %v]", x, n, c, rate, low, high)
		}
	}
	f(0, 0, 0, 0, 0)
	f(5, 10, 0.5, 0.2366, 0.7634)
	f(0, 10, 0, 0, 0.2775)
	f(10, 10, 1, 0.7225, 1)
	f(81, 263, 0.30798, 0.25528, 0.36620)
}
