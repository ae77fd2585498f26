package alert_test

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/hookstream/hookstream/alert"
	"github.com/hookstream/hookstream/dwolla"
	"github.com/hookstream/hookstream/sim"
	"github.com/hookstream/hookstream/store"
)

// TestSimulatedFailureSpike runs the built-in rules (alert/rules.yaml, with
// a webhook target added) over simulated traffic with a failure spike: an
// hour in which most bank transfers fail. The evaluator runs every minute of
// simulated time on what has been stored by then, and the notifier sends
// after each evaluation. The failure rule (transfer-failure-ratio-high) must
// reach the sink exactly once firing and once resolved.
func TestSimulatedFailureSpike(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	s := newSink(t, secret, f.now)
	builtin, err := os.ReadFile("rules.yaml")
	if err != nil {
		t.Fatal(err)
	}
	rs := f.rules(t, string(builtin)+fmt.Sprintf("targets:\n  - {name: hook, kind: webhook, url: %s, secret: %s}\n", s.URL, secret))

	const preroll = 12 * time.Hour // traffic in full swing before the evaluated span
	start := t0.Truncate(time.Hour)
	spike := sim.Incident{Kind: sim.FailureSpike, Offset: preroll + 2*time.Hour, Duration: time.Hour}
	sc := sim.Generate(sim.Config{Customers: 300 * 18, Seed: 5, Start: start.Add(-preroll), Span: preroll + 6*time.Hour,
		StepDelay: 5 * time.Minute, Incidents: []sim.Incident{spike}})
	ev := alert.NewEvaluator(f.DB, f.Redis, f.Keys, rs, f.wf.Config(), alert.EvaluatorOptions{Now: f.now, Holder: "test", Interval: time.Minute})
	n := f.notifier(rs, alert.NotifierOptions{})

	end := start.Add(6 * time.Hour)
	i := 0
	evs := sc.Events // in created order
	for clock := start; clock.Before(end); clock = clock.Add(time.Minute) {
		var batch []store.Event
		for ; i < len(evs) && evs[i].Created.Before(clock); i++ {
			e := evs[i]
			if e.Created.Before(start.Add(-time.Hour)) {
				continue // before the windows the rules look at
			}
			info, _ := dwolla.LookupTopic(e.Topic)
			batch = append(batch, store.Event{ID: e.ID, Topic: e.Topic, Family: info.Family, Outcome: string(info.Outcome), Terminal: info.Terminal,
				ResourceType: e.ResourceType, ResourceID: e.ResourceID, CustomerID: e.CustomerID, Created: e.Created,
				Received: e.Created.Add(time.Second + e.Delay), Source: "webhook", Body: []byte("{}")})
		}
		f.set(clock)
		if len(batch) > 0 {
			f.fold(t, batch)
		}
		f.tick(t, ev)
		drain(t, n, rs)
	}

	got, dup := s.accepted()
	var (
		states []string
		times  []time.Duration
	)
	for _, r := range got {
		t.Logf("%s %s %s: %d alerts", r.Payload.Timestamp.Format(time.RFC3339), r.Payload.Data.Rule, r.Payload.Type, len(r.Payload.Data.Alerts))
		if r.Payload.Data.Rule == "transfer-failure-ratio-high" {
			states = append(states, fmt.Sprintf("%s@%s", r.Payload.Type, r.Payload.Timestamp.Sub(start)))
			times = append(times, r.Payload.Timestamp.Sub(start))
		}
	}
	if dup != 0 {
		t.Errorf("%d duplicate deliveries", dup)
	}
	if len(states) != 2 || states[0][:len("alert.firing")] != "alert.firing" || states[1][:len("alert.resolved")] != "alert.resolved" {
		t.Fatalf("the failure rule sent %v; want one firing, then one resolved (the spike is from %s to %s)",
			states, spike.Offset-preroll, spike.Offset-preroll+spike.Duration)
	}
	// It fires within 20 minutes of the spike's start (the failures follow
	// the transfers created in it, the rule wants 5m above 40%, and the
	// group waits 30s), and resolves within 45 minutes of its end (the last
	// of those failures, then resolve_after 15m).
	from, to := spike.Offset-preroll, spike.Offset-preroll+spike.Duration
	if times[0] < from || times[0] > from+20*time.Minute || times[1] < to || times[1] > to+45*time.Minute {
		t.Fatalf("the failure rule sent %v for a spike from %s to %s", states, from, to)
	}
}
