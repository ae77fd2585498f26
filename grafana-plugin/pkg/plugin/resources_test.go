package plugin

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
)

// recordingSender keeps what CallResource sends.
type recordingSender struct {
	mu   sync.Mutex
	resp []*backend.CallResourceResponse
}

func (s *recordingSender) Send(r *backend.CallResourceResponse) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.resp = append(s.resp, r)
	return nil
}

// callResource calls path (with its query) and returns the status and body.
func callResource(t *testing.T, ds *Datasource, method, pathAndQuery string) (int, []byte) {
	t.Helper()
	path, _, _ := strings.Cut(pathAndQuery, "?")
	var s recordingSender
	err := ds.CallResource(context.Background(), &backend.CallResourceRequest{Method: method, Path: path, URL: pathAndQuery}, &s)
	if err != nil {
		t.Fatalf("CallResource %s: %v", pathAndQuery, err)
	}
	if len(s.resp) == 0 {
		t.Fatalf("CallResource %s sent nothing", pathAndQuery)
	}
	var body []byte
	for _, r := range s.resp {
		body = append(body, r.Body...)
	}
	if ct := s.resp[0].Headers["Content-Type"]; len(ct) == 0 || ct[0] != "application/json" {
		t.Errorf("%s: Content-Type %v, want application/json", pathAndQuery, ct)
	}
	return s.resp[0].Status, body
}

// TestResourcesGolden calls each resource, and bad paths, against the
// running hookstream and compares the status and JSON with
// testdata/resources/<name>.json (-update rewrites them: review the diff).
func TestResourcesGolden(t *testing.T) {
	hs := sharedHookstream(t)
	ds := newTestDatasource(t, hs.apiURL, readSecret)
	for _, c := range []struct {
		name, method, url string
		status            int
	}{
		{"topics", "GET", "topics?since=2025-06-01", 200},
		{"journeys", "GET", "journeys", 200},
		{"journey_steps", "GET", "journeys/customer_verification/steps", 200},
		{"metrics", "GET", "metrics", 200},
		{"dimensions", "GET", "dimensions?since=2025-06-01", 200},
		{"dimension_values_topic", "GET", "dimensions/topic/values?since=2025-06-01", 200},
		{"dimension_values_family", "GET", "dimensions/family/values?since=2025-06-01T00:00:00Z", 200},
		{"series", "GET", "series", 200},

		{"error_no_such_resource", "GET", "topicz", 404},
		{"error_empty_path", "GET", "", 404},
		{"error_unknown_journey", "GET", "journeys/signup/steps", 404},
		{"error_unknown_dimension", "GET", "dimensions/colour/values", 404},
		{"error_bad_since", "GET", "topics?since=yesterday", 400},
		{"error_post", "POST", "topics", 405},
	} {
		t.Run(c.name, func(t *testing.T) {
			status, body := callResource(t, ds, c.method, c.url)
			if status != c.status {
				t.Fatalf("status %d, want %d: %s", status, c.status, body)
			}
			var v any
			if err := json.Unmarshal(body, &v); err != nil {
				t.Fatalf("not JSON: %v: %s", err, body)
			}
			if c.status != 200 {
				m := v.(map[string]any)
				if msg, _ := m["error"].(string); msg == "" || m["status"] != float64(c.status) {
					t.Errorf("error body lacks a message or its status: %s", body)
				}
			}
			var pretty bytes.Buffer
			json.Indent(&pretty, body, "", "  ")
			pretty.WriteByte('\n')
			path := filepath.Join("testdata", "resources", c.name+".json")
			if *update {
				os.MkdirAll(filepath.Dir(path), 0o755)
				if err := os.WriteFile(path, pretty.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to write it)", err)
			}
			if !bytes.Equal(want, pretty.Bytes()) {
				t.Errorf("%s differs from %s:\n%s", c.url, path, pretty.String())
			}
		})
	}

	// A refused token is a gateway error with the fix, not a 401 Grafana
	// would take for its own session's.
	bad := newTestDatasource(t, hs.apiURL, "not-a-configured-secret-000")
	if status, body := callResource(t, bad, "GET", "journeys"); status != http.StatusBadGateway || !strings.Contains(string(body), "refused the token") {
		t.Errorf("bad token: %d %s", status, body)
	}
}
