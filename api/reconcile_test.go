package api

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hookstream/hookstream/reconcile"
)

// seedRun is a reconcile_runs row as reconciliation writes it.
type seedRun struct {
	started, finished, since, until, highWater time.Time
	status, err                                string
	pages, calls                               int
	compared, missing, recovered, inFlight     int64
	deadLettered, errors                       int64
	unrecovered                                int64 // derived: the run's failed gaps, seeded below
	audit                                      *reconcile.Audit
	repair                                     *reconcile.Repair
}

func (s seedRun) insert(t *testing.T, f *fixture) int64 {
	t.Helper()
	nullTime := func(t time.Time) *time.Time {
		if t.IsZero() {
			return nil
		}
		return &t
	}
	nullJSON := func(v any, null bool) *string {
		if null {
			return nil
		}
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		s := string(b)
		return &s
	}
	var id int64
	err := f.DB.QueryRow(context.Background(), `INSERT INTO reconcile_runs (started_at, finished_at, status, since, until,
			high_water, pages, api_calls, compared, missing, recovered, in_flight, dead_lettered, errors, error, holder, audit, repair)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, 'test-host-1', $16::jsonb, $17::jsonb) RETURNING id`,
		s.started, nullTime(s.finished), s.status, s.since, s.until, nullTime(s.highWater), s.pages, s.calls, s.compared, s.missing,
		s.recovered, s.inFlight, s.deadLettered, s.errors, s.err, nullJSON(s.audit, s.audit == nil), nullJSON(s.repair, s.repair == nil)).Scan(&id)
	if err != nil {
		t.Fatalf("seed a reconciliation run: %v", err)
	}
	return id
}

// want is the run's JSON as the API must answer it.
func (s seedRun) want(id int64) map[string]any {
	m := map[string]any{
		"id": id, "started_at": s.started, "status": s.status, "since": s.since, "until": s.until,
		"pages": s.pages, "api_calls": s.calls, "compared": s.compared, "missing": s.missing, "recovered": s.recovered,
		"in_flight": s.inFlight, "dead_lettered": s.deadLettered, "unrecovered": s.unrecovered, "errors": s.errors, "holder": "test-host-1", "duration_ms": 0,
	}
	if !s.finished.IsZero() {
		m["finished_at"] = s.finished
		m["duration_ms"] = float64(s.finished.Sub(s.started).Microseconds()) / 1000
	}
	if !s.highWater.IsZero() {
		m["high_water"] = s.highWater
	}
	if s.err != "" {
		m["error"] = s.err
	}
	// The audit and repair are reconciliation's records, passed through as
	// it wrote them.
	if s.audit != nil {
		m["audit"] = s.audit
	}
	if s.repair != nil {
		m["repair"] = s.repair
	}
	return m
}

func seedEvent(t *testing.T, f *fixture, id, topic, source string, created time.Time) {
	t.Helper()
	_, err := f.DB.Exec(context.Background(), `INSERT INTO events (id, topic, created, received_at, source, body)
		VALUES ($1, $2, $3, $3, $4, '{}')`, id, topic, created, source)
	if err != nil {
		t.Fatalf("seed event %s: %v", id, err)
	}
}

func seedGap(t *testing.T, f *fixture, run int64, event, topic, outcome string, created time.Time) {
	t.Helper()
	_, err := f.DB.Exec(context.Background(), `INSERT INTO reconcile_gaps (run_id, event_id, topic, created, outcome)
		VALUES ($1, $2, $3, $4, $5)`, run, event, topic, created, outcome)
	if err != nil {
		t.Fatalf("seed gap %s: %v", event, err)
	}
}

