package windows_test

import (
	"strings"
	"testing"
	"time"

	"github.com/hookstream/hookstream/windows"
)

func TestRequestsAreValidatedWithAClearError(t *testing.T) {
	cfg := windows.Config{}.WithDefaults()
	from := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	ok := func() windows.MetricQuery {
		return windows.MetricQuery{Window: time.Minute, Metric: windows.MetricCount, From: from, To: from.Add(time.Hour)}
	}
	f := func(mod func(*windows.MetricQuery), want string) {
		t.Helper()
		r := ok()
		mod(&r)
		err := r.Validate(cfg)
		switch {
		case want == "" && err != nil:
			t.Errorf("rejected: %v", err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("error %v, want one saying %q", err, want)
		}
	}
	f(func(r *windows.MetricQuery) {}, "")
	f(func(r *windows.MetricQuery) { r.Window = 2 * time.Minute }, "window 2m0s is not kept")
	f(func(r *windows.MetricQuery) { r.Metric = "p95" }, `unknown metric "p95"`)
	f(func(r *windows.MetricQuery) { r.Basis = "wall" }, `basis "wall"`)
	f(func(r *windows.MetricQuery) { r.GroupBy = "colour" }, `cannot group by "colour"`)
	f(func(r *windows.MetricQuery) { r.GroupBy = "none" }, "")
	f(func(r *windows.MetricQuery) { r.Filter = map[string][]string{"topic": {"a"}, "family": {"b"}} }, "one dimension at a time")
	f(func(r *windows.MetricQuery) { r.GroupBy, r.Filter = "family", map[string][]string{"topic": {"a"}} }, "can only be combined")
	f(func(r *windows.MetricQuery) { r.Filter = map[string][]string{"topic": {" ", ""}} }, "names no value")
	f(func(r *windows.MetricQuery) { r.To = r.From }, "empty range")
	f(func(r *windows.MetricQuery) { r.To = r.From.Add(365 * 24 * time.Hour) }, "at most 100000")

	r := ok()
	r.Filter = map[string][]string{"topic": {"a", " b", "a"}}
	if err := r.Validate(cfg); err != nil || len(r.Filter["topic"]) != 2 || r.Filter["topic"][1] != "b" {
		t.Fatalf("filter values not trimmed and deduplicated: %v %v", r.Filter, err)
	}
}
