package plugin

import (
	"bytes"
	"context"
	"encoding/base64"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/hookstream/hookstream/grafana-plugin/pkg/apiclient"
	"github.com/hookstream/hookstream/internal/scratch"
	"github.com/hookstream/hookstream/internal/testenv"
	"github.com/hookstream/hookstream/stream"
)

var update = flag.Bool("update", false, "rewrite the golden frames in testdata/ from what the queries answer")

// The simulated traffic: fixed seed and start, so the stored events, and
// with them every golden frame, are the same on any day.
const (
	simSeed      = "15"
	simCustomers = "1200"
	// simSpan spreads the customers over 30 hours of event time, a day
	// and more of windows for the anomaly detectors and the forecaster to
	// learn from; the failure spike at 26h gives them something to find.
	simSpan     = "30h"
	simIncident = "failure-spike@26h/1h"
	readSecret  = "grafana-read-secret-0123456789"
	adminSecret = "ops-admin-secret-0123456789ab"
)

var simStart = time.Date(2025, 6, 2, 14, 0, 0, 0, time.UTC)

// hookstream is one running "hookstream serve --roles all" on a private Redis
// namespace and PostgreSQL schema, fed with the simulated traffic, shared by
// every test of the package (started by the first that needs it, stopped by
// TestMain). Tests only read from it, so they may run in any order.
type hookstream struct {
	apiURL     string // the API listener
	webhookURL string // the receiver's listener (not an API)
	logs       *syncBuffer
	run        func(args ...string) (string, error) // runs the hookstream binary with the server's settings
}

var (
	hsOnce    sync.Once
	hsShared  *hookstream
	hsErr     error
	hsCleanup []func()

	// The live tests send new events; they have their own hookstream,
	// started without the simulated traffic, so the shared one stays as
	// the golden frames (status, metrics) saw it under -count and -shuffle.
	liveOnce   sync.Once
	liveShared *hookstream
	liveErr    error
)

func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	for i := len(hsCleanup) - 1; i >= 0; i-- {
		hsCleanup[i]()
	}
	os.Exit(code)
}

// sharedHookstream starts the shared hookstream on first use.
func sharedHookstream(t testing.TB) *hookstream {
	t.Helper()
	hsOnce.Do(func() { hsShared, hsErr = startHookstream(true) })
	if hsErr != nil {
		t.Fatal(hsErr)
	}
	return hsShared
}

// liveHookstream starts, on first use, the hookstream the live tests send
// their events to (no traffic until they do).
func liveHookstream(t *testing.T) *hookstream {
	t.Helper()
	liveOnce.Do(func() { liveShared, liveErr = startHookstream(false) })
	if liveErr != nil {
		t.Fatal(liveErr)
	}
	return liveShared
}

