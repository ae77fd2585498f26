package stream_test

import (
	"github.com/hookstream/hookstream/stream"
	"testing"
	"time"
)

func TestEntryFields(t *testing.T) {
	e := stream.NewEntry(3, "ev-1", []byte(`{"id":"ev-1"}`), stream.SourceWebhook)
	if len(e.Fields) != 4 || e.Fields[0] != stream.FieldID || e.Fields[3] != `{"id":"ev-1"}` {
		t.Fatalf("webhook entry fields %q", e.Fields)
	}
	if r := stream.NewEntry(3, "ev-1", nil, "reconcile"); len(r.Fields) != 6 || r.Fields[5] != "reconcile" {
		t.Fatalf("reconcile entry fields %q", r.Fields)
	}
	at := time.Date(2026, 11, 28, 10, 0, 0, 5e8, time.UTC)
	late := e.WithReceived(at)
	if len(e.Fields) != 4 || len(late.Fields) != 6 {
		t.Fatalf("WithReceived changed the original: %q / %q", e.Fields, late.Fields)
	}
	values := map[string]any{}
	for i := 0; i < len(late.Fields); i += 2 {
		values[late.Fields[i]] = late.Fields[i+1]
	}
	if got, ok := stream.Received("1800000000000-0", values); !ok || !got.Equal(at) {
		t.Fatalf("Received with the field: %v %v", got, ok)
	}
	if got, ok := stream.Received("1764324000123-7", nil); !ok || got.UnixMilli() != 1764324000123 {
		t.Fatalf("Received from the entry id: %v %v", got, ok)
	}
	if _, ok := stream.Received("garbage", nil); ok {
		t.Fatal("a malformed entry id should not give a time")
	}
}
