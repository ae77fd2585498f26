package main

// Chaos tests, dependencies down or slow: PostgreSQL restarted and slowed
// under load, the spool's disk full while Redis is down, Slack and the
// Dwolla API down. Each ends with the simulator's verification of the
// events table (zero missing, zero duplicated), and where the processor ran
// throughout, windows equal to a recomputation from the events and
// journeys equal to a rebuild. docs/reliability.md lists them.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/hookstream/hookstream/dwolla"
	"github.com/hookstream/hookstream/internal/testenv"
	"github.com/hookstream/hookstream/journeys"
	"github.com/hookstream/hookstream/reconcile"
	"github.com/hookstream/hookstream/sim"
	"github.com/hookstream/hookstream/stream"
	"github.com/jackc/pgx/v5/pgxpool"
)

// backlog is what the processors have not finished, read from Redis alone
// (status also reads PostgreSQL, which some of these tests take away).
func (p *pipeline) backlog() (pending, lag int64) {
	p.t.Helper()
	st, err := stream.NewGroup(p.rdb, p.keys, "process").Status(context.Background())
	if err != nil {
		p.t.Fatal(err)
	}
	for _, s := range st {
		pending += s.Pending
		lag += s.Lag
	}
	return pending, lag
}

// loadSim starts the simulator against srv in the background: customers'
// lifecycles at rate events per second, 20% duplicated and 20% reordered,
// its ground truth in a file, and at the end its check that the streams
// hold every event once (the receiver's side of the story).
func (p *pipeline) loadSim(srv *proc, customers, rate int, seed string) (truth string, out *syncBuffer) {
	p.t.Helper()
	truth = filepath.Join(p.t.TempDir(), "truth.jsonl")
	out = p.background("sim", "--url", srv.base+"/webhooks/dwolla", "--webhook-secrets", "pipeline-secret",
		"--customers", fmt.Sprint(customers), "--seed", seed, "--duplicates", "0.2", "--reorder", "0.2",
		"--rate", fmt.Sprint(rate), "--truth", truth, "--verify", "streams", "--verify-timeout", "60s")
	return truth, out
}

// simDone waits for a loadSim run to finish and fails unless every event
// reached the streams once and every delivery was answered 2xx in the end.
func (p *pipeline) simDone(out *syncBuffer, truth string) []string {
	p.t.Helper()
	waitOutput(p.t, out, "verify streams:", 180*time.Second)
	s := out.String()
	if !strings.Contains(s, " 0 missing, 0 duplicated, 0 unexpected") || !strings.Contains(s, " 0 given up") {
		p.t.Fatalf("sim --verify streams:\n%s", s)
	}
	return readTruth(p.t, truth)
}

// verifyExact waits until the processors have stored every event of want
// and finished every entry, then checks: the simulator's verification of
// the events table (zero missing, duplicated, unexpected), no dead letter,
// and windows equal to a recomputation from the events. With journeys, it
// stops srv and checks the journeys folded live equal a rebuild.
func (p *pipeline) verifyExact(srv *proc, want []string, journeysToo bool) {
	p.t.Helper()
	ctx := context.Background()
	testenv.WaitFor(p.t, 120*time.Second, "every event stored and nothing left in the streams", func() bool {
		pending, lag := p.backlog()
		return p.stored() >= int64(len(want)) && pending == 0 && lag == 0
	})
	rep, err := sim.VerifyEvents(ctx, p.db, want)
	if err != nil || !rep.OK() {
		p.t.Fatalf("events table vs the simulator's ground truth: %v %v\nserve:\n%s", rep, err, srv.logs.String())
	}
	if n := p.count(`SELECT count(*) FROM dead_letters`); n != 0 {
		p.t.Fatalf("%d dead letters; a dependency outage must dead-letter nothing", n)
	}
	p.windowsExact()
	if !journeysToo {
		return
	}
	live := p.journeyState()
	if live == "" {
		p.t.Fatal("no journey instances")
	}
	srv.stop(p.t) // nothing folds while the rebuild runs
	for _, d := range journeys.Default().Journeys {
		p.run("journeys", "rebuild", "--journey", d.Name)
	}
	if rebuilt := p.journeyState(); rebuilt != live {
		p.t.Fatalf("journeys differ from a rebuild:\n%s", firstDiff(live, rebuilt))
	}
}

