package sim

import (
	"bytes"
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"
)

func TestTruthRoundTrips(t *testing.T) {
	t.Parallel()
	sc := Generate(Config{Customers: 20, Seed: 4})
	var buf bytes.Buffer
	if err := WriteTruth(&buf, sc); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != len(sc.Events) {
		t.Fatalf("%d lines for %d events", len(lines), len(sc.Events))
	}
	var first map[string]string
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil {
		t.Fatal(err)
	}
	e := sc.Events[0]
	want := map[string]string{"id": e.ID, "topic": e.Topic, "customer_id": e.CustomerID, "resource_id": e.ResourceID, "created": e.Created.Format(timeLayout)}
	if len(first) != len(want) {
		t.Fatalf("first line %s, want exactly the fields %v", lines[0], want)
	}
	for k, v := range want {
		if first[k] != v {
			t.Fatalf("first line %s: %s = %q, want %q", lines[0], k, first[k], v)
		}
	}

	got, err := ReadTruth(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, ids(sc.Events)) {
		t.Fatalf("ReadTruth returned %d ids, not the %d written in order", len(got), len(sc.Events))
	}

	// A TruthWriter fed batch by batch writes the same file.
	var inc bytes.Buffer
	tw := NewTruthWriter(&inc)
	for evs := range slices.Chunk(sc.Events, 7) {
		if err := tw.Write(evs); err != nil {
			t.Fatal(err)
		}
	}
	var whole bytes.Buffer
	_ = WriteTruth(&whole, sc)
	if inc.String() != whole.String() {
		t.Fatal("TruthWriter output differs from WriteTruth")
	}
}

func TestReadTruth(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		want    []string
		wantErr string
	}{
		{"empty", "", nil, ""},
		{"blank lines skipped", "\n{\"id\":\"a\"}\n\n  \n{\"id\":\"b\",\"topic\":\"x\"}\n", []string{"a", "b"}, ""},
		{"no trailing newline", `{"id":"a"}`, []string{"a"}, ""},
		{"not json", "{\"id\":\"a\"}\nhello\n", nil, "line 2"},
		{"no id", "{\"id\":\"a\"}\n{\"topic\":\"customer_created\"}\n", nil, "line 2 has no \"id\""},
		{"paths file by mistake", `{"lifecycles": 3, "paths": {}}`, nil, "line 1 has no \"id\""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := ReadTruth(strings.NewReader(tc.in))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || !slices.Equal(got, tc.want) {
				t.Fatalf("ReadTruth = %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}

func TestWritePaths(t *testing.T) {
	t.Parallel()
	sc := Generate(Config{Customers: 20, Seed: 4})
	var buf bytes.Buffer
	if err := WritePaths(&buf, sc.Paths); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Lifecycles int            `json:"lifecycles"`
		Paths      map[string]int `json:"paths"`
	}
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatalf("paths file is not JSON: %v\n%s", err, buf.String())
	}
	if got.Lifecycles != sc.Lifecycles() || !maps.Equal(got.Paths, sc.Paths) {
		t.Fatalf("paths file %s does not hold the scenario's %d lifecycles", buf.String(), sc.Lifecycles())
	}
}
