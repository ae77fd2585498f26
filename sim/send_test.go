package sim

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"maps"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hookstream/hookstream/dwolla"
)

var testSecret = []byte("dev-secret")

// receiver is a test webhook endpoint that records every delivery and answers
// with whatever status says for the n-th try (from 0) of an event id.
type receiver struct {
	t        *testing.T
	status   func(id string, try int) int
	verifier *dwolla.Verifier

	mu         sync.Mutex
	arrivals   []string       // event ids in arrival order, duplicates included
	tries      map[string]int // requests per event id
	redirected int            // requests that followed a redirect (must stay 0)
	problems   []string
}

func newReceiver(t *testing.T, status func(id string, try int) int) (*receiver, *httptest.Server) {
	r := &receiver{t: t, status: status, verifier: dwolla.NewVerifier([][]byte{testSecret}), tries: map[string]int{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /webhooks/dwolla", r.serve)
	mux.HandleFunc("/elsewhere", func(w http.ResponseWriter, _ *http.Request) {
		r.mu.Lock()
		r.redirected++
		r.mu.Unlock()
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return r, srv
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	ev, err := dwolla.ParseEvent(body)
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case err != nil:
		r.problems = append(r.problems, "unparsable body: "+err.Error())
	case !r.verifier.Verify(body, req.Header.Get(dwolla.SignatureHeader)):
		r.problems = append(r.problems, "bad signature on "+ev.ID)
	case req.Header.Get("Content-Type") != "application/json" || req.Header.Get("User-Agent") != UserAgent:
		r.problems = append(r.problems, "wrong Content-Type or User-Agent: "+req.Header.Get("Content-Type")+" / "+req.UserAgent())
	case req.Header.Get(dwolla.TopicHeader) != ev.Topic:
		r.problems = append(r.problems, "X-Dwolla-Topic "+req.Header.Get(dwolla.TopicHeader)+" != body topic "+ev.Topic)
	}
	try := r.tries[ev.ID]
	r.tries[ev.ID]++
	code := http.StatusOK
	if r.status != nil {
		code = r.status(ev.ID, try)
	}
	if code >= 200 && code < 300 {
		r.arrivals = append(r.arrivals, ev.ID)
	}
	if code >= 300 && code < 400 {
		w.Header().Set("Location", "/elsewhere")
	}
	w.WriteHeader(code)
}

// check fails the test on any malformed request and returns the arrivals.
func (r *receiver) check() []string {
	r.t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.problems) > 0 {
		r.t.Fatalf("%d malformed deliveries, first: %s", len(r.problems), r.problems[0])
	}
	if r.redirected > 0 {
		r.t.Fatalf("the sender followed %d redirects; Dwolla does not", r.redirected)
	}
	return append([]string(nil), r.arrivals...)
}

func testEvents(t testing.TB, n int) []Event {
	t.Helper()
	evs := Generate(Config{Customers: n/8 + 1, Seed: 99}).Events
	if len(evs) < n {
		t.Fatalf("generated %d events, need %d", len(evs), n)
	}
	return evs[:n]
}

func TestSendDeliversEveryEventSignedOnce(t *testing.T) {
	t.Parallel()
	rcv, srv := newReceiver(t, nil)
	events := testEvents(t, 300)
	stats, err := Send(context.Background(), events, SendConfig{URL: srv.URL + "/webhooks/dwolla", Secret: testSecret})
	if err != nil {
		t.Fatal(err)
	}
	arrivals := rcv.check()
	if len(arrivals) != len(events) || countUnique(arrivals) != len(events) {
		t.Fatalf("%d deliveries of %d unique events, want each of %d once", len(arrivals), countUnique(arrivals), len(events))
	}
	want := SendStats{Sent: 300, Delivered: 300}
	if stats.Sent != want.Sent || stats.Delivered != want.Delivered || stats.Retries+stats.GaveUp+stats.NetErrors+stats.Duplicates+stats.Reordered != 0 || len(stats.Non2xx) != 0 {
		t.Fatalf("stats %v, want %v", stats, want)
	}
}

func countUnique(ids []string) int {
	m := map[string]bool{}
	for _, id := range ids {
		m[id] = true
	}
	return len(m)
}

func TestSendDuplicatesAndReorders(t *testing.T) {
	t.Parallel()
	const n = 2000
	tests := []struct {
		name                string
		duplicates, reorder float64
	}{
		{"duplicates only", 0.2, 0},
		{"reorder only", 0, 0.2},
		{"both", 0.2, 0.2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rcv, srv := newReceiver(t, nil)
			events := testEvents(t, n)
			stats, err := Send(context.Background(), events, SendConfig{
				URL: srv.URL + "/webhooks/dwolla", Secret: testSecret, Seed: 1,
				Rate: 4000, Duplicates: tc.duplicates, Reorder: tc.reorder, ReorderDelay: 250 * time.Millisecond,
			})
			if err != nil {
				t.Fatal(err)
			}
			arrivals := rcv.check()
			if u := countUnique(arrivals); u != n {
				t.Fatalf("%d unique events arrived, want %d", u, n)
			}
			extra := len(arrivals) - n
			if int64(extra) != stats.Duplicates || stats.Delivered != int64(len(arrivals)) {
				t.Fatalf("receiver saw %d extra deliveries of %d; stats say %v", extra, len(arrivals), stats)
			}
			near := func(what string, got int64, want float64) {
				t.Helper()
				if frac := float64(got) / n; math.Abs(frac-want) > 0.04 {
					t.Errorf("%s fraction %.3f, want %.2f ± 0.04", what, frac, want)
				}
			}
			near("duplicate", stats.Duplicates, tc.duplicates)
			near("reordered", stats.Reordered, tc.reorder)

			if tc.reorder > 0 {
				// A delayed event arrives after many events created after it.
				first := map[string]int{}
				for i, id := range arrivals {
					if _, ok := first[id]; !ok {
						first[id] = i
					}
				}
				late := 0
				for i, ev := range events {
					if first[ev.ID] > i+25 {
						late++
					}
				}
				if int64(late) < stats.Reordered/3 {
					t.Fatalf("only %d events arrived more than 25 places late; %d were reordered", late, stats.Reordered)
				}
			}
		})
	}
}

func TestSendRetriesOnDwollasSchedule(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		answers []int // answers to the first tries of every event; then 200
	}{
		{"500 twice", []int{500, 500}},
		{"redirect is a failure", []int{302}},
		{"mixed", []int{503, 302, 404, 500}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rcv, srv := newReceiver(t, func(_ string, try int) int {
				if try < len(tc.answers) {
					return tc.answers[try]
				}
				return http.StatusOK
			})
			events := testEvents(t, 50)
			stats, err := Send(context.Background(), events, SendConfig{
				URL: srv.URL + "/webhooks/dwolla", Secret: testSecret, TimeScale: 1e6, // 15m -> 0.9ms
			})
			if err != nil {
				t.Fatal(err)
			}
			arrivals := rcv.check()
			if len(arrivals) != len(events) || countUnique(arrivals) != len(events) {
				t.Fatalf("%d of %d events arrived", countUnique(arrivals), len(events))
			}
			fails := int64(len(tc.answers) * len(events))
			wantNon2xx := map[int]int64{}
			for _, code := range tc.answers {
				wantNon2xx[code] += int64(len(events))
			}
			if stats.Retries != fails || stats.Sent != fails+int64(len(events)) || stats.GaveUp != 0 || !maps.Equal(stats.Non2xx, wantNon2xx) {
				t.Fatalf("stats %v; want %d retries and non-2xx %v", stats, fails, wantNon2xx)
			}
		})
	}
}

