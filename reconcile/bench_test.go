package reconcile_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookstream/hookstream/dwolla"
	"github.com/hookstream/hookstream/internal/testenv"
	"github.com/hookstream/hookstream/reconcile"
	"github.com/hookstream/hookstream/sim"
	"github.com/hookstream/hookstream/stream"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
)

// The 30-day benchmark's scenario (issue 14): a million events at Dwolla
// over its whole 30-day horizon, every hundredth of them never stored.
const (
	benchEvents      = 1_000_000
	benchMissingEach = 100 // every 100th event (oldest first) is not in the events table: 1%
	benchNaiveEvents = 50_000
	benchPageSize    = 200
)

// benchNow is the clock of the fake API and of the reconciler: fixed, so the
// scenario does not depend on the calendar.
var benchNow = time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)

// BenchmarkReconcile30Days reconciles 30 days holding 1,000,000 events at
// Dwolla (the simulator's fake API on loopback, through a real
// dwolla.Client) against an events table holding 99% of them: the first run
// of an installation, paging /events 200 at a time down to the horizon.
// Building and COPYing the events is not timed. It fails unless the run
// found exactly the 10,000 events left out, appended each once to the
// partition streams, and sent one compare query a page. It reports where
// the run waited (the Dwolla API, each kind of SQL statement, Redis).
//
// In the same run, over 50,000 of the same events, it times the compare
// step's per-page query (one query for 200 ids) against a query per event,
// as a reference: the machine is noisy, so only the same-run ratio means
// much.
//
//	go test ./reconcile -run '^$' -bench Reconcile30Days -benchtime 1x -timeout 30m
func BenchmarkReconcile30Days(b *testing.B) {
	if testing.Short() {
		b.Skip("builds and stores 1,000,000 events; not in -short runs")
	}
	ctx := context.Background()
	p := testenv.NewPipeline(b, stream.DefaultPartitions)
	clock := func() time.Time { return benchNow }

	t0 := time.Now()
	evs := benchScenario(b)
	b.Logf("generated %d events created %s to %s (%s)", len(evs), evs[0].Created.Format(time.RFC3339),
		evs[len(evs)-1].Created.Format(time.RFC3339), time.Since(t0).Round(time.Millisecond))

	api, err := sim.NewAPI(sim.APIConfig{Now: clock})
	if err != nil {
		b.Fatal(err)
	}
	api.Add(evs...)
	srv := httptest.NewServer(api)
	b.Cleanup(srv.Close)

	t0 = time.Now()
	missing := benchStore(ctx, b, p.DB, evs)
	b.Logf("COPY of %d events and VACUUM ANALYZE: %s", len(evs)-len(missing), time.Since(t0).Round(time.Millisecond))

	client, err := dwolla.NewClient(dwolla.ClientConfig{BaseURL: srv.URL, Key: sim.DefaultAPIKey, Secret: sim.DefaultAPISecret,
		Rate: 1e6, Burst: 1000, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	// Where a run's time goes: the run is one goroutine, so the time spent
	// waiting on each of Dwolla, PostgreSQL (by statement) and Redis adds
	// up to its duration, the rest being its own work (parsing, maps).
	var spent benchSpent
	timed := &benchTimedAPI{API: client, spent: &spent}
	dbCfg, err := pgxpool.ParseConfig(p.DBURL)
	if err != nil {
		b.Fatal(err)
	}
	dbCfg.ConnConfig.Tracer = &spent
	db, err := pgxpool.NewWithConfig(ctx, dbCfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(db.Close)
	p.Redis.AddHook(&spent)

	var (
		total   time.Duration
		last    reconcile.Run
		callsOf = func() (events, other int64) {
			for route, n := range api.Calls() {
				switch route {
				case "GET /events":
					events += n
				case "POST /token":
				default:
					other += n
				}
			}
			return events, other
		}
	)
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		// Each iteration is an installation's first run: no earlier run,
		// nothing recovered yet.
		if _, err := p.DB.Exec(ctx, `DELETE FROM reconcile_runs`); err != nil {
			b.Fatal(err)
		}
		if _, err := stream.DeleteKeys(ctx, p.Redis, p.Keys.Pattern()); err != nil {
			b.Fatal(err)
		}
		eventsBefore, otherBefore := callsOf()
		comparesBefore := spent.compare.n
		rec := reconcile.New(db, p.Redis, p.Keys, timed, reconcile.Options{PageSize: benchPageSize, Now: clock,
			Logger: slog.New(slog.DiscardHandler)})
		spent.on.Store(true)
		b.StartTimer()

		start := time.Now()
		run, err := rec.Run(ctx, reconcile.Window{})
		took := time.Since(start)

		b.StopTimer()
		spent.on.Store(false)
		if err != nil {
			b.Fatalf("run: %v", err)
		}
		eventsAfter, otherAfter := callsOf()
		benchCheck(ctx, b, p, run, missing, eventsAfter-eventsBefore, otherAfter-otherBefore)
		if n := spent.compare.n - comparesBefore; n != int64(run.Pages) {
			b.Fatalf("the compare step sent %d queries for %d pages (%d events); want one a page", n, run.Pages, run.Compared)
		}
		total += took
		last = run
		b.StartTimer()
	}

	secs := total.Seconds() / float64(b.N)
	b.ReportMetric(float64(last.APICalls), "api_calls")
	b.ReportMetric(float64(last.Pages), "pages")
	b.ReportMetric(float64(last.Missing), "missing")
	b.ReportMetric(float64(last.Recovered), "recovered")
	b.ReportMetric(secs, "seconds")
	b.ReportMetric(float64(last.Compared)/secs, "compared_events/s")
	per := func(w benchWait) float64 { return w.d.Seconds() / float64(b.N) }
	b.ReportMetric(per(spent.api), "api_s")
	b.ReportMetric(per(spent.compare), "compare_query_s")
	b.ReportMetric(per(spent.gaps), "gaps_insert_s")
	b.ReportMetric(per(spent.progress), "progress_update_s")
	b.ReportMetric(per(spent.redis), "redis_s")
	b.ReportMetric(float64(spent.compare.n+spent.gaps.n+spent.progress.n+spent.otherSQL.n)/float64(b.N), "sql_statements")
	rest := secs - per(spent.api) - per(spent.compare) - per(spent.gaps) - per(spent.progress) - per(spent.otherSQL) - per(spent.redis)
	n := func(w benchWait) int64 { return w.n / int64(b.N) }
	ms := func(w benchWait) float64 { return float64(w.d.Microseconds()) / 1000 / float64(max(w.n, 1)) }
	b.Logf("run %.1f s (per run), waiting on: Dwolla API %.1f s (%d calls, %.2f ms each), compare query %.1f s (%d, %.2f ms), gaps insert %.1f s (%d, %.2f ms), "+
		"progress update %.1f s (%d, %.2f ms), other SQL %.2f s (%d), Redis %.1f s (%d, %.2f ms); the rest (parsing, bookkeeping) %.1f s",
		secs, per(spent.api), n(spent.api), ms(spent.api), per(spent.compare), n(spent.compare), ms(spent.compare),
		per(spent.gaps), n(spent.gaps), ms(spent.gaps), per(spent.progress), n(spent.progress), ms(spent.progress),
		per(spent.otherSQL), n(spent.otherSQL), per(spent.redis), n(spent.redis), ms(spent.redis), rest)

	bulk, naive := benchCompareReference(ctx, b, p.DB, evs, missing)
	b.ReportMetric(float64(bulk.Microseconds())/benchNaiveEvents, "bulk_us/event")
	b.ReportMetric(float64(naive.Microseconds())/benchNaiveEvents, "naive_us/event")
	b.ReportMetric(float64(naive)/float64(bulk), "naive/bulk")
}

// benchScenario returns the simulator's first 1,000,000 events (oldest
// first) of customers starting from an hour inside the horizon: with this
// pace (88,100 customers over 31 days, about 11.8 events each) the
// millionth is created some 6 hours before benchNow.
func benchScenario(b *testing.B) []sim.Event {
	b.Helper()
	start := benchNow.Add(-sim.EventHorizon + time.Hour)
	src := sim.NewOrdered(sim.Config{Customers: 88_100, Seed: 14, Start: start, Span: 31 * 24 * time.Hour})
	evs := make([]sim.Event, benchEvents)
	for i := range evs {
		evs[i] = src.Next()
	}
	if first, last := evs[0].Created, evs[len(evs)-1].Created; first.Before(start) || !last.Before(benchNow) {
		b.Fatalf("the scenario's events were created %s to %s, not within [%s, %s): the simulator's pace changed; adjust benchScenario",
			first, last, start, benchNow)
	}
	return evs
}

// benchStore COPYs all events but every benchMissingEach-th into the events
// table, as the processor would have stored them, then vacuums and analyzes
// it (as autovacuum would have by then; not mid-run). It returns the ids
// left out.
func benchStore(ctx context.Context, b *testing.B, db *pgxpool.Pool, evs []sim.Event) map[string]bool {
	b.Helper()
	missing := make(map[string]bool, len(evs)/benchMissingEach)
	for i := 0; i < len(evs); i += benchMissingEach {
		missing[evs[i].ID] = true
	}
	cols := []string{"id", "topic", "family", "outcome", "terminal", "resource_type", "resource_id", "customer_id",
		"correlation_id", "created", "received_at", "source", "body"}
	const conns = 2
	errs := make(chan error, conns)
	per := (len(evs) + conns - 1) / conns
	for c := range conns {
		part := evs[min(c*per, len(evs)):min((c+1)*per, len(evs))]
		go func() {
			i := 0
			row := make([]any, len(cols))
			_, err := db.CopyFrom(ctx, pgx.Identifier{"events"}, cols, pgx.CopyFromFunc(func() ([]any, error) {
				for i < len(part) && missing[part[i].ID] {
					i++
				}
				if i == len(part) {
					return nil, nil
				}
				ev, err := dwolla.ParseEvent(part[i].Body)
				if err != nil {
					return nil, fmt.Errorf("sim event %s: %w", part[i].ID, err)
				}
				var family, outcome any
				terminal := false
				if info, ok := dwolla.LookupTopic(ev.Topic); ok {
					family, outcome, terminal = info.Family, benchNullable(string(info.Outcome)), info.Terminal
				}
				created := ev.Created.Truncate(time.Microsecond)
				row[0], row[1], row[2], row[3], row[4] = ev.ID, ev.Topic, family, outcome, terminal
				row[5], row[6], row[7], row[8] = benchNullable(ev.ResourceType()), ev.ResourceID, benchNullable(ev.CustomerID()), benchNullable(ev.CorrelationID)
				row[9], row[10], row[11], row[12] = created, created.Add(300*time.Millisecond), stream.SourceWebhook, part[i].Body
				i++
				return row, nil
			}))
			errs <- err
		}()
	}
	for range conns {
		if err := <-errs; err != nil {
			b.Fatalf("COPY the events: %v", err)
		}
	}
	if _, err := db.Exec(ctx, `VACUUM (ANALYZE) events`); err != nil {
		b.Fatal(err)
	}
	var n int
	if err := db.QueryRow(ctx, `SELECT count(*) FROM events`).Scan(&n); err != nil {
		b.Fatal(err)
	}
	if n != len(evs)-len(missing) {
		b.Fatalf("events table holds %d rows, want %d", n, len(evs)-len(missing))
	}
	return missing
}

func benchNullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// benchCheck fails unless the run found exactly the events left out and
// appended each of them once to the partition streams.
func benchCheck(ctx context.Context, b *testing.B, p *testenv.Pipeline, run reconcile.Run, missing map[string]bool, eventsCalls, otherCalls int64) {
	b.Helper()
	wantPages := (benchEvents + benchPageSize - 1) / benchPageSize
	switch {
	case run.Status != reconcile.StatusComplete || run.Error != "":
		b.Fatalf("run ended %s: %s", run.Status, run.Error)
	case run.Compared != benchEvents:
		b.Fatalf("compared %d events, want %d", run.Compared, benchEvents)
	case run.Missing != int64(len(missing)) || run.Recovered != run.Missing:
		b.Fatalf("missing %d, recovered %d; want %d and %d", run.Missing, run.Recovered, len(missing), len(missing))
	case run.InFlight != 0 || run.DeadLettered != 0 || run.Errors != 0:
		b.Fatalf("in flight %d, dead-lettered %d, errors %d; want none", run.InFlight, run.DeadLettered, run.Errors)
	case run.Pages != wantPages || eventsCalls != int64(wantPages):
		b.Fatalf("%d pages, %d GET /events at the fake API; want %d", run.Pages, eventsCalls, wantPages)
	case int64(run.APICalls) != eventsCalls+otherCalls:
		b.Fatalf("the run counts %d API calls, the fake API served %d (token requests aside)", run.APICalls, eventsCalls+otherCalls)
	case !run.HighWater.Before(benchNow) || run.HighWater.IsZero():
		b.Fatalf("high-water mark %s", run.HighWater)
	}
	var xlen int64
	seen := make(map[string]bool, len(missing))
	for part := range p.Keys.Partitions {
		key := p.Keys.Stream(part)
		n, err := p.Redis.XLen(ctx, key).Result()
		if err != nil {
			b.Fatal(err)
		}
		xlen += n
		msgs, err := p.Redis.XRange(ctx, key, "-", "+").Result()
		if err != nil {
			b.Fatal(err)
		}
		for _, m := range msgs {
			id, _ := m.Values[stream.FieldID].(string)
			src, _ := m.Values[stream.FieldSource].(string)
			switch {
			case !missing[id]:
				b.Fatalf("%s holds event %q, which was not missing", key, id)
			case seen[id]:
				b.Fatalf("event %s appended twice", id)
			case src != "reconcile":
				b.Fatalf("event %s appended with source %q, want reconcile", id, src)
			}
			seen[id] = true
		}
	}
	if xlen != int64(len(missing)) || len(seen) != len(missing) {
		b.Fatalf("the partition streams hold %d entries (%d distinct events), want %d", xlen, len(seen), len(missing))
	}
	var gaps int
	if err := p.DB.QueryRow(ctx, `SELECT count(*) FROM reconcile_gaps WHERE run_id = $1 AND outcome = 'recovered'`, run.ID).Scan(&gaps); err != nil {
		b.Fatal(err)
	}
	if gaps != len(missing) {
		b.Fatalf("reconcile_gaps records %d recovered events, want %d", gaps, len(missing))
	}
}

// benchCompareReference times the compare step's query, one per page of
// benchPageSize ids, against one `SELECT EXISTS` per event, over
// benchNaiveEvents of evs: pages spread evenly over the whole list (as the
// run pages it, newest first), so they meet the index as cold or warm as
// the run did. The two alternate page by page, so both meet the same cache
// and the same neighbours on the machine. The bulk query is comparePage's
// (keep them alike).
func benchCompareReference(ctx context.Context, b *testing.B, db *pgxpool.Pool, evs []sim.Event, missing map[string]bool) (bulk, naive time.Duration) {
	b.Helper()
	const bulkQuery = `SELECT i.id, EXISTS (SELECT 1 FROM dead_letters d WHERE d.event_id = i.id
			AND d.replayed_at IS NULL AND d.discarded_at IS NULL)
		FROM unnest($1::text[]) AS i(id) WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.id = i.id)`
	const naiveQuery = `SELECT EXISTS (SELECT 1 FROM events WHERE id = $1)`
	var want, bulkFound, naiveFound, n int
	ids := make([]string, 0, benchPageSize)
	pages := benchNaiveEvents / benchPageSize
	stride := len(evs) / benchPageSize / pages
	for page := range pages {
		hi := len(evs) - page*stride*benchPageSize // newest first, as listed
		ids = ids[:0]
		for i := hi - 1; i >= hi-benchPageSize; i-- {
			ids = append(ids, evs[i].ID)
			if missing[evs[i].ID] {
				want++
			}
		}
		n += len(ids)
		runBulk := func() {
			start := time.Now()
			rows, err := db.Query(ctx, bulkQuery, ids)
			if err != nil {
				b.Fatal(err)
			}
			for rows.Next() {
				bulkFound++
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				b.Fatal(err)
			}
			bulk += time.Since(start)
		}
		runNaive := func() {
			start := time.Now()
			for _, id := range ids {
				var ok bool
				if err := db.QueryRow(ctx, naiveQuery, id).Scan(&ok); err != nil {
					b.Fatal(err)
				}
				if !ok {
					naiveFound++
				}
			}
			naive += time.Since(start)
		}
		if page%2 == 0 {
			runBulk()
			runNaive()
		} else {
			runNaive()
			runBulk()
		}
	}
	if bulkFound != want || naiveFound != want {
		b.Fatalf("over %d events the per-page query found %d missing, the per-event queries %d; want %d", n, bulkFound, naiveFound, want)
	}
	b.Logf("reference over %d events in %d pages (%d missing): per-page query %s (%.1f µs/event), per-event query %s (%.1f µs/event), %.1fx",
		n, pages, want, bulk.Round(time.Millisecond), float64(bulk.Microseconds())/float64(n),
		naive.Round(time.Millisecond), float64(naive.Microseconds())/float64(n), float64(naive)/float64(bulk))
	return bulk, naive
}

// benchSpent adds up where a run waits, and how often: on Dwolla's API
// (benchTimedAPI), on PostgreSQL by statement (a pgx QueryTracer) and on
// Redis (a go-redis hook), while on. The run calls them from one goroutine.
type benchSpent struct {
	on                                     atomic.Bool
	api, compare, gaps, progress, otherSQL benchWait
	redis                                  benchWait
}

// benchWait is the time spent waiting on one thing, and how many times.
type benchWait struct {
	d time.Duration
	n int64
}

func (w *benchWait) add(start time.Time) { w.d += time.Since(start); w.n++ }

type benchStartKey struct{}

type benchQuery struct {
	sql   string
	start time.Time
}

func (s *benchSpent) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	return context.WithValue(ctx, benchStartKey{}, benchQuery{sql: d.SQL, start: time.Now()})
}

func (s *benchSpent) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryEndData) {
	q, ok := ctx.Value(benchStartKey{}).(benchQuery)
	if !ok || !s.on.Load() {
		return
	}
	sql := strings.TrimSpace(q.sql)
	switch {
	case strings.HasPrefix(sql, "SELECT i.id, EXISTS"):
		s.compare.add(q.start)
	case strings.HasPrefix(sql, "INSERT INTO reconcile_gaps"):
		s.gaps.add(q.start)
	case strings.HasPrefix(sql, "UPDATE reconcile_runs SET pages"):
		s.progress.add(q.start)
	default:
		s.otherSQL.add(q.start)
	}
}

