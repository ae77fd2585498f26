package windows_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hookstream/hookstream/store"
	"github.com/hookstream/hookstream/windows"
)

func TestRequestsAreValidatedWithAClearError(t *testing.T) {
	cfg := windows.Config{}.WithDefaults()
	from := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	ok := func() windows.MetricQuery {
		return windows.MetricQuery{Window: time.Minute, Metric: windows.MetricCount, From: from, To: from.Add(time.Hour)}
	}
	f := func(mod func(*windows.MetricQuery), param, want string) {
		t.Helper()
		r := ok()
		mod(&r)
		err := r.Validate(cfg)
		var pe *windows.ParamError
		switch {
		case want == "" && err != nil:
			t.Errorf("rejected: %v", err)
		case want == "":
		case err == nil || !strings.Contains(err.Error(), want):
			t.Errorf("error %v, want one saying %q", err, want)
		case !errors.As(err, &pe) || pe.Param != param:
			t.Errorf("error %v does not name the parameter %s", err, param)
		}
	}
	f(func(r *windows.MetricQuery) {}, "", "")
	f(func(r *windows.MetricQuery) { r.Window = 7 * time.Minute }, "window", "--window 7m: not a window size; use 1m, 5m, 15m or 1h")
	f(func(r *windows.MetricQuery) { r.Window = 2 * time.Minute }, "window", "--window 2m: not a window size")
	f(func(r *windows.MetricQuery) { r.Metric = "p95" }, "metric", "--metric p95: not a metric; use count, successes,")
	f(func(r *windows.MetricQuery) { r.Basis = "wall" }, "basis", "--basis wall: not a clock; use event or received")
	f(func(r *windows.MetricQuery) { r.GroupBy = "colour" }, "group-by", "--group-by colour: not a dimension; use topic, family, resource_type or none")
	f(func(r *windows.MetricQuery) { r.GroupBy = "none" }, "", "")
	f(func(r *windows.MetricQuery) { r.Filter = map[string][]string{"topic": {"a"}, "family": {"b"}} }, "filter", "one dimension at a time")
	f(func(r *windows.MetricQuery) { r.Filter = map[string][]string{"colour": {"red"}} }, "filter", `--filter colour=red: "colour" is not a dimension`)
	f(func(r *windows.MetricQuery) { r.GroupBy, r.Filter = "family", map[string][]string{"topic": {"a"}} }, "filter", "can only be combined with --group-by topic")
	f(func(r *windows.MetricQuery) { r.Filter = map[string][]string{"topic": {" ", ""}} }, "filter", "names no value")
	f(func(r *windows.MetricQuery) { r.To = r.From }, "from", "an empty range")
	f(func(r *windows.MetricQuery) { r.From = time.Time{} }, "from", "--from: missing")
	f(func(r *windows.MetricQuery) { r.To = r.From.Add(365 * 24 * time.Hour) }, "from", "at most 100000")

	// Sizes are the configured ones.
	five := windows.Config{Sizes: []time.Duration{5 * time.Minute, 90 * time.Minute}}
	r := ok()
	if err := r.Validate(five); err == nil || err.Error() != "--window 1m: not a window size; use 5m or 1h30m" {
		t.Errorf("under sizes 5m, 90m: %v", err)
	}

	// Filter values are trimmed and deduplicated into a new map: the
	// caller's is left alone.
	r = ok()
	given := map[string][]string{"topic": {"a", " b", "a"}}
	r.Filter = given
	if err := r.Validate(cfg); err != nil || len(r.Filter["topic"]) != 2 || r.Filter["topic"][1] != "b" {
		t.Fatalf("filter values not trimmed and deduplicated: %v %v", r.Filter, err)
	}
	if len(given["topic"]) != 3 {
		t.Fatalf("Validate changed the caller's filter: %v", given)
	}
}

