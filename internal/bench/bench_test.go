package bench

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hookstream/hookstream/internal/testenv"
)

// The benchmarks run here at toy sizes against the test servers: the point is
// that each runs end to end, cleans up and reports in its documented shape,
// not the figures (other tests share the servers).

func TestIngestDrivesTheThreeReceivers(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	rep, err := Ingest(context.Background(), IngestConfig{
		RedisURL: testenv.RedisURL(), Duration: 300 * time.Millisecond, Rounds: 1, Concurrency: 4,
		Rate: 200, OpenDuration: 500 * time.Millisecond, OpenConnections: 4, Out: &out,
	})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range append(rep.ClosedLoop, rep.OpenLoop...) {
		names = append(names, r.Name)
		if r.Requests == 0 || r.Non2xx != 0 || r.Errors != 0 {
			t.Errorf("%s: %d requests, %d non-2xx, %d errors; want some, all 2xx", r.Name, r.Requests, r.Non2xx, r.Errors)
		}
	}
	want := []string{"hookstream", "naive-xadd", "hmac-only", "hookstream", "naive-xadd", "hmac-only"}
	if !slices.Equal(names, want) {
		t.Errorf("phases %v, want %v", names, want)
	}
	for _, line := range []string{"machine: ", "\nclosed loop: 4 concurrent requests, 300ms per phase, 1 rounds\n", "\nround 1  hookstream ",
		"\nmedian throughput (2xx/s):\n", "\nratios of the medians: hookstream/naive-xadd = ", "\nper-round ratios: ",
		"\nopen loop: 200 requests/s for 500ms, latency from scheduled send time\n", "\n  naive-xadd "} {
		if !strings.Contains(out.String(), line) {
			t.Errorf("output lacks %q:\n%s", line, out.String())
		}
	}
}

func TestProcessDrainsEveryContender(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	rep, err := Process(context.Background(), ProcessConfig{
		RedisURL: testenv.RedisURL(), DatabaseURL: testenv.DatabaseURL(), Partitions: 4,
		Events: 2000, NaiveEvents: 200, SeedInstances: 500, Span: time.Minute, Out: &out,
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{"hookstream": 2000, "journeys": 2000, "windows": 2000, "full": 2000, "naive": 200, "copy": 2000}
	var names []string
	for _, p := range rep.Phases {
		names = append(names, p.Name)
		if p.Events != want[p.Name] {
			t.Errorf("%s stored %d events, want %d", p.Name, p.Events, want[p.Name])
		}
	}
	if !slices.Equal(names, []string{"hookstream", "journeys", "windows", "full", "naive", "copy"}) {
		t.Errorf("phases %v", names)
	}
	if len(rep.Funnel) != 7 || !slices.IsSorted(rep.Funnel) {
		t.Errorf("funnel times %v, want 7 sorted", rep.Funnel)
	}
	for _, line := range []string{"pre-filling 2000 events, lifecycles starting over 1m0s of event time, into 4 partition streams",
		"  seeded 500 bank_transfer instances in ", "  instance cache: ", "  funnel of bank_transfer over ",
		"reading the backlog back for COPY...\n", "contender  ", "\nhookstream / naive = ",
		"\nwith windows folding: ", "\nwith journeys folding: ", "\nfunnel query: min "} {
		if !strings.Contains(out.String(), line) {
			t.Errorf("output lacks %q:\n%s", line, out.String())
		}
	}
}

func TestWindowsProbesIdleAndLoaded(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	rep, err := Windows(context.Background(), WindowsConfig{
		RedisURL: testenv.RedisURL(), DatabaseURL: testenv.DatabaseURL(), Partitions: 4,
		Probes: 5, ProbeRate: 20, Background: 100, Out: &out,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Idle) != 5 || len(rep.Loaded) != 5 || rep.Stored < 10 {
		t.Errorf("%d idle and %d loaded probes, %d stored; want 5, 5 and at least 10", len(rep.Idle), len(rep.Loaded), rep.Stored)
	}
	for _, line := range []string{"ACK → visible in the 1m window through the query layer, 5 probes at 20/s per phase\n",
		"\n  idle                         p50 ", "\n  under 100 webhooks/s         p50 ", "\n  background: background ", "\n  processor: "} {
		if !strings.Contains(out.String(), line) {
			t.Errorf("output lacks %q:\n%s", line, out.String())
		}
	}
}

func TestMemoryReportsBothParts(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	rep, err := Memory(context.Background(), MemoryConfig{RedisURL: testenv.RedisURL(), Events: 2000, Out: &out})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Events != 2000 || rep.Partitions != 16 || rep.BodyBytes/2000 < 500 {
		t.Errorf("report %+v, want 2000 events of the default 16 partitions, bodies of some 850 bytes", rep)
	}
	for _, line := range []string{"events: 2000, average body ", "\nseen keys (dedup, kept --seen-ttl): ", "\nstream entries:                     "} {
		if !strings.Contains(out.String(), line) {
			t.Errorf("output lacks %q:\n%s", line, out.String())
		}
	}
}

func TestConfigsRejectNegativeValues(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := func(err error, want string) {
		t.Helper()
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("got %v, want an error containing %q", err, want)
		}
	}
	_, err := Ingest(ctx, IngestConfig{Rounds: -1})
	f(err, "--rounds -1: must not be negative")
	_, err = Ingest(ctx, IngestConfig{OpenDuration: -time.Second})
	f(err, "--open-duration -1s: must not be negative")
	_, err = Process(ctx, ProcessConfig{SeedInstances: -5})
	f(err, "--seed-instances -5: must not be negative")
	_, err = Windows(ctx, WindowsConfig{ProbeRate: -1})
	f(err, "--probe-rate -1: must not be negative")
	_, err = Memory(ctx, MemoryConfig{Events: -1})
	f(err, "--events -1: must not be negative")
	f(ServeReceivers(ctx, ReceiversConfig{}, nil, nil), "--prefix is required")
}
