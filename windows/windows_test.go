package windows_test

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/hookstream/hookstream/store"
	"github.com/hookstream/hookstream/windows"
)

func mustTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestWindowStartIsUTCAlignedAndBoundariesOpenTheNextWindow(t *testing.T) {
	f := func(in string, size time.Duration, want string) {
		t.Helper()
		if got := windows.Start(mustTime(in), size); !got.Equal(mustTime(want)) || got.Location() != time.UTC {
			t.Errorf("Start(%s, %s) = %s, want %s (UTC)", in, size, got, want)
		}
	}
	f("2026-11-28T10:07:59.999Z", time.Minute, "2026-11-28T10:07:00Z")
	f("2026-11-28T10:08:00Z", time.Minute, "2026-11-28T10:08:00Z") // exactly on a boundary: the next window
	f("2026-11-28T10:14:59.999999999Z", 15*time.Minute, "2026-11-28T10:00:00Z")
	f("2026-11-28T10:15:00Z", 15*time.Minute, "2026-11-28T10:15:00Z")
	f("2026-11-28T10:59:00Z", time.Hour, "2026-11-28T10:00:00Z")
	f("2026-11-28T10:04:00Z", 5*time.Minute, "2026-11-28T10:00:00Z")
	// A zone offset changes nothing: windows are on the UTC instant.
	f("2026-11-28T11:37:10+01:30", time.Hour, "2026-11-28T10:00:00Z")
	// DST-free: the night Europe/Berlin falls back, 1h windows stay one hour apart.
	f("2026-10-25T00:30:00Z", time.Hour, "2026-10-25T00:00:00Z")
	f("2026-10-25T01:30:00Z", time.Hour, "2026-10-25T01:00:00Z")
	// Before 1970 too.
	f("1969-12-31T23:59:30Z", time.Minute, "1969-12-31T23:59:00Z")
}

func TestAssignCoversEveryClockSizeAndDimension(t *testing.T) {
	cfg := windows.Config{}.WithDefaults()
	ev := store.Event{ID: "e", Topic: "customer_created", Family: "customer", ResourceType: "customers",
		Created: mustTime("2026-11-28T10:07:30Z"), Received: mustTime("2026-11-28T10:16:00Z")}
	var keys []windows.Key
	windows.Assign(&ev, &cfg, func(k windows.Key) { keys = append(keys, k) })
	if want := 2 * 4 * 4; len(keys) != want {
		t.Fatalf("%d keys, want %d", len(keys), want)
	}
	seen := map[string]bool{}
	for _, k := range keys {
		seen[k.String()] = true
	}
	for _, want := range []string{
		"event/1m0s/2026-11-28T10:07:00Z/all=", "event/15m0s/2026-11-28T10:00:00Z/topic=customer_created",
		"received/15m0s/2026-11-28T10:15:00Z/family=customer", "received/1h0m0s/2026-11-28T10:00:00Z/resource_type=customers",
	} {
		if !seen[want] {
			t.Errorf("missing key %s", want)
		}
	}
}

// randomEvents are events with random topics, outcomes, lags and customers.
func randomEvents(rng *rand.Rand, n int) []store.Event {
	topics := []struct{ topic, family, outcome string }{
		{"customer_created", "customer", ""}, {"customer_verified", "verification", "success"},
		{"customer_bank_transfer_failed", "bank_transfer", "failure"}, {"customer_transfer_completed", "transfer", "success"},
	}
	base := mustTime("2026-11-28T10:00:00Z")
	out := make([]store.Event, n)
	for i := range out {
		tp := topics[rng.IntN(len(topics))]
		created := base.Add(time.Duration(rng.Int64N(int64(3 * time.Hour))))
		out[i] = store.Event{
			ID: "e" + string(rune('a'+i%26)) + time.Duration(i).String(), Topic: tp.topic, Family: tp.family, Outcome: tp.outcome,
			Terminal: tp.outcome != "", ResourceType: "transfers", CustomerID: "c" + time.Duration(rng.IntN(300)).String(),
			Created: created, Received: created.Add(time.Duration(rng.Int64N(int64(10 * time.Minute)))), Partition: rng.IntN(4),
		}
	}
	return out
}

