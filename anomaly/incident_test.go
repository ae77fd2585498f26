package anomaly_test

import (
	"context"
	"testing"
	"time"

	"github.com/hookstream/hookstream/anomaly"
	"github.com/hookstream/hookstream/dwolla"
	"github.com/hookstream/hookstream/sim"
	"github.com/hookstream/hookstream/store"
	"github.com/hookstream/hookstream/windows"
)

// storeSim folds simulated events created in [from, to) into the windows.
func (s *scoring) storeSim(t *testing.T, evs []sim.Event, from, to time.Time) {
	t.Helper()
	var batch []store.Event
	for _, e := range evs {
		if e.Created.Before(from) || !e.Created.Before(to) {
			continue
		}
		info, _ := dwolla.LookupTopic(e.Topic)
		batch = append(batch, store.Event{ID: e.ID, Topic: e.Topic, Family: info.Family, Outcome: string(info.Outcome), Terminal: info.Terminal,
			ResourceType: e.ResourceType, ResourceID: e.ResourceID, CustomerID: e.CustomerID, Created: e.Created, Received: e.Created.Add(time.Second),
			Source: "webhook", Body: []byte("{}")})
		if len(batch) == 5000 {
			s.fold(t, batch)
			batch = batch[:0]
		}
	}
	if len(batch) > 0 {
		s.fold(t, batch)
	}
	s.clock = to.Add(time.Minute) // not idle: windows close on the events' watermark, up to to
	if _, err := s.closer.Tick(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// Four days of simulated traffic, then a day with a failure spike, scored
// with the built-in watched series.
func TestASimulatedFailureSpikeIsFound(t *testing.T) {
	t.Parallel()
	s := newScoringWith(t, windows.Config{Delay: time.Second, Idle: time.Hour})
	ctx := context.Background()
	var err error
	if s.watch, err = anomaly.DefaultWatch(s.wf.Config()); err != nil {
		t.Fatal(err)
	}
	start := day0
	incident := sim.Incident{Kind: sim.FailureSpike, Offset: 108 * time.Hour, Duration: time.Hour}
	sc := sim.Generate(sim.Config{Customers: 7500, Seed: 3, Start: start, Span: 120 * time.Hour, StepDelay: 5 * time.Minute, Incidents: []sim.Incident{incident}})
	s.storeSim(t, sc.Events, start, start.Add(96*time.Hour))
	if _, err := s.scorer().Tick(ctx); err != nil {
		t.Fatal(err)
	}
	s.storeSim(t, sc.Events, start.Add(96*time.Hour), start.Add(118*time.Hour)) // before new customers stop at 120h
	sc2 := s.scorer()
	for {
		n, err := sc2.Tick(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
	}
	// Both failure series flag the spike within two of their 15m windows.
	from := start.Add(incident.Offset)
	for _, series := range []string{"transfer-failures", "bank-transfer-failures"} {
		found, err := anomaly.List(ctx, s.DB, anomaly.Filter{Series: series, From: from, To: from.Add(30 * time.Minute), Only: true})
		if err != nil {
			t.Fatal(err)
		}
		if len(found) == 0 {
			t.Errorf("the failure spike from %s was not flagged by %s within two windows", from.Format(time.RFC3339), series)
		}
	}
	// Outside the incident (and the two hours after it, while failed
	// transfers still settle), a watched series raises at most two false
	// anomalies in the scored day.
	recs, err := anomaly.List(ctx, s.DB, anomaly.Filter{Only: true, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	falses := map[string]int{}
	for _, r := range recs {
		t.Logf("%s %s %s = %.3f, score %.3f: %s", r.Start.Format(time.RFC3339), r.Window, r.Series, r.Value, r.Score, r.Reason)
		if r.Start.Before(from) || !r.Start.Before(from.Add(incident.Duration+2*time.Hour)) {
			falses[r.Series]++
		}
	}
	for series, n := range falses {
		if n > 2 {
			t.Errorf("%s raised %d false anomalies in a day", series, n)
		}
	}
}
