package dwolla

import (
	"bytes"
	"fmt"
	"strings"
	"time"

	"github.com/valyala/fastjson"
)

// Link is one HAL link of an event.
type Link struct {
	Href         string `json:"href"`
	Type         string `json:"type,omitempty"`
	ResourceType string `json:"resource-type,omitempty"`
}

// Links are the HAL links hookstream routes on (only their hrefs are read).
// Others in the body are kept in the raw bytes but not parsed.
type Links struct {
	Self     Link `json:"self"`
	Account  Link `json:"account"`
	Resource Link `json:"resource"`
	Customer Link `json:"customer"`
}

// Event is the Dwolla webhook envelope, parsed only as far as routing needs.
// The raw signed body stays the record; this is a view of it.
type Event struct {
	ID            string    // event id, lower-cased and trimmed: the dedup key
	Topic         string    // e.g. customer_bank_transfer_completed
	Created       time.Time // event time: `created`, else the legacy `timestamp`
	ResourceID    string    // `resourceId`, else the last segment of _links.resource
	CorrelationID string
	Links         Links
}

// FieldError says which part of an event body is wrong and why. Field is ""
// when the body as a whole is unusable.
type FieldError struct {
	Field  string
	Reason string
}

func (e *FieldError) Error() string {
	if e.Field == "" {
		return e.Reason
	}
	return e.Field + ": " + e.Reason
}

// MaxIDLength bounds ids so a hostile body cannot make huge Redis keys.
const MaxIDLength = 128

// parsers are reused: parsing is on the receiver's hot path, and fastjson
// parses an envelope several times faster than encoding/json with far fewer
// allocations (BenchmarkParseEvent).
var parsers fastjson.ParserPool

// ParseEvent parses and validates a webhook body. It requires a JSON object
// with a string `id`, a string `topic` and an ISO-8601 `created` (or legacy
// `timestamp`). Unknown topics are valid: Dwolla adds topics without notice.
// Errors are *FieldError.
func ParseEvent(body []byte) (Event, error) {
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return Event{}, &FieldError{Reason: "body must be a JSON object"}
	}
	p := parsers.Get()
	defer parsers.Put(p)
	v, err := p.ParseBytes(body)
	if err != nil {
		return Event{}, &FieldError{Reason: "body is not valid JSON: " + err.Error()}
	}
	var fe *FieldError
	// str reads an optional string field; a present non-string is an error.
	str := func(name string, path ...string) string {
		x := v.Get(path...)
		if x == nil || x.Type() == fastjson.TypeNull {
			return ""
		}
		if x.Type() != fastjson.TypeString {
			if fe == nil {
				fe = &FieldError{Field: name, Reason: "must be a JSON string, got " + x.Type().String()}
			}
			return ""
		}
		b, _ := x.StringBytes()
		return string(b)
	}
	ev := Event{
		ID:            strings.ToLower(strings.TrimSpace(str("id", "id"))),
		Topic:         strings.TrimSpace(str("topic", "topic")),
		ResourceID:    strings.ToLower(strings.TrimSpace(str("resourceId", "resourceId"))),
		CorrelationID: str("correlationId", "correlationId"),
	}
	created, timestamp := str("created", "created"), str("timestamp", "timestamp")
	ev.Links.Self.Href = str("_links.self.href", "_links", "self", "href")
	ev.Links.Account.Href = str("_links.account.href", "_links", "account", "href")
	ev.Links.Resource.Href = str("_links.resource.href", "_links", "resource", "href")
	ev.Links.Customer.Href = str("_links.customer.href", "_links", "customer", "href")
	if fe != nil {
		return Event{}, fe
	}
	switch {
	case ev.ID == "":
		return Event{}, &FieldError{Field: "id", Reason: "missing or empty"}
	case len(ev.ID) > MaxIDLength:
		return Event{}, &FieldError{Field: "id", Reason: fmt.Sprintf("longer than %d characters", MaxIDLength)}
	case ev.Topic == "":
		return Event{}, &FieldError{Field: "topic", Reason: "missing or empty"}
	case len(ev.Topic) > MaxIDLength:
		return Event{}, &FieldError{Field: "topic", Reason: fmt.Sprintf("longer than %d characters", MaxIDLength)}
	}
	field, raw := "created", created
	if raw == "" {
		field, raw = "timestamp", timestamp
	}
	if raw == "" {
		return Event{}, &FieldError{Field: "created", Reason: "missing (neither created nor timestamp is set)"}
	}
	t, err := ParseTime(raw)
	if err != nil {
		return Event{}, &FieldError{Field: field, Reason: err.Error()}
	}
	ev.Created = t
	if ev.ResourceID == "" {
		ev.ResourceID = lastSegment(ev.Links.Resource.Href)
	}
	if len(ev.ResourceID) > MaxIDLength {
		return Event{}, &FieldError{Field: "resourceId", Reason: fmt.Sprintf("longer than %d characters", MaxIDLength)}
	}
	// The customer id is a key too (partitioning, an index in PostgreSQL,
	// journeys), so it has the same bound.
	if len(ev.CustomerID()) > MaxIDLength {
		return Event{}, &FieldError{Field: "_links.customer.href", Reason: fmt.Sprintf("customer id longer than %d characters", MaxIDLength)}
	}
	return ev, nil
}

// ParseTime accepts RFC 3339 with or without fractional seconds, and a zone-less
// form that is taken as UTC (seen in old payloads).
func ParseTime(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), nil
	}
	if t, err := time.Parse("2006-01-02T15:04:05.999999999", s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%q is not an ISO-8601 time such as 2025-06-02T14:05:11.482Z", truncate(s, 64))
}

// CustomerID is the id at the end of _links.customer, lower-cased, or "".
func (e *Event) CustomerID() string { return lastSegment(e.Links.Customer.Href) }

// ResourceType is the collection name in _links.resource, such as "transfers"
// or "funding-sources", or "".
func (e *Event) ResourceType() string {
	href := strings.TrimRight(e.Links.Resource.Href, "/")
	i := strings.LastIndexByte(href, '/')
	if i <= 0 {
		return ""
	}
	return strings.ToLower(lastSegment(href[:i]))
}

// PartitionKey is what the event is partitioned by: the customer, else the
// resource, else the event itself. All events of one customer share a partition.
func (e *Event) PartitionKey() string {
	if c := e.CustomerID(); c != "" {
		return c
	}
	if e.ResourceID != "" {
		return e.ResourceID
	}
	return e.ID
}

func lastSegment(href string) string {
	href = strings.TrimRight(href, "/")
	if i := strings.IndexAny(href, "?#"); i >= 0 {
		href = href[:i]
	}
	if i := strings.LastIndexByte(href, '/'); i >= 0 {
		href = href[i+1:]
	}
	return strings.ToLower(href)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
