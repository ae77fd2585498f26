package anomaly_test

import (
	"context"
	"hash/fnv"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/hookstream/hookstream/anomaly"
	"github.com/hookstream/hookstream/dwolla"
	"github.com/hookstream/hookstream/sim"
	"github.com/hookstream/hookstream/store"
	"github.com/hookstream/hookstream/windows"
)

// simUsualLag is how long after its created time a simulated event is
// received when nothing is wrong: 0.2 to 2 seconds, decided by its id. A
// lag surge's delay (sim.Event.Delay) comes on top.
func simUsualLag(id string) time.Duration {
	h := fnv.New64a()
	h.Write([]byte(id))
	return 200*time.Millisecond + time.Duration(h.Sum64()%1800)*time.Millisecond
}

// simReceived is when a simulated event reaches hookstream.
func simReceived(e sim.Event) time.Time { return e.Created.Add(simUsualLag(e.ID) + e.Delay) }

// storeSim folds simulated events created in [from, to) into the windows,
// in created order, and closes what the watermark passes every closeEvery
// of event time, as the closer would (one close over days of windows costs
// far more than many short ones).
func (s *scoring) storeSim(t *testing.T, evs []sim.Event, from, to time.Time) {
	t.Helper()
	const closeEvery = 2 * time.Hour
	var batch []store.Event
	flush := func() {
		if len(batch) > 0 {
			s.fold(t, batch)
			batch = batch[:0]
		}
	}
	closeUntil := func(until time.Time) {
		flush()
		s.clock = until.Add(time.Minute) // not idle: windows close on the events' watermark, up to until
		if _, err := s.closer.Tick(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	next := from.Add(closeEvery)
	for _, e := range evs { // in created order
		if e.Created.Before(from) || !e.Created.Before(to) {
			continue
		}
		for !e.Created.Before(next) {
			closeUntil(next)
			next = next.Add(closeEvery)
		}
		info, _ := dwolla.LookupTopic(e.Topic)
		batch = append(batch, store.Event{ID: e.ID, Topic: e.Topic, Family: info.Family, Outcome: string(info.Outcome), Terminal: info.Terminal,
			ResourceType: e.ResourceType, ResourceID: e.ResourceID, CustomerID: e.CustomerID, Created: e.Created, Received: simReceived(e),
			Source: "webhook", Body: []byte("{}")})
		if len(batch) == 5000 {
			flush()
		}
	}
	closeUntil(to)
}

// simDays is the simulated traffic of TestSimulatedIncidents, as offsets
// from day0: four days of history (what the 1h series need to warm up),
// a clean day, and a day with one incident of each kind. The incidents
// are hours apart, so that the flag-once hold of one (12 windows) never
// covers the next in a series both touch: a volume drop halves an hour of
// verifications (nobody starts in it), so the verification stall comes 13
// hours after it; and a stall leaves the transfer families downstream
// without events for a while (nobody newly verified funds or pays), so it
// comes after the volume drop, whose silence would otherwise not be new.
var simDays = struct {
	preroll               time.Duration // traffic before day0, not stored
	history, clean, end   time.Duration // scoring starts at history; the clean day ends at clean
	span                  time.Duration // new customers start until then
	failureSpike, drop    sim.Incident
	shortSurge, longSurge sim.Incident
	verificationStall     sim.Incident
	customersPerHour      int
}{
	// Customers start from day0 - preroll, so that the first stored window
	// holds traffic in full swing, as when hookstream is installed on an
	// account already in use (a simulation's first hours ramp up from
	// nothing, and a series that has seen an empty window once would
	// never find a silence new).
	preroll: 12 * time.Hour,
	history: 96 * time.Hour, clean: 120 * time.Hour, end: 139 * time.Hour, span: 144 * time.Hour,
	failureSpike: sim.Incident{Kind: sim.FailureSpike, Offset: 121 * time.Hour, Duration: time.Hour},
	drop:         sim.Incident{Kind: sim.VolumeDrop, Offset: 124 * time.Hour, Duration: 30 * time.Minute},
	// Every event created in a lag surge is delayed by half to all of its
	// length (at most 10 minutes): of a 2-minute surge, deliveries resume
	// within its first two minutes; of a 20-minute one, nothing arrives
	// for the first five, and no lag can be measured before.
	shortSurge: sim.Incident{Kind: sim.LagSurge, Offset: 126 * time.Hour, Duration: 2 * time.Minute},
	longSurge:  sim.Incident{Kind: sim.LagSurge, Offset: 127 * time.Hour, Duration: 20 * time.Minute},
	// A stall shows at 1h only when it holds most of an hour: the steps a
	// shorter one holds back happen within the same hour.
	verificationStall: sim.Incident{Kind: sim.VerificationStall, Offset: 137 * time.Hour, Duration: 2 * time.Hour},
	customersPerHour:  62, // about 88,000 events in five days
}

// TestSimulatedIncidents scores simulated traffic with the built-in
// watched series: after four days of history, a clean day raises at most
// two false anomalies per series, and each kind of incident is flagged by
// the series that watches for it within two of its windows.
func TestSimulatedIncidents(t *testing.T) {
	t.Parallel()
	d := simDays
	// The dimensions the built-in series use (not resource_type: less to fold).
	s := newScoringWith(t, windows.Config{Dims: []string{windows.DimTopic, windows.DimFamily}, Delay: time.Second, Idle: time.Hour})
	ctx := context.Background()
	var err error
	if s.watch, err = anomaly.DefaultWatch(s.wf.Config()); err != nil {
		t.Fatal(err)
	}
	at := func(in sim.Incident) time.Time { return day0.Add(in.Offset) }
	var incidents []sim.Incident
	for _, in := range []sim.Incident{d.failureSpike, d.drop, d.shortSurge, d.longSurge, d.verificationStall} {
		in.Offset += d.preroll
		incidents = append(incidents, in)
	}
	hours := int((d.preroll + d.span) / time.Hour)
	sc := sim.Generate(sim.Config{Customers: d.customersPerHour * hours, Seed: 3, Start: day0.Add(-d.preroll), Span: d.preroll + d.span,
		StepDelay: 5 * time.Minute, Incidents: incidents})
	s.storeSim(t, sc.Events, day0, day0.Add(d.history))
	if _, err := s.scorer().Tick(ctx); err != nil { // the series are watched from the windows closing from now on
		t.Fatal(err)
	}
	s.storeSim(t, sc.Events, day0.Add(d.history), day0.Add(d.end))
	scorer := s.scorer()
	for {
		n, err := scorer.Tick(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
	}
	recs, err := anomaly.List(ctx, s.DB, anomaly.Filter{Only: true, Limit: 10_000})
	if err != nil {
		t.Fatal(err)
	}
	slices.Reverse(recs) // oldest first
	for _, r := range recs {
		t.Logf("%s %s %s = %.4g, score %.3f: %s", r.Start.Format(time.RFC3339), r.Window, r.Series, r.Value, r.Score, r.Reason)
	}
	// flagged is series' first anomaly in the two windows of size from from.
	flagged := func(series string, from time.Time, size time.Duration) (anomaly.Record, bool) {
		for _, r := range recs {
			if r.Series == series && !r.Start.Before(from) && r.Start.Before(from.Add(2*size)) {
				return r, true
			}
		}
		return anomaly.Record{}, false
	}
	found := func(t *testing.T, series string, from time.Time, size time.Duration) {
		t.Helper()
		r, ok := flagged(series, from, size)
		if !ok {
			t.Errorf("%s flagged nothing in the two %s windows from %s", series, size, from.Format(time.RFC3339))
			return
		}
		t.Logf("%s flagged window %d of %s from %s: = %.4g, score %.3f", series, r.Start.Sub(from)/size, size, from.Format(time.RFC3339), r.Value, r.Score)
	}

	t.Run("clean day", func(t *testing.T) {
		falses := map[string]int{}
		for _, r := range recs {
			if r.Start.Before(day0.Add(d.clean)) {
				falses[r.Series]++
			}
		}
		t.Logf("false anomalies in the clean day, by series (none in the others): %v", falses)
		for series, n := range falses {
			if n > 2 {
				t.Errorf("%s raised %d false anomalies in a clean day", series, n)
			}
		}
	})
	t.Run(sim.FailureSpike, func(t *testing.T) {
		for _, series := range []string{"transfer-failures", "bank-transfer-failures"} {
			found(t, series, at(d.failureSpike), 15*time.Minute)
		}
	})
	t.Run(sim.VolumeDrop, func(t *testing.T) {
		// Every family busy enough that a silent window is news: about
		// eight events a window or more. (Mass payments, one or two a
		// window, and micro-deposits, six, have silent windows now and
		// then; their drops are not required.)
		res, err := windows.QueryMetrics(ctx, s.DB, s.wf.Config(), windows.MetricQuery{Window: 5 * time.Minute, Metric: windows.MetricCount,
			GroupBy: windows.DimFamily, From: day0.Add(d.history), To: day0.Add(d.clean)})
		if err != nil {
			t.Fatal(err)
		}
		sum := map[string]float64{}
		for _, p := range res.Points {
			sum[p.Group] += p.Value
		}
		busy := 0
		for _, family := range slices.Sorted(maps.Keys(sum)) {
			mean := sum[family] / float64((d.clean-d.history)/(5*time.Minute))
			if mean < 8 {
				if r, ok := flagged("volume/family="+family, at(d.drop), 5*time.Minute); ok {
					t.Logf("volume/family=%s (%.1f events a window, not required) flagged window %d", family, mean, r.Start.Sub(at(d.drop))/(5*time.Minute))
				} else {
					t.Logf("volume/family=%s (%.1f events a window, not required) flagged nothing in two windows", family, mean)
				}
				continue
			}
			busy++
			found(t, "volume/family="+family, at(d.drop), 5*time.Minute)
		}
		if busy < 3 {
			t.Errorf("only %d families with eight events a window: %v", busy, sum)
		}
	})
	t.Run(sim.LagSurge, func(t *testing.T) {
		found(t, "delivery-lag", at(d.shortSurge), time.Minute)
		// A long surge, from its first delayed delivery.
		var first time.Time
		for _, e := range sc.Events {
			if e.Delay > 0 && !e.Created.Before(at(d.longSurge)) && e.Created.Before(at(d.longSurge).Add(d.longSurge.Duration)) {
				if r := simReceived(e); first.IsZero() || r.Before(first) {
					first = r
				}
			}
		}
		first = windows.Start(first, time.Minute)
		t.Logf("the %s surge's first delayed delivery is in the window %s after its start", d.longSurge.Duration, first.Sub(at(d.longSurge)))
		found(t, "delivery-lag", first, time.Minute)
	})
	t.Run(sim.VerificationStall, func(t *testing.T) {
		found(t, "verifications", at(d.verificationStall), time.Hour)
	})
}