func TestAggregatesAreTheSameInAnyOrderAndAnySplit(t *testing.T) {
	cfg := windows.Config{}.WithDefaults()
	rng := rand.New(rand.NewPCG(3, 4))
	evs := randomEvents(rng, 2000)
	whole := windows.Aggregate(evs, &cfg)
	for trial := range 5 {
		shuffled := append([]store.Event(nil), evs...)
		rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		// Fold in random batches, merging batch aggregates, through an
		// encode/decode round trip as the database does.
		merged := map[windows.Key]*windows.Agg{}
		for len(shuffled) > 0 {
			n := min(len(shuffled), 1+rng.IntN(300))
			for k, a := range windows.Aggregate(shuffled[:n], &cfg) {
				var row windows.Row
				if err := a.ToRow(&row); err != nil {
					t.Fatal(err)
				}
				back, err := windows.FromRow(&row)
				if err != nil {
					t.Fatal(err)
				}
				if merged[k] == nil {
					merged[k] = windows.NewAgg()
				}
				if err := merged[k].Merge(back); err != nil {
					t.Fatal(err)
				}
			}
			shuffled = shuffled[n:]
		}
		if len(merged) != len(whole) {
			t.Fatalf("trial %d: %d keys, want %d", trial, len(merged), len(whole))
		}
		for k, w := range whole {
			if d := windows.Diff(w, merged[k]); d != "" {
				t.Fatalf("trial %d, window %s: %s", trial, k, d)
			}
		}
	}
}

func TestSketchesAreWithinTheirStatedError(t *testing.T) {
	a := windows.NewAgg()
	rng := rand.New(rand.NewPCG(5, 6))
	lags := make([]float64, 0, 20000)
	base := mustTime("2026-11-28T10:00:00Z")
	for i := range 20000 {
		lag := time.Duration(rng.ExpFloat64() * float64(2*time.Second))
		ev := store.Event{Created: base, Received: base.Add(lag), CustomerID: "customer-" + time.Duration(i%7000).String()}
		a.Add(&ev)
		lags = append(lags, float64(lag.Microseconds())/1000)
	}
	if d := a.Distinct(); d < 7000*0.98 || d > 7000*1.02 {
		t.Errorf("distinct customers %d, want 7000 within 2%%", d)
	}
	exact := quantiles(lags, 0.5, 0.9, 0.99)
	for i, q := range []float64{0.5, 0.9, 0.99} {
		got, _ := a.LagQuantile(q)
		if rel := (got - exact[i]) / exact[i]; rel > windows.LagAccuracy || rel < -windows.LagAccuracy {
			t.Errorf("lag p%v = %.3f ms, exact %.3f: off by %.2f%%, more than 1%%", q*100, got, exact[i], rel*100)
		}
	}
}