// windowsExact compares the event-time windows (in total and per topic:
// count and failures) with the same numbers computed by SQL from the events
// table: every base (1m) window, and every larger window the closer has
// rolled up so far (the others are read from the base windows).
func (p *pipeline) windowsExact() {
	p.t.Helper()
	const q = `
WITH sizes AS (SELECT DISTINCT size_s FROM window_aggs WHERE basis = 'event'),
base AS (SELECT min(size_s) AS size_s FROM sizes),
want AS (
	SELECT s.size_s, date_bin(make_interval(secs => s.size_s), e.created, 'epoch') AS start, d.dim, d.value,
		count(*) AS count, count(*) FILTER (WHERE e.outcome = 'failure') AS failures
	FROM events e CROSS JOIN sizes s CROSS JOIN LATERAL (VALUES ('all', ''), ('topic', e.topic)) AS d(dim, value)
	GROUP BY 1, 2, 3, 4),
got AS (
	SELECT size_s, start, dim, value, count, failures FROM window_aggs
	WHERE basis = 'event' AND dim IN ('all', 'topic') AND count > 0),
pairs AS (
	SELECT size_s, start, dim, value, got.count AS got_count, got.failures AS got_failures, want.count AS want_count, want.failures AS want_failures
	FROM got FULL JOIN want USING (size_s, start, dim, value)
	WHERE size_s = (SELECT size_s FROM base) OR got.count IS NOT NULL)
SELECT count(*) FILTER (WHERE got_count IS DISTINCT FROM want_count OR got_failures IS DISTINCT FROM want_failures),
	count(*),
	coalesce(min(format('%s %s %s=%s: windows %s/%s, events %s/%s', size_s, start, dim, value, got_count, got_failures, want_count, want_failures))
		FILTER (WHERE got_count IS DISTINCT FROM want_count OR got_failures IS DISTINCT FROM want_failures), '')
FROM pairs`
	var bad, checked int64
	var example string
	if err := p.db.QueryRow(context.Background(), q).Scan(&bad, &checked, &example); err != nil {
		p.t.Fatalf("compare windows with the events: %v", err)
	}
	if checked == 0 || bad != 0 {
		p.t.Fatalf("%d of %d windows differ from a recomputation from the events table, e.g. %s", bad, checked, example)
	}
	p.t.Logf("windows: %d (size, start, topic) windows equal a recomputation from the events table", checked)
}

