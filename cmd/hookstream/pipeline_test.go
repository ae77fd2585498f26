package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hookstream/hookstream/internal/testenv"
	"github.com/hookstream/hookstream/process"
	"github.com/hookstream/hookstream/sim"
	"github.com/hookstream/hookstream/store"
	"github.com/hookstream/hookstream/stream"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
)

// pipeline is one test's hookstream installation driven through the real
// binary: a private namespace and schema on the test servers.
type pipeline struct {
	t    *testing.T
	bin  string
	env  []string
	rdb  *redis.Client
	ns   string
	keys stream.Keys
	db   *pgxpool.Pool
}

func newPipeline(t *testing.T) *pipeline {
	t.Helper()
	bin := buildBinary(t)
	rdb, ns := testenv.Redis(t)
	db, dbURL := testenv.Postgres(t)
	p := &pipeline{t: t, bin: bin, rdb: rdb, ns: ns, keys: stream.NewKeys(ns, 16), db: db}
	p.env = append(os.Environ(),
		"HOOKSTREAM_REDIS_URL="+testenv.RedisURL(),
		"HOOKSTREAM_DATABASE_URL="+dbURL,
		"HOOKSTREAM_NAMESPACE="+ns,
		"HOOKSTREAM_WEBHOOK_SECRETS=pipeline-secret",
		"HOOKSTREAM_SPOOL_DIR="+t.TempDir(),
	)
	p.run("migrate", "up")
	return p
}

