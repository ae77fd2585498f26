package main

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hookstream/hookstream/internal/testenv"
	"github.com/hookstream/hookstream/journeys"
	"github.com/hookstream/hookstream/reconcile"
	"github.com/hookstream/hookstream/sim"
)

// simAPI starts "hookstream sim" with a fake Dwolla API on a free port and
// waits until it has sent its traffic and keeps serving the API. It is
// killed when the test ends.
func (p *pipeline) simAPI(args ...string) (base string, out *syncBuffer) {
	p.t.Helper()
	port := testenv.FreePort(p.t)
	base = fmt.Sprintf("http://127.0.0.1:%d", port)
	return base, p.background(append([]string{"sim", "--api-addr", fmt.Sprintf("127.0.0.1:%d", port),
		"--api-key", "rc-key", "--api-secret", "rc-secret"}, args...)...)
}

// background starts a subcommand that runs until the test ends (killed
// then), and returns what it prints.
func (p *pipeline) background(args ...string) *syncBuffer {
	p.t.Helper()
	cmd := exec.Command(p.bin, args...)
	cmd.Env = p.env
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	p.t.Cleanup(func() { cmd.Process.Kill(); <-done })
	return out
}

func waitOutput(t *testing.T, out *syncBuffer, what string, timeout time.Duration) {
	t.Helper()
	testenv.WaitFor(t, timeout, fmt.Sprintf("%q in the output", what), func() bool { return strings.Contains(out.String(), what) })
}

// withDwolla points the pipeline's commands at a fake API.
func (p *pipeline) withDwolla(base string) {
	p.env = append(p.env, "HOOKSTREAM_DWOLLA_API="+base, "HOOKSTREAM_DWOLLA_KEY=rc-key", "HOOKSTREAM_DWOLLA_SECRET=rc-secret")
}

// journeyState is every journey instance as derived from the events: the
// steps reached, by which events, the status and the conflict. Abandonment
// is left out (in_progress and abandoned read the same): it is the
// processors' judgement on the watermark, not a fact of the events.
func (p *pipeline) journeyState() string {
	p.t.Helper()
	rows, err := p.db.Query(context.Background(), `SELECT journey, subject,
			CASE status WHEN 'abandoned' THEN 'in_progress' ELSE status END, coalesce(current_step, ''),
			step_at::text, step_event::text, entered_at, coalesce(conflict, ''), coalesce(entry_topic, '')
		FROM journey_instances ORDER BY journey, subject`)
	if err != nil {
		p.t.Fatal(err)
	}
	defer rows.Close()
	var b strings.Builder
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			p.t.Fatal(err)
		}
		fmt.Fprintln(&b, vals...)
	}
	if err := rows.Err(); err != nil {
		p.t.Fatal(err)
	}
	return b.String()
}

// TestReconcileRecoversDroppedWebhooks: simulated traffic with 5% of the
// webhooks never delivered, 20% duplicated and 20% reordered, into
// "serve --roles all" whose reconcile role runs every second against the
// simulator's fake API: sim --verify events reports zero missing and zero
// duplicated, every dropped event was stored by reconciliation, journeys
// equal a rebuild from the stored events, and the runs and the report say
// what happened.
func TestReconcileRecoversDroppedWebhooks(t *testing.T) {
	t.Parallel()
	p := newPipeline(t)
	port := testenv.FreePort(t)
	p.withDwolla(fmt.Sprintf("http://127.0.0.1:%d", port))
	srv := p.serve("--roles", "all", "--reconcile-every", "1s")
	truth := filepath.Join(t.TempDir(), "truth.jsonl")
	// Created over the day before now: reconciliation compares what was
	// created before its run, within Dwolla's 30 days.
	start := time.Now().UTC().Add(-24 * time.Hour).Format(time.RFC3339)
	const seed = 23
	out := p.background("sim", "--url", srv.base+"/webhooks/dwolla", "--webhook-secrets", "pipeline-secret",
		"--customers", "300", "--seed", fmt.Sprint(seed), "--start", start, "--rate", "0",
		"--drop", "0.05", "--duplicates", "0.2", "--reorder", "0.2", "--truth", truth,
		"--api-addr", fmt.Sprintf("127.0.0.1:%d", port), "--api-key", "rc-key", "--api-secret", "rc-secret",
		"--verify", "events", "--verify-timeout", "90s")
	waitOutput(t, out, "still serving the fake Dwolla API", 150*time.Second)
	s := out.String()
	if !strings.Contains(s, " 0 missing, 0 duplicated, 0 unexpected") {
		t.Fatalf("sim --verify events does not report zero missing and duplicated:\n%s\nserve:\n%s", s, srv.logs.String())
	}
	ids := readTruth(t, truth)
	var dropped []string
	for _, id := range ids {
		if sim.Dropped(id, seed, 0.05) {
			dropped = append(dropped, id)
		}
	}
	if len(dropped) == 0 || !strings.Contains(s, fmt.Sprintf(" %d dropped (never delivered)", len(dropped))) {
		t.Fatalf("%d events dropped by the hash; the sim says:\n%s", len(dropped), s)
	}
	if n := p.count(`SELECT count(*) FROM events WHERE source = 'reconcile' AND id = ANY($1)`, dropped); n != int64(len(dropped)) {
		t.Fatalf("%d of the %d dropped events stored by reconciliation", n, len(dropped))
	}

	// Journeys folded live, recovered events and all, equal a rebuild.
	live := p.journeyState()
	if live == "" {
		t.Fatal("no journey instances")
	}
	srv.stop(t) // nothing folds while the rebuild runs
	for _, d := range journeys.Default().Journeys {
		p.run("journeys", "rebuild", "--journey", d.Name)
	}
	if rebuilt := p.journeyState(); rebuilt != live {
		t.Fatalf("journeys differ from a rebuild:\n%s", firstDiff(live, rebuilt))
	}

	var listed struct {
		Runs []reconcile.Run `json:"runs"`
	}
	decode(t, p.run("reconcile", "runs", "-o", "json"), &listed)
	runs := listed.Runs
	var recovered int64
	for _, r := range runs {
		if r.Status == reconcile.StatusComplete {
			recovered += r.Recovered
		}
	}
	if len(runs) == 0 || recovered < int64(len(dropped)) {
		t.Fatalf("runs recovered %d events, %d were dropped: %+v", recovered, len(dropped), runs)
	}
	day := time.Now().UTC().Add(-24 * time.Hour).Format(time.DateOnly)
	var rep reconcile.Report
	decode(t, p.run("reconcile", "report", "--from", day, "--to", time.Now().UTC().Format(time.DateOnly), "-o", "json"), &rep)
	if rep.Total.Stored != int64(len(ids)) || rep.Total.Unrecovered != 0 || rep.Total.ByReconcile < int64(len(dropped)) ||
		rep.Total.ByReconcile+rep.Total.ByWebhook != int64(len(ids)) {
		t.Fatalf("report total %+v; %d events, %d dropped", rep.Total, len(ids), len(dropped))
	}
	if table := p.run("reconcile", "report", "--from", day); !strings.Contains(table, "BY RECONCILE") {
		t.Fatalf("the report table:\n%s", table)
	}
}