func TestSendGivesUpAfterEightRetries(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		unreachable bool
	}{
		{"always 500", false},
		{"unreachable", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rcv, srv := newReceiver(t, func(string, int) int { return http.StatusInternalServerError })
			url := srv.URL + "/webhooks/dwolla"
			if tc.unreachable {
				srv.Close() // connection refused from now on
			}
			events := testEvents(t, 3)
			stats, err := Send(context.Background(), events, SendConfig{
				URL: url, Secret: testSecret, TimeScale: 1e7, Logger: slog.New(slog.DiscardHandler),
			})
			if err != nil {
				t.Fatal(err)
			}
			rcv.check()
			tries := int64(len(events) * (1 + MaxRetries))
			if stats.GaveUp != 3 || stats.Sent != tries || stats.Retries != tries-3 || stats.Delivered != 0 {
				t.Fatalf("stats %v; want 3 given up after %d requests", stats, tries)
			}
			wantNet, wantNon2xx := int64(0), tries
			if tc.unreachable {
				wantNet, wantNon2xx = tries, 0
			}
			if stats.NetErrors != wantNet || stats.Non2xx[500] != wantNon2xx {
				t.Fatalf("stats %v; want %d network errors and %d answers 500", stats, wantNet, wantNon2xx)
			}
		})
	}
}

