package process

import (
	"fmt"
	"time"

	"github.com/hookstream/hookstream/dwolla"
	"github.com/hookstream/hookstream/store"
	"github.com/hookstream/hookstream/stream"
)

// Enrich turns a stream entry into the event row the processor stores: the
// full envelope parsed and validated, resource type from the _links.resource
// path, customer id from _links.customer, ids lower-cased, the receipt time
// (so the delivery lag), and the topic's family, outcome and whether it is
// terminal. An error says why the entry can never be stored (poison).
func Enrich(m stream.Message) (store.Event, error) {
	body, ok := m.Values[stream.FieldBody].(string)
	if !ok {
		return store.Event{}, fmt.Errorf("entry has no %q field", stream.FieldBody)
	}
	ev, err := dwolla.ParseEvent([]byte(body))
	if err != nil {
		return store.Event{}, fmt.Errorf("unparseable event: %w", err)
	}
	if id, _ := m.Values[stream.FieldID].(string); id != "" && id != ev.ID {
		return store.Event{}, fmt.Errorf("entry id field %q does not match the body's event id %q", id, ev.ID)
	}
	received, ok := stream.Received(m.ID, m.Values)
	if !ok {
		return store.Event{}, fmt.Errorf("entry has an unreadable %q time %q", stream.FieldReceived, m.Values[stream.FieldReceived])
	}
	source, _ := m.Values[stream.FieldSource].(string)
	if source == "" {
		source = stream.SourceWebhook
	}
	out := store.Event{
		ID:            ev.ID,
		Topic:         ev.Topic,
		ResourceType:  ev.ResourceType(),
		ResourceID:    ev.ResourceID,
		CustomerID:    ev.CustomerID(),
		CorrelationID: ev.CorrelationID,
		// PostgreSQL keeps microseconds: fold what a rebuild from the
		// events table will read back.
		Created:   ev.Created.Truncate(time.Microsecond),
		Received:  received.Truncate(time.Microsecond),
		Source:    source,
		Body:      []byte(body),
		Partition: m.Partition,
		EntryID:   m.ID,
	}
	if info, ok := dwolla.LookupTopic(ev.Topic); ok {
		out.Family, out.Outcome, out.Terminal = info.Family, string(info.Outcome), info.Terminal
	}
	return out, nil
}
