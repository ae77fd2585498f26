package sim

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestRunSendsOnceAndWritesTruthAndSummary(t *testing.T) {
	t.Parallel()
	rcv, srv := newReceiver(t, nil)
	truth := t.TempDir() + "/truth.jsonl"
	var out bytes.Buffer
	err := Run(context.Background(), RunConfig{
		Generate: Config{Customers: 20, Seed: 3, Start: time.Date(2025, 6, 2, 14, 0, 0, 0, time.UTC)},
		Send:     SendConfig{URL: srv.URL + "/webhooks/dwolla", Secret: testSecret, Duplicates: 0.2, TimeScale: 3600},
		Truth:    truth,
		Out:      &out,
	})
	if err != nil {
		t.Fatal(err)
	}
	arrivals := rcv.check()
	f, err := os.Open(truth)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ids, err := ReadTruth(f)
	if err != nil {
		t.Fatal(err)
	}
	if countUnique(arrivals) != len(ids) {
		t.Fatalf("%d unique events arrived, the truth lists %d", countUnique(arrivals), len(ids))
	}
	if len(arrivals) <= len(ids) {
		t.Fatalf("%d deliveries of %d events with 20%% duplicates: none duplicated", len(arrivals), len(ids))
	}
	if _, err := os.Stat(truth + ".paths.json"); err != nil {
		t.Fatalf("lifecycle paths not written: %v", err)
	}
	for _, want := range []string{
		"hookstream sim: " + strconv.Itoa(len(ids)) + " events from 20 customers",
		"created from 2025-06-02T14:00:00Z",
		"hookstream sim: done in ",
		"  events      " + strconv.Itoa(len(ids)) + " unique from 20 customers",
		"  failures    0 retries, 0 given up, 0 network errors, non-2xx: none",
		"  truth       " + truth + " (paths in " + truth + ".paths.json)",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestRunFailsWhenDeliveriesAreGivenUp(t *testing.T) {
	t.Parallel()
	_, srv := newReceiver(t, func(string, int) int { return http.StatusInternalServerError })
	var out bytes.Buffer
	err := Run(context.Background(), RunConfig{
		Generate: Config{Customers: 1, Seed: 1},
		Send:     SendConfig{URL: srv.URL + "/webhooks/dwolla", Secret: testSecret, TimeScale: 1e7, Logger: slog.New(slog.DiscardHandler)},
		Out:      &out,
	})
	if err == nil || !strings.Contains(err.Error(), "deliveries were given up after 8 retries") {
		t.Fatalf("Run = %v, want an error saying deliveries were given up", err)
	}
	if !strings.Contains(out.String(), "non-2xx: ") || strings.Contains(out.String(), "non-2xx: none") {
		t.Fatalf("summary does not count the 500s:\n%s", out.String())
	}
}

func TestRunRejectsAWrongConfigBeforeSending(t *testing.T) {
	t.Parallel()
	ok := SendConfig{URL: "http://127.0.0.1:1/webhooks/dwolla", Secret: testSecret}
	f := func(c RunConfig, want string) {
		t.Helper()
		err := Run(context.Background(), c)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Run(%+v) = %v, want an error containing %q", c, err, want)
		}
	}
	f(RunConfig{Send: ok, Verify: "redis"}, `--verify "redis": want none, streams or events`)
	f(RunConfig{Send: ok, Verify: "events", Continuous: true}, "--verify needs a run that ends")
	f(RunConfig{Send: SendConfig{URL: ok.URL}}, "--webhook-secrets is empty")
	f(RunConfig{Send: ok, Verify: "streams"}, "--verify streams needs --redis-url, --namespace and --partitions")
	f(RunConfig{Send: ok, Verify: "events"}, "--verify events needs --database-url")
}

func TestRunContinuousStopsWithItsContext(t *testing.T) {
	t.Parallel()
	rcv, srv := newReceiver(t, nil)
	truth := t.TempDir() + "/truth.jsonl"
	ctx, cancel := context.WithCancel(context.Background())
	var out bytes.Buffer
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, RunConfig{
			Generate:   Config{Seed: 5, StepDelay: time.Millisecond},
			Send:       SendConfig{URL: srv.URL + "/webhooks/dwolla", Secret: testSecret},
			Continuous: true,
			Truth:      truth,
			Out:        &out,
		})
	}()
	deadline := time.Now().Add(10 * time.Second)
	for len(rcv.check()) < 100 {
		if time.Now().After(deadline) {
			t.Fatal("fewer than 100 deliveries after 10s of continuous sending")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run ended with %v, want nil after its context ended", err)
	}
	f, err := os.Open(truth)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ids, err := ReadTruth(f)
	if err != nil {
		t.Fatal(err)
	}
	if countUnique(rcv.check()) > len(ids) {
		t.Fatalf("%d unique events arrived but the truth lists only %d", countUnique(rcv.check()), len(ids))
	}
	if !strings.Contains(out.String(), "generated (seed 5)") {
		t.Fatalf("summary of a continuous run missing:\n%s", out.String())
	}
}