func TestParseFilter(t *testing.T) {
	f := func(in string, want map[string][]string, wantErr string) {
		t.Helper()
		got, err := windows.ParseFilter(in)
		if wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), wantErr) {
				t.Errorf("ParseFilter(%q) = %v, %v; want an error saying %q", in, got, err, wantErr)
			}
			return
		}
		if err != nil || len(got) != len(want) {
			t.Errorf("ParseFilter(%q) = %v, %v; want %v", in, got, err, want)
			return
		}
		for k, v := range want {
			if strings.Join(got[k], "|") != strings.Join(v, "|") {
				t.Errorf("ParseFilter(%q) = %v, want %v", in, got, want)
			}
		}
	}
	f("", nil, "")
	f("topic=a,b", map[string][]string{"topic": {"a", "b"}}, "")
	f(" family = x", map[string][]string{"family": {" x"}}, "") // values are trimmed by Validate
	f("topic", nil, "--filter topic: want dimension=value")
	f("=a", nil, "want dimension=value")
}

// TestSkipEmptyListsOnlyWindowsAndGroupsWithEvents: by default every window
// of every group is listed, empty ones as zero; SkipEmpty keeps only those
// with events, on base windows and on larger ones rolled up while open.
func TestSkipEmptyListsOnlyWindowsAndGroupsWithEvents(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	base := farFuture
	wf, err := windows.NewFold(windows.Config{})
	if err != nil {
		t.Fatal(err)
	}
	wf.WithClock(func() time.Time { return base })
	cfg := wf.Config()
	ev := func(id, topic string, at time.Duration) store.Event {
		return store.Event{ID: id, Topic: topic, Created: base.Add(at), Received: base.Add(at), Partition: 0}
	}
	fold(t, e, wf, ev("a", "customer_created", 2*time.Minute), ev("b", "customer_created", 2*time.Minute+time.Second),
		ev("c", "customer_verified", 17*time.Minute))
	query := func(q windows.MetricQuery) windows.MetricResult {
		t.Helper()
		q.Metric, q.From, q.To = windows.MetricCount, base, base.Add(time.Hour)
		res, err := windows.QueryMetrics(ctx, e.db, cfg, q)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	type pt struct {
		group string
		at    time.Duration
		count int64
	}
	f := func(q windows.MetricQuery, groups []string, points []pt) {
		t.Helper()
		res := query(q)
		if strings.Join(res.Groups, ",") != strings.Join(groups, ",") {
			t.Errorf("%+v: groups %q, want %q", q, res.Groups, groups)
		}
		if len(res.Points) != len(points) {
			t.Fatalf("%+v: %d points %+v, want %d", q, len(res.Points), res.Points, len(points))
		}
		for i, p := range points {
			got := res.Points[i]
			if got.Group != p.group || !got.Start.Equal(base.Add(p.at)) || got.Count != p.count || got.Value != float64(p.count) {
				t.Errorf("%+v: point %d is %+v, want %+v", q, i, got, p)
			}
		}
	}
	// Every window listed: 60 per topic.
	if res := query(windows.MetricQuery{Window: time.Minute, GroupBy: "topic"}); len(res.Points) != 120 || len(res.Groups) != 2 {
		t.Fatalf("without SkipEmpty: %d points in %d groups, want 120 in 2", len(res.Points), len(res.Groups))
	}
	f(windows.MetricQuery{Window: time.Minute, GroupBy: "topic", SkipEmpty: true}, []string{"customer_created", "customer_verified"},
		[]pt{{"customer_created", 2 * time.Minute, 2}, {"customer_verified", 17 * time.Minute, 1}})
	f(windows.MetricQuery{Window: 15 * time.Minute, SkipEmpty: true}, []string{""},
		[]pt{{"", 0, 2}, {"", 15 * time.Minute, 1}})
	// An asked-for value without events is listed only without SkipEmpty.
	filter := func() map[string][]string {
		return map[string][]string{"topic": {"customer_verified", "customer_suspended"}}
	}
	if res := query(windows.MetricQuery{Window: time.Hour, GroupBy: "topic", Filter: filter()}); len(res.Groups) != 2 {
		t.Fatalf("without SkipEmpty: groups %q, want both asked for", res.Groups)
	}
	f(windows.MetricQuery{Window: time.Hour, GroupBy: "topic", Filter: filter(), SkipEmpty: true}, []string{"customer_verified"},
		[]pt{{"customer_verified", 0, 1}})
	// Nothing at all: no groups, no points (not null in JSON).
	f(windows.MetricQuery{Window: time.Minute, GroupBy: "topic", Filter: map[string][]string{"topic": {"nothing"}}, SkipEmpty: true}, []string{}, nil)
}
