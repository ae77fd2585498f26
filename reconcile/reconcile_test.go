package reconcile

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hookstream/hookstream/dwolla"
	"github.com/hookstream/hookstream/ingest"
	"github.com/hookstream/hookstream/internal/testenv"
	"github.com/hookstream/hookstream/journeys"
	"github.com/hookstream/hookstream/process"
	"github.com/hookstream/hookstream/sim"
	"github.com/hookstream/hookstream/store"
	"github.com/redis/go-redis/v9"
)

// These tests run reconciliations against the simulator's fake Dwolla API
// (sim.NewAPI, on a loopback HTTP server) through the real Dwolla client,
// with the test Redis and PostgreSQL: a private namespace and schema each.

var quiet = slog.New(slog.DiscardHandler)

const (
	apiKey    = "reconcile-test-key"
	apiSecret = "reconcile-test-secret"
)

// clock is the fake API's clock: token expiry and the 30-day horizon.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

type fixture struct {
	*testenv.Pipeline
	api    *sim.API
	srv    *httptest.Server
	client *dwolla.Client
	clock  *clock
	now    time.Time   // the reconciler's now
	events []sim.Event // the scenario, created before now, oldest first
}

// newFixture serves a scenario of customers' lifecycles (created over the
// ten days before now) from a fake API; nothing is stored or added to the
// API yet. tweak adjusts the API's configuration.
func newFixture(t *testing.T, customers int, seed int64, tweak func(*sim.APIConfig)) *fixture {
	t.Helper()
	now := time.Now().UTC().Truncate(time.Millisecond)
	f := &fixture{Pipeline: testenv.NewPipeline(t, 4), now: now, clock: &clock{now: now}}
	cfg := sim.APIConfig{Key: apiKey, Secret: apiSecret, Now: f.clock.Now, Seed: seed, Logger: quiet}
	if tweak != nil {
		tweak(&cfg)
	}
	api, err := sim.NewAPI(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.api = api
	f.srv = httptest.NewServer(api)
	t.Cleanup(f.srv.Close)
	sc := sim.Generate(sim.Config{Customers: customers, Seed: seed, Start: now.Add(-10 * 24 * time.Hour),
		Span: 5 * 24 * time.Hour, Host: f.srv.URL})
	for _, ev := range sc.Events {
		if ev.Created.Before(now.Add(-time.Minute)) {
			f.events = append(f.events, ev)
		}
	}
	if len(f.events) < 100 {
		t.Fatalf("the scenario has %d events before now", len(f.events))
	}
	f.client, err = dwolla.NewClient(dwolla.ClientConfig{
		BaseURL: f.srv.URL, Key: apiKey, Secret: apiSecret, Rate: 1e6, Burst: 1000,
		// The waits are the client's own tests' business; here they would
		// only slow the run. LockoutMax keeps a run of 429s from failing it.
		Sleep:      func(ctx context.Context, _ time.Duration) error { return ctx.Err() },
		LockoutMax: 24 * time.Hour, MaxAttempts: 20, Logger: quiet,
	})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) reconciler(rdb redis.UniversalClient, tweak func(*Options)) *Reconciler {
	o := Options{PageSize: 25, Now: func() time.Time { return f.now }, Logger: quiet, Holder: "test", Journeys: journeys.Default()}
	if tweak != nil {
		tweak(&o)
	}
	if rdb == nil {
		rdb = f.Redis
	}
	return New(f.DB, rdb, f.Keys, f.client, o)
}

// split returns the scenario's events, the fraction drop of them (by
// sim.Dropped) and the rest.
func (f *fixture) split(seed int64, drop float64) (missing, delivered []sim.Event) {
	for _, ev := range f.events {
		if sim.Dropped(ev.ID, seed, drop) {
			missing = append(missing, ev)
		} else {
			delivered = append(delivered, ev)
		}
	}
	return missing, delivered
}

// process runs a process role, with the built-in journeys, until the test
// ends or stop is called.
func (f *fixture) process(t *testing.T) (stop func()) {
	t.Helper()
	cfg := process.RoleConfig{
		Processor: process.Options{Block: 50 * time.Millisecond, ClaimIdle: 10 * time.Second, TxTimeout: 5 * time.Second,
			ControlEvery: 100 * time.Millisecond, ShutdownWait: 5 * time.Second, Logger: quiet},
		Journeys: journeys.Default(), StatusEvery: time.Second,
	}
	cfg.Windows.Idle = time.Millisecond
	role, err := process.NewRole(f.Redis, f.DB, f.Keys, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- role.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("process role: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// waitStored waits until the events table holds n events and the streams
// are drained.
func (f *fixture) waitStored(t *testing.T, n int) {
	t.Helper()
	testenv.WaitFor(t, 90*time.Second, fmt.Sprintf("%d events to be stored", n), func() bool {
		return f.count(t, `SELECT count(*) FROM events`) == int64(n) && f.Drained(t)
	})
}

func (f *fixture) count(t *testing.T, sql string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := f.DB.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// entries counts the stream entries of each event id, over every partition.
func (f *fixture) entries(t *testing.T) map[string]int {
	t.Helper()
	got := map[string]int{}
	for p := range f.Keys.Partitions {
		msgs, err := f.Redis.XRange(context.Background(), f.Keys.Stream(p), "-", "+").Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			got[m.Values["id"].(string)]++
		}
	}
	return got
}

func ids(evs []sim.Event) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = ev.ID
	}
	slices.Sort(out)
	return out
}

func run(t *testing.T, r *Reconciler, w Window) Run {
	t.Helper()
	got, err := r.Run(context.Background(), w)
	if err != nil {
		t.Fatalf("run: %v (%+v)", err, got)
	}
	return got
}

// TestRunRecoversEveryMissingEvent: 5% of the events never arrived; a run
// finds exactly those, they are stored through the streams with source
// reconcile, the next run starts at the high-water mark minus the overlap
// and finds nothing, and the report and the runs say so.
func TestRunRecoversEveryMissingEvent(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 120, 11, nil)
	f.api.Add(f.events...)
	f.process(t)
	missing, delivered := f.split(11, 0.05)
	f.Append(t, delivered)
	f.waitStored(t, len(delivered))

	r := f.reconciler(nil, nil)
	first := run(t, r, Window{})
	pages := int(math.Ceil(float64(len(f.events)) / 25))
	if first.Status != StatusComplete || first.Compared != int64(len(f.events)) || first.Missing != int64(len(missing)) ||
		first.Recovered != int64(len(missing)) || first.Errors != 0 || first.Pages != pages {
		t.Fatalf("first run %+v; want complete, %d compared over %d pages, %d missing and recovered", first, len(f.events), pages, len(missing))
	}
	if !first.Since.Equal(f.now.Add(-30 * 24 * time.Hour)) {
		t.Errorf("first run since %s, want the 30-day horizon", first.Since)
	}
	if want := f.events[len(f.events)-1].Created; !first.HighWater.Equal(want) {
		t.Errorf("high-water mark %s, want the newest event's %s", first.HighWater, want)
	}
	f.waitStored(t, len(f.events))
	if n := f.count(t, `SELECT count(*) FROM events WHERE source = 'reconcile'`); n != int64(len(missing)) {
		t.Errorf("%d events stored with source reconcile, want %d", n, len(missing))
	}
	var recovered []string
	rows, _ := f.DB.Query(context.Background(), `SELECT id FROM events WHERE source = 'reconcile' ORDER BY id`)
	for rows.Next() {
		var id string
		rows.Scan(&id)
		recovered = append(recovered, id)
	}
	if rows.Err() != nil || !slices.Equal(recovered, ids(missing)) {
		t.Fatalf("recovered %v (%v), want %v", recovered, rows.Err(), ids(missing))
	}
	for id, n := range f.entries(t) {
		if n != 1 {
			t.Errorf("event %s has %d stream entries", id, n)
		}
	}
	if n := f.count(t, `SELECT count(*) FROM reconcile_gaps WHERE run_id = $1 AND outcome = 'recovered'`, first.ID); n != int64(len(missing)) {
		t.Errorf("%d gaps recorded as recovered, want %d", n, len(missing))
	}

	// The next run is cheap: it starts an overlap before the high-water mark.
	second := run(t, r, Window{})
	if !second.Since.Equal(first.HighWater.Add(-time.Hour)) || second.Missing != 0 || second.Pages >= first.Pages ||
		second.Compared >= first.Compared || second.Status != StatusComplete {
		t.Fatalf("second run %+v; want it to start at %s and find nothing in fewer pages", second, first.HighWater.Add(-time.Hour))
	}
	if second.Audit == nil || len(second.Audit.Subscriptions) != 1 || second.Audit.Subscriptions[0].Listed {
		t.Errorf("second run's audit %+v: want the subscription, its deliveries not listed (nothing missing)", second.Audit)
	}

	runs, err := Runs(context.Background(), f.DB, 10)
	if err != nil || len(runs) != 2 || runs[0].ID != second.ID || runs[1].Missing != first.Missing {
		t.Fatalf("runs %+v, %v", runs, err)
	}
	got, err := GetRun(context.Background(), f.DB, first.ID)
	if err != nil || got.Audit == nil || !got.Audit.Subscriptions[0].Listed || got.Recovered != first.Recovered {
		t.Fatalf("GetRun: %+v, %v", got, err)
	}
	rep, err := MakeReport(context.Background(), f.DB, f.now.Add(-11*24*time.Hour), f.now)
	if err != nil {
		t.Fatal(err)
	}
	tot := rep.Total
	if tot.AtDwolla != int64(len(f.events)) || tot.Stored != int64(len(f.events)) || tot.Missing != int64(len(missing)) ||
		tot.Recovered != int64(len(missing)) || tot.Unrecovered != 0 || tot.ByReconcile != int64(len(missing)) ||
		tot.ByWebhook != int64(len(delivered)) || len(rep.Covered) != 1 {
		t.Fatalf("report total %+v, covered %v", tot, rep.Covered)
	}
}

// TestDryRunRecoversNothing: a dry run reports the gaps and leaves them, and
// does not move the high-water mark.
func TestDryRunRecoversNothing(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 40, 12, nil)
	f.api.Add(f.events...)
	missing, delivered := f.split(12, 0.1)
	f.process(t)
	f.Append(t, delivered)
	f.waitStored(t, len(delivered))
	r := f.reconciler(nil, nil)
	dry := run(t, r, Window{DryRun: true})
	if dry.Status != StatusDryRun || dry.Missing != int64(len(missing)) || dry.Recovered != 0 {
		t.Fatalf("dry run %+v; want %d missing, none recovered", dry, len(missing))
	}
	if n := f.count(t, `SELECT count(*) FROM reconcile_gaps WHERE run_id = $1 AND outcome = 'dry_run'`, dry.ID); n != int64(len(missing)) {
		t.Errorf("%d dry_run gaps, want %d", n, len(missing))
	}
	if n := len(f.entries(t)); n != len(delivered) {
		t.Errorf("the streams hold %d events after a dry run, want the %d delivered", n, len(delivered))
	}
	real := run(t, r, Window{})
	if !real.Since.Equal(f.now.Add(-30*24*time.Hour)) || real.Recovered != int64(len(missing)) {
		t.Fatalf("the run after a dry run %+v; want it over the whole horizon, recovering %d", real, len(missing))
	}
}