func firstDiff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := range min(len(al), len(bl)) {
		if al[i] != bl[i] {
			return fmt.Sprintf("line %d:\n live    %s\n rebuilt %s", i+1, al[i], bl[i])
		}
	}
	return fmt.Sprintf("%d lines live, %d rebuilt", len(al), len(bl))
}

// TestReconcileKilledMidRunThenRerun: a reconciliation killed with SIGKILL
// halfway through its pages; the next run closes the dead one as abandoned,
// covers its window again and recovers everything, each event once.
func TestReconcileKilledMidRunThenRerun(t *testing.T) {
	t.Parallel()
	p := newPipeline(t)
	truth := filepath.Join(t.TempDir(), "truth.jsonl")
	start := time.Now().UTC().Add(-24 * time.Hour).Format(time.RFC3339)
	// Every webhook dropped: the events exist only at the fake API, which
	// answers slowly, so a run of small pages takes seconds.
	base, out := p.simAPI("--url", "http://127.0.0.1:1/webhooks/dwolla", "--customers", "100", "--seed", "24",
		"--start", start, "--drop", "1", "--truth", truth, "--api-latency", "20ms")
	waitOutput(t, out, "still serving the fake Dwolla API", 60*time.Second)
	p.withDwolla(base)
	ids := readTruth(t, truth)

	cmd := exec.Command(p.bin, "reconcile", "--reconcile-page-size", "5")
	cmd.Env = p.env
	logs := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() { cmd.Process.Kill(); <-done })
	testenv.WaitFor(t, 60*time.Second, "the run to page a while", func() bool {
		return p.count(`SELECT coalesce(max(pages), 0) FROM reconcile_runs WHERE status = 'running'`) >= 20
	})
	cmd.Process.Signal(syscall.SIGKILL)
	<-done
	done <- nil
	var pagesAtKill, recoveredAtKill int64
	p.db.QueryRow(context.Background(), `SELECT pages, recovered FROM reconcile_runs WHERE status = 'running'`).Scan(&pagesAtKill, &recoveredAtKill)
	// What the killed run appended: its recorded progress, and maybe a
	// page more (appended, killed before its progress was committed).
	appended := p.entries()
	if recoveredAtKill == 0 || appended < recoveredAtKill || appended >= int64(len(ids)) {
		t.Fatalf("killed after recording %d and appending %d of %d events: not mid-run\n%s", recoveredAtKill, appended, len(ids), logs.String())
	}

	outRun := p.run("reconcile", "-o", "json")
	var second reconcile.Run
	decode(t, outRun, &second)
	if second.Status != reconcile.StatusComplete || second.Compared != int64(len(ids)) ||
		second.Recovered+second.InFlight != int64(len(ids)) || second.InFlight != appended {
		t.Fatalf("the rerun %+v; want all %d compared, the %d the killed run appended in flight, the rest recovered", second, len(ids), appended)
	}
	if n := p.count(`SELECT count(*) FROM reconcile_runs WHERE status = 'failed' AND error LIKE 'abandoned%'`); n != 1 {
		t.Fatalf("%d runs closed as abandoned, want the killed one", n)
	}
	srv := p.serve("--roles", "process")
	testenv.WaitFor(t, 60*time.Second, "every event to be stored", func() bool { return p.stored() == int64(len(ids)) })
	if entries := p.entries(); entries != int64(len(ids)) {
		t.Fatalf("%d stream entries for %d events: the rerun appended some twice", entries, len(ids))
	}
	srv.stop(t)
	t.Logf("killed after %d pages and %d events; the rerun recovered %d, found %d in flight", pagesAtKill, appended, second.Recovered, second.InFlight)
}

// entries counts the entries of every partition stream.
func (p *pipeline) entries() int64 {
	p.t.Helper()
	var total int64
	for part := range p.keys.Partitions {
		n, err := p.rdb.XLen(context.Background(), p.keys.Stream(part)).Result()
		if err != nil {
			p.t.Fatal(err)
		}
		total += n
	}
	return total
}
