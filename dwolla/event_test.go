package dwolla

import (
	"errors"
	"strings"
	"testing"
	"time"
)

const sample = `{
  "id": "5B7C8F0E-2a0d-4c55-9f3e-6a1d2b9e7c11",
  "resourceId": "D3F1A7E2-4c8b-ef11-8132-0a3c5b2e9d44",
  "topic": "customer_bank_transfer_completed",
  "timestamp": "2025-06-02T14:05:11.482Z",
  "created": "2025-06-02T14:05:11.482Z",
  "correlationId": "order-8842-payout",
  "_links": {
    "self": {"href": "https://api-sandbox.dwolla.com/events/5b7c8f0e-2a0d-4c55-9f3e-6a1d2b9e7c11"},
    "account": {"href": "https://api-sandbox.dwolla.com/accounts/0ee84069-47c5-455c-b425-633523291dc3"},
    "resource": {"href": "https://api-sandbox.dwolla.com/transfers/D3F1A7E2-4c8b-ef11-8132-0a3c5b2e9d44"},
    "customer": {"href": "https://api-sandbox.dwolla.com/customers/a6f09251-c2de-4833-94a8-5c70916cebbc", "resource-type": "customer"}
  }
}`

func TestParseEventSample(t *testing.T) {
	ev, err := ParseEvent([]byte(sample))
	if err != nil {
		t.Fatal(err)
	}
	want := time.Date(2025, 6, 2, 14, 5, 11, 482e6, time.UTC)
	switch {
	case ev.ID != "5b7c8f0e-2a0d-4c55-9f3e-6a1d2b9e7c11":
		t.Errorf("id %q not lower-cased", ev.ID)
	case ev.Topic != "customer_bank_transfer_completed":
		t.Errorf("topic %q", ev.Topic)
	case !ev.Created.Equal(want):
		t.Errorf("created %v, want %v", ev.Created, want)
	case ev.ResourceID != "d3f1a7e2-4c8b-ef11-8132-0a3c5b2e9d44":
		t.Errorf("resource id %q", ev.ResourceID)
	case ev.CustomerID() != "a6f09251-c2de-4833-94a8-5c70916cebbc":
		t.Errorf("customer id %q", ev.CustomerID())
	case ev.ResourceType() != "transfers":
		t.Errorf("resource type %q", ev.ResourceType())
	case ev.PartitionKey() != ev.CustomerID():
		t.Errorf("partition key %q should be the customer", ev.PartitionKey())
	case ev.CorrelationID != "order-8842-payout":
		t.Errorf("correlation id %q", ev.CorrelationID)
	}
}

func TestParseEventErrors(t *testing.T) {
	f := func(body, field, reasonPart string) {
		t.Helper()
		_, err := ParseEvent([]byte(body))
		var fe *FieldError
		if !errors.As(err, &fe) {
			t.Fatalf("%s: got %v, want a FieldError", body, err)
		}
		if fe.Field != field || !strings.Contains(fe.Reason, reasonPart) {
			t.Fatalf("%s: got field %q reason %q, want field %q reason containing %q", body, fe.Field, fe.Reason, field, reasonPart)
		}
	}
	f(``, "", "JSON object")
	f(`[1,2]`, "", "JSON object")
	f(`not json`, "", "JSON object")
	f(`{"id":"a","topic":"t","created":"2025-06-02T14:05:11Z"`, "", "not valid JSON")
	f(`{"topic":"t","created":"2025-06-02T14:05:11Z"}`, "id", "missing")
	f(`{"id":"  ","topic":"t","created":"2025-06-02T14:05:11Z"}`, "id", "missing")
	f(`{"id":42,"topic":"t","created":"2025-06-02T14:05:11Z"}`, "id", "must be a JSON string")
	f(`{"id":"a","created":"2025-06-02T14:05:11Z"}`, "topic", "missing")
	f(`{"id":"a","topic":"t"}`, "created", "missing")
	f(`{"id":"a","topic":"t","created":"yesterday"}`, "created", "ISO-8601")
	f(`{"id":"a","topic":"t","timestamp":"2025-13-02T14:05:11Z"}`, "timestamp", "ISO-8601")
	f(`{"id":"`+strings.Repeat("x", 200)+`","topic":"t","created":"2025-06-02T14:05:11Z"}`, "id", "longer than")
	f(`{"id":"e","topic":"t","created":"2025-06-02T14:05:11Z","_links":{"customer":{"href":"https://api.dwolla.com/customers/`+strings.Repeat("c", 3200)+`"}}}`, "_links.customer.href", "longer than")
}

