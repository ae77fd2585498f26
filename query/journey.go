package query

import (
	"context"
	"fmt"
	"time"

	"github.com/hookstream/hookstream/journey"
	"github.com/hookstream/hookstream/store"
	"github.com/jackc/pgx/v5"
)

// JourneyStep is one step of an instance.
type JourneyStep struct {
	Step      string     `json:"step"`
	ReachedAt *time.Time `json:"reached_at,omitempty"`
	EventID   string     `json:"event_id,omitempty"`
}

// JourneyEvent is a stored event that built an instance.
type JourneyEvent struct {
	ID       string    `json:"id"`
	Topic    string    `json:"topic"`
	Created  time.Time `json:"created"`
	Received time.Time `json:"received"`
}

// JourneyInstance is one instance: its state, its steps, the events that
// reached them and what happened to it.
type JourneyInstance struct {
	Journey     string                `json:"journey"`
	Subject     string                `json:"subject"`
	Status      string                `json:"status"`
	CurrentStep string                `json:"current_step"`
	EnteredAt   time.Time             `json:"entered_at"`
	LastAt      time.Time             `json:"last_progress_at"`
	Deadline    *time.Time            `json:"deadline,omitempty"`
	AbandonedAt *time.Time            `json:"abandoned_at,omitempty"`
	Conflict    string                `json:"conflict,omitempty"`
	Steps       []JourneyStep         `json:"steps"`
	Events      []JourneyEvent        `json:"events"`
	Records     []store.JourneyRecord `json:"records"`
}

// QueryJourney returns the instance of d for subject.
func QueryJourney(ctx context.Context, db store.Querier, d *journey.Definition, subject string) (JourneyInstance, error) {
	row, ok, err := store.GetJourney(ctx, db, d.Name, subject)
	if err != nil {
		return JourneyInstance{}, err
	}
	if !ok {
		return JourneyInstance{}, fmt.Errorf("no %s instance for subject %q", d.Name, subject)
	}
	in := JourneyInstance{Journey: row.Journey, Subject: row.Subject, Status: row.Status, EnteredAt: row.EnteredAt, LastAt: row.LastAt,
		Deadline: row.Deadline, AbandonedAt: row.AbandonedAt}
	if row.CurrentStep != nil {
		in.CurrentStep = *row.CurrentStep
	}
	if row.Conflict != nil {
		in.Conflict = *row.Conflict
	}
	reaches := journey.ReachesOf(&row)
	var ids []string
	for i, s := range d.Steps {
		js := JourneyStep{Step: s.Name}
		if i < len(reaches) && reaches[i].Reached() {
			at := reaches[i].At
			js.ReachedAt, js.EventID = &at, reaches[i].Event
			ids = append(ids, reaches[i].Event)
		}
		in.Steps = append(in.Steps, js)
	}
	rows, err := db.Query(ctx, `SELECT id, topic, created, received_at FROM events WHERE id = ANY($1) ORDER BY created, id`, ids)
	if err != nil {
		return in, fmt.Errorf("read the instance's events: %w", err)
	}
	if in.Events, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (JourneyEvent, error) {
		var e JourneyEvent
		err := r.Scan(&e.ID, &e.Topic, &e.Created, &e.Received)
		return e, err
	}); err != nil {
		return in, err
	}
	in.Records, err = store.JourneyRecords(ctx, db, d.Name, subject)
	return in, err
}
