package main

// Chaos tests, process faults (docs/reliability.md has the table): each
// injects one fault into a pipeline under load from the simulator and ends
// with the same verification, checkChaos: the events table equals the
// simulator's ground truth (zero missing, zero duplicated), the window
// aggregates equal a recomputation from the events table, and the journey
// instances equal a rebuild from it.

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hookstream/hookstream/internal/testenv"
	"github.com/hookstream/hookstream/sim"
	"github.com/hookstream/hookstream/windows"
	"github.com/redis/go-redis/v9"
)

// load is a simulator run in the background: signed webhooks at a bounded
// rate, a tenth delivered twice and a tenth late, failures retried on
// Dwolla's schedule compressed 3600 times (the first retry after 0.25s).
type load struct {
	truth string
	out   *syncBuffer
	done  chan error
}

func (p *pipeline) startLoad(url string, customers int, seed int64, extra ...string) *load {
	p.t.Helper()
	l := &load{truth: filepath.Join(p.t.TempDir(), "truth.jsonl"), out: &syncBuffer{}, done: make(chan error, 1)}
	args := append([]string{"sim", "--url", url, "--webhook-secrets", "pipeline-secret",
		"--customers", strconv.Itoa(customers), "--seed", strconv.FormatInt(seed, 10), "--rate", "400",
		"--duplicates", "0.1", "--reorder", "0.1", "--truth", l.truth, "--verify", "none"}, extra...)
	cmd := exec.Command(p.bin, args...)
	cmd.Env = p.env
	cmd.Stdout, cmd.Stderr = l.out, l.out
	if err := cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	go func() { l.done <- cmd.Wait() }()
	p.t.Cleanup(func() { cmd.Process.Kill(); <-l.done; l.done <- nil })
	return l
}

// sendStats is the failures line of a finished simulator run.
type sendStats struct {
	retries, gaveUp, netErrors int64
	non2xx                     string
}

var failuresLine = regexp.MustCompile(`failures +(\d+) retries, (\d+) given up, (\d+) network errors, non-2xx: (.*)`)

// wait waits for the run to end (every delivery answered 2xx or given up)
// and returns its ground truth and failure counts.
func (l *load) wait(t *testing.T) ([]string, sendStats) {
	t.Helper()
	select {
	case err := <-l.done:
		l.done <- err
		if err != nil {
			t.Fatalf("sim: %v\n%s", err, l.out.String())
		}
	case <-time.After(3 * time.Minute):
		t.Fatalf("sim did not finish in 3 minutes:\n%s", l.out.String())
	}
	m := failuresLine.FindStringSubmatch(l.out.String())
	if m == nil {
		t.Fatalf("sim printed no failures line:\n%s", l.out.String())
	}
	var st sendStats
	st.retries, _ = strconv.ParseInt(m[1], 10, 64)
	st.gaveUp, _ = strconv.ParseInt(m[2], 10, 64)
	st.netErrors, _ = strconv.ParseInt(m[3], 10, 64)
	st.non2xx = strings.TrimSpace(m[4])
	if st.gaveUp != 0 {
		t.Fatalf("sim gave up on %d deliveries:\n%s", st.gaveUp, l.out.String())
	}
	return readTruth(t, l.truth), st
}