// run runs a subcommand to completion and returns its stdout; it fails the
// test on a non-zero exit.
func (p *pipeline) run(args ...string) string {
	p.t.Helper()
	out, err := p.try(args...)
	if err != nil {
		p.t.Fatalf("hookstream %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func (p *pipeline) try(args ...string) (string, error) {
	cmd := exec.Command(p.bin, args...)
	cmd.Env = p.env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		return stdout.String() + stderr.String(), err
	}
	return stdout.String(), nil
}

// proc is a running "hookstream serve".
type proc struct {
	cmd  *exec.Cmd
	logs *syncBuffer
	base string
	done chan error
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

// serve starts "hookstream serve" with args and waits for /healthz.
func (p *pipeline) serve(args ...string) *proc {
	p.t.Helper()
	port := testenv.FreePort(p.t)
	cmd := exec.Command(p.bin, append([]string{"serve", "--http-addr", fmt.Sprintf("127.0.0.1:%d", port)}, args...)...)
	cmd.Env = p.env
	pr := &proc{cmd: cmd, logs: &syncBuffer{}, base: fmt.Sprintf("http://127.0.0.1:%d", port), done: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = pr.logs, pr.logs
	if err := cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	go func() { pr.done <- cmd.Wait() }()
	p.t.Cleanup(func() { cmd.Process.Kill(); <-pr.done })
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

// stop sends SIGTERM and waits for an orderly exit.
func (pr *proc) stop(t *testing.T) {
	t.Helper()
	pr.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-pr.done:
		pr.done <- err
		if err != nil {
			t.Fatalf("serve exited with %v after SIGTERM:\n%s", err, pr.logs.String())
		}
	case <-time.After(40 * time.Second):
		t.Fatalf("serve did not stop within 40s of SIGTERM:\n%s", pr.logs.String())
	}
}

func (p *pipeline) stored() int64 {
	return p.count(`SELECT count(*) FROM events`)
}

// count runs a query answering one number.
func (p *pipeline) count(sql string, args ...any) int64 {
	p.t.Helper()
	var n int64
	if err := p.db.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		p.t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// decode unmarshals a command's JSON output.
func decode(t *testing.T, out string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("decode %T: %v\n%s", v, err, out)
	}
}

func (p *pipeline) status() process.Status {
	p.t.Helper()
	var rep process.Status
	if err := json.Unmarshal([]byte(p.run("status", "-o", "json")), &rep); err != nil {
		p.t.Fatal(err)
	}
	return rep
}

func readTruth(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ids, err := sim.ReadTruth(f)
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// TestDevStyleRunVerifiesAgainstTheEventsTable: every role in one process,
// the simulator with 20% duplicates and 20% reordering, and sim --verify
// events reports zero missing and zero duplicated.
func TestDevStyleRunVerifiesAgainstTheEventsTable(t *testing.T) {
	t.Parallel()
	p := newPipeline(t)
	srv := p.serve("--roles", "all")
	out := p.run("sim", "--url", srv.base+"/webhooks/dwolla", "--webhook-secrets", "pipeline-secret",
		"--customers", "300", "--seed", "21", "--duplicates", "0.2", "--reorder", "0.2", "--rate", "0",
		"--verify", "events", "--verify-timeout", "60s")
	if !strings.Contains(out, " 0 missing, 0 duplicated, 0 unexpected") {
		t.Fatalf("sim --verify events output lacks zero missing / zero duplicated:\n%s", out)
	}

	// Journeys through the binary: the funnel, an instance, a rebuild.
	all := []string{"--from", "2000-01-01T00:00:00Z", "--to", "2100-01-01T00:00:00Z"}
	var f struct {
		Entered int64 `json:"entered"`
		Steps   []struct {
			Step    string `json:"step"`
			Reached int64  `json:"reached"`
		} `json:"steps"`
	}
	decode(t, p.run(append([]string{"query", "funnel", "--journey", "bank_transfer", "-o", "json"}, all...)...), &f)
	instances := p.count(`SELECT count(*) FROM journey_instances WHERE journey = 'bank_transfer'`)
	if f.Entered == 0 || f.Entered != instances || f.Steps[0].Step != "created" {
		t.Fatalf("funnel: %+v; %d bank_transfer instances stored", f, instances)
	}
	var subject string
	if err := p.db.QueryRow(context.Background(), `SELECT subject FROM journey_instances WHERE journey = 'bank_transfer' LIMIT 1`).Scan(&subject); err != nil {
		t.Fatal(err)
	}
	if out := p.run("query", "journey", "--journey", "bank_transfer", "--subject", subject); !strings.Contains(out, `"events"`) || !strings.Contains(out, subject) {
		t.Fatalf("query journey:\n%s", out)
	}
	// The documented forms, flags before and after the verb, and the old name.
	for _, args := range [][]string{
		{"refold", "--journey", "bank_transfer"},
		{"journeys", "rebuild", "--journey", "bank_transfer"},
		{"journeys", "--journey", "bank_transfer", "rebuild"},
	} {
		if out := p.run(args...); !strings.Contains(out, fmt.Sprintf("bank_transfer: %d instances refolded", instances)) {
			t.Fatalf("%v:\n%s", args, out)
		}
		var again struct {
			Entered int64 `json:"entered"`
		}
		decode(t, p.run(append([]string{"query", "funnel", "--journey", "bank_transfer", "-o", "json"}, all...)...), &again)
		if again.Entered != f.Entered {
			t.Fatalf("funnel after %v: %d entered, before %d", args, again.Entered, f.Entered)
		}
	}
	if out := p.run("query", "journeys", "--journey", "bank_transfer", "--limit", "3"); !strings.Contains(out, "current step") {
		t.Fatalf("query journeys:\n%s", out)
	}
	if _, err := p.try("query", "funnel", "--journey", "no_such_journey"); err == nil {
		t.Fatal("an unknown journey was accepted")
	}
	all64 := p.count(`SELECT count(*) FROM journey_instances`)
	st := p.status()
	var sum int64
	for _, n := range st.JourneyCount {
		sum += n
	}
	if sum != all64 || all64 == 0 {
		t.Fatalf("status counts %v journey instances, the table holds %d", st.JourneyCount, all64)
	}
	if out := p.run("status"); !strings.Contains(out, "journeys: ") {
		t.Fatalf("status does not report journeys:\n%s", out)
	}
	srv.stop(t)
	if !strings.Contains(srv.logs.String(), "processing stopped") || !strings.Contains(srv.logs.String(), "ingest stopped") {
		t.Fatalf("no orderly shutdown of both roles:\n%s", srv.logs.String())
	}
}

// TestKillNineMidBatchThenRestart: a processor killed with SIGKILL while it
// holds unacknowledged entries; a new one takes them over and the events
// table ends equal to the simulator's ground truth, each event once.
func TestKillNineMidBatchThenRestart(t *testing.T) {
	t.Parallel()
	p := newPipeline(t)
	ingest := p.serve("--roles", "ingest")
	truth := filepath.Join(t.TempDir(), "truth.jsonl")
	p.run("sim", "--url", ingest.base+"/webhooks/dwolla", "--webhook-secrets", "pipeline-secret",
		"--customers", "800", "--seed", "5", "--duplicates", "0.2", "--reorder", "0.2", "--rate", "0",
		"--truth", truth, "--verify", "streams")
	want := readTruth(t, truth)

	procArgs := []string{"--roles", "process", "--batch-size", "20", "--claim-idle", "1500ms", "--read-block", "200ms"}
	var killedWithPending int64
	for attempt := 0; attempt < 5 && killedWithPending == 0; attempt++ {
		before := p.stored()
		victim := p.serve(procArgs...)
		testenv.WaitFor(t, 60*time.Second, "the processor to store some events", func() bool { return p.stored() > before+200 })
		victim.cmd.Process.Signal(syscall.SIGKILL)
		<-victim.done
		victim.done <- nil
		killedWithPending = p.status().Total.Pending
	}
	if killedWithPending == 0 {
		t.Fatal("five SIGKILLs never caught the processor holding unacknowledged entries")
	}
	if n := p.stored(); n >= int64(len(want)) {
		t.Fatalf("the processor finished (%d stored) before it was killed; the test needs more events", n)
	}
	t.Logf("killed the processor with %d entries pending, %d of %d events stored", killedWithPending, p.stored(), len(want))

	survivor := p.serve(procArgs...)
	testenv.WaitFor(t, 120*time.Second, "every event stored and nothing pending", func() bool {
		st := p.status()
		return p.stored() == int64(len(want)) && st.Total.Pending == 0 && st.Total.Lag == 0
	})
	rep, err := sim.VerifyEvents(context.Background(), p.db, want)
	if err != nil || !rep.OK() {
		t.Fatalf("events table vs ground truth after kill -9: %v %v", rep, err)
	}
	survivor.stop(t)
	if !strings.Contains(survivor.logs.String(), "took over entries from an idle consumer") {
		t.Fatalf("the survivor never claimed the dead consumer's entries:\n%s", survivor.logs.String())
	}
	if st := p.status(); st.DLQOpen != 0 {
		t.Fatalf("%d dead letters after a crash; a crash must not dead-letter anything", st.DLQOpen)
	}
}

// TestPauseKeepsIngestAcceptingAndResumeDrains drives pause and resume
// through the binary while the receiver keeps taking webhooks.
func TestPauseKeepsIngestAcceptingAndResumeDrains(t *testing.T) {
	t.Parallel()
	p := newPipeline(t)
	srv := p.serve("--roles", "all", "--read-block", "200ms")
	send := func(seed, verify string) []string {
		truth := filepath.Join(t.TempDir(), "truth.jsonl")
		out := p.run("sim", "--url", srv.base+"/webhooks/dwolla", "--webhook-secrets", "pipeline-secret",
			"--customers", "100", "--seed", seed, "--rate", "0", "--truth", truth, "--verify", verify)
		ids := readTruth(t, truth)
		if want := fmt.Sprintf("%d answered 2xx", len(ids)); !strings.Contains(out, want) {
			t.Fatalf("sim output lacks %q:\n%s", want, out)
		}
		return ids
	}
	first := send("1", "streams")
	testenv.WaitFor(t, 30*time.Second, "the first batch stored", func() bool { return p.stored() == int64(len(first)) })

	p.run("pause", "process")
	testenv.WaitFor(t, 10*time.Second, "the processor to report itself paused", func() bool {
		st := p.status()
		return st.Paused && len(st.Processors) == 1 && st.Processors[0].Paused
	})
	// Once a processor says it is paused it reads nothing more: every entry
	// queued after that stays undelivered (lag), none pending, none stored.
	second := send("2", "none") // every event answered 2xx: the receiver accepted and queued it
	if st := p.status(); st.Total.Lag != int64(len(second)) || st.Total.Pending != 0 {
		t.Fatalf("while paused: lag %d, pending %d; want every one of the %d queued events undelivered", st.Total.Lag, st.Total.Pending, len(second))
	}
	if n := p.stored(); n != int64(len(first)) {
		t.Fatalf("%d events stored while paused, want %d", n, len(first))
	}
	p.run("resume", "process")
	all := append(first, second...)
	testenv.WaitFor(t, 60*time.Second, "the backlog drained after resume", func() bool { return p.stored() == int64(len(all)) })
	if rep, err := sim.VerifyEvents(context.Background(), p.db, all); err != nil || !rep.OK() {
		t.Fatalf("events vs truth: %v %v", rep, err)
	}
	srv.stop(t)
}

// TestDeadLetterReplayOfARepairedEvent: a poison entry lands in the DLQ with
// its reason; dlq show prints it; replaying a repaired body stores it, and a
// replayed dead letter cannot be replayed again.
func TestDeadLetterReplayOfARepairedEvent(t *testing.T) {
	t.Parallel()
	p := newPipeline(t)
	srv := p.serve("--roles", "process", "--read-block", "200ms")
	ctx := context.Background()
	// The topic holds a NUL: valid JSON the receiver accepts, but
	// PostgreSQL text cannot store it.
	bad := `{"id":"3d2f0c4e-0000-4000-8000-00000000dead","topic":"customer_created\u0000","created":"2026-11-28T10:00:00.000Z",` +
		`"_links":{"resource":{"href":"https://api-sandbox.dwolla.com/customers/aa2f0c4e-0000-4000-8000-000000000001"},` +
		`"customer":{"href":"https://api-sandbox.dwolla.com/customers/aa2f0c4e-0000-4000-8000-000000000001"}}}`
	en := stream.NewEntry(p.keys.Partition("aa2f0c4e-0000-4000-8000-000000000001"), "3d2f0c4e-0000-4000-8000-00000000dead", []byte(bad), "")
	if err := p.rdb.XAdd(ctx, &redis.XAddArgs{Stream: p.keys.Stream(en.Partition), Values: en.Fields}).Err(); err != nil {
		t.Fatal(err)
	}
	var dls []store.DeadLetter
	testenv.WaitFor(t, 30*time.Second, "the poison entry dead-lettered", func() bool {
		decode(t, p.run("dlq", "list", "-o", "json"), &dls)
		return len(dls) == 1
	})
	d := dls[0]
	if !strings.Contains(d.Reason, "rejected by PostgreSQL") || !strings.Contains(d.Reason, "0x00") || d.EventID != "3d2f0c4e-0000-4000-8000-00000000dead" {
		t.Fatalf("dead letter %+v: want the PostgreSQL rejection as its reason", d)
	}
	id := fmt.Sprint(d.ID)
	if show := p.run("dlq", "show", id); !strings.Contains(show, `customer_created\u0000`) || !strings.Contains(show, "rejected by PostgreSQL") {
		t.Fatalf("dlq show does not print the original body and reason:\n%s", show)
	}
	if st := p.status(); st.DLQOpen != 1 {
		t.Fatalf("status reports %d open dead letters, want 1", st.DLQOpen)
	}

	fixed := filepath.Join(t.TempDir(), "fixed.json")
	if err := os.WriteFile(fixed, []byte(strings.Replace(bad, `\u0000`, "", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	out := p.run("dlq", "requeue", id, "--body", fixed)
	if !strings.Contains(out, "requeued as stream entry") {
		t.Fatalf("dlq requeue output:\n%s", out)
	}
	testenv.WaitFor(t, 30*time.Second, "the repaired event stored", func() bool { return p.stored() == 1 })
	var topic string
	if err := p.db.QueryRow(ctx, `SELECT topic FROM events WHERE id = '3d2f0c4e-0000-4000-8000-00000000dead'`).Scan(&topic); err != nil {
		t.Fatal(err)
	}
	if topic != "customer_created" {
		t.Fatalf("stored topic %q, want the repaired customer_created", topic)
	}
	if _, err := p.try("dlq", "replay", id); err == nil { // the old name of requeue
		t.Fatal("requeueing an already requeued dead letter succeeded")
	}
	if st := p.status(); st.DLQOpen != 0 {
		t.Fatalf("%d dead letters still open after the replay", st.DLQOpen)
	}
	srv.stop(t)
}

// TestQueryMetricsAgreesWithSQLOverEvents: a simulated hour through the
// binary, then `query metrics` per 1m window and topic, per 15m window in
// total, and distinct customers per hour, against SQL over the events table.
func TestQueryMetricsAgreesWithSQLOverEvents(t *testing.T) {
	t.Parallel()
	p := newPipeline(t)
	srv := p.serve("--roles", "all", "--read-block", "200ms")
	start := time.Date(2026, 11, 27, 14, 0, 0, 0, time.UTC)
	p.run("sim", "--url", srv.base+"/webhooks/dwolla", "--webhook-secrets", "pipeline-secret",
		"--customers", "300", "--seed", "8", "--start", start.Format(time.RFC3339), "--span", "50m", "--step-delay", "1m",
		"--duplicates", "0.2", "--reorder", "0.2", "--rate", "0", "--verify", "events", "--verify-timeout", "60s")
	ctx := context.Background()
	from, to := start.Add(-time.Hour), start.Add(3*time.Hour)
	type series struct {
		Points []struct {
			Start time.Time `json:"start"`
			Group string    `json:"group"`
			Value float64   `json:"value"`
			Count int64     `json:"count"`
		} `json:"points"`
	}
	queryJSON := func(args ...string) series {
		t.Helper()
		var s series
		out := p.run(append([]string{"query", "metrics", "-o", "json", "--from", from.Format(time.RFC3339), "--to", to.Format(time.RFC3339)}, args...)...)
		if err := json.Unmarshal([]byte(out), &s); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
		return s
	}
	// Every event is folded by the time sim --verify events saw it stored
	// (same transaction). Count per 1m window and topic.
	got := queryJSON("--window", "1m", "--metric", "count", "--group-by", "topic")
	want := map[string]int64{}
	rows, err := p.db.Query(ctx, `SELECT date_bin('1 minute', created, 'epoch'), topic, count(*) FROM events GROUP BY 1, 2`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var w time.Time
		var topic string
		var n int64
		if err := rows.Scan(&w, &topic, &n); err != nil {
			t.Fatal(err)
		}
		want[w.UTC().Format(time.RFC3339)+" "+topic] = n
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rows.Close()
	var total int64
	windowsSeen := map[string]bool{}
	for _, pt := range got.Points {
		key := pt.Start.UTC().Format(time.RFC3339) + " " + pt.Group
		windowsSeen[pt.Start.UTC().Format(time.RFC3339)] = true
		if int64(pt.Value) != want[key] {
			t.Errorf("1m window %s: query says %v, SQL says %d", key, pt.Value, want[key])
		}
		total += int64(pt.Value)
		delete(want, key)
	}
	if len(want) != 0 {
		t.Errorf("SQL has windows the query did not return: %v", want)
	}
	if n := p.stored(); total != n || total == 0 {
		t.Fatalf("query total %d, events table %d", total, n)
	}
	if len(windowsSeen) != int(to.Sub(from)/time.Minute) {
		t.Fatalf("query returned %d windows, want every one of the %d in range (empty ones as zero)", len(windowsSeen), int(to.Sub(from)/time.Minute))
	}
	// 15m totals and hourly distinct customers.
	for _, c := range []struct {
		args []string
		sql  string
	}{
		{[]string{"--window", "15m", "--metric", "count"}, `SELECT date_bin('15 minutes', created, 'epoch'), count(*) FROM events GROUP BY 1`},
		{[]string{"--window", "1h", "--metric", "distinct_customers"}, `SELECT date_bin('1 hour', created, 'epoch'), count(DISTINCT customer_id) FROM events GROUP BY 1`},
		{[]string{"--window", "1h", "--metric", "failures"}, `SELECT date_bin('1 hour', created, 'epoch'), count(*) FILTER (WHERE outcome = 'failure') FROM events GROUP BY 1`},
	} {
		exp := map[string]float64{}
		rows, err := p.db.Query(ctx, c.sql)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var w time.Time
			var n float64
			if err := rows.Scan(&w, &n); err != nil {
				t.Fatal(err)
			}
			exp[w.UTC().Format(time.RFC3339)] = n
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		rows.Close()
		for _, pt := range queryJSON(c.args...).Points {
			w := exp[pt.Start.UTC().Format(time.RFC3339)]
			tol := 0.0
			if c.args[3] == "distinct_customers" {
				tol = 0.02 * w // HyperLogLog: within 2%
			}
			if d := pt.Value - w; d > tol || -d > tol {
				t.Errorf("%v window %s: query %v, SQL %v", c.args, pt.Start.UTC().Format(time.RFC3339), pt.Value, w)
			}
		}
	}
	srv.stop(t)
}
