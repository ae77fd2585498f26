package alert

import (
	"testing"
	"time"
)

var base = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

// eval is one evaluation: at base+at, the condition holds or not; the
// alert must then be in state with notify due.
type eval struct {
	at     time.Duration
	holds  bool
	state  State
	notify Notify
}

func TestStep(t *testing.T) {
	const s = time.Second
	tests := []struct {
		name   string
		timing Timing
		evals  []eval
	}{
		{"for>0: pending, then firing once it has held for for", Timing{For: 30 * s}, []eval{
			{0, false, StateInactive, NotifyNone},
			{15 * s, true, StatePending, NotifyNone},
			{30 * s, true, StatePending, NotifyNone},
			{44 * s, true, StatePending, NotifyNone},
			{45 * s, true, StateFiring, NotifyFiring},
			{60 * s, true, StateFiring, NotifyNone},
			{75 * s, false, StateResolved, NotifyResolved},
			{90 * s, false, StateResolved, NotifyNone},
		}},
		{"for=0: fires at the first evaluation it holds", Timing{}, []eval{
			{0, true, StateFiring, NotifyFiring},
			{15 * s, true, StateFiring, NotifyNone},
			{30 * s, false, StateResolved, NotifyResolved},
			{45 * s, true, StateFiring, NotifyFiring},
		}},
		{"pending cancelled: back to inactive, nothing sent", Timing{For: time.Minute}, []eval{
			{0, true, StatePending, NotifyNone},
			{15 * s, true, StatePending, NotifyNone},
			{30 * s, false, StateInactive, NotifyNone},
			// A new episode waits for for again, from its own start.
			{45 * s, true, StatePending, NotifyNone},
			{90 * s, true, StatePending, NotifyNone},
			{105 * s, true, StateFiring, NotifyFiring},
		}},
		{"flapping within resolve_after: stays firing, no new notification", Timing{ResolveAfter: time.Minute}, []eval{
			{0, true, StateFiring, NotifyFiring},
			{15 * s, false, StateFiring, NotifyNone},
			{30 * s, true, StateFiring, NotifyNone},
			{45 * s, false, StateFiring, NotifyNone},
			{60 * s, true, StateFiring, NotifyNone},
			{75 * s, false, StateFiring, NotifyNone},
			{120 * s, false, StateFiring, NotifyNone}, // clear 45s of 60s
			{135 * s, true, StateFiring, NotifyNone},
		}},
		{"resolves once clear for resolve_after", Timing{ResolveAfter: time.Minute}, []eval{
			{0, true, StateFiring, NotifyFiring},
			{15 * s, false, StateFiring, NotifyNone},
			{30 * s, false, StateFiring, NotifyNone},
			{74 * s, false, StateFiring, NotifyNone},
			{75 * s, false, StateResolved, NotifyResolved},
			{90 * s, false, StateResolved, NotifyNone},
		}},
		{"repeat interval for what stays firing", Timing{Repeat: time.Hour}, []eval{
			{0, true, StateFiring, NotifyFiring},
			{30 * time.Minute, true, StateFiring, NotifyNone},
			{time.Hour - s, true, StateFiring, NotifyNone},
			{time.Hour, true, StateFiring, NotifyRepeat},
			{time.Hour + 15*s, true, StateFiring, NotifyNone},
			{2*time.Hour - s, true, StateFiring, NotifyNone},
			{2 * time.Hour, true, StateFiring, NotifyRepeat},
			{2*time.Hour + 15*s, false, StateResolved, NotifyResolved},
		}},
		{"repeat goes on while recovering", Timing{ResolveAfter: 10 * time.Minute, Repeat: time.Hour}, []eval{
			{0, true, StateFiring, NotifyFiring},
			{55 * time.Minute, false, StateFiring, NotifyNone},
			{time.Hour, false, StateFiring, NotifyRepeat},
			{65 * time.Minute, false, StateResolved, NotifyResolved},
		}},
		{"for and resolve_after together", Timing{For: 30 * s, ResolveAfter: 30 * s}, []eval{
			{0, true, StatePending, NotifyNone},
			{30 * s, true, StateFiring, NotifyFiring},
			{45 * s, false, StateFiring, NotifyNone},
			{75 * s, false, StateResolved, NotifyResolved},
			{90 * s, true, StatePending, NotifyNone},
			{105 * s, false, StateInactive, NotifyNone},
		}},
		{"no repeat when the interval is 0", Timing{}, []eval{
			{0, true, StateFiring, NotifyFiring},
			{24 * time.Hour, true, StateFiring, NotifyNone},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := NewAlert("transfer-failures-high", map[string]string{"topic": "customer_bank_transfer_failed"})
			for i, e := range tc.evals {
				var n Notify
				a, n = Step(a, tc.timing, e.holds, float64(i), base.Add(e.at))
				if a.State != e.state || n != e.notify {
					t.Fatalf("eval %d (+%s, holds %v): state %s, notify %q; want %s, %q", i, e.at, e.holds, a.State, n, e.state, e.notify)
				}
				if a.Value != float64(i) || !a.LastEvaluated.Equal(base.Add(e.at)) {
					t.Fatalf("eval %d: value %g, last evaluated %s", i, a.Value, a.LastEvaluated)
				}
				if n != NotifyNone && !a.LastNotified.Equal(base.Add(e.at)) {
					t.Fatalf("eval %d: notified %q but last notified %s", i, n, a.LastNotified)
				}
			}
		})
	}
}