// startServe starts "hookstream serve" on addr without waiting for it.
func (p *pipeline) startServe(addr string, args ...string) *proc {
	p.t.Helper()
	cmd := exec.Command(p.bin, append([]string{"serve", "--http-addr", addr}, args...)...)
	cmd.Env = p.env
	pr := &proc{cmd: cmd, logs: &syncBuffer{}, base: "http://" + addr, done: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = pr.logs, pr.logs
	if err := cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	go func() { pr.done <- cmd.Wait() }()
	p.t.Cleanup(func() { cmd.Process.Kill(); err := <-pr.done; pr.done <- err })
	return pr
}

// serveAt starts "hookstream serve" on addr and waits until it answers
// /healthz there.
func (p *pipeline) serveAt(addr string, args ...string) *proc {
	p.t.Helper()
	pr := p.startServe(addr, args...)
	testenv.WaitFor(p.t, 20*time.Second, fmt.Sprintf("serve %v to answer /healthz", args), func() bool {
		resp, err := http.Get(pr.base + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	return pr
}

// kill9 kills a serve with SIGKILL and waits until it is gone.
func (pr *proc) kill9() {
	pr.cmd.Process.Signal(syscall.SIGKILL)
	err := <-pr.done
	pr.done <- err
}

// checkChaos is the end of every chaos row: once nothing is left to
// process, the events table equals the ground truth, every window equals a
// recomputation from the events table, and every journey instance equals a
// rebuild from it.
func (p *pipeline) checkChaos(want []string) {
	t := p.t
	t.Helper()
	var last string
	deadline := time.Now().Add(90 * time.Second)
	for {
		st := p.status()
		n := p.stored()
		if n >= int64(len(want)) && st.Total.Pending == 0 && st.Total.Lag == 0 {
			break
		}
		last = fmt.Sprintf("%d of %d events stored, %d entries pending, lag %d, %d dead letters, %d stream entries", n, len(want), st.Total.Pending, st.Total.Lag, st.DLQOpen, p.entries())
		if time.Now().After(deadline) {
			t.Fatalf("after 90s, still %s", last)
		}
		time.Sleep(100 * time.Millisecond) // polling, as testenv.WaitFor does
	}
	rep, err := sim.VerifyEvents(context.Background(), p.db, want)
	if err != nil || !rep.OK() {
		t.Fatalf("events table vs ground truth: %v %v", rep, err)
	}
	if !strings.Contains(rep.String(), "0 missing, 0 duplicated, 0 unexpected") {
		t.Fatalf("verification report %q", rep.String())
	}
	p.checkWindows()
	p.checkJourneys()
}

// windowRows is every aggregate row as text: its key and its value, the
// sketches decoded (their bytes depend on the order things were added;
// their estimates do not), the lag sum rounded to the millisecond (a
// floating-point sum depends on its order too).
func (p *pipeline) windowRows() map[string]string {
	p.t.Helper()
	rows, err := p.db.Query(context.Background(), `SELECT basis, size_s, start, dim, value,
			count, successes, failures, terminal, round(lag_sum_ms::numeric, 0)::bigint, lag, customers
		FROM window_aggs`)
	if err != nil {
		p.t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var basis, dim, value string
		var size int
		var start time.Time
		var count, succ, fail, term, lagSum int64
		var lag, customers []byte
		if err := rows.Scan(&basis, &size, &start, &dim, &value, &count, &succ, &fail, &term, &lagSum, &lag, &customers); err != nil {
			p.t.Fatal(err)
		}
		a := windows.NewAgg()
		if err := a.DecodeSketches(lag, customers); err != nil {
			p.t.Fatal(err)
		}
		p50, _ := a.LagQuantile(0.5)
		p99, _ := a.LagQuantile(0.99)
		out[fmt.Sprintf("%s %ds %s %s=%s", basis, size, start.UTC().Format(time.RFC3339), dim, value)] = fmt.Sprintf(
			"count %d successes %d failures %d terminal %d lag_sum_ms %d lag_count %g p50 %g p99 %g customers %d",
			count, succ, fail, term, lagSum, a.Lag.GetCount(), p50, p99, a.Distinct())
	}
	if err := rows.Err(); err != nil {
		p.t.Fatal(err)
	}
	return out
}

// checkWindows compares the windows with the events table twice: the
// 1-minute counts per topic on both clocks straight against SQL, and every
// row of every size against `hookstream refold` of the whole range (which
// recomputes each window from its events).
func (p *pipeline) checkWindows() {
	t := p.t
	t.Helper()
	folded := p.windowRows()
	if len(folded) == 0 {
		t.Fatal("no window aggregates: the windows fold did not run")
	}
	for basis, col := range map[string]string{"event": "created", "received": "received_at"} {
		rows, err := p.db.Query(context.Background(), `SELECT date_bin('1 minute', `+col+`, 'epoch'), topic, count(*) FROM events GROUP BY 1, 2`)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for rows.Next() {
			var start time.Time
			var topic string
			var count int64
			if err := rows.Scan(&start, &topic, &count); err != nil {
				t.Fatal(err)
			}
			key := fmt.Sprintf("%s 60s %s topic=%s", basis, start.UTC().Format(time.RFC3339), topic)
			if got, want := folded[key], fmt.Sprintf("count %d ", count); !strings.HasPrefix(got, want) {
				t.Errorf("window %s: folded %q, the events table counts %d", key, got, count)
			}
			n++
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			t.Fatalf("no events on the %s clock", basis)
		}
	}
	out := p.run("refold", "--from", "2000-01-01T00:00:00Z", "--to", "2100-01-01T00:00:00Z")
	if !strings.Contains(out, "windows") {
		t.Fatalf("refold did not refold the windows:\n%s", out)
	}
	refolded := p.windowRows()
	for k, v := range refolded {
		if folded[k] != v {
			t.Errorf("window %s: folded %q, refolded from the events %q", k, folded[k], v)
		}
	}
	for k, v := range folded {
		if _, ok := refolded[k]; !ok {
			t.Errorf("window %s folded (%q) but absent from the refold", k, v)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
}

// checkJourneys compares every journey instance with a rebuild of its
// journey from the events table.
func (p *pipeline) checkJourneys() {
	t := p.t
	t.Helper()
	before := p.journeyState()
	rows, err := p.db.Query(context.Background(), `SELECT DISTINCT journey FROM journey_instances ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		names = append(names, n)
	}
	rows.Close()
	if len(names) == 0 {
		t.Fatal("no journey instances: the journeys fold did not run")
	}
	for _, n := range names {
		p.run("refold", "--journey", n)
	}
	if after := p.journeyState(); after != before {
		t.Fatalf("journey instances differ from a rebuild from the events: %s", firstDiff(before, after))
	}
}

// processorArgs make a processor quick to notice a dead peer and to read.
var processorArgs = []string{"--roles", "process", "--batch-size", "50", "--claim-idle", "1500ms", "--read-block", "200ms"}

// TestChaosProcessorKillNine: under load, the only processor is killed
// with SIGKILL while it holds unacknowledged entries, and a new one is
// started: it claims the dead one's entries once they are idle, and
// nothing is lost, duplicated or folded twice.
func TestChaosProcessorKillNine(t *testing.T) {
	t.Parallel()
	p := newPipeline(t)
	recv := p.serve("--roles", "ingest")
	l := p.startLoad(recv.base+"/webhooks/dwolla", 500, 31)
	var killedWithPending int64
	for attempt := 0; attempt < 5 && killedWithPending == 0; attempt++ {
		before := p.stored()
		victim := p.serveAt(fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)), processorArgs...)
		testenv.WaitFor(t, 60*time.Second, "the processor to store some events", func() bool { return p.stored() > before+100 })
		victim.kill9()
		killedWithPending = p.status().Total.Pending
	}
	if killedWithPending == 0 {
		t.Fatal("five SIGKILLs never caught the processor holding unacknowledged entries")
	}
	survivor := p.serveAt(fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)), processorArgs...)
	want, st := l.wait(t)
	if st.netErrors != 0 || st.non2xx != "none" {
		t.Fatalf("the receiver failed requests while a processor was killed: %+v", st)
	}
	p.checkChaos(want)
	survivor.stop(t)
	if !strings.Contains(survivor.logs.String(), "took over entries from an idle consumer") {
		t.Fatalf("the survivor never claimed the dead consumer's entries:\n%s", survivor.logs.String())
	}
	if st := p.status(); st.DLQOpen != 0 {
		t.Fatalf("%d dead letters after a crash", st.DLQOpen)
	}
	t.Logf("killed the processor with %d entries pending; %d events verified", killedWithPending, len(want))
}

// TestChaosReceiverKillNine: under load, the only receiver is killed with
// SIGKILL and restarted on the same port. What it answered 2xx was
// committed to Redis before the answer; what it had not answered, and what
// was sent while it was down, the sender retries, as Dwolla does.
func TestChaosReceiverKillNine(t *testing.T) {
	t.Parallel()
	p := newPipeline(t)
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	recv := p.serveAt(addr, "--roles", "ingest")
	worker := p.serve(processorArgs...)
	l := p.startLoad(recv.base+"/webhooks/dwolla", 500, 32)
	testenv.WaitFor(t, 60*time.Second, "the receiver to take some webhooks", func() bool { return p.entries() > 300 })
	recv.kill9()
	atKill := p.entries()
	p.serveAt(addr, "--roles", "ingest")
	want, st := l.wait(t)
	if int64(len(want)) <= atKill {
		t.Fatalf("the load had ended (%d of %d events in the streams) before the kill", atKill, len(want))
	}
	if st.retries == 0 || st.netErrors == 0 {
		t.Fatalf("the kill failed no delivery (%+v): the test killed nothing under load", st)
	}
	p.checkChaos(want)
	worker.stop(t)
	t.Logf("killed the receiver with %d of %d events in the streams; the sender retried %d deliveries (%d network errors)", atKill, len(want), st.retries, st.netErrors)
}

// TestChaosRedisKillNine: under load, a private Redis persisting with an
// append-only file fsync'd every second (Redis's default, and what
// docs/operations.md recommends) is killed with SIGKILL and restarted on
// the same port and directory. The receiver spools while it is down and
// answers every webhook 2xx; the processor waits; after the restart the
// spool drains and everything is processed once.
func TestChaosRedisKillNine(t *testing.T) {
	t.Parallel()
	p := newPipeline(t)
	rs := testenv.StartRedisServerWith(t, testenv.RedisServerOptions{AppendFsync: "everysec"})
	p.env = append(p.env, "HOOKSTREAM_REDIS_URL="+rs.URL()) // the last value of a variable wins
	opt, err := redis.ParseURL(rs.URL())
	if err != nil {
		t.Fatal(err)
	}
	p.rdb = redis.NewClient(opt) // the shared Redis's client stays with its cleanup
	t.Cleanup(func() { p.rdb.Close() })
	spool := t.TempDir()
	recv := p.serve("--roles", "ingest", "--spool-dir", spool, "--redis-timeout", "500ms")
	worker := p.serve(processorArgs...)
	l := p.startLoad(recv.base+"/webhooks/dwolla", 500, 33)
	testenv.WaitFor(t, 60*time.Second, "some events stored", func() bool { return p.stored() > 300 })
	// A backlog that only Redis holds when it dies: a Redis that lost
	// acknowledged entries on the restart would lose events with it.
	p.run("pause", "process")
	testenv.WaitFor(t, 60*time.Second, "a backlog in Redis", func() bool { return p.status().Total.Lag > 1000 })
	p.run("resume", "process")
	rs.Kill()
	atKill := p.stored()
	testenv.WaitFor(t, 30*time.Second, "the receiver to spool", func() bool { return metric(t, recv.base, "hookstream_ingest_redis_up") == 0 })
	testenv.WaitFor(t, 30*time.Second, "some webhooks spooled", func() bool { return spooledBytes(t, spool) > 0 })
	rs.Start()
	want, st := l.wait(t)
	if st.retries != 0 || st.netErrors != 0 || st.non2xx != "none" {
		t.Fatalf("a webhook was not answered 2xx while Redis was down: %+v\n%s", st, l.out.String())
	}
	p.checkChaos(want)
	if metric(t, recv.base, "hookstream_ingest_redis_up") != 1 {
		t.Fatal("the receiver still reports Redis down")
	}
	t.Logf("killed Redis with %d of %d events stored; the rest was in Redis or not yet sent", atKill, len(want))
	recv.stop(t)
	worker.stop(t)
}

// metric reads one unlabelled value from a /metrics page (-1 if absent).
func metric(t *testing.T, base, name string) float64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	for _, line := range strings.Split(b.String(), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err == nil {
				return f
			}
		}
	}
	return -1
}

// spooledBytes is the size of everything in the spool directory.
func spooledBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	filepath.Walk(dir, func(_ string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			n += info.Size()
		}
		return nil
	})
	return n
}

// TestChaosRollingRestart: two receivers share one port (--reuse-port)
// and two processors share the work; under load each of the four is
// stopped with SIGTERM and started again, one at a time, the next only
// once the restarted one is ready. Every webhook is answered 2xx at its
// first try: the stopping receiver finishes what it accepted and the other
// takes the new connections.
func TestChaosRollingRestart(t *testing.T) {
	t.Parallel()
	p := newPipeline(t)
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	// Each receiver has its own spool, as on two hosts; a restart keeps it.
	spools := []string{t.TempDir(), t.TempDir()}
	recvArgs := func(i int) []string { return []string{"--roles", "ingest", "--reuse-port", "--spool-dir", spools[i]} }
	recvs := []*proc{p.serveAt(addr, recvArgs(0)...), p.serveAt(addr, recvArgs(1)...)}
	procs := []*proc{p.serve(processorArgs...), p.serve(processorArgs...)}
	l := p.startLoad("http://"+addr+"/webhooks/dwolla", 800, 34)
	progress := func(what string) {
		t.Helper()
		n := p.entries()
		testenv.WaitFor(t, 60*time.Second, "more webhooks taken after "+what, func() bool { return p.entries() > n+100 })
	}
	progress("the start")
	for i := range recvs {
		recvs[i].stop(t)
		if !strings.Contains(recvs[i].logs.String(), "ingest stopped") {
			t.Fatalf("receiver %d did not stop in order:\n%s", i, recvs[i].logs.String())
		}
		recvs[i] = p.startServe(addr, recvArgs(i)...)
		testenv.WaitFor(t, 20*time.Second, "the restarted receiver to listen", func() bool {
			return strings.Contains(recvs[i].logs.String(), "ingest listening")
		})
		progress(fmt.Sprintf("receiver %d restarted", i))
	}
	select {
	case err := <-l.done:
		l.done <- err // for its cleanup, which waits for it
		t.Fatal("the load ended before the receivers' restarts were over: the test needs more events")
	default:
	}
	for i := range procs {
		procs[i].stop(t)
		procs[i] = p.serve(processorArgs...)
	}
	want, st := l.wait(t)
	if st.retries != 0 || st.netErrors != 0 || st.non2xx != "none" {
		t.Fatalf("the rolling restart failed deliveries: %+v\n%s", st, l.out.String())
	}
	p.checkChaos(want)
	for _, pr := range append(recvs, procs...) {
		pr.stop(t)
	}
}

// TestChaosClockSkew: the sender's clock (Dwolla's created times) runs 10
// minutes ahead of the pipeline's for one stream of webhooks and 2 hours
// behind for another, delivered at once. Event-time windows are exact for
// both, received-time windows too (received time is Redis's clock), and a
// window the watermark closed before its late events arrived counts them
// as late, never losing or double-counting one.
func TestChaosClockSkew(t *testing.T) {
	t.Parallel()
	p := newPipeline(t)
	srv := p.serve("--roles", "all", "--read-block", "200ms")
	now := time.Now().UTC().Truncate(time.Second)
	ahead := p.startLoad(srv.base+"/webhooks/dwolla", 150, 35, "--start", now.Add(10*time.Minute).Format(time.RFC3339), "--span", "2m")
	behind := p.startLoad(srv.base+"/webhooks/dwolla", 150, 36, "--start", now.Add(-2*time.Hour).Format(time.RFC3339), "--span", "2m")
	a, _ := ahead.wait(t)
	b, _ := behind.wait(t)
	p.checkChaos(append(a, b...))
	// Every closed window holds what it held at its close plus what came
	// late: count = closed count + late.
	var closed, bad, late int64
	if err := p.db.QueryRow(context.Background(), `SELECT count(*), count(*) FILTER (WHERE a.count <> c.count + a.late), coalesce(sum(a.late), 0)
		FROM window_closes c JOIN window_aggs a USING (basis, size_s, start) WHERE a.dim = 'all'`).Scan(&closed, &bad, &late); err != nil {
		t.Fatal(err)
	}
	if closed == 0 {
		t.Fatal("no window closed: the check of closed windows checked nothing")
	}
	if bad != 0 {
		t.Fatalf("%d of %d closed windows do not hold their count at the close plus their late events", bad, closed)
	}
	t.Logf("%d windows closed, %d late events in them; every one equals its count at the close plus its late events", closed, late)
	srv.stop(t)
}