func TestParseEventVariants(t *testing.T) {
	f := func(body string, check func(Event) string) {
		t.Helper()
		ev, err := ParseEvent([]byte(body))
		if err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		if msg := check(ev); msg != "" {
			t.Fatalf("%s: %s", body, msg)
		}
	}
	// Legacy timestamp only.
	f(`{"id":"a","topic":"customer_created","timestamp":"2015-09-03T17:44:31.000Z"}`, func(e Event) string {
		if e.Created.Year() != 2015 {
			return "timestamp not used"
		}
		return ""
	})
	// Unknown topic is fine; resource id from the link; no customer => resource partitions.
	f(`{"id":"b","topic":"brand_new_topic","created":"2025-06-02T14:05:11+02:00","_links":{"resource":{"href":"https://x/transfers/ABC/"}}}`, func(e Event) string {
		if e.ResourceID != "abc" || e.PartitionKey() != "abc" || e.Created.Hour() != 12 {
			return "got " + e.ResourceID + " " + e.PartitionKey() + " " + e.Created.String()
		}
		return ""
	})
	// Nothing but the id to partition by.
	f(`{"id":"C","topic":"statement_created","created":"2025-06-02T14:05:11"}`, func(e Event) string {
		if e.PartitionKey() != "c" {
			return "partition key " + e.PartitionKey()
		}
		return ""
	})
}

func TestTopics(t *testing.T) {
	f := func(topic, family string, terminal bool, outcome Outcome, known bool) {
		t.Helper()
		info, ok := LookupTopic(topic)
		if ok != known || info.Family != family || info.Terminal != terminal || info.Outcome != outcome {
			t.Fatalf("%s: got %+v known=%v", topic, info, ok)
		}
	}
	f("customer_verified", "verification", true, OutcomeSuccess, true)
	f("customer_bank_transfer_failed", "bank_transfer", true, OutcomeFailure, true)
	f("bank_transfer_completed", "bank_transfer", true, OutcomeSuccess, true)
	f("customer_microdeposits_maxattempts", "microdeposits", true, OutcomeFailure, true)
	f("customer_funding_source_added", "funding_source", false, OutcomeNone, true)
	f("customer_mass_payment_cancelled", "mass_payment", true, OutcomeFailure, true)
	f("something_new", "unknown", false, OutcomeNone, false)
	if n := len(Topics()); n < 70 {
		t.Fatalf("catalogue has %d topics; expected the full Dwolla list", n)
	}
}

// FuzzParseEvent checks that no body makes the parser panic, and that what it
// accepts satisfies the invariants the receiver relies on.
func FuzzParseEvent(f *testing.F) {
	f.Add([]byte(sample))
	f.Add([]byte(`{"id":"a","topic":"t","timestamp":"2015-09-03T17:44:31.000Z"}`))
	f.Add([]byte(`{"id":1}`))
	f.Add([]byte(`{"_links":{"customer":{"href":"/"}}}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		ev, err := ParseEvent(body)
		if err != nil {
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Error() == "" {
				t.Fatalf("error %v is not a descriptive FieldError", err)
			}
			return
		}
		if ev.ID == "" || ev.ID != strings.ToLower(ev.ID) || len(ev.ID) > MaxIDLength {
			t.Fatalf("accepted bad id %q", ev.ID)
		}
		if ev.Topic == "" || ev.Created.IsZero() {
			t.Fatalf("accepted event without topic or time: %+v", ev)
		}
		if ev.PartitionKey() == "" {
			t.Fatal("empty partition key")
		}
	})
}
