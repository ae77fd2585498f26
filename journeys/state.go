package journeys

import (
	"fmt"
	"strings"
	"time"
)

// Statuses of an instance.
const (
	InProgress = "in_progress"
	Completed  = "completed"
	Failed     = "failed"
	Abandoned  = "abandoned" // in progress, but its deadline passed under the watermark
)

// Reach is how an instance first reached a step: the earliest event time,
// and that event's id (the smaller id on a tie). The zero Reach: not
// reached.
type Reach struct {
	At    time.Time
	Event string
	Topic string // the event's topic (kept for the earliest reach of all: the entry topic)
}

// Reached reports whether the step was reached.
func (r Reach) Reached() bool { return r.Event != "" }

// Earlier reports whether r should replace o: it is earlier, or as early
// with a smaller event id. Keeping the earlier of the two is a merge that
// gives the same result in any order and for any duplicate.
func (r Reach) Earlier(o Reach) bool {
	if !o.Reached() {
		return r.Reached()
	}
	if !r.Reached() {
		return false
	}
	if !r.At.Equal(o.At) {
		return r.At.Before(o.At)
	}
	return r.Event < o.Event
}

// Merge keeps, for each step, the earlier reach of a and b (b may be
// longer or shorter than a when the definition changed: steps beyond a's
// length are appended). It reports whether a changed.
func Merge(a *[]Reach, b []Reach) bool {
	changed := false
	for len(*a) < len(b) {
		*a = append(*a, Reach{})
	}
	for i, r := range b {
		if r.Earlier((*a)[i]) {
			(*a)[i] = r
			changed = true
		}
	}
	return changed
}

// State is what Derive says about an instance.
type State struct {
	Status    string
	Current   int        // position of the current step (-1: none reached)
	EnteredAt time.Time  // earliest step time
	LastAt    time.Time  // latest step time: the last progress
	Deadline  *time.Time // in progress: when it counts as abandoned without progress
	Conflict  string     // why the steps do not tell one story ("" when they do)
	// EntryTopic is the topic of the earliest reach: how the instance
	// entered (a master-account or a customer transfer, ...). The funnels'
	// breakdown.
	EntryTopic string
}

// Derive is the fixed rule that turns the set of reached steps into a
// state; nothing else (not arrival order, not duplicates) enters it.
//
//   - Outcome: a success step reached and no failure step: completed; a
//     failure step and no success step: failed; both: a conflict, settled by
//     the definition's rule (failure_wins, success_wins, or latest_wins: the
//     outcome reached last by event time, a tie counting as failure).
//     Neither: in progress, or abandoned when abandoned is set (the
//     scanner's verdict, cleared by any later progress).
//   - Current step: for an ended journey, its deciding outcome step (the
//     latest of that kind); otherwise the furthest step reached in the
//     definition's order.
//   - Skipped steps: required (not optional, not an outcome) steps before
//     the current one that were never reached are recorded as a conflict.
//   - Deadline: the last progress plus the current step's abandon_after,
//     while in progress.
func (d *Definition) Derive(steps []Reach, abandoned bool) State {
	st := State{Current: -1}
	var succ, fail = -1, -1 // latest reached success / failure step
	var first Reach
	for i, r := range steps {
		if i >= len(d.Steps) || !r.Reached() {
			continue
		}
		if r.Earlier(first) {
			first = r
		}
		if st.EnteredAt.IsZero() || r.At.Before(st.EnteredAt) {
			st.EnteredAt = r.At
		}
		if r.At.After(st.LastAt) {
			st.LastAt = r.At
		}
		if i > st.Current {
			st.Current = i
		}
		later := func(cur int) bool {
			return cur < 0 || r.At.After(steps[cur].At) || (r.At.Equal(steps[cur].At) && i > cur)
		}
		if d.IsSuccess(i) && later(succ) {
			succ = i
		}
		if d.IsFailure(i) && later(fail) {
			fail = i
		}
	}
	var conflicts []string
	switch {
	case succ >= 0 && fail >= 0:
		winner := fail
		switch d.Conflict {
		case SuccessWins:
			winner = succ
		case LatestWins:
			if steps[succ].At.After(steps[fail].At) {
				winner = succ
			}
		}
		conflicts = append(conflicts, fmt.Sprintf("reached success step %s and failure step %s; %s: %s",
			d.Steps[succ].Name, d.Steps[fail].Name, d.Conflict, d.Steps[winner].Name))
		st.Current = winner
		if winner == succ {
			st.Status = Completed
		} else {
			st.Status = Failed
		}
	case succ >= 0:
		st.Status, st.Current = Completed, succ
	case fail >= 0:
		st.Status, st.Current = Failed, fail
	case abandoned:
		st.Status = Abandoned
	default:
		st.Status = InProgress
	}
	if st.Current >= 0 && st.Status != Failed {
		var skipped []string
		for i := 0; i < st.Current && i < len(steps); i++ {
			s := d.Steps[i]
			if !s.Optional && !d.IsSuccess(i) && !d.IsFailure(i) && !steps[i].Reached() {
				skipped = append(skipped, s.Name)
			}
		}
		if len(skipped) > 0 {
			conflicts = append(conflicts, "skipped steps: "+strings.Join(skipped, ", "))
		}
	}
	st.Conflict = strings.Join(conflicts, "; ")
	st.EntryTopic = first.Topic
	if (st.Status == InProgress || st.Status == Abandoned) && st.Current >= 0 {
		if after := d.Steps[st.Current].AbandonAfter; after > 0 {
			dl := st.LastAt.Add(after)
			st.Deadline = &dl
		}
	}
	return st
}

// SubjectOf is the instance an event belongs to under a definition ("" when
// the event has no such id).
func SubjectOf(s Subject, customer, resource, correlation string) string {
	switch s {
	case SubjectCustomer:
		return customer
	case SubjectResource:
		return resource
	case SubjectCorrelation:
		return correlation
	}
	return ""
}