// The reconciliation routes answer the runs and the report from what
// reconciliation recorded, with 400s naming the parameter at fault and a
// 404 for an unknown run; they need a token like every read route.
func TestReconcileRoutes(t *testing.T) {
	t.Parallel()
	// A fixed clock: the report's default range does not depend on the date.
	now := time.Date(2025, 6, 10, 12, 0, 0, 0, time.UTC)
	f := newFixture(t, func(c *Config) { c.Now = func() time.Time { return now } })
	day := func(d, h, m int) time.Time { return time.Date(2025, 6, d, h, m, 0, 0, time.UTC) }

	// Before any run: empty lists, an empty report.
	jsonEq(t, "no runs yet", f.get(t, "/api/v1/reconcile/runs").ok(t).body, map[string]any{"runs": []any{}})
	zero := map[string]any{"day": "", "topic": "all", "at_dwolla": 0, "stored": 0, "by_webhook": 0, "by_reconcile": 0,
		"missing": 0, "recovered": 0, "unrecovered": 0}
	jsonEq(t, "empty report", f.get(t, "/api/v1/reconcile/report?from=2025-06-02&to=2025-06-03").ok(t).body,
		map[string]any{"from": "2025-06-02", "to": "2025-06-03", "rows": []any{}, "total": zero, "covered": []any{}})
	f.get(t, "/api/v1/reconcile/runs/1").want(t, "a run before any", 404)

	// Four runs: two complete (overlapping windows), one failed, one running.
	first := seedRun{
		started: day(2, 12, 0), finished: day(2, 12, 0).Add(3500 * time.Millisecond), status: reconcile.StatusComplete,
		since: day(1, 0, 0), until: day(2, 12, 0), highWater: day(2, 11, 58), pages: 3, calls: 5,
		compared: 410, missing: 2, recovered: 1, errors: 1, unrecovered: 1, // gap-transfer
		audit: &reconcile.Audit{Paused: 1, Subscriptions: []reconcile.SubscriptionAudit{
			{ID: "sub-1", URL: "https://hooks.example.com/dwolla", Paused: true, Webhooks: 12, Failed: 4,
				ByStatus: map[string]int{"500": 3, "0": 1}, Retried: 1, RetryErrors: 0,
				Failures: []reconcile.FailedDelivery{{WebhookID: "wh-1", EventID: "gap-transfer", Topic: "transfer_completed",
					Attempts: 8, LastStatus: 500, LastBody: "upstream down"}}},
			{ID: "sub-2", URL: "https://other.example.com/", ByStatus: map[string]int{}, Failures: []reconcile.FailedDelivery{},
				Error: "list the deliveries of subscription sub-2: 503"},
		}},
		repair: &reconcile.Repair{Checked: 2, Discrepancies: 1, Items: []reconcile.Discrepancy{{Journey: "customer_verification",
			Subject: "cust-1", Resource: "https://api.dwolla.com/customers/cust-1", OurStatus: "in_progress",
			OurStep: "document_needed", DwollaStatus: "verified", Steps: []string{"verified"}, Note: "reported"}}},
	}
	second := seedRun{
		started: day(3, 6, 0), finished: day(3, 6, 1), status: reconcile.StatusComplete,
		since: day(2, 11, 0), until: day(3, 6, 0), highWater: day(3, 5, 59), pages: 1, calls: 2, compared: 40, missing: 1, inFlight: 1,
		audit:  &reconcile.Audit{Subscriptions: []reconcile.SubscriptionAudit{}},
		repair: &reconcile.Repair{Items: []reconcile.Discrepancy{}},
	}
	failed := seedRun{
		started: day(3, 7, 0), finished: day(3, 7, 0).Add(250 * time.Millisecond), status: reconcile.StatusFailed,
		since: day(3, 5, 0), until: day(3, 7, 0), calls: 1, err: "reconcile: list Dwolla's events (page 1): 401 Unauthorized",
	}
	running := seedRun{started: day(3, 8, 0), status: reconcile.StatusRunning, since: day(3, 5, 0), until: day(3, 8, 0)}
	runs := []seedRun{first, second, failed, running}
	ids := make([]int64, len(runs))
	for i, r := range runs {
		ids[i] = r.insert(t, f)
	}

	// Stored events: three customer_created on June 2 (one recovered by
	// reconciliation), a transfer on June 2, a verification on June 3, and
	// two either side of the default range's first day (May 12).
	seedEvent(t, f, "cc-1", "customer_created", "webhook", day(2, 9, 0))
	seedEvent(t, f, "cc-2", "customer_created", "webhook", day(2, 10, 0))
	seedEvent(t, f, "cc-3", "customer_created", "reconcile", day(2, 11, 0))
	seedEvent(t, f, "tc-1", "transfer_completed", "webhook", day(2, 11, 30))
	seedEvent(t, f, "cv-1", "customer_verified", "webhook", day(3, 1, 0))
	seedEvent(t, f, "old-1", "customer_created", "webhook", time.Date(2025, 5, 11, 23, 59, 59, 0, time.UTC))
	seedEvent(t, f, "old-2", "customer_created", "webhook", time.Date(2025, 5, 12, 0, 0, 0, 0, time.UTC))
	// Gaps: cc-3 found missing by both complete runs (counted once) and
	// stored since; a transfer still missing; a dry run's find (not counted).
	seedGap(t, f, ids[0], "cc-3", "customer_created", reconcile.GapRecovered, day(2, 11, 0))
	seedGap(t, f, ids[1], "cc-3", "customer_created", reconcile.GapInFlight, day(2, 11, 0))
	seedGap(t, f, ids[0], "gap-transfer", "transfer_completed", reconcile.GapFailed, day(2, 11, 45))
	seedGap(t, f, ids[2], "gap-dry", "customer_verified", reconcile.GapDryRun, day(3, 2, 0))

	// Runs: newest first, each with its audit and repair.
	var want []any
	for i := len(runs) - 1; i >= 0; i-- {
		want = append(want, runs[i].want(ids[i]))
	}
	jsonEq(t, "runs", f.get(t, "/api/v1/reconcile/runs").ok(t).body, map[string]any{"runs": want})
	jsonEq(t, "runs, limit 2", f.get(t, "/api/v1/reconcile/runs?limit=2").ok(t).body, map[string]any{"runs": want[:2]})
	for i, r := range runs {
		jsonEq(t, "run "+r.status, f.get(t, fmt.Sprintf("/api/v1/reconcile/runs/%d", ids[i])).ok(t).body, r.want(ids[i]))
	}

	// The report over June 2 and 3, by day then topic.
	row := func(day, topic string, atDwolla, stored, byWebhook, byReconcile, missing, recovered, unrecovered int) map[string]any {
		return map[string]any{"day": day, "topic": topic, "at_dwolla": atDwolla, "stored": stored, "by_webhook": byWebhook,
			"by_reconcile": byReconcile, "missing": missing, "recovered": recovered, "unrecovered": unrecovered}
	}
	report := map[string]any{
		"from": "2025-06-02", "to": "2025-06-03",
		"rows": []any{
			row("2025-06-02", "customer_created", 3, 3, 2, 1, 1, 1, 0),
			row("2025-06-02", "transfer_completed", 2, 1, 1, 0, 1, 0, 1),
			row("2025-06-03", "customer_verified", 1, 1, 1, 0, 0, 0, 0),
		},
		"total": row("", "all", 6, 5, 4, 1, 2, 1, 1),
		// The complete runs' windows, cut to the range and merged; the
		// failed run's is not covered.
		"covered": []any{map[string]any{"from": day(2, 0, 0), "to": day(3, 6, 0)}},
	}
	jsonEq(t, "report", f.get(t, "/api/v1/reconcile/report?from=2025-06-02&to=2025-06-03").ok(t).body, report)
	// Times are taken as their UTC day.
	jsonEq(t, "report by times", f.get(t, "/api/v1/reconcile/report?from=2025-06-02T15:04:05Z&to=2025-06-03T23:59:59Z").ok(t).body, report)
	jsonEq(t, "report by times with an offset",
		f.get(t, "/api/v1/reconcile/report?from=2025-06-02T01:00:00%2B02:00&to=2025-06-03T00:00:00Z").ok(t).body,
		map[string]any{"from": "2025-06-01", "to": "2025-06-03", "rows": report["rows"], "total": report["total"],
			"covered": []any{map[string]any{"from": day(1, 0, 0), "to": day(3, 6, 0)}}})

	// The default: the 30 days to today (the server's clock), today
	// included: May 12 to June 10.
	var rep reconcile.Report
	f.get(t, "/api/v1/reconcile/report").ok(t).decode(t, &rep)
	if rep.From != "2025-05-12" || rep.To != "2025-06-10" || len(rep.Rows) != 4 || rep.Rows[0].Day != "2025-05-12" || rep.Total.Stored != 6 {
		t.Errorf("default report: from %s to %s, %d rows, %d stored; want 2025-05-12 to 2025-06-10, 4 rows from 2025-05-12, 6 stored: %+v",
			rep.From, rep.To, len(rep.Rows), rep.Total.Stored, rep)
	}
	f.get(t, "/api/v1/reconcile/report?to=2025-06-03").ok(t).decode(t, &rep)
	if rep.From != "2025-05-05" || rep.To != "2025-06-03" || rep.Total.Stored != 7 {
		t.Errorf("report to June 3: from %s to %s, %d stored; want from 2025-05-05, 7 stored", rep.From, rep.To, rep.Total.Stored)
	}
	f.get(t, "/api/v1/reconcile/report?from=2025-06-03").ok(t).decode(t, &rep)
	if rep.From != "2025-06-03" || rep.To != "2025-06-10" || rep.Total.Stored != 1 {
		t.Errorf("report from June 3: from %s to %s, %d stored; want to 2025-06-10, 1 stored", rep.From, rep.To, rep.Total.Stored)
	}
	// One day, and the longest range, 31 days.
	f.get(t, "/api/v1/reconcile/report?from=2025-06-03&to=2025-06-03").ok(t)
	f.get(t, "/api/v1/reconcile/report?from=2025-05-11&to=2025-06-10").ok(t)

	// Bad parameters: a 400 naming the parameter and saying what is wrong.
	bad := func(path, param string, says ...string) {
		t.Helper()
		p := f.get(t, path).want(t, path, 400)
		if p.Param != param || !strings.HasSuffix(p.Type, "#bad-parameter") {
			t.Errorf("%s: problem %+v, want bad-parameter naming %s", path, p, param)
		}
		for _, s := range says {
			if !strings.Contains(p.Detail, s) {
				t.Errorf("%s: detail %q does not say %q", path, p.Detail, s)
			}
		}
	}
	bad("/api/v1/reconcile/runs?limit=0", "limit", "1 to 200")
	bad("/api/v1/reconcile/runs?limit=201", "limit", "1 to 200")
	bad("/api/v1/reconcile/runs?limit=ten", "limit")
	bad("/api/v1/reconcile/runs?since=2025-06-01", "since", "unknown parameter")
	bad("/api/v1/reconcile/runs/abc", "id", "not a reconciliation run id")
	bad("/api/v1/reconcile/runs/0", "id", "not a reconciliation run id")
	bad("/api/v1/reconcile/runs/1?limit=1", "limit", "unknown parameter")
	bad("/api/v1/reconcile/report?from=2025-06-05&to=2025-06-01", "from", "2025-06-05 is after to 2025-06-01")
	bad("/api/v1/reconcile/report?from=2025-05-10&to=2025-06-10", "from", "32 days", "at most 31")
	bad("/api/v1/reconcile/report?from=2025-05-01", "from", "41 days", "give it too")
	bad("/api/v1/reconcile/report?from=yesterday", "from")
	bad("/api/v1/reconcile/report?to=2025-13-01", "to")
	bad("/api/v1/reconcile/report?day=2025-06-01", "day", "unknown parameter")

	// An unknown run: 404 saying where the runs are listed.
	p := f.get(t, "/api/v1/reconcile/runs/999999").want(t, "an unknown run", 404)
	if !strings.HasSuffix(p.Type, "#not-found") || !strings.Contains(p.Detail, "999999") || !strings.Contains(p.Detail, "/api/v1/reconcile/runs") {
		t.Errorf("unknown run: problem %+v", p)
	}

	// Tokens: a read token is enough, an admin token too; without one, or
	// with a wrong one, the answer is the one every read route gives.
	f.do(t, "GET", "/api/v1/reconcile/runs", adminSecret, nil).ok(t)
	for _, secret := range []string{"", "not-a-configured-secret"} {
		ref := f.do(t, "GET", "/api/v1/events", secret, nil)
		for _, path := range []string{"/api/v1/reconcile/runs", fmt.Sprintf("/api/v1/reconcile/runs/%d", ids[0]), "/api/v1/reconcile/report"} {
			a := f.do(t, "GET", path, secret, nil)
			got, wantP := a.want(t, path+" without a valid token", 401), ref.want(t, "events without a valid token", 401)
			if a.header.Get("WWW-Authenticate") != ref.header.Get("WWW-Authenticate") || got.Detail != wantP.Detail || got.Param != "Authorization" {
				t.Errorf("%s with secret %q: %q %+v, want as GET /api/v1/events: %q %+v", path, secret,
					a.header.Get("WWW-Authenticate"), got, ref.header.Get("WWW-Authenticate"), wantP)
			}
		}
	}
}
