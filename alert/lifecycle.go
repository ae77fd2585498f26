package alert

import (
	"errors"
	"fmt"
	"maps"
	"strings"
	"time"
)

// The states an alert goes through besides firing and resolved (slack.go):
// inactive (its condition does not hold and it has never fired, or a
// pending alert whose condition stopped), pending (the condition holds but
// has not held for the rule's for yet), firing, resolved.
const (
	StateInactive State = "inactive"
	StatePending  State = "pending"
)

// Notify is the notification an evaluation makes due for one alert.
type Notify string

const (
	NotifyNone     Notify = ""         // nothing to send
	NotifyFiring   Notify = "firing"   // the alert started firing
	NotifyResolved Notify = "resolved" // the alert resolved
	NotifyRepeat   Notify = "repeat"   // still firing: a reminder after the repeat interval
)

// Timing is what drives an alert's transitions: the rule's for and
// resolve_after, and the rules file's repeat interval.
type Timing struct {
	// For is how long the condition must hold before the alert fires; 0
	// fires at the first evaluation it holds.
	For time.Duration
	// ResolveAfter is how long a firing alert's condition must stay clear
	// before it resolves; 0 resolves at the first evaluation it is clear.
	ResolveAfter time.Duration
	// Repeat is how long after its last notification a firing alert is
	// notified again; 0 never repeats.
	Repeat time.Duration
}

// TimingOf is the timing of rule r in the rules file rs (rs may be nil:
// no repeat).
func TimingOf(rs *Rules, r *Rule) Timing {
	t := Timing{For: r.ForDuration, ResolveAfter: r.ResolveAfterDuration}
	if rs != nil {
		t.Repeat = rs.RepeatIntervalDuration
	}
	return t
}

// Alert is the state of one alert: one rule and one label set, identified
// by its fingerprint. Step moves it from one evaluation to the next; it
// is a value and Step never changes the one it is given.
type Alert struct {
	Fingerprint string
	Rule        string
	Labels      map[string]string
	State       State

	// ActiveSince is when the condition started to hold in the current
	// (or, once resolved, the last) episode: when it went pending, or
	// fired at once with for 0.
	ActiveSince time.Time
	// FiringSince is when the current (or last) episode started firing.
	FiringSince time.Time
	// ClearSince is, while firing, the first evaluation at which the
	// condition no longer held; zero while it holds. A firing alert with
	// ClearSince set is recovering: it resolves once the condition has
	// stayed clear for ResolveAfter.
	ClearSince time.Time
	// ResolvedAt is when the last episode resolved; zero while it has
	// not.
	ResolvedAt time.Time

	Value         float64   // the value at the last evaluation
	LastEvaluated time.Time // the last evaluation
	// LastNotified is the last evaluation that made a notification due
	// (Step sets it together with the Notify it returns).
	LastNotified time.Time

	// AckedBy and AckedAt say who acknowledged the firing alert, and when;
	// empty and zero when nobody did. An acknowledged alert gets no repeat
	// notifications; resolving clears the acknowledgement.
	AckedBy string
	AckedAt time.Time
}

// NewAlert is the inactive alert of rule for labels (which it copies).
func NewAlert(rule string, labels map[string]string) Alert {
	return Alert{
		Fingerprint: Fingerprint(rule, labels),
		Rule:        rule,
		Labels:      maps.Clone(labels),
		State:       StateInactive,
	}
}

// ErrNotFiring is acknowledging an alert that does not fire.
var ErrNotFiring = errors.New("only a firing alert can be acknowledged")

// Acknowledged says whether someone acknowledged the alert.
func (a Alert) Acknowledged() bool { return a.AckedBy != "" }

// Recovering says whether the alert fires but its condition no longer
// holds (it resolves once it has stayed clear for the rule's
// resolve_after).
func (a Alert) Recovering() bool { return a.State == StateFiring && !a.ClearSince.IsZero() }

// Acknowledge records that by acknowledged the alert at now. Only a firing
// alert can be acknowledged; acknowledging it again changes nothing (the
// first acknowledgement stands).
func (a Alert) Acknowledge(by string, now time.Time) (Alert, error) {
	by = strings.TrimSpace(by)
	if by == "" {
		return a, fmt.Errorf("alert %s: acknowledge: say who acknowledges it", a.Fingerprint)
	}
	if a.State != StateFiring {
		return a, fmt.Errorf("alert %s: acknowledge: it is %s: %w", a.Fingerprint, a.State, ErrNotFiring)
	}
	if a.Acknowledged() {
		return a, nil
	}
	a.AckedBy, a.AckedAt = by, now
	return a, nil
}

// Step is one evaluation of the alert at now: holds says whether the
// rule's condition holds, value is the measured value. It returns the new
// state and the notification that is due, like Prometheus and Alertmanager:
//
//   - inactive or resolved, condition holds: pending, or with For 0 firing
//     at once (NotifyFiring);
//   - pending, condition holds: firing (NotifyFiring) once it has held for
//     For since ActiveSince, else still pending;
//   - pending, condition clear: back to inactive, with no notification;
//   - firing, condition holds: still firing; a recovering alert (see
//     ClearSince) stops recovering without a new notification (flap
//     damping); NotifyRepeat when Repeat has passed since LastNotified and
//     nobody acknowledged it;
//   - firing, condition clear: resolved (NotifyResolved) once it has been
//     clear for ResolveAfter since the first clear evaluation, which
//     clears the acknowledgement; until then still firing (and repeats go
//     on as above);
//   - inactive or resolved, condition clear: unchanged.
//
// Time comes only from now. An evaluation older than the alert's last one
// (a stale evaluator) changes nothing and notifies nothing.
func Step(prev Alert, t Timing, holds bool, value float64, now time.Time) (Alert, Notify) {
	if now.Before(prev.LastEvaluated) {
		return prev, NotifyNone
	}
	a := prev
	a.Labels = maps.Clone(prev.Labels)
	a.Value, a.LastEvaluated = value, now

	notify := NotifyNone
	switch a.State {
	case StateFiring:
		if holds {
			a.ClearSince = time.Time{}
		} else {
			if a.ClearSince.IsZero() {
				a.ClearSince = now
			}
			if now.Sub(a.ClearSince) >= t.ResolveAfter {
				a.State, a.ResolvedAt, a.ClearSince = StateResolved, now, time.Time{}
				a.AckedBy, a.AckedAt = "", time.Time{}
				notify = NotifyResolved
				break
			}
		}
		if t.Repeat > 0 && !a.Acknowledged() && now.Sub(a.LastNotified) >= t.Repeat {
			notify = NotifyRepeat
		}
	case StatePending:
		if !holds {
			a.State, a.ActiveSince = StateInactive, time.Time{}
			break
		}
		if now.Sub(a.ActiveSince) >= t.For {
			a.fire(now)
			notify = NotifyFiring
		}
	default: // inactive, resolved (and an unknown state: treated as inactive)
		if !holds {
			break
		}
		a.ActiveSince = now
		a.State = StatePending
		if t.For <= 0 {
			a.fire(now)
			notify = NotifyFiring
		}
	}
	if notify != NotifyNone {
		a.LastNotified = now
	}
	return a, notify
}

// fire starts a firing episode at now.
func (a *Alert) fire(now time.Time) {
	a.State, a.FiringSince = StateFiring, now
	a.ClearSince, a.ResolvedAt = time.Time{}, time.Time{}
	a.AckedBy, a.AckedAt = "", time.Time{}
}