func (s *benchSpent) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) { return next(ctx, network, addr) }
}

func (s *benchSpent) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		start := time.Now()
		err := next(ctx, cmd)
		if s.on.Load() {
			s.redis.add(start)
		}
		return err
	}
}

func (s *benchSpent) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		start := time.Now()
		err := next(ctx, cmds)
		if s.on.Load() {
			s.redis.add(start)
		}
		return err
	}
}

// benchTimedAPI is the dwolla.Client, timed.
type benchTimedAPI struct {
	reconcile.API
	spent *benchSpent
}

func (a *benchTimedAPI) Events(ctx context.Context, limit int) (dwolla.EventsPage, error) {
	defer a.time(time.Now())
	return a.API.Events(ctx, limit)
}

func (a *benchTimedAPI) EventsAt(ctx context.Context, href string) (dwolla.EventsPage, error) {
	defer a.time(time.Now())
	return a.API.EventsAt(ctx, href)
}

func (a *benchTimedAPI) Subscriptions(ctx context.Context) ([]dwolla.Subscription, error) {
	defer a.time(time.Now())
	return a.API.Subscriptions(ctx)
}

func (a *benchTimedAPI) WebhooksAt(ctx context.Context, href string) (dwolla.WebhooksPage, error) {
	defer a.time(time.Now())
	return a.API.WebhooksAt(ctx, href)
}

func (a *benchTimedAPI) time(start time.Time) {
	if a.spent.on.Load() {
		a.spent.api.add(start)
	}
}