// TestChaosPostgresRestart: PostgreSQL, a private server, goes away twice
// under load, once by a fast shutdown and once by SIGKILL of every one of
// its processes. Meanwhile the receiver keeps answering 2xx into Redis and
// the processor's breaker opens; after each restart everything drains.
// Nothing is dead-lettered, the events table holds every event once, the
// windows and journeys are exact.
func TestChaosPostgresRestart(t *testing.T) {
	t.Parallel()
	pg := testenv.StartPGServer(t)
	p := newPipeline(t)
	db, err := pgxpool.New(context.Background(), pg.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	p.db = db
	p.env = append(p.env, "HOOKSTREAM_DATABASE_URL="+pg.URL()) // the last one counts
	p.run("migrate", "up")

	srv := p.serve("--roles", "ingest,process", "--read-block", "200ms", "--breaker-failures", "3", "--breaker-open", "500ms")
	truth, out := p.loadSim(srv, 400, 300, "31")
	opened := func() int { return strings.Count(srv.logs.String(), "to=open") }
	for i, outage := range []struct {
		name string
		down func()
	}{{"fast shutdown", pg.Stop}, {"kill -9", pg.Kill}} {
		testenv.WaitFor(t, 60*time.Second, "the processor to store events", func() bool {
			return p.stored() > int64(200*(i+1))
		})
		openedBefore := opened()
		outage.down()
		before := p.entries()
		deadline := time.Now().Add(60 * time.Second)
		for opened() == openedBefore || p.entries() <= before+200 {
			if time.Now().After(deadline) {
				t.Fatalf("%s: in 60s, %d entries queued and the breaker opened %d times; serve:\n%s\nsim:\n%s", outage.name,
					p.entries()-before, opened()-openedBefore, srv.logs.String(), out.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Logf("%s: %d entries queued into Redis while PostgreSQL was down", outage.name, p.entries()-before)
		pg.Start()
	}
	if !strings.Contains(srv.logs.String(), `msg="PostgreSQL circuit breaker"`) {
		t.Fatalf("no breaker transition logged:\n%s", srv.logs.String())
	}
	want := p.simDone(out, truth)
	p.verifyExact(srv, want, true)
}

// TestChaosPostgresSlow: PostgreSQL reached through a proxy that adds 30ms
// to every answer while the simulator sends. The receiver's answers do not
// depend on PostgreSQL: every delivery is answered 2xx and reaches the
// streams. The backlog drains once the delay is removed; nothing is
// dead-lettered and the events, windows and journeys are exact. The lag
// seen during the delay is reported, not asserted.
func TestChaosPostgresSlow(t *testing.T) {
	t.Parallel()
	p := newPipeline(t)
	cfg, err := pgxpool.ParseConfig(testenv.DatabaseURL())
	if err != nil {
		t.Fatal(err)
	}
	proxy := testenv.NewProxy(t, fmt.Sprintf("%s:%d", cfg.ConnConfig.Host, cfg.ConnConfig.Port))
	dbURL := p.envValue("HOOKSTREAM_DATABASE_URL")
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	u.Host = proxy.Addr()
	p.env = append(p.env, "HOOKSTREAM_DATABASE_URL="+u.String())

	srv := p.serve("--roles", "ingest,process", "--read-block", "200ms")
	proxy.SetDelay(30 * time.Millisecond)
	start := time.Now()
	truth, out := p.loadSim(srv, 300, 0, "32")
	waitOutput(t, out, "hookstream sim: done in", 180*time.Second)
	_, lag := p.backlog()
	proxy.SetDelay(0)
	t.Logf("with 30ms added per PostgreSQL answer: the simulator finished in %s, leaving %d entries not yet read by the processor", time.Since(start).Round(time.Millisecond), lag)
	ids := p.simDone(out, truth)
	if s := out.String(); !strings.Contains(s, "non-2xx: none") || !strings.Contains(s, " 0 network errors") {
		t.Fatalf("the receiver did not answer every delivery 2xx while PostgreSQL was slow:\n%s", s)
	}
	p.verifyExact(srv, ids, true)
}

// envValue is the last value of key in the pipeline's environment.
func (p *pipeline) envValue(key string) string {
	v := ""
	for _, kv := range p.env {
		if k, val, ok := strings.Cut(kv, "="); ok && k == key {
			v = val
		}
	}
	return v
}

// mountTmpfs mounts a tmpfs of size bytes in a temp dir and unmounts it when the
// test ends; it skips the test where that cannot be done (not root, no
// mount permission in this container).
func mountTmpfs(t *testing.T, size int) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("a full disk is made with a small tmpfs, which needs root (mount -t tmpfs); not root here")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d,mode=0700", size), "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs to fill (%v: %s); a full spool disk is not tested here", err, bytes.TrimSpace(out))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v %s", dir, err, out)
		}
	})
	return dir
}