func TestSendKeepsTheRate(t *testing.T) {
	t.Parallel()
	_, srv := newReceiver(t, nil)
	events := testEvents(t, 41)
	begin := time.Now()
	if _, err := Send(context.Background(), events, SendConfig{URL: srv.URL + "/webhooks/dwolla", Secret: testSecret, Rate: 200}); err != nil {
		t.Fatal(err)
	}
	// The 41st event is due 40/200 s after the first.
	if took := time.Since(begin); took < 190*time.Millisecond || took > 5*time.Second {
		t.Fatalf("41 events at 200/s took %s, want about 200ms", took)
	}
}

func TestSendStopsWhenContextEnds(t *testing.T) {
	t.Parallel()
	arrived := make(chan struct{}, 100)
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		arrived <- struct{}{}
		select { // no answer until the client goes away or the test ends
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) }) // runs first
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := Send(ctx, testEvents(t, 20), SendConfig{URL: srv.URL, Secret: testSecret, Concurrency: 2})
		done <- err
	}()
	deadline := time.After(10 * time.Second)
	select {
	case <-arrived:
	case <-deadline:
		t.Fatal("no request arrived")
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Send returned %v, want context.Canceled", err)
		}
	case <-deadline:
		t.Fatal("Send did not return after its context ended")
	}
}

func TestSendConfigErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  SendConfig
		want string
	}{
		{"no url", SendConfig{Secret: testSecret}, "absolute http"},
		{"relative url", SendConfig{URL: "/webhooks/dwolla", Secret: testSecret}, "absolute http"},
		{"ftp url", SendConfig{URL: "ftp://x/y", Secret: testSecret}, "absolute http"},
		{"no secret", SendConfig{URL: "http://127.0.0.1:1/"}, "secret"},
		{"negative rate", SendConfig{URL: "http://127.0.0.1:1/", Secret: testSecret, Rate: -1}, "negative"},
		{"duplicates over 1", SendConfig{URL: "http://127.0.0.1:1/", Secret: testSecret, Duplicates: 1.5}, "within [0, 1]"},
		{"negative reorder", SendConfig{URL: "http://127.0.0.1:1/", Secret: testSecret, Reorder: -0.1}, "within [0, 1]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := Send(context.Background(), nil, tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one mentioning %q", err, tc.want)
			}
		})
	}
}

func TestSendStatsString(t *testing.T) {
	t.Parallel()
	s := SendStats{Sent: 5, Delivered: 3, Non2xx: map[int]int64{500: 1, 302: 1}}.String()
	for _, want := range []string{"5 requests", "3 delivered", "non-2xx: 1×302 1×500"} {
		if !strings.Contains(s, want) {
			t.Fatalf("%q lacks %q", s, want)
		}
	}
}