// TestPagingUnderFaultsAndInsertsMissesNothing: the API answers 15% of
// requests 429 and 15% 5xx, and releases two new events after every page
// (they shift the offsets under the paging run). The run compares every
// event the API had when it began, each once; the next run gets the ones
// that arrived meanwhile.
func TestPagingUnderFaultsAndInsertsMissesNothing(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 100, 13, func(c *sim.APIConfig) {
		c.Faults = sim.APIFaults{TooManyRequests: 0.15, ServerErrors: 0.15, InsertWhilePaging: 2}
	})
	const late = 30
	early, newest := f.events[:len(f.events)-late], f.events[len(f.events)-late:]
	f.api.Add(early...)
	f.api.Hold(newest...)
	r := f.reconciler(nil, nil)
	first := run(t, r, Window{})
	if first.Compared != int64(len(early)) || first.Recovered != int64(len(early)) || first.Errors != 0 {
		t.Fatalf("first run %+v; want all %d events there at its start compared and recovered once", first, len(early))
	}
	faults := f.api.Faults()
	if faults[429] == 0 || faults[500]+faults[503] == 0 || f.api.Held() != 0 {
		t.Fatalf("faults %v, %d still held: the test did not exercise what it claims", faults, f.api.Held())
	}
	got := f.entries(t)
	if len(got) != len(early) {
		t.Fatalf("the streams hold %d events, want %d", len(got), len(early))
	}
	second := run(t, r, Window{})
	if second.Recovered != late {
		t.Fatalf("second run %+v; want the %d events released while the first paged", second, late)
	}
	got = f.entries(t)
	for _, ev := range f.events {
		if got[ev.ID] != 1 {
			t.Fatalf("event %s has %d stream entries, want 1", ev.ID, got[ev.ID])
		}
	}
	t.Logf("first run: %d pages, %d API calls; faults injected %v", first.Pages, first.APICalls, faults)
}