func startHookstream(traffic bool) (*hookstream, error) {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "hookstream-plugin-test")
	if err != nil {
		return nil, err
	}
	hsCleanup = append(hsCleanup, func() { os.RemoveAll(dir) })
	alertRules, err := alertRulesWithReceiver(dir)
	if err != nil {
		return nil, err
	}

	// The engine from the root module, built in its own directory so its
	// go.sum applies: the workspace (go.work) or, with GOWORK=off, the
	// replace directive in go.mod names the checkout this plugin is in.
	root, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/hookstream/hookstream").Output()
	if err != nil {
		return nil, fmt.Errorf("find the hookstream module: %w", err)
	}
	bin := filepath.Join(dir, "hookstream")
	build := exec.Command("go", "build", "-o", bin, "./cmd/hookstream")
	build.Dir = strings.TrimSpace(string(root))
	if out, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("build hookstream: %v\n%s", err, out)
	}

	// A private Redis namespace, its keys deleted at the end (SCAN, never FLUSH).
	opt, err := redis.ParseURL(testenv.RedisURL())
	if err != nil {
		return nil, fmt.Errorf("parse HOOKSTREAM_REDIS_URL: %w", err)
	}
	rdb := redis.NewClient(opt)
	if err := rdb.Ping(ctx).Err(); err != nil {
		return nil, fmt.Errorf("redis at %s is unreachable: %w; run the tests with `make test`, which starts one", testenv.RedisURL(), err)
	}
	ns := scratch.Name("hsg")
	hsCleanup = append(hsCleanup, func() {
		if _, err := stream.DeleteKeys(context.Background(), rdb, ns+":*"); err != nil {
			fmt.Fprintln(os.Stderr, "cleanup redis namespace:", err)
		}
		rdb.Close()
	})

	// A private PostgreSQL schema, dropped at the end.
	admin, err := pgxpool.New(ctx, testenv.DatabaseURL())
	if err != nil {
		return nil, fmt.Errorf("parse HOOKSTREAM_DATABASE_URL: %w", err)
	}
	schema := scratch.Name("t_")
	if _, err := admin.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		admin.Close()
		return nil, fmt.Errorf("create schema at %s: %w; run the tests with `make test`, which starts PostgreSQL", testenv.DatabaseURL(), err)
	}
	hsCleanup = append(hsCleanup, func() {
		if _, err := admin.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			fmt.Fprintln(os.Stderr, "cleanup schema:", err)
		}
		admin.Close()
	})

	env := append(os.Environ(),
		"HOOKSTREAM_REDIS_URL="+testenv.RedisURL(),
		"HOOKSTREAM_DATABASE_URL="+scratch.WithSearchPath(testenv.DatabaseURL(), schema),
		"HOOKSTREAM_NAMESPACE="+ns,
		"HOOKSTREAM_WEBHOOK_SECRETS=plugin-secret",
		"HOOKSTREAM_SPOOL_DIR="+filepath.Join(dir, "spool"),
		"HOOKSTREAM_API_TOKENS=grafana:read:"+readSecret+",ops:admin:"+adminSecret,
		// Windows close on event time only: a partition idle for a
		// second would otherwise follow the wall clock and close every
		// window up to today at a moment no test controls.
		"HOOKSTREAM_WATERMARK_IDLE=100000h",
		"HOOKSTREAM_ALERT_RULES="+alertRules,
	)
	run := func(args ...string) (string, error) {
		cmd := exec.Command(bin, args...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			return "", fmt.Errorf("hookstream %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out), nil
	}
	if _, err := run("migrate", "up"); err != nil {
		return nil, err
	}

	httpPort, apiPort := freePort(), freePort()
	hs := &hookstream{apiURL: fmt.Sprintf("http://127.0.0.1:%d", apiPort), webhookURL: fmt.Sprintf("http://127.0.0.1:%d", httpPort), logs: &syncBuffer{}, run: run}
	cmd := exec.Command(bin, "serve", "--roles", "all", "--http-addr", fmt.Sprintf("127.0.0.1:%d", httpPort), "--api-addr", fmt.Sprintf("127.0.0.1:%d", apiPort))
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = hs.logs, hs.logs
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start hookstream serve: %w", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	hsCleanup = append(hsCleanup, func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})

	api, _ := apiclient.New(hs.apiURL, readSecret, nil)
	if err := poll(30*time.Second, "the API to answer", func() bool {
		_, err := api.Info(ctx)
		return err == nil
	}); err != nil {
		return nil, fmt.Errorf("%w\n%s", err, hs.logs.String())
	}
	if !traffic {
		return hs, nil
	}
	if out, err := run("sim", "--url", hs.webhookURL+"/webhooks/dwolla", "--webhook-secrets", "plugin-secret",
		"--customers", simCustomers, "--span", simSpan, "--incident", simIncident, "--seed", simSeed, "--start", simStart.Format(time.RFC3339), "--rate", "0",
		// one at a time, in event-time order: no event reaches a window
		// after it closed, so no window is revised and every score is
		// the same on every run
		"--concurrency", "1",
		"--verify", "events", "--verify-timeout", "60s"); err != nil {
		return nil, fmt.Errorf("%w\n%s", err, hs.logs.String())
	} else if !strings.Contains(out, " 0 missing, 0 duplicated, 0 unexpected") {
		return nil, fmt.Errorf("sim --verify events found a difference:\n%s", out)
	}
	// Stored is not yet acknowledged: wait until the streams are drained, so
	// the status frames are stable too.
	if err := poll(30*time.Second, "processing to drain the streams", func() bool {
		st, err := api.Status(ctx)
		return err == nil && st.Total.Pending == 0 && st.Total.Lag == 0 && st.Total.Length > 0
	}); err != nil {
		return nil, err
	}
	// One silence, of a rule that never fires, so the silences view has a
	// row and the alerts stay unsilenced.
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, hs.apiURL+"/api/v1/silences",
		strings.NewReader(`{"matchers":["alertname=spool-never"],"for":"10000h","comment":"plugin tests: a silence to list"}`))
	req.Header.Set("Authorization", "Bearer "+adminSecret)
	req.Header.Set("Content-Type", "application/json")
	if resp, err := http.DefaultClient.Do(req); err != nil {
		return nil, fmt.Errorf("create a silence: %w", err)
	} else if resp.Body.Close(); resp.StatusCode != http.StatusCreated {
		return nil, fmt.Errorf("create a silence: %s", resp.Status)
	}
	// The always-firing rules notify the test receiver: wait for a
	// delivery, so the notifications view has rows.
	if err := poll(60*time.Second, "a notification delivered to the test receiver", func() bool {
		ns, err := api.Notifications(ctx, 10)
		return err == nil && slices.ContainsFunc(ns, func(n apiclient.Notification) bool { return n.DeliveredAt != nil })
	}); err != nil {
		return nil, fmt.Errorf("%w\n%s", err, hs.logs.String())
	}
	// The scorer catches up with the closed windows in its own time: wait
	// until every watched series has scored the last window it learnt.
	if err := poll(60*time.Second, "the anomaly scorer to score every closed window", func() bool {
		fs, err := api.Forecasts(ctx, "", time.Minute)
		if err != nil {
			return false
		}
		for _, f := range fs {
			if f.Learnt == 0 {
				continue
			}
			win, _ := time.ParseDuration(f.Window)
			s, _, err := api.Anomalies(ctx, apiclient.AnomaliesParams{Series: f.Series, All: true, From: f.LearntUntil.Add(-win), To: f.LearntUntil, Limit: 1})
			if err != nil || len(s) == 0 || !s[0].Start.Add(win).Equal(f.LearntUntil) {
				return false
			}
		}
		return true
	}); err != nil {
		return nil, fmt.Errorf("%w\n%s", err, hs.logs.String())
	}
	return hs, nil
}