func TestWatermarkFollowsTheSlowestPartitionAndIdleOnesFollowTheClock(t *testing.T) {
	cfg := windows.Config{Delay: 30 * time.Second, Idle: time.Minute}.WithDefaults()
	now := mustTime("2026-11-28T12:00:00Z")
	mark := func(p int32, max string, seenAgo time.Duration) windows.Mark {
		return windows.Mark{Basis: "event", Partition: p, MaxTime: mustTime(max), SeenAt: now.Add(-seenAgo)}
	}
	f := func(marks []windows.Mark, partitions int, backlogged map[int32]bool, want string) {
		t.Helper()
		got, ok := windows.Watermark(marks, partitions, now, &cfg, backlogged)
		if want == "" {
			if ok {
				t.Errorf("watermark %s, want none (a partition with waiting entries never folded)", got)
			}
			return
		}
		if !ok || !got.Equal(mustTime(want)) {
			t.Errorf("watermark %s (%v), want %s", got, ok, want)
		}
	}
	// Two busy partitions: the slower one minus the delay.
	f([]windows.Mark{mark(0, "2026-11-28T11:59:00Z", time.Second), mark(1, "2026-11-28T11:50:00Z", time.Second)}, 2, nil, "2026-11-28T11:49:30Z")
	// Partition 1 went quiet 5 minutes ago with its stream drained: it
	// follows the clock, so it no longer holds the watermark back.
	f([]windows.Mark{mark(0, "2026-11-28T11:59:00Z", time.Second), mark(1, "2026-11-28T11:50:00Z", 5*time.Minute)}, 2, nil, "2026-11-28T11:58:30Z")
	// The same, but entries wait in its stream (paused, restarted, behind):
	// it keeps its own time, so its windows do not close over them.
	f([]windows.Mark{mark(0, "2026-11-28T11:59:00Z", time.Second), mark(1, "2026-11-28T11:50:00Z", 5*time.Minute)}, 2, map[int32]bool{1: true}, "2026-11-28T11:49:30Z")
	// A partition that never saw anything counts as idle...
	f([]windows.Mark{mark(0, "2026-11-28T11:59:00Z", time.Second)}, 2, nil, "2026-11-28T11:58:30Z")
	// ...unless entries wait in it: then nothing may close.
	f([]windows.Mark{mark(0, "2026-11-28T11:59:00Z", time.Second)}, 2, map[int32]bool{1: true}, "")
	// Refolding or catching up on old events: busy partitions far behind the clock hold it there.
	f([]windows.Mark{mark(0, "2025-06-02T14:00:00Z", time.Second)}, 4, nil, "2025-06-02T13:59:30Z")
	// A bogus future created time counts as now.
	f([]windows.Mark{mark(0, "2031-01-01T00:00:00Z", time.Second)}, 1, nil, "2026-11-28T11:59:30Z")
	// Nothing at all: the wall clock.
	f(nil, 3, nil, "2026-11-28T11:59:30Z")
}

func TestClosedUntilWaitsForTheAllowedLateness(t *testing.T) {
	cfg := windows.Config{}.WithDefaults() // 1m windows: 1m lateness
	f := func(wm string, want string) {
		t.Helper()
		if got := windows.ClosedUntil(mustTime(wm), time.Minute, &cfg); !got.Equal(mustTime(want)) {
			t.Errorf("ClosedUntil(%s) = %s, want %s", wm, got, want)
		}
	}
	f("2026-11-28T10:01:59Z", "2026-11-28T10:00:00Z") // 10:00 window (ends 10:01) needs the watermark at 10:02
	f("2026-11-28T10:02:00Z", "2026-11-28T10:01:00Z") // now it is closed
}

func TestConfigRejectsWhatCannotWork(t *testing.T) {
	for _, c := range []windows.Config{{Sizes: []time.Duration{7 * time.Minute}}, {Dims: []string{"colour"}}, {Sizes: []time.Duration{time.Millisecond}}} {
		if err := c.WithDefaults().Validate(); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
	if err := (windows.Config{}).WithDefaults().Validate(); err != nil {
		t.Fatal(err)
	}
	got, err := windows.ParseDurations("1m=2m, 1h=30d")
	if err != nil || got[time.Minute] != 2*time.Minute || got[time.Hour] != 30*24*time.Hour {
		t.Fatalf("ParseDurations: %v %v", got, err)
	}
	if _, err := windows.ParseDurations("1m:2m"); err == nil {
		t.Fatal("a malformed lateness was accepted")
	}
}

func quantiles(xs []float64, qs ...float64) []float64 {
	s := append([]float64(nil), xs...)
	slices.Sort(s)
	out := make([]float64, len(qs))
	for i, q := range qs {
		out[i] = s[int(q*float64(len(s)-1))]
	}
	return out
}

// BenchmarkAggregateBase: folding a batch's events into its 1m deltas (the
// Go side of a fold, before the database), per event.
func BenchmarkAggregateBase(b *testing.B) {
	cfg := windows.Config{}.WithDefaults()
	evs := randomEvents(rand.New(rand.NewPCG(1, 1)), 4000)
	for i := range evs { // a batch spans about a minute of event time
		evs[i].Created = evs[i].Created.Truncate(time.Hour)
		evs[i].Received = evs[i].Created.Add(time.Second)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N / len(evs) {
		windows.AggregateBase(evs, &cfg)
	}
}
