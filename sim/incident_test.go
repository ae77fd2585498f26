package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestParseIncident(t *testing.T) {
	f := func(in string, want Incident, wantErr string) {
		t.Helper()
		got, err := ParseIncident(in)
		if wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), wantErr) {
				t.Errorf("ParseIncident(%q) = %v, %v; want an error saying %q", in, got, err, wantErr)
			}
			return
		}
		if err != nil || got != want {
			t.Errorf("ParseIncident(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	f("failure-spike@2h/30m", Incident{FailureSpike, 2 * time.Hour, 30 * time.Minute}, "")
	f("lag-surge@0s/5m", Incident{LagSurge, 0, 5 * time.Minute}, "")
	f("failure-spike", Incident{}, "KIND@OFFSET/DURATION")
	f("fire@1h/1m", Incident{}, `kind "fire"`)
	f("volume-drop@soon/1m", Incident{}, `offset "soon"`)
	f("volume-drop@1h/0s", Incident{}, `duration "0s"`)
	f("volume-drop@-1h/1m", Incident{}, `offset "-1h"`)
}

// scenarioWith generates a day's traffic from a fixed start with the
// incidents, and the same without them.
func scenarioWith(incidents ...Incident) (with, without *Scenario, cfg Config) {
	cfg = Config{Customers: 3000, Seed: 42, Span: 12 * time.Hour, StepDelay: 5 * time.Minute}
	without = Generate(cfg)
	cfg.Incidents = incidents
	return Generate(cfg), without, cfg.withDefaults()
}

func inWindow(cfg Config, e Event) bool {
	for _, w := range cfg.windows() {
		if w.holds(e.Created) {
			return true
		}
	}
	return false
}

func TestAFailureSpikeFailsMostTransfersCreatedInIt(t *testing.T) {
	with, without, cfg := scenarioWith(Incident{FailureSpike, 4 * time.Hour, time.Hour})
	ratio := func(sc *Scenario) (in, out float64) {
		outcome := map[string]string{} // transfer -> created in window?
		created := map[string]bool{}
		for _, e := range sc.Events {
			switch e.Topic {
			case "customer_bank_transfer_created":
				created[e.ResourceID] = inWindow(cfg, e)
			case "customer_bank_transfer_completed", "customer_bank_transfer_failed":
				if _, ok := outcome[e.ResourceID]; !ok {
					outcome[e.ResourceID] = e.Topic
				}
			}
		}
		var nIn, fIn, nOut, fOut float64
		for id, topic := range outcome {
			failed := topic == "customer_bank_transfer_failed"
			if created[id] {
				nIn++
				if failed {
					fIn++
				}
			} else {
				nOut++
				if failed {
					fOut++
				}
			}
		}
		return fIn / nIn, fOut / nOut
	}
	in, out := ratio(with)
	base, _ := ratio(without)
	if in < 0.6 || out > 0.15 || base > 0.15 {
		t.Fatalf("bank transfers failed: %.2f of those created in the spike, %.2f of the others, %.2f in the same window without it", in, out, base)
	}
}

func TestAVolumeDropEmptiesItsWindowAndAStallHoldsVerification(t *testing.T) {
	drop := Incident{VolumeDrop, 3 * time.Hour, 30 * time.Minute}
	stall := Incident{VerificationStall, 6 * time.Hour, time.Hour}
	with, without, cfg := scenarioWith(drop, stall)
	var dropWin, stallWin window
	for _, w := range cfg.windows() {
		if w.kind == VolumeDrop {
			dropWin = w
		} else {
			stallWin = w
		}
	}
	count := func(sc *Scenario, w window, pred func(Event) bool) int {
		n := 0
		for _, e := range sc.Events {
			if w.holds(e.Created) && pred(e) {
				n++
			}
		}
		return n
	}
	all := func(Event) bool { return true }
	verification := func(e Event) bool {
		return strings.HasPrefix(e.Topic, "customer_") && e.ResourceType == "customers" && e.Topic != "customer_created"
	}
	if n, base := count(with, dropWin, all), count(without, dropWin, all); n != 0 || base < 100 {
		t.Fatalf("events in the volume drop: %d (without it: %d)", n, base)
	}
	if n, base := count(with, stallWin, verification), count(without, stallWin, verification); n != 0 || base < 50 {
		t.Fatalf("verification steps in the stall: %d (without it: %d)", n, base)
	}
	if n := count(with, stallWin, func(e Event) bool { return e.Topic == "customer_created" }); n < 50 {
		t.Fatalf("customers still start during a verification stall: got %d created", n)
	}
	// Postponed steps keep every lifecycle in order, and nothing is lost
	// but the customers who would have started in the drop.
	last := map[string]time.Time{}
	for _, e := range with.Events {
		if e.Created.Before(last[e.ResourceID]) {
			t.Fatalf("resource %s: %s at %s before an earlier step at %s", e.ResourceID, e.Topic, e.Created, last[e.ResourceID])
		}
		last[e.ResourceID] = e.Created
	}
}

func TestALagSurgeDelaysDeliveryOfItsEvents(t *testing.T) {
	with, _, cfg := scenarioWith(Incident{LagSurge, 2 * time.Hour, 20 * time.Minute})
	delayed := 0
	for _, e := range with.Events {
		switch {
		case inWindow(cfg, e):
			if e.Delay < 5*time.Minute || e.Delay >= 10*time.Minute {
				t.Fatalf("event created in the surge delayed %s, want [5m, 10m)", e.Delay)
			}
			delayed++
		case e.Delay != 0:
			t.Fatalf("event created at %s outside the surge delayed %s", e.Created, e.Delay)
		}
	}
	if delayed < 100 {
		t.Fatalf("only %d events in the surge", delayed)
	}
	// NextDue gives each event once it is due (created + delay), in the
	// order they fall due, later events passing the delayed ones.
	start := time.Now()
	o := NewOrdered(Config{Customers: 20, Seed: 9, Start: start, Span: 100 * time.Millisecond, StepDelay: 20 * time.Millisecond,
		Incidents: []Incident{{LagSurge, 0, 150 * time.Millisecond}}})
	var prev time.Time
	passed := false
	var lastCreated time.Time
	for range 60 {
		ev, err := o.NextDue(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		due := ev.Created.Add(ev.Delay)
		if now := time.Now(); now.Before(due) {
			t.Fatalf("event due %s given early, at %s", due, now)
		}
		if due.Before(prev) {
			t.Fatalf("event due %s given after one due %s", due, prev)
		}
		if ev.Created.Before(lastCreated) {
			passed = true // a delayed event came after a later-created one
		}
		prev, lastCreated = due, later(lastCreated, ev.Created)
	}
	if !passed {
		t.Fatal("no delayed event was passed by a later one")
	}
}

func TestIncidentsAreInTheGroundTruth(t *testing.T) {
	cfg := Config{Start: time.Date(2025, 6, 2, 0, 0, 0, 0, time.UTC), Incidents: []Incident{{FailureSpike, 2 * time.Hour, 30 * time.Minute}}}
	var b bytes.Buffer
	if err := WriteIncidents(&b, cfg); err != nil {
		t.Fatal(err)
	}
	var got []IncidentRecord
	if err := json.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	want := IncidentRecord{FailureSpike, time.Date(2025, 6, 2, 2, 0, 0, 0, time.UTC), time.Date(2025, 6, 2, 2, 30, 0, 0, time.UTC)}
	if len(got) != 1 || got[0] != want {
		t.Fatalf("incidents %+v, want %+v", got, want)
	}
}