// TestWebhookAndRecoveryRaceStoreOnce: the missing events' webhooks arrive
// at the receiver while a run recovers them; each is appended to its
// stream once and stored once.
func TestWebhookAndRecoveryRaceStoreOnce(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 80, 14, nil)
	f.api.Add(f.events...)
	missing, delivered := f.split(14, 0.3)
	f.process(t)
	f.Append(t, delivered)
	f.waitStored(t, len(delivered))

	secret := []byte("race-secret")
	recv, err := ingest.New(f.Redis, f.Keys, ingest.Options{Secrets: [][]byte{secret}, SpoolDir: t.TempDir(), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if err := recv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(recv.Handler())
	t.Cleanup(func() {
		srv.Close()
		recv.Stop(context.Background())
	})

	start := make(chan struct{})
	var (
		wg     sync.WaitGroup
		runGot Run
		runErr error
		non2xx []string
		mu     sync.Mutex
	)
	wg.Go(func() {
		<-start
		runGot, runErr = f.reconciler(nil, func(o *Options) { o.PageSize = 10 }).Run(context.Background(), Window{})
	})
	for w := range 4 {
		wg.Go(func() {
			<-start
			for i := w; i < len(missing); i += 4 {
				ev := missing[i]
				req, _ := http.NewRequest(http.MethodPost, srv.URL+"/webhooks/dwolla", bytes.NewReader(ev.Body))
				req.Header.Set(dwolla.SignatureHeader, dwolla.Sign(secret, ev.Body))
				req.Header.Set(dwolla.TopicHeader, ev.Topic)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					mu.Lock()
					non2xx = append(non2xx, err.Error())
					mu.Unlock()
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode/100 != 2 {
					mu.Lock()
					non2xx = append(non2xx, resp.Status)
					mu.Unlock()
				}
			}
		})
	}
	close(start)
	wg.Wait()
	if runErr != nil || len(non2xx) > 0 {
		t.Fatalf("run: %v; webhooks not accepted: %v", runErr, non2xx)
	}
	f.waitStored(t, len(f.events))
	for _, ev := range f.events {
		if n := f.entries(t)[ev.ID]; n != 1 {
			t.Fatalf("event %s has %d stream entries, want 1", ev.ID, n)
		}
	}
	byReconcile := f.count(t, `SELECT count(*) FROM events WHERE source = 'reconcile'`)
	if runGot.Recovered != byReconcile || runGot.Recovered+runGot.InFlight != runGot.Missing {
		t.Fatalf("run %+v; %d stored by reconciliation", runGot, byReconcile)
	}
	t.Logf("%d missing: %d recovered by the run, %d already in flight from the webhooks", runGot.Missing, runGot.Recovered, runGot.InFlight)
}

// TestExpiredTokenIsRefreshed: the API expires the token the client holds
// (its clock moves past the token's hour); the next run gets a 401, fetches
// a new token and completes.
func TestExpiredTokenIsRefreshed(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 20, 15, nil)
	f.api.Add(f.events...)
	r := f.reconciler(nil, nil)
	run(t, r, Window{})
	if n := f.api.Calls()["POST /token"]; n != 1 {
		t.Fatalf("%d token requests, want 1", n)
	}
	f.clock.Add(2 * time.Hour)
	second := run(t, r, Window{})
	if second.Status != StatusComplete || second.Errors != 0 {
		t.Fatalf("run after the token expired: %+v", second)
	}
	if n := f.api.Calls()["POST /token"]; n != 2 {
		t.Fatalf("%d token requests, want 2 (one refresh)", n)
	}
}

