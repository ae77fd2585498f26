package api

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hookstream/hookstream/internal/testenv"
	"github.com/hookstream/hookstream/journeys"
	"github.com/hookstream/hookstream/process"
	"github.com/hookstream/hookstream/sim"
	"github.com/hookstream/hookstream/windows"
)

// The secrets of the fixture's tokens.
const (
	readSecret  = "read-secret-0123456789"
	adminSecret = "admin-secret-0123456789"
)

// fixture is a hookstream with the API in front of it, on the test
// servers: a private namespace and schema, a server over them, and
// (optionally) a running process role.
type fixture struct {
	*testenv.Pipeline
	s   *Server
	srv *httptest.Server
	ctx context.Context
}

// newFixture starts the API (its live feed reader included) over a fresh
// pipeline; tune may change the configuration first.
func newFixture(t *testing.T, tune func(*Config)) *fixture {
	t.Helper()
	p := testenv.NewPipeline(t, 4)
	tokens, err := ParseTokens("reader:read:" + readSecret + ",ops:admin:" + adminSecret)
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Keys: p.Keys, Journeys: journeys.Default(), Tokens: tokens, Logger: quiet,
		Live: LiveOptions{Block: 50 * time.Millisecond}}
	if tune != nil {
		tune(&cfg)
	}
	s, err := New(p.Redis, p.DB, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Run(ctx)
	}()
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(func() {
		cancel()
		<-done
		srv.Close()
	})
	select {
	case <-s.hub.ready:
	case <-time.After(10 * time.Second):
		t.Fatal("the live feed did not start reading within 10s")
	}
	return &fixture{Pipeline: p, s: s, srv: srv, ctx: ctx}
}

// process runs a process role over the fixture's pipeline until the test
// ends: windows close as soon as partitions are idle.
func (f *fixture) process(t *testing.T) *process.Role {
	t.Helper()
	cfg := process.RoleConfig{
		Processor: process.Options{Block: 50 * time.Millisecond, ClaimIdle: 5 * time.Second, TxTimeout: 3 * time.Second,
			ControlEvery: 100 * time.Millisecond, ShutdownWait: 5 * time.Second, Logger: quiet},
		Journeys: journeys.Default(), StatusEvery: 100 * time.Millisecond,
	}
	cfg.Windows.Idle = time.Millisecond
	role, err := process.NewRole(f.Redis, f.DB, f.Keys, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- role.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("process role: %v", err)
		}
	})
	return role
}

// store delivers evs to the partition streams and waits until a running
// process role has stored them all.
func (f *fixture) store(t *testing.T, evs []sim.Event) {
	t.Helper()
	var before int64
	f.DB.QueryRow(context.Background(), `SELECT count(*) FROM events`).Scan(&before)
	f.Append(t, evs)
	testenv.WaitFor(t, 60*time.Second, "the events to be stored", func() bool {
		var n int64
		f.DB.QueryRow(context.Background(), `SELECT count(*) FROM events`).Scan(&n)
		return n >= before+int64(len(evs)) && f.Drained(t)
	})
}

// scenario is simulated traffic: customers' lifecycles from 2025-06-02.
func scenario(customers int, seed int64) *sim.Scenario {
	return sim.Generate(sim.Config{Customers: customers, Seed: seed})
}

// answer is one HTTP exchange.
type answer struct {
	status int
	header http.Header
	body   []byte
}

func (a answer) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(a.body, v); err != nil {
		t.Fatalf("decode %s: %v", a.body, err)
	}
}

func (a answer) problem(t *testing.T) Problem {
	t.Helper()
	if ct := a.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type %q, want application/problem+json; body %s", ct, a.body)
	}
	var p Problem
	a.decode(t, &p)
	return p
}

// do sends a request with the secret as bearer token ("" for none) and
// checks the answer against the OpenAPI document.
func (f *fixture) do(t *testing.T, method, path, secret string, body io.Reader) answer {
	t.Helper()
	return f.send(t, method, path, secret, body, true)
}

// send is do, checking the answer against the OpenAPI document only when
// documented (requests the API does not serve are not in it).
func (f *fixture) send(t *testing.T, method, path, secret string, body io.Reader, documented bool) answer {
	t.Helper()
	req, err := http.NewRequest(method, f.srv.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if secret != "" {
		req.Header.Set("Authorization", "Bearer "+secret)
	}
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if documented {
		checkAgainstOpenAPI(t, req, resp, b)
	}
	return answer{resp.StatusCode, resp.Header, b}
}

func (f *fixture) get(t *testing.T, path string) answer {
	t.Helper()
	return f.do(t, "GET", path, readSecret, nil)
}

// ok fails unless a is a 200.
func (a answer) ok(t *testing.T) answer {
	t.Helper()
	if a.status != http.StatusOK {
		t.Fatalf("status %d, want 200: %s", a.status, a.body)
	}
	return a
}

// jsonEq fails unless got and want encode to the same JSON.
func jsonEq(t *testing.T, what string, got []byte, want any) {
	t.Helper()
	w, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	var g, x any
	json.Unmarshal(got, &g)
	json.Unmarshal(w, &x)
	gb, _ := json.Marshal(g)
	xb, _ := json.Marshal(x)
	if string(gb) != string(xb) {
		t.Fatalf("%s:\n got %s\nwant %s", what, trim(gb), trim(xb))
	}
}

func trim(b []byte) string {
	s := string(b)
	if len(s) > 2000 {
		return s[:2000] + "…"
	}
	return strings.TrimSpace(s)
}

// quiet logs warnings and errors only: the access log of every test
// request would bury them.
var quiet = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

// simRange is a time range holding every event of scenario's default start.
const simRange = "from=2025-06-01T00:00:00Z&to=2025-06-10T00:00:00Z"

var _ = windows.MetricCount