// fillDisk writes zeros into dir until the disk refuses, leaving it full.
func fillDisk(t *testing.T, dir string) {
	t.Helper()
	f, err := os.Create(filepath.Join(dir, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 4096)
	for {
		if _, err := f.Write(buf); err != nil {
			return
		}
	}
}

// newCustomerCreated is a minimal signed-able Dwolla event with a fresh id.
func newCustomerCreated(created time.Time) (id string, body []byte) {
	id = uuid.NewString()
	cust := "https://api-sandbox.dwolla.com/customers/" + uuid.NewString()
	body = fmt.Appendf(nil, `{"id":%q,"resourceId":%q,"topic":"customer_created","timestamp":%q,"created":%q,`+
		`"_links":{"resource":{"href":%q},"customer":{"href":%q},"self":{"href":"https://api-sandbox.dwolla.com/events/%s"}}}`,
		id, cust[len(cust)-36:], created.Format(time.RFC3339Nano), created.Format(time.RFC3339Nano), cust, cust, id)
	return id, body
}

// postWebhook POSTs a signed webhook and returns the status.
func postWebhook(base string, body []byte) (int, error) {
	req, err := http.NewRequest(http.MethodPost, base+"/webhooks/dwolla", bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set(dwolla.SignatureHeader, dwolla.Sign([]byte("pipeline-secret"), body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// TestChaosSpoolDiskFull: Redis unreachable and the spool's disk full. The
// receiver spools while it can, then answers 503 (Dwolla retries), never
// 2xx for what it could not store. When Redis is back the spool drains:
// every event answered 2xx is stored once, nothing garbled comes out of the
// spool (no unexpected id) and the spool ends empty; the events answered
// 503, delivered again as Dwolla would, are stored too.
func TestChaosSpoolDiskFull(t *testing.T) {
	t.Parallel()
	spoolDir := mountTmpfs(t, 256<<10)
	p := newPipeline(t)
	opt, err := url.Parse(testenv.RedisURL())
	if err != nil {
		t.Fatal(err)
	}
	proxy := testenv.NewProxy(t, opt.Host)
	opt.Host = proxy.Addr()
	p.env = append(p.env, "HOOKSTREAM_REDIS_URL="+opt.String(), "HOOKSTREAM_SPOOL_DIR="+spoolDir)
	srv := p.serve("--roles", "ingest,process", "--read-block", "200ms", "--redis-timeout", "500ms")
	proxy.Cut()

	created := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	var (
		mu       sync.Mutex
		accepted []string              // answered 2xx
		refused  = map[string][]byte{} // answered 503
		other    []int
	)
	var wg sync.WaitGroup
	var stop sync.Once
	full := make(chan struct{})
	for w := range 4 {
		wg.Go(func() {
			after := 0 // requests sent since the first 503
			for i := 0; ; i++ {
				select {
				case <-full:
					if after++; after > 10 {
						return
					}
				default:
				}
				id, body := newCustomerCreated(created.Add(time.Duration(w*100000+i) * time.Millisecond))
				code, err := postWebhook(srv.base, body)
				if err != nil {
					t.Errorf("webhook: %v", err)
					stop.Do(func() { close(full) })
					return
				}
				mu.Lock()
				switch {
				case code/100 == 2:
					accepted = append(accepted, id)
				case code == http.StatusServiceUnavailable:
					refused[id] = body
					stop.Do(func() { close(full) })
				default:
					other = append(other, code)
				}
				mu.Unlock()
				if i > 20000 {
					t.Errorf("20000 webhooks per worker spooled and the spool's disk is still not full")
					stop.Do(func() { close(full) })
					return
				}
			}
		})
	}
	<-full
	// The disk is full now: whatever free space the spool's segments left
	// goes to a filler, so every later write fails.
	fillDisk(t, spoolDir)
	wg.Wait()
	if len(other) > 0 {
		t.Fatalf("answers other than 2xx and 503 with Redis down and the disk full: %v", other)
	}
	if len(accepted) == 0 || len(refused) == 0 {
		t.Fatalf("%d answered 2xx, %d answered 503; want some of each", len(accepted), len(refused))
	}
	// Once the disk is full, every webhook is refused.
	for range 10 {
		_, body := newCustomerCreated(created.Add(-time.Hour))
		if code, err := postWebhook(srv.base, body); err != nil || code != http.StatusServiceUnavailable {
			t.Fatalf("a webhook answered %d (%v) with Redis down and the spool's disk full; want 503", code, err)
		}
	}
	// Nor is the receiver ready: neither Redis nor the spool can take a
	// webhook (a load balancer stops sending it any).
	resp, err := http.Get(srv.base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	ready, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(ready), `"writable": false`) {
		t.Fatalf("readyz with Redis down and the spool's disk full: %d %s", resp.StatusCode, ready)
	}
	if !strings.Contains(srv.logs.String(), "cannot spool events while redis is down; answering 503") {
		t.Fatalf("no spool failure logged:\n%s", srv.logs.String())
	}
	t.Logf("with Redis down: %d webhooks spooled (2xx), then %d refused with 503 once the spool's disk was full", len(accepted), len(refused))

	proxy.Restore()
	testenv.WaitFor(t, 60*time.Second, "every webhook answered 2xx to be stored", func() bool {
		return p.count(`SELECT count(*) FROM events WHERE id = ANY($1)`, accepted) == int64(len(accepted))
	})
	testenv.WaitFor(t, 30*time.Second, "the spool to drain", func() bool {
		segs, _ := filepath.Glob(filepath.Join(spoolDir, "seg-*.spool"))
		return len(segs) == 0
	})
	// Dwolla retries what was refused; the disk has room again.
	os.Remove(filepath.Join(spoolDir, "filler"))
	want := append([]string(nil), accepted...)
	for id, body := range refused {
		if code, err := postWebhook(srv.base, body); err != nil || code/100 != 2 {
			t.Fatalf("a retried webhook answered %d (%v) with Redis back", code, err)
		}
		want = append(want, id)
	}
	p.verifyExact(srv, want, false)
	srv.stop(t)
}

// TestChaosSlackDown: an alert fires while the Slack webhook first answers
// 503, then refuses connections, then works again, with the simulator
// sending all the while. The notification is retried and delivered once
// Slack is back: Slack receives it exactly once, the outbox holds it
// delivered with the failed attempts logged, and the pipeline is not
// affected (every event stored once).
func TestChaosSlackDown(t *testing.T) {
	t.Parallel()
	p := newPipeline(t)
	var (
		mu     sync.Mutex
		posted []string // the bodies Slack answered 2xx
		fail   = true
		tries  int
	)
	slack := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		tries++
		if fail {
			http.Error(w, "service unavailable", http.StatusServiceUnavailable)
			return
		}
		posted = append(posted, string(body))
		io.WriteString(w, "ok")
	}))
	defer slack.Close()
	proxy := testenv.NewProxy(t, strings.TrimPrefix(slack.URL, "http://"))
	rules := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(rules, []byte(fmt.Sprintf(`
group_wait: 0s
targets:
  - {name: slack, kind: slack, url: http://%s/services/T000/B000/XXXX}
rules:
  - {name: always, kind: operational, severity: critical, signal: dead_letters_open, op: ">=", value: 0}
`, proxy.Addr())), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := p.serve("--roles", "ingest,process,alert", "--read-block", "200ms", "--alert-rules", rules, "--alert-interval", "1s")
	truth, out := p.loadSim(srv, 200, 200, "33")

	// attempts counts the logged delivery attempts answered status (0: no answer).
	attempts := func(status int) int64 {
		return p.count(`SELECT count(*) FROM alert_deliveries WHERE target = 'slack' AND status = $1`, status)
	}
	testenv.WaitFor(t, 60*time.Second, "two attempts answered 503", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return tries >= 2
	})
	proxy.Cut()
	testenv.WaitFor(t, 60*time.Second, "an attempt that got no answer", func() bool { return attempts(0) >= 1 })
	mu.Lock()
	fail = false
	mu.Unlock()
	proxy.Restore()
	testenv.WaitFor(t, 60*time.Second, "the notification delivered", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(posted) > 0
	})
	want := p.simDone(out, truth)
	p.verifyExact(srv, want, false)
	// The evaluator kept evaluating (the alert stays firing) while the
	// pipeline drained; still one notification, delivered once.
	var rows []struct {
		ID        string
		Delivered bool
	}
	r, err := p.db.Query(context.Background(), `SELECT id::text, delivered_at IS NOT NULL FROM alert_outbox WHERE target = 'slack'`)
	if err != nil {
		t.Fatal(err)
	}
	for r.Next() {
		var x struct {
			ID        string
			Delivered bool
		}
		if err := r.Scan(&x.ID, &x.Delivered); err != nil {
			t.Fatal(err)
		}
		rows = append(rows, x)
	}
	r.Close()
	mu.Lock()
	defer mu.Unlock()
	if len(rows) != 1 || !rows[0].Delivered || len(posted) != 1 {
		t.Fatalf("outbox %+v; Slack accepted %d posts; want one notification, delivered once", rows, len(posted))
	}
	if !strings.Contains(posted[0], "always") || !strings.Contains(posted[0], "CRITICAL") {
		t.Fatalf("the Slack message: %s", posted[0])
	}
	if n503, nNone := attempts(503), attempts(0); n503 < 2 || nNone < 1 {
		t.Fatalf("delivery log: %d attempts answered 503, %d without answer", n503, nNone)
	}
	srv.stop(t)
}

// TestChaosDwollaDown: a reconciliation while the Dwolla API cannot be
// reached fails with an error that says so and records nothing but a
// failed run: no event, no gap, no discrepancy. Once the API is back the
// next run recovers every event the webhooks never delivered, each once.
func TestChaosDwollaDown(t *testing.T) {
	t.Parallel()
	p := newPipeline(t)
	srv := p.serve("--roles", "ingest,process", "--read-block", "200ms")
	apiPort := testenv.FreePort(t)
	proxy := testenv.NewProxy(t, fmt.Sprintf("127.0.0.1:%d", apiPort))
	p.withDwolla("http://" + proxy.Addr())
	const seed = 34
	truth := filepath.Join(t.TempDir(), "truth.jsonl")
	start := time.Now().UTC().Add(-24 * time.Hour).Format(time.RFC3339)
	out := p.background("sim", "--url", srv.base+"/webhooks/dwolla", "--webhook-secrets", "pipeline-secret",
		"--customers", "150", "--seed", fmt.Sprint(seed), "--start", start, "--rate", "0", "--drop", "0.1",
		"--duplicates", "0.2", "--reorder", "0.2", "--truth", truth,
		"--api-addr", fmt.Sprintf("127.0.0.1:%d", apiPort), "--api-key", "rc-key", "--api-secret", "rc-secret")
	waitOutput(t, out, "still serving the fake Dwolla API", 120*time.Second)
	ids := readTruth(t, truth)
	var dropped []string
	for _, id := range ids {
		if sim.Dropped(id, seed, 0.1) {
			dropped = append(dropped, id)
		}
	}
	testenv.WaitFor(t, 60*time.Second, "the delivered events stored", func() bool {
		pending, lag := p.backlog()
		return p.stored() == int64(len(ids)-len(dropped)) && pending == 0 && lag == 0
	})

	proxy.Cut()
	msg, err := p.try("reconcile", "-o", "json")
	if err == nil {
		t.Fatalf("a reconciliation with the Dwolla API unreachable succeeded:\n%s", msg)
	}
	if !strings.Contains(strings.ToLower(msg), "dwolla") {
		t.Fatalf("the error does not say the Dwolla API could not be reached:\n%s", msg)
	}
	t.Logf("reconcile with the API down: %s", lastLineOf(msg))
	var listed struct {
		Runs []reconcile.Run `json:"runs"`
	}
	decode(t, p.run("reconcile", "runs", "-o", "json"), &listed)
	if len(listed.Runs) != 1 || listed.Runs[0].Status != reconcile.StatusFailed || listed.Runs[0].Recovered != 0 ||
		listed.Runs[0].Missing != 0 || !strings.Contains(listed.Runs[0].Error, "dwolla") {
		t.Fatalf("runs with the API down: %+v; want one, failed, with the error, having found and recovered nothing", listed.Runs)
	}
	if n := p.count(`SELECT count(*) FROM events WHERE source = 'reconcile'`); n != 0 {
		t.Fatalf("%d events recovered with the API down", n)
	}
	if n := p.count(`SELECT (SELECT count(*) FROM reconcile_gaps) + (SELECT count(*) FROM reconcile_discrepancies)`); n != 0 {
		t.Fatalf("%d gaps or discrepancies recorded with the API down", n)
	}

	// Back: the API's pages link to its own address, which the client
	// follows only on the configured host, so the rerun goes there directly.
	p.withDwolla(fmt.Sprintf("http://127.0.0.1:%d", apiPort))
	var run reconcile.Run
	decode(t, p.run("reconcile", "-o", "json"), &run)
	if run.Status != reconcile.StatusComplete || run.Recovered != int64(len(dropped)) {
		t.Fatalf("the run after the API came back: %+v; want complete, %d recovered", run, len(dropped))
	}
	p.verifyExact(srv, ids, true)
}

func lastLineOf(s string) string {
	s = strings.TrimSpace(s)
	return s[strings.LastIndex(s, "\n")+1:]
}
