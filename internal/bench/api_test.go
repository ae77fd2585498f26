package bench

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hookstream/hookstream/internal/testenv"
)

func TestAPIMeasuresQueriesAndLiveFeed(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	rep, err := API(context.Background(), APIConfig{
		RedisURL: testenv.RedisURL(), DatabaseURL: testenv.DatabaseURL(), Schema: testenv.Name("hsbench_api_t"),
		Events: 3000, Span: 30 * time.Hour, Topics: 5, Customers: 50, Requests: 5, Warmup: 2,
		LiveClients: 3, LiveRate: 500, LiveDuration: 300 * time.Millisecond, Out: &out,
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if !rep.Seeded || len(rep.Queries) != 6 {
		t.Fatalf("seeded %v, %d query kinds; want a seed and 6:\n%s", rep.Seeded, len(rep.Queries), out.String())
	}
	for _, q := range rep.Queries {
		if len(q.API) != 5 || len(q.Direct) != 5 {
			t.Errorf("%s: %d API and %d direct times, want 5 each", q.Name, len(q.API), len(q.Direct))
		}
	}
	if l := rep.Live; l == nil || l.Sent != 150 || l.MinGot != l.Sent || l.Missing != 0 || l.Dropped != 0 {
		t.Errorf("live: %+v; want 150 events sent and got by every client", rep.Live)
	}
	for _, line := range []string{"machine: ", "\nseeded in ", "\nmetrics: 1m count by topic, 24 h (5 topics)", "target API p99 ≤ ",
		"\nlive feed: 3 SSE clients", "announce → client"} {
		if !strings.Contains(out.String(), line) {
			t.Errorf("output lacks %q:\n%s", line, out.String())
		}
	}
}