func TestStepTimestamps(t *testing.T) {
	tm := Timing{For: 30 * time.Second, ResolveAfter: time.Minute}
	a := NewAlert("r", map[string]string{"topic": "t"})
	if a.Fingerprint != Fingerprint("r", map[string]string{"topic": "t"}) || a.State != StateInactive {
		t.Fatalf("new alert: %+v", a)
	}
	a, _ = Step(a, tm, true, 1, base)
	if !a.ActiveSince.Equal(base) || !a.FiringSince.IsZero() {
		t.Fatalf("pending: %+v", a)
	}
	a, _ = Step(a, tm, true, 2, base.Add(30*time.Second))
	if !a.FiringSince.Equal(base.Add(30*time.Second)) || !a.ActiveSince.Equal(base) {
		t.Fatalf("firing: %+v", a)
	}
	a, _ = Step(a, tm, false, 0, base.Add(45*time.Second))
	if !a.Recovering() || !a.ClearSince.Equal(base.Add(45*time.Second)) {
		t.Fatalf("recovering: %+v", a)
	}
	a, _ = Step(a, tm, false, 0, base.Add(105*time.Second))
	if a.State != StateResolved || !a.ResolvedAt.Equal(base.Add(105*time.Second)) || a.Recovering() {
		t.Fatalf("resolved: %+v", a)
	}
	// A new episode keeps the fingerprint and starts fresh.
	b, n := Step(a, Timing{}, true, 5, base.Add(2*time.Minute))
	if n != NotifyFiring || !b.FiringSince.Equal(base.Add(2*time.Minute)) || !b.ResolvedAt.IsZero() || b.Fingerprint != a.Fingerprint {
		t.Fatalf("new episode: %+v", b)
	}
	// Step does not change the alert it is given, labels included.
	b.Labels["topic"] = "changed"
	if a.Labels["topic"] != "t" || a.State != StateResolved {
		t.Fatalf("Step changed its input: %+v", a)
	}
	// A stale evaluation (older than the last) changes nothing.
	c, n := Step(b, Timing{}, false, 9, base.Add(time.Minute))
	if n != NotifyNone || c.State != StateFiring || c.Value != 5 {
		t.Fatalf("stale evaluation: %q %+v", n, c)
	}
}

func TestAcknowledge(t *testing.T) {
	tm := Timing{Repeat: time.Hour}
	a := NewAlert("r", nil)
	if _, err := a.Acknowledge("ana", base); err == nil {
		t.Fatal("acknowledged an inactive alert")
	}
	a, _ = Step(a, tm, true, 1, base)
	if _, err := a.Acknowledge("  ", base); err == nil {
		t.Fatal("acknowledged without a name")
	}
	a, err := a.Acknowledge("ana", base.Add(time.Minute))
	if err != nil || !a.Acknowledged() || a.AckedBy != "ana" || !a.AckedAt.Equal(base.Add(time.Minute)) {
		t.Fatalf("acknowledge: %v %+v", err, a)
	}
	// The first acknowledgement stands.
	a, _ = a.Acknowledge("bob", base.Add(2*time.Minute))
	if a.AckedBy != "ana" {
		t.Fatalf("second acknowledgement replaced the first: %+v", a)
	}
	// No repeat while acknowledged, still firing.
	for _, at := range []time.Duration{time.Hour, 2 * time.Hour, 5 * time.Hour} {
		var n Notify
		a, n = Step(a, tm, true, 1, base.Add(at))
		if n != NotifyNone || a.State != StateFiring {
			t.Fatalf("+%s acknowledged: %q %s", at, n, a.State)
		}
	}
	// Resolving still notifies, and clears the acknowledgement.
	a, n := Step(a, tm, false, 0, base.Add(6*time.Hour))
	if n != NotifyResolved || a.Acknowledged() || !a.AckedAt.IsZero() {
		t.Fatalf("resolve: %q %+v", n, a)
	}
	// The next episode repeats again.
	a, n = Step(a, tm, true, 1, base.Add(7*time.Hour))
	if n != NotifyFiring {
		t.Fatalf("refire: %q", n)
	}
	if _, n = Step(a, tm, true, 1, base.Add(8*time.Hour)); n != NotifyRepeat {
		t.Fatalf("repeat after a new episode: %q", n)
	}
}

func TestTimingOf(t *testing.T) {
	r := &Rule{ForDuration: time.Minute, ResolveAfterDuration: 2 * time.Minute}
	got := TimingOf(&Rules{RepeatIntervalDuration: 4 * time.Hour}, r)
	if got != (Timing{For: time.Minute, ResolveAfter: 2 * time.Minute, Repeat: 4 * time.Hour}) {
		t.Fatalf("TimingOf: %+v", got)
	}
	if got := TimingOf(nil, r); got.Repeat != 0 {
		t.Fatalf("TimingOf(nil): %+v", got)
	}
}
