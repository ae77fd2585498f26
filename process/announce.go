package process

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/hookstream/hookstream/store"
	"github.com/hookstream/hookstream/stream"
)

// StoredEvent is what a processor announces of each event it has just
// stored (on the namespace's Stored stream, one entry per committed batch):
// the routing fields, never the body, which stays in PostgreSQL. The live
// feed is its reader.
type StoredEvent struct {
	ID           string    `json:"id"`
	Topic        string    `json:"topic"`
	Created      time.Time `json:"created"`
	Received     time.Time `json:"received"`
	CustomerID   string    `json:"customer_id,omitempty"`
	ResourceType string    `json:"resource_type,omitempty"`
	ResourceID   string    `json:"resource_id,omitempty"`
	Source       string    `json:"source"`
}

// StoredField is the field of a Stored stream entry that holds the batch,
// a JSON array of StoredEvent, in the order the batch stored them.
const StoredField = "events"

// DecodeStored reads the events of one Stored stream entry.
func DecodeStored(values map[string]any) ([]StoredEvent, error) {
	raw, ok := values[StoredField].(string)
	if !ok {
		return nil, fmt.Errorf("stored-events entry without a %q field", StoredField)
	}
	var evs []StoredEvent
	if err := json.Unmarshal([]byte(raw), &evs); err != nil {
		return nil, fmt.Errorf("stored-events entry: %w", err)
	}
	return evs, nil
}

// publishStored announces a committed batch's new events, best effort (the
// events table is the record; a live client that misses them finds them
// through the API's /events).
func (p *Processor) publishStored(ctx context.Context, evs []store.Event) {
	if p.opts.AnnounceStored < 0 || len(evs) == 0 {
		return
	}
	out := make([]StoredEvent, len(evs))
	for i := range evs {
		e := &evs[i]
		out[i] = StoredEvent{ID: e.ID, Topic: e.Topic, Created: e.Created.UTC(), Received: e.Received.UTC(), CustomerID: e.CustomerID,
			ResourceType: e.ResourceType, ResourceID: e.ResourceID, Source: e.Source}
	}
	b, err := json.Marshal(out)
	if err == nil {
		_, err = stream.AnnounceWithin(ctx, p.rdb, p.keys.Stored(), p.opts.AnnounceStored, []string{StoredField, string(b)})
	}
	if err != nil && ctx.Err() == nil {
		p.log.Warn("events are stored but not announced to the live feed; the events table has them", "err", err, "events", len(evs))
	}
}
