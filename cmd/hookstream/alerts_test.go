package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hookstream/hookstream/alert"
	"github.com/hookstream/hookstream/internal/testenv"
)

// TestAlertEvaluatorKilled: the alert role is SIGKILLed while a target is
// receiving a notification from it. A second process, already running,
// takes over the evaluation within seconds and, once the dead process's
// lease on the notification has run out, delivers it: the sink gets that
// notification id exactly once (after deduplication), and nothing is lost.
func TestAlertEvaluatorKilled(t *testing.T) {
	bin := buildBinary(t)
	p := testenv.NewPipeline(t, 1)
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	key, err := alert.ParseSecret(secret)
	if err != nil {
		t.Fatal(err)
	}

	var (
		mu       sync.Mutex
		first    string // the id the first (killed) delivery carried
		ok       = map[string]int{}
		inFlight = make(chan struct{}, 1)
		release  = make(chan struct{})
	)
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := alert.Verify(r.Header, body, time.Now(), alert.DefaultTolerance, key); err != nil {
			t.Errorf("sink: %v", err)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		id := r.Header.Get(alert.HeaderID)
		mu.Lock()
		hold := first == ""
		if hold {
			first = id
		}
		mu.Unlock()
		if hold {
			// Keep the first delivery in flight until its sender dies.
			inFlight <- struct{}{}
			select {
			case <-r.Context().Done():
			case <-release:
			}
			return
		}
		mu.Lock()
		ok[id]++
		mu.Unlock()
	}))
	defer sink.Close()
	defer close(release)

	rules := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(rules, []byte(fmt.Sprintf(`
group_wait: 0s
targets:
  - {name: sink, kind: webhook, url: %s, secret: %s}
rules:
  - {name: always, kind: operational, severity: critical, signal: dead_letters_open, op: ">=", value: 0}
`, sink.URL, secret)), 0o644); err != nil {
		t.Fatal(err)
	}
	start := func() (*exec.Cmd, *bytes.Buffer) {
		cmd := exec.Command(bin, "serve", "--roles", "alert", "--alert-rules", rules, "--alert-interval", "1s", "--alert-lease", "11s",
			"--http-addr", fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)))
		cmd.Env = append(os.Environ(), "HOOKSTREAM_REDIS_URL="+testenv.RedisURL(), "HOOKSTREAM_DATABASE_URL="+p.DBURL,
			"HOOKSTREAM_NAMESPACE="+p.Keys.Namespace)
		var logs bytes.Buffer
		cmd.Stdout, cmd.Stderr = &logs, &logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		return cmd, &logs
	}
	a, alogs := start()
	select {
	case <-inFlight:
	case <-time.After(90 * time.Second): // a bound on a hang, not a speed check
		t.Fatalf("no notification reached the sink:\n%s", alogs)
	}
	b, blogs := start()
	if err := a.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	a.Wait()
	killed := time.Now()

	ctx := context.Background()
	holder := func() string {
		var h string
		if err := p.DB.QueryRow(ctx, `SELECT holder FROM alert_evaluator`).Scan(&h); err != nil {
			t.Fatal(err)
		}
		return h
	}
	wantHolder := fmt.Sprintf("-%d", b.Process.Pid)
	for !strings.HasSuffix(holder(), wantHolder) {
		if time.Since(killed) > 90*time.Second {
			t.Fatalf("the second process never evaluated (holder %s):\n%s", holder(), blogs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("the second process evaluated %s after the kill", time.Since(killed).Round(time.Millisecond))
	for {
		mu.Lock()
		n := ok[first]
		mu.Unlock()
		if n > 0 {
			break
		}
		if time.Since(killed) > 120*time.Second {
			t.Fatalf("notification %s was never delivered after the kill:\n%s", first, blogs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("notification %s delivered %s after the kill", first, time.Since(killed).Round(time.Millisecond))
	// The sink counts the delivery before it answers; the notifier logs the
	// attempt after the answer: wait for the log.
	var attempts int
	testenv.WaitFor(t, 30*time.Second, "the delivery to be logged", func() bool {
		if err := p.DB.QueryRow(ctx, `SELECT count(*) FROM alert_deliveries WHERE outbox_id = $1`, first).Scan(&attempts); err != nil {
			t.Fatal(err)
		}
		return attempts > 0
	})
	mu.Lock()
	defer mu.Unlock()
	if len(ok) != 1 || ok[first] != 1 {
		t.Fatalf("the sink accepted %v; want %s once", ok, first)
	}
	if attempts != 1 {
		// The killed process's attempt is not logged (it died in it); the
		// second process's is.
		t.Fatalf("%d logged attempts for %s", attempts, first)
	}
}