// alertRulesWithReceiver writes, in dir, testdata/server/alert-rules.yaml
// with a webhook target on loopback that accepts every notification (the
// rules name no targets: they notify every target) and a short group_wait.
func alertRulesWithReceiver(dir string) (string, error) {
	rules, err := os.ReadFile(filepath.Join("testdata", "server", "alert-rules.yaml"))
	if err != nil {
		return "", err
	}
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
	}))
	hsCleanup = append(hsCleanup, receiver.Close)
	secret := base64.StdEncoding.EncodeToString([]byte("plugin-tests-webhook-secret-0123"))
	head := fmt.Sprintf("group_wait: 1s\ntargets:\n  - name: test-receiver\n    kind: webhook\n    url: %s/alerts\n    secret: whsec_%s\n", receiver.URL, secret)
	path := filepath.Join(dir, "alert-rules.yaml")
	return path, os.WriteFile(path, append([]byte(head), rules...), 0o600)
}

// poll checks cond until it holds or timeout passes.
func poll(timeout time.Duration, what string, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}

// freePort is a loopback port that was free a moment ago.
func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(fmt.Sprintf("find a free port: %v", err))
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// closedURL is a loopback URL nothing listens on.
func closedURL() string { return fmt.Sprintf("http://127.0.0.1:%d", freePort()) }
