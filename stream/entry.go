package stream

import "time"

// The fields of a stream entry. An entry is the event's id and its raw signed
// body, nothing derived: consumers parse the body (they must anyway, to
// enrich it), and every field written costs Redis CPU twice inside the append
// script (docs/benchmarks.md).
const (
	FieldID   = "id"   // the lower-cased Dwolla event id
	FieldBody = "body" // the raw body, byte for byte as signed
	// FieldReceived is when the receiver got the event (RFC 3339, UTC). It is
	// written only when the entry reaches the stream later than that (the
	// event was spooled during a Redis outage); otherwise the entry id's
	// millisecond timestamp is the receipt time.
	FieldReceived = "received"
	// FieldSource says where the event came from when it was not a webhook
	// delivery (for example "reconcile").
	FieldSource = "source"
)

// SourceWebhook is the source of entries without FieldSource.
const SourceWebhook = "webhook"

// NewEntry builds the entry for one event.
func NewEntry(partition int, id string, body []byte, source string) Entry {
	fields := make([]string, 4, 8)
	fields[0], fields[1], fields[2], fields[3] = FieldID, id, FieldBody, string(body)
	if source != "" && source != SourceWebhook {
		fields = append(fields, FieldSource, source)
	}
	return Entry{Partition: partition, ID: id, Fields: fields}
}

// WithReceived returns e with FieldReceived set to t, for an entry that will
// reach the stream later than t.
func (e Entry) WithReceived(t time.Time) Entry {
	f := make([]string, len(e.Fields), len(e.Fields)+2)
	copy(f, e.Fields)
	e.Fields = append(f, FieldReceived, t.UTC().Format(time.RFC3339Nano))
	return e
}

// Received is when the event was received: FieldReceived if the entry has
// it, else the time in the stream entry id ("<ms>-<seq>").
func Received(entryID string, values map[string]any) (time.Time, bool) {
	if s, ok := values[FieldReceived].(string); ok {
		t, err := time.Parse(time.RFC3339Nano, s)
		return t, err == nil
	}
	var ms int64
	for i := 0; i < len(entryID) && entryID[i] != '-'; i++ {
		c := entryID[i]
		if c < '0' || c > '9' {
			return time.Time{}, false
		}
		ms = ms*10 + int64(c-'0')
	}
	return time.UnixMilli(ms).UTC(), ms > 0
}
