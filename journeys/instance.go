package journeys

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hookstream/hookstream/store"
)

// Reads of instances, for the CLI and the API: one instance in full, a
// list of instances, and the count of instances by status.

// InstanceStep is one step of an instance.
type InstanceStep struct {
	Step      string     `json:"step"`
	ReachedAt *time.Time `json:"reached_at,omitempty"`
	EventID   string     `json:"event_id,omitempty"`
}

// InstanceEvent is a stored event that built an instance.
type InstanceEvent struct {
	ID       string    `json:"id"`
	Topic    string    `json:"topic"`
	Created  time.Time `json:"created"`
	Received time.Time `json:"received"`
}

// InstanceReport is one instance: its state, its steps, the events that
// reached them and what happened to it; for an unfinished one (in progress
// or abandoned), what the journey's history predicts for it.
type InstanceReport struct {
	InstanceSummary
	Steps      []InstanceStep  `json:"steps"`
	Events     []InstanceEvent `json:"events"`
	Records    []Record        `json:"records"`
	Prediction *Prediction     `json:"prediction,omitempty"`
}

// ErrNoInstance is what Instance's error matches (errors.Is) when journey
// d has no instance for the subject.
var ErrNoInstance = errors.New("no such journey instance")

type noInstanceError struct{ journey, subject string }

func (e noInstanceError) Error() string {
	return fmt.Sprintf("no %s instance for subject %q", e.journey, e.subject)
}

func (e noInstanceError) Is(target error) bool { return target == ErrNoInstance }

// Instance reports the instance of d for subject; an unfinished one with
// its prediction (LoadModel's defaults: learnt from the instances that
// entered in the 30 days before the journey's latest progress).
func Instance(ctx context.Context, db store.Querier, d *Definition, subject string) (InstanceReport, error) {
	row, ok, err := getRow(ctx, db, d.Name, subject)
	if err != nil {
		return InstanceReport{}, err
	}
	if !ok {
		return InstanceReport{}, noInstanceError{d.Name, subject}
	}
	in := InstanceReport{InstanceSummary: summaryOf(&row)}
	reaches := ReachesOf(&row)
	var ids []string
	for i, s := range d.Steps {
		js := InstanceStep{Step: s.Name}
		if i < len(reaches) && reaches[i].Reached() {
			at := reaches[i].At
			js.ReachedAt, js.EventID = &at, reaches[i].Event
			ids = append(ids, reaches[i].Event)
		}
		in.Steps = append(in.Steps, js)
	}
	if in.Events, err = eventsByID(ctx, db, ids); err != nil {
		return in, err
	}
	if in.Records, err = readRecords(ctx, db, d.Name, subject); err != nil {
		return in, err
	}
	in.Prediction, err = predictRow(ctx, db, d, &row)
	return in, err
}

// InstanceFilter selects the instances Instances lists.
type InstanceFilter struct {
	Status   string       // only instances in this status ("": any); one of InProgress, Completed, Failed, Abandoned
	From, To time.Time    // entered in [From, To)
	After    *InstanceKey // continue after this instance (the last of the previous page)
	Limit    int          // at most this many (default 100)
}

// InstanceKey is an instance's place in the order Instances lists: the
// latest to enter first, then by subject.
type InstanceKey struct {
	EnteredAt time.Time
	Subject   string
}

// InstanceSummary is one instance in a list: its state without the events
// and records Instance adds.
type InstanceSummary struct {
	Journey     string     `json:"journey"`
	Subject     string     `json:"subject"`
	Status      string     `json:"status"`
	CurrentStep string     `json:"current_step"`
	EntryTopic  string     `json:"entry_topic,omitempty"`
	EnteredAt   time.Time  `json:"entered_at"`
	LastAt      time.Time  `json:"last_progress_at"`
	Deadline    *time.Time `json:"deadline,omitempty"`
	AbandonedAt *time.Time `json:"abandoned_at,omitempty"`
	Conflict    string     `json:"conflict,omitempty"`
}

func summaryOf(r *Row) InstanceSummary {
	s := InstanceSummary{Journey: r.Journey, Subject: r.Subject, Status: r.Status, EnteredAt: r.EnteredAt.UTC(), LastAt: r.LastAt.UTC(),
		Deadline: r.Deadline, AbandonedAt: r.AbandonedAt}
	if r.CurrentStep != nil {
		s.CurrentStep = *r.CurrentStep
	}
	if r.EntryTopic != nil {
		s.EntryTopic = *r.EntryTopic
	}
	if r.Conflict != nil {
		s.Conflict = *r.Conflict
	}
	return s
}

// Instances lists the instances of d that match filter, the latest to
// enter first (then by subject, descending), a keyset page at a time: the
// last one's EnteredAt and Subject as filter.After give the next page.
func Instances(ctx context.Context, db store.Querier, d *Definition, filter InstanceFilter) ([]InstanceSummary, error) {
	switch filter.Status {
	case "", InProgress, Completed, Failed, Abandoned:
	default:
		return nil, fmt.Errorf("status %q: use in_progress, completed, failed or abandoned", filter.Status)
	}
	limit := filter.Limit
	if limit <= 0 {
		limit = 100
	}
	rows, err := listRows(ctx, db, d.Name, filter.Status, filter.From, filter.To, filter.After, limit)
	if err != nil {
		return nil, err
	}
	out := make([]InstanceSummary, len(rows))
	for i := range rows {
		out[i] = summaryOf(&rows[i])
	}
	return out, nil
}

// EventInstance is a journey instance an event belongs to, and the steps
// the event reached in it (none when an earlier event had reached them).
type EventInstance struct {
	InstanceSummary
	Reached []string `json:"reached_steps"`
}

// InstancesOf is every instance of set's journeys that event e belongs to
// (by its topic and the journey's subject), with the steps e reached.
func InstancesOf(ctx context.Context, db store.Querier, set *Set, e *store.Event) ([]EventInstance, error) {
	out := []EventInstance{}
	if set == nil {
		return out, nil
	}
	for _, d := range set.ForTopic(e.Topic) {
		subject := d.subjectOf(e)
		if subject == "" {
			continue
		}
		row, ok, err := getRow(ctx, db, d.Name, subject)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		in := EventInstance{InstanceSummary: summaryOf(&row), Reached: []string{}}
		for i, ev := range row.StepEvent {
			if ev != nil && *ev == e.ID && i < len(d.Steps) {
				in.Reached = append(in.Reached, d.Steps[i].Name)
			}
		}
		out = append(out, in)
	}
	return out, nil
}

// CountByStatus is the number of instances of every journey in each status
// (in_progress, completed, failed, abandoned; a status no instance is in
// is missing), from the funnel aggregates: it reads no instance.
func CountByStatus(ctx context.Context, db store.Querier) (map[string]int64, error) {
	return countByStatus(ctx, db)
}