// TestOneRunAtATime: a run holding the lock makes another refuse with
// ErrBusy; a run left "running" by a process that died is closed as failed
// by the next run, which covers its window again.
func TestOneRunAtATime(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 20, 16, nil)
	f.api.Add(f.events...)
	ctx := context.Background()
	conn, err := f.DB.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1, hashtext(current_schema()))`, store.ReconcileLock).Scan(&got); err != nil || !got {
		t.Fatalf("lock: %v %v", got, err)
	}
	r := f.reconciler(nil, nil)
	if _, err := r.Run(ctx, Window{}); !errors.Is(err, ErrBusy) {
		t.Fatalf("run while another holds the lock: %v, want ErrBusy", err)
	}
	conn.Exec(ctx, `SELECT pg_advisory_unlock($1, hashtext(current_schema()))`, store.ReconcileLock)
	conn.Release()

	var dead int64
	if err := f.DB.QueryRow(ctx, `INSERT INTO reconcile_runs (started_at, status, since, until, holder, high_water)
		VALUES ($1, 'running', $2, $1, 'dead-process', $1) RETURNING id`, f.now.Add(-time.Minute), f.now.Add(-24*time.Hour)).Scan(&dead); err != nil {
		t.Fatal(err)
	}
	next := run(t, r, Window{})
	if !next.Since.Equal(f.now.Add(-30 * 24 * time.Hour)) {
		t.Errorf("the run after a dead one starts at %s; want the horizon (the dead run completed nothing)", next.Since)
	}
	old, err := GetRun(ctx, f.DB, dead)
	if err != nil || old.Status != StatusFailed || !strings.Contains(old.Error, "abandoned") {
		t.Fatalf("the dead run is %+v (%v); want failed, abandoned", old, err)
	}
}

// TestAuditRetriesWhatCouldNotBeRecovered: the dropped deliveries show in
// the audit as 503s; with Redis unreachable the run cannot append them, so
// with RetryFailed it asks Dwolla to deliver them again, and the receiver
// gets each once, signed. A paused subscription is reported.
func TestAuditRetriesWhatCouldNotBeRecovered(t *testing.T) {
	t.Parallel()
	secret := []byte("audit-secret")
	var (
		mu   sync.Mutex
		got  = map[string]int{}
		bad  []string
		sink = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			ev, err := dwolla.ParseEvent(body)
			mu.Lock()
			defer mu.Unlock()
			if err != nil || !dwolla.NewVerifier([][]byte{secret}).Verify(body, r.Header.Get(dwolla.SignatureHeader)) {
				bad = append(bad, string(body))
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			got[ev.ID]++
		}))
	)
	t.Cleanup(sink.Close)
	f := newFixture(t, 40, 17, func(c *sim.APIConfig) {
		c.Deliver = sim.SendConfig{URL: sink.URL, Secret: secret}
	})
	f.api.Add(f.events...)
	missing, delivered := f.split(17, 0.1)
	f.process(t)
	f.Append(t, delivered)
	f.waitStored(t, len(delivered))
	for _, ev := range missing {
		at := ev.Created.Add(time.Second) // Dwolla delivers as it creates the event
		f.api.RecordAttempt(ev, sim.SentAttempt{URL: "https://hookstream.example/webhooks/dwolla", Sent: at, Answered: at,
			StatusCode: http.StatusServiceUnavailable, Body: []byte(sim.DroppedBody), Dropped: true})
	}
	f.api.SetPaused(true)

	ropts, err := redis.ParseURL(testenv.RedisURL())
	if err != nil {
		t.Fatal(err)
	}
	cut := testenv.NewProxy(t, ropts.Addr)
	cut.Cut() // Redis unreachable: connections are accepted and closed at once
	ropts.Addr, ropts.MaxRetries = cut.Addr(), -1
	down := redis.NewClient(ropts)
	t.Cleanup(func() { down.Close() })
	got1 := run(t, f.reconciler(down, func(o *Options) { o.RetryFailed = true }), Window{})
	if got1.Missing != int64(len(missing)) || got1.Recovered != 0 || got1.Unrecovered != int64(len(missing)) || got1.Errors != int64(len(missing)) {
		t.Fatalf("run with Redis down %+v; want %d missing, none recovered, each unrecovered", got1, len(missing))
	}
	if stored, err := GetRun(context.Background(), f.DB, got1.ID); err != nil || stored.Unrecovered != got1.Unrecovered {
		t.Fatalf("the stored run %+v (%v): unrecovered is derived from its failed gaps, want %d", stored, err, got1.Unrecovered)
	}
	a := got1.Audit
	if a == nil || a.Paused != 1 || len(a.Subscriptions) != 1 {
		t.Fatalf("audit %+v; want the one subscription, paused", a)
	}
	s := a.Subscriptions[0]
	if !s.Listed || s.Failed != len(missing) || s.ByStatus["503"] != len(missing) || s.Retried != len(missing) || s.RetryErrors != 0 {
		t.Fatalf("subscription audit %+v; want %d failed with 503, all retried", s, len(missing))
	}
	mu.Lock()
	defer mu.Unlock()
	if len(bad) > 0 || len(got) != len(missing) {
		t.Fatalf("the receiver got %d events (%d badly signed), want the %d missing", len(got), len(bad), len(missing))
	}
	for _, ev := range missing {
		if got[ev.ID] != 1 {
			t.Fatalf("event %s delivered %d times", ev.ID, got[ev.ID])
		}
	}
}

// TestStuckJourneyCheckedAgainstDwolla: a bank transfer whose completion
// never arrived stays in progress past its deadline; the run recovers the
// completion, asks Dwolla for the transfer, records the discrepancy as
// recovered, and the instance completes once the event is folded.
func TestStuckJourneyCheckedAgainstDwolla(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 60, 18, nil)
	f.api.Add(f.events...)
	// A transfer with a terminal event: drop that one.
	var terminal *sim.Event
	for i := len(f.events) - 1; i >= 0 && terminal == nil; i-- {
		switch f.events[i].Topic {
		case "customer_bank_transfer_completed", "bank_transfer_completed":
			terminal = &f.events[i]
		}
	}
	if terminal == nil {
		t.Fatal("the scenario has no completed bank transfer")
	}
	var delivered []sim.Event
	for _, ev := range f.events {
		if ev.ID != terminal.ID {
			delivered = append(delivered, ev)
		}
	}
	stop := f.process(t)
	f.Append(t, delivered)
	f.waitStored(t, len(delivered))
	// No processor while the run checks: the recovered completion would
	// otherwise fold before the check and leave nothing stuck.
	stop()
	subject := strings.ToLower(terminal.ResourceID)
	status := func() string {
		var s string
		if err := f.DB.QueryRow(context.Background(), `SELECT status FROM journey_instances WHERE journey = 'bank_transfer' AND subject = $1`, subject).Scan(&s); err != nil {
			t.Fatalf("the transfer's instance: %v", err)
		}
		return s
	}
	if s := status(); s != "in_progress" {
		t.Fatalf("the transfer's instance is %s before reconciling, want in_progress", s)
	}
	// Judge deadlines a month on (every instance in progress is past its
	// deadline then) while still reaching back over the scenario.
	later := f.now.Add(30 * 24 * time.Hour)
	r := f.reconciler(nil, func(o *Options) {
		o.Now = func() time.Time { return later }
		o.Horizon = 60 * 24 * time.Hour
		o.StuckLimit = 1000
	})
	got := run(t, r, Window{})
	if got.Recovered != 1 || got.Repair == nil || got.Repair.Checked == 0 {
		t.Fatalf("run %+v, repair %+v", got, got.Repair)
	}
	var d *Discrepancy
	for i, it := range got.Repair.Items {
		switch {
		case it.Journey == "bank_transfer" && it.Subject == subject:
			d = &got.Repair.Items[i]
		case !strings.Contains(it.Resource, subject):
			// Only the completion is missing: Dwolla's status of every
			// other resource is explained by the steps reached.
			t.Errorf("a discrepancy where nothing is missing: %+v", it)
		}
	}
	if d == nil || d.OurStatus != "in_progress" || d.DwollaStatus != "processed" || !slices.Equal(d.Steps, []string{"completed"}) ||
		!strings.HasPrefix(d.Note, "recovered") {
		t.Fatalf("discrepancy for %s: %+v; all: %+v", subject, d, got.Repair.Items)
	}
	if n := f.count(t, `SELECT count(*) FROM reconcile_discrepancies WHERE run_id = $1 AND subject = $2`, got.ID, subject); n != 1 {
		t.Fatalf("%d discrepancies recorded for %s", n, subject)
	}
	f.process(t)
	f.waitStored(t, len(f.events))
	if s := status(); s != "completed" {
		t.Fatalf("the transfer's instance is %s after the recovery, want completed", s)
	}
	// Checked recently: the next run does not ask Dwolla again.
	again := run(t, r, Window{})
	for _, it := range again.Repair.Items {
		if it.Subject == subject {
			t.Fatalf("the next run reported %s again: %+v", subject, it)
		}
	}
}
