package journeys_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/hookstream/hookstream/dwolla"
	"github.com/hookstream/hookstream/internal/testenv"
	"github.com/hookstream/hookstream/journeys"
	"github.com/hookstream/hookstream/process"
	"github.com/hookstream/hookstream/sim"
	"github.com/hookstream/hookstream/store"
	"github.com/hookstream/hookstream/stream"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
)

type env struct {
	*testenv.Pipeline
	rdb  *redis.Client
	keys stream.Keys
	db   *pgxpool.Pool
}

func newEnv(t *testing.T) *env {
	t.Helper()
	p := testenv.NewPipeline(t, 4)
	return &env{Pipeline: p, rdb: p.Redis, keys: p.Keys, db: p.DB}
}

func (e *env) add(t *testing.T, evs []sim.Event) { e.Append(t, evs) }

// drain runs a processor with the folding steps until every entry is
// acknowledged; with crash, a first processor is stopped abruptly mid-way
// (the second, under the same consumer names, resumes its entries).
//
// Transactions get a long timeout: on a loaded machine a short one times
// out commits, whose outcome is then unknown, and opens the breaker again
// and again; neither is what these tests are about.
func (e *env) drain(t *testing.T, folds []process.Fold, crash bool) {
	t.Helper()
	run := func(wait time.Duration) (*process.Processor, context.CancelFunc, chan struct{}) {
		p, err := process.New(e.rdb, e.db, e.keys, process.Options{
			Block: 50 * time.Millisecond, ClaimIdle: 15 * time.Second, TxTimeout: 10 * time.Second, BreakerOpen: 200 * time.Millisecond,
			BatchSize: 30, ShutdownWait: wait, ControlEvery: 50 * time.Millisecond,
			RetryBase: 10 * time.Millisecond, RetryMax: 100 * time.Millisecond, Folds: folds,
		})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); p.Run(ctx) }()
		return p, cancel, done
	}
	if crash {
		p, cancel, done := run(time.Millisecond)
		testenv.WaitFor(t, 30*time.Second, "some progress", func() bool { return p.Stats().Stored > 50 })
		cancel()
		<-done
	}
	_, cancel, done := run(5 * time.Second)
	defer func() { cancel(); <-done }()
	testenv.WaitFor(t, 60*time.Second, "every entry acknowledged", func() bool { return e.Drained(t) })
}

// TestSimulatedTrafficEndsWithTheSimulatorsFunnels: the simulator knows how
// many lifecycles of each family it played and which steps each took; the
// funnels of the matching journeys must say the same.
func TestSimulatedTrafficEndsWithTheSimulatorsFunnels(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	sc := sim.Generate(sim.Config{Customers: 300, Seed: 12})
	evs := append([]sim.Event(nil), sc.Events...)
	rng := rand.New(rand.NewPCG(1, 1))
	rng.Shuffle(len(evs), func(i, j int) { evs[i], evs[j] = evs[j], evs[i] }) // any arrival order
	e.add(t, evs)
	folder := journeys.NewFold(journeys.Default(), journeys.DefaultCacheMB)
	e.drain(t, []process.Fold{folder}, false)

	families := map[string]string{"verification": "customer_verification", "funding_source": "funding_source_verification",
		"bank_transfer": "bank_transfer", "transfer": "transfer", "mass_payment": "mass_payment"}
	entered := map[string]int64{}
	reached := map[string]map[string]int64{}
	for path, n := range sc.Paths {
		family, steps, _ := strings.Cut(path, ":")
		j := families[family]
		if j == "" {
			continue
		}
		entered[j] += int64(n)
		if reached[j] == nil {
			reached[j] = map[string]int64{}
		}
		seen := map[string]bool{}
		for _, s := range strings.Split(steps, ">") {
			if !seen[s] {
				seen[s] = true
				reached[j][s] += int64(n)
			}
		}
	}
	far := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	for j, want := range entered {
		d, _ := folder.Set().Get(j)
		f, err := journeys.Funnel(ctx, e.db, d, far, far.AddDate(100, 0, 0))
		if err != nil {
			t.Fatal(err)
		}
		if f.Entered != want {
			t.Errorf("%s: %d entered, the simulator played %d", j, f.Entered, want)
		}
		for _, s := range f.Steps {
			if s.Reached != reached[j][s.Step] {
				t.Errorf("%s step %s: reached by %d, the simulator says %d", j, s.Step, s.Reached, reached[j][s.Step])
			}
		}
		if f.Completed+f.Failed+f.InProgress+f.Abandoned != f.Entered {
			t.Errorf("%s: statuses %d+%d+%d+%d do not add up to %d", j, f.Completed, f.Failed, f.InProgress, f.Abandoned, f.Entered)
		}
		parts, err := journeys.Funnels(ctx, e.db, d, far, far.AddDate(100, 0, 0), journeys.BreakdownEntryTopic)
		if err != nil {
			t.Fatal(err)
		}
		var sum int64
		for _, p := range parts {
			if p.EntryTopic == "" {
				t.Errorf("%s: a breakdown without an entry topic", j)
			}
			sum += p.Entered
		}
		if sum != f.Entered {
			t.Errorf("%s: the breakdown by entry topic adds up to %d, not %d", j, sum, f.Entered)
		}
	}
	if len(entered) != len(families) {
		t.Fatalf("the simulation played %d of the %d families", len(entered), len(families))
	}
}

// snapshot reads every instance, as text.
func snapshot(t *testing.T, db *pgxpool.Pool) []string {
	t.Helper()
	rows, err := db.Query(context.Background(), `SELECT journey, subject, step_at::text, step_event::text, status, coalesce(current_step, ''),
		entered_at, last_at, coalesce(deadline::text, ''), coalesce(conflict, ''), coalesce(entry_topic, '') FROM journey_instances ORDER BY 1, 2`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprint(vals...))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestFoldedInstancesEqualARebuildFromEvents is the property: random
// traffic with duplicates, shuffled, and a processor crash mid-way leaves
// every instance equal to a rebuild from the events table.
func TestFoldedInstancesEqualARebuildFromEvents(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	sc := sim.Generate(sim.Config{Customers: 200, Seed: 44})
	evs := append([]sim.Event(nil), sc.Events...)
	rng := rand.New(rand.NewPCG(44, 1))
	for _, i := range rng.Perm(len(evs))[:len(evs)/5] {
		evs = append(evs, evs[i])
	}
	rng.Shuffle(len(evs), func(i, j int) { evs[i], evs[j] = evs[j], evs[i] })
	e.add(t, evs)
	folder := journeys.NewFold(journeys.Default(), journeys.DefaultCacheMB)
	e.drain(t, []process.Fold{folder}, true)
	equalsARebuild(t, e, folder, 500)
}

// TestAbandonmentFollowsTheWatermarkAndProgressUndoesIt on a controlled clock.
func TestAbandonmentFollowsTheWatermarkAndProgressUndoesIt(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	folder := journeys.NewFold(journeys.Default(), journeys.DefaultCacheMB)
	t0 := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	fold := func(id, topic string, at time.Time) {
		t.Helper()
		if err := foldTx(ctx, e.db, folder, []store.Event{{ID: id, Topic: topic, ResourceID: "tr-1", CustomerID: "c-1", Created: at, Received: at}}); err != nil {
			t.Fatal(err)
		}
	}
	wm := t0
	ab := &journeys.Abandoner{DB: e.db, Set: folder.Set(), Watermark: func(context.Context) (time.Time, bool, error) { return wm, true, nil }}
	status := func() (string, *time.Time) {
		inst, err := journeys.Instance(ctx, e.db, mustGet(folder, "bank_transfer"), "tr-1")
		if err != nil {
			t.Fatalf("instance: %v", err)
		}
		return inst.Status, inst.AbandonedAt
	}
	fold("e1", "customer_bank_transfer_created", t0)
	wm = t0.Add(100 * time.Hour) // before the 168h deadline
	if n, err := ab.Tick(ctx); err != nil || n != 0 {
		t.Fatalf("abandoned %d instances before the deadline (%v)", n, err)
	}
	wm = t0.Add(169 * time.Hour)
	n, err := ab.Tick(ctx)
	if err != nil || n != 1 {
		t.Fatalf("abandoned %d (%v), want tr-1", n, err)
	}
	if st, at := status(); st != journeys.Abandoned || at == nil || !at.Equal(wm) {
		t.Fatalf("after the deadline: %s at %v", st, at)
	}
	checkFunnel(t, e.db, folder.Set())
	f, err := journeys.Funnel(ctx, e.db, mustGet(folder, "bank_transfer"), t0, t0.Add(24*time.Hour))
	if err != nil || f.Entered != 1 || f.Abandoned != 1 || f.Steps[0].Abandoned != 1 || f.InProgress != 0 {
		t.Fatalf("funnel while abandoned: %+v %v", f, err)
	}
	if again, err := ab.Tick(ctx); err != nil || again != 0 {
		t.Fatalf("abandoned again: %d (%v)", again, err)
	}
	// An earlier copy of the first step is no progress: still abandoned,
	// nothing recorded (no abandon/unabandon flapping).
	fold("e0", "customer_bank_transfer_created", t0.Add(-time.Hour))
	if st, at := status(); st != journeys.Abandoned || at == nil {
		t.Fatalf("after an earlier reach of a known step: %s, abandoned at %v; want still abandoned", st, at)
	}
	checkFunnel(t, e.db, folder.Set())
	// The transfer completes after all: un-abandoned, completed.
	fold("e2", "customer_bank_transfer_completed", t0.Add(170*time.Hour))
	if st, at := status(); st != journeys.Completed || at != nil {
		t.Fatalf("after progress: %s, abandoned at %v; want completed, not abandoned", st, at)
	}
	checkFunnel(t, e.db, folder.Set())
	f, err = journeys.Funnel(ctx, e.db, mustGet(folder, "bank_transfer"), t0, t0.Add(24*time.Hour))
	if err != nil || f.Completed != 1 || f.Abandoned != 0 || f.Steps[1].Reached != 1 || f.Steps[1].MedianSeconds == nil ||
		*f.Steps[1].MedianSeconds < 171*3600*0.99 || *f.Steps[1].MedianSeconds > 171*3600*1.01 {
		t.Fatalf("funnel after completion: %+v %v", f, err)
	}
	recs := records(t, e, folder, "bank_transfer", "tr-1")
	var kinds []string
	for _, r := range recs {
		kinds = append(kinds, r.Kind)
	}
	sort.Strings(kinds)
	if strings.Join(kinds, ",") != "abandoned,unabandoned" {
		t.Fatalf("records %v, want abandoned and unabandoned", kinds)
	}
	// A duplicate of an old event changes nothing and records nothing.
	fold("e0", "customer_bank_transfer_created", t0.Add(-time.Hour))
	if recs2 := records(t, e, folder, "bank_transfer", "tr-1"); len(recs2) != len(recs) {
		t.Fatalf("a duplicate added records: %d, was %d", len(recs2), len(recs))
	}
	inst, err := journeys.Instance(ctx, e.db, mustGet(folder, "bank_transfer"), "tr-1")
	if err != nil || inst.Status != journeys.Completed || len(inst.Records) != 2 || inst.Steps[0].EventID != "e0" {
		t.Fatalf("query journey: %+v %v", inst, err)
	}
}

// foldTx folds evs in a transaction of their own and tells the folder how
// it ended, as the processor does (the folder caches what committed); like
// the processor it tries again after a deadlock or serialization failure.
func foldTx(ctx context.Context, db *pgxpool.Pool, f *journeys.Fold, evs []store.Event) error {
	for attempt := 0; ; attempt++ {
		var used pgx.Tx
		err := pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error { used = tx; return f.Fold(ctx, tx, evs) })
		if used != nil {
			f.TxEnded(used, err == nil)
		}
		var pe *pgconn.PgError
		if attempt < 5 && errors.As(err, &pe) && (pe.Code == "40P01" || pe.Code == "40001") {
			continue
		}
		return err
	}
}

// TestAbandonmentFollowsDeadlinesThatMove: the abandoner finds candidates
// by check_at, a lower bound of the deadline that progress leaves alone
// when the deadline moves later. An instance whose deadline moved later is
// not abandoned at its old deadline; one whose deadline moved earlier is
// abandoned at the new one.
func TestAbandonmentFollowsDeadlinesThatMove(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	folder := journeys.NewFold(journeys.Default(), journeys.DefaultCacheMB)
	t0 := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	fold := func(id, topic, customer string, at time.Time) {
		t.Helper()
		if err := foldTx(ctx, e.db, folder, []store.Event{{ID: id, Topic: topic, ResourceID: customer, CustomerID: customer, Created: at, Received: at}}); err != nil {
			t.Fatal(err)
		}
	}
	var wm time.Time
	ab := &journeys.Abandoner{DB: e.db, Set: folder.Set(), Watermark: func(context.Context) (time.Time, bool, error) { return wm, true, nil }}
	abandoned := func() map[string]bool {
		t.Helper()
		rows, err := journeys.Instances(ctx, e.db, mustGet(folder, "customer_verification"),
			journeys.InstanceFilter{Status: journeys.Abandoned, From: t0.Add(-time.Hour), To: t0.Add(time.Hour), Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]bool{}
		for _, r := range rows {
			out[r.Subject] = true
		}
		return out
	}
	// tick returns the customer_verification instances newly abandoned.
	tick := func(at time.Time) []string {
		t.Helper()
		before := abandoned()
		wm = at
		if _, err := ab.Tick(ctx); err != nil {
			t.Fatal(err)
		}
		var out []string
		for s := range abandoned() {
			if !before[s] {
				out = append(out, s)
			}
		}
		sort.Strings(out)
		return out
	}
	// later: created (24h), then document_needed (336h) an hour on.
	fold("l1", "customer_created", "later", t0)
	fold("l2", "customer_verification_document_needed", "later", t0.Add(time.Hour))
	// sooner: kba_needed (72h), then kba_passed (24h) an hour on.
	fold("s1", "customer_kba_verification_needed", "sooner", t0)
	fold("s2", "customer_kba_verification_passed", "sooner", t0.Add(time.Hour))
	if got := tick(t0.Add(26 * time.Hour)); strings.Join(got, ",") != "sooner" {
		t.Fatalf("at +26h abandoned %v, want [sooner] (its deadline moved from +72h to +25h)", got)
	}
	var checkAt *time.Time
	if err := e.db.QueryRow(ctx, `SELECT check_at FROM journey_instances WHERE journey = 'customer_verification' AND subject = 'later'`).Scan(&checkAt); err != nil {
		t.Fatal(err)
	}
	if want := t0.Add(337 * time.Hour); checkAt == nil || !checkAt.Equal(want) {
		t.Fatalf("check_at of the instance that progressed: %v, want its deadline %v", checkAt, want)
	}
	if got := tick(t0.Add(336 * time.Hour)); len(got) != 0 {
		t.Fatalf("at +336h abandoned %v, want none (deadline +337h)", got)
	}
	if got := tick(t0.Add(338 * time.Hour)); strings.Join(got, ",") != "later" {
		t.Fatalf("at +338h abandoned %v, want [later]", got)
	}
	checkFunnel(t, e.db, folder.Set())
}

// TestARebuildEmptiesTheCache: a rebuild removed a reach (its event is gone
// from the events table) that the processor's cache still holds. A later
// event of the same step is no news to the cached row, so no write would
// check its version: the folder must have dropped the row (the rebuild
// counted itself in journey_epoch) and fold the event into what is really
// stored.
func TestARebuildEmptiesTheCache(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	folder := journeys.NewFold(journeys.Default(), journeys.DefaultCacheMB)
	t0 := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	ev := func(id, topic string, at time.Time) store.Event { return customerEvent(id, topic, "c-9", at) }
	store1 := func(evs ...store.Event) {
		t.Helper()
		insertEvents(t, e.db, evs...)
		if err := foldTx(ctx, e.db, folder, evs); err != nil {
			t.Fatal(err)
		}
	}
	store1(ev("e0", "customer_created", t0))
	store1(ev("e1", "customer_verification_document_needed", t0.Add(time.Hour)))
	if _, err := e.db.Exec(ctx, `DELETE FROM events WHERE id = 'e1'`); err != nil {
		t.Fatal(err)
	}
	err := pgx.BeginFunc(ctx, e.db, func(tx pgx.Tx) error {
		_, err := folder.Rebuild(ctx, tx, "customer_verification", journeys.RebuildOptions{})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	resets := folder.Stats().CacheResets
	store1(ev("e2", "customer_verification_document_needed", t0.Add(2*time.Hour)))
	if folder.Stats().CacheResets == resets {
		t.Fatal("the cache was not emptied after the rebuild")
	}
	if got := stepEvent(t, e, folder, "customer_verification", "c-9", "document_needed"); got != "e2" {
		t.Fatalf("document_needed reached by %q, want e2", got)
	}
}

// TestAFoldWaitingForARebuildSeesItsEpoch: a fold that waits for the
// journeys lock while a rebuild runs must read the epoch after the rebuild
// committed, and so empty its cache, whose row still holds a reach the
// rebuild removed.
func TestAFoldWaitingForARebuildSeesItsEpoch(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	folder := journeys.NewFold(journeys.Default(), journeys.DefaultCacheMB)
	t0 := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	ev, insert := customerEvent, func(evs ...store.Event) { insertEvents(t, e.db, evs...) }
	a1, a2 := ev("a1", "customer_created", "c-a", t0), ev("a2", "customer_verification_document_needed", "c-a", t0.Add(time.Hour))
	insert(a1, a2)
	if err := foldTx(ctx, e.db, folder, []store.Event{a1, a2}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.db.Exec(ctx, `DELETE FROM events WHERE id = 'a2'`); err != nil {
		t.Fatal(err)
	}
	rebuild, err := e.db.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer rebuild.Rollback(ctx)
	if _, err := folder.Rebuild(ctx, rebuild, "customer_verification", journeys.RebuildOptions{}); err != nil {
		t.Fatal(err)
	}
	a3 := ev("a3", "customer_verification_document_needed", "c-a", t0.Add(2*time.Hour))
	insert(a3)
	folded := make(chan error, 1)
	go func() { folded <- foldTx(ctx, e.db, folder, []store.Event{a3}) }()
	testenv.WaitFor(t, 10*time.Second, "the fold to wait for the journeys lock", func() bool {
		var n int
		if err := e.db.QueryRow(ctx, `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted
			AND objid::bigint = (hashtext(current_schema())::bigint & 4294967295)`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n > 0
	})
	if err := rebuild.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-folded; err != nil {
		t.Fatal(err)
	}
	if got := stepEvent(t, e, folder, "customer_verification", "c-a", "document_needed"); got != "a3" {
		t.Fatalf("document_needed reached by %q, want a3", got)
	}
}

// TestRowsOfATransactionFromBeforeARebuildAreNotCached: a transaction's
// commit is reported (TxEnded) only after a rebuild ran and a later fold saw
// its epoch; the rows it wrote are from before the rebuild and must not
// enter the cache.
func TestRowsOfATransactionFromBeforeARebuildAreNotCached(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	folder := journeys.NewFold(journeys.Default(), journeys.DefaultCacheMB)
	t0 := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	ev := customerEvent
	a1, a2 := ev("a1", "customer_created", "c-a", t0), ev("a2", "customer_verification_document_needed", "c-a", t0.Add(time.Hour))
	var held pgx.Tx
	err := pgx.BeginFunc(ctx, e.db, func(tx pgx.Tx) error {
		held = tx
		if _, err := store.InsertEvents(ctx, tx, []store.Event{a1, a2}); err != nil {
			return err
		}
		return folder.Fold(ctx, tx, []store.Event{a1, a2})
	})
	if err != nil {
		t.Fatal(err)
	}
	// Committed; its TxEnded is held back while a2 goes, a rebuild runs
	// and another subject's fold sees the new epoch.
	if _, err := e.db.Exec(ctx, `DELETE FROM events WHERE id = 'a2'`); err != nil {
		t.Fatal(err)
	}
	if err := pgx.BeginFunc(ctx, e.db, func(tx pgx.Tx) error {
		_, err := folder.Rebuild(ctx, tx, "customer_verification", journeys.RebuildOptions{})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if err := foldTx(ctx, e.db, folder, []store.Event{ev("b1", "customer_created", "c-b", t0)}); err != nil {
		t.Fatal(err)
	}
	folder.TxEnded(held, true)
	if err := foldTx(ctx, e.db, folder, []store.Event{ev("a3", "customer_verification_document_needed", "c-a", t0.Add(2*time.Hour))}); err != nil {
		t.Fatal(err)
	}
	if got := stepEvent(t, e, folder, "customer_verification", "c-a", "document_needed"); got != "a3" {
		t.Fatalf("document_needed reached by %q, want a3", got)
	}
}

// records is what happened to an instance.
func records(t *testing.T, e *env, folder *journeys.Fold, journeyName, subject string) []journeys.Record {
	t.Helper()
	inst, err := journeys.Instance(context.Background(), e.db, mustGet(folder, journeyName), subject)
	if err != nil {
		t.Fatal(err)
	}
	return inst.Records
}

// stepEvent is the event that reached step of an instance.
func stepEvent(t *testing.T, e *env, folder *journeys.Fold, journeyName, subject, step string) string {
	t.Helper()
	inst, err := journeys.Instance(context.Background(), e.db, mustGet(folder, journeyName), subject)
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range inst.Steps {
		if st.Step == step {
			return st.EventID
		}
	}
	return ""
}

// TestAbandonerWorksInBatches: with a batch smaller than the instances due,
// one tick still abandons all of them, a transaction per batch.
func TestAbandonerWorksInBatches(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	folder := journeys.NewFold(journeys.Default(), journeys.DefaultCacheMB)
	t0 := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	for i := range 5 {
		id := fmt.Sprintf("tr-%d", i)
		if err := foldTx(ctx, e.db, folder, []store.Event{{ID: "e-" + id, Topic: "bank_transfer_created", ResourceID: id, Created: t0, Received: t0}}); err != nil {
			t.Fatal(err)
		}
	}
	ab := &journeys.Abandoner{DB: e.db, Set: folder.Set(), Batch: 2,
		Watermark: func(context.Context) (time.Time, bool, error) { return t0.Add(200 * time.Hour), true, nil }}
	n, err := ab.Tick(ctx)
	if err != nil || n != 5 {
		t.Fatalf("abandoned %d (%v), want 5 in one tick", n, err)
	}
	checkFunnel(t, e.db, folder.Set())
}

// TestAPostgreSQLOutageEmptiesTheCacheAndLosesNothing: a caching processor
// whose connections to PostgreSQL are cut mid-drain (transactions fail, then
// cannot begin) empties its cache, and after recovery the instances equal a
// rebuild from the events.
func TestAPostgreSQLOutageEmptiesTheCacheAndLosesNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	viaProxy, proxy := testenv.PostgresViaProxy(t, e.DBURL)
	sc := sim.Generate(sim.Config{Customers: 80, Seed: 31})
	first, rest := sc.Events[:len(sc.Events)/2], sc.Events[len(sc.Events)/2:]
	e.add(t, first)
	folder := journeys.NewFold(journeys.Default(), journeys.DefaultCacheMB)
	p, err := process.New(e.rdb, viaProxy, e.keys, process.Options{
		Block: 50 * time.Millisecond, ClaimIdle: 300 * time.Millisecond, ClaimEvery: 100 * time.Millisecond,
		TxTimeout: 200 * time.Millisecond, BatchSize: 30, ShutdownWait: time.Second, ControlEvery: 50 * time.Millisecond,
		RetryBase: 10 * time.Millisecond, RetryMax: 100 * time.Millisecond, BreakerOpen: 200 * time.Millisecond,
		Folds: []process.Fold{folder},
	})
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); p.Run(rctx) }()
	defer func() { cancel(); <-done }()
	testenv.WaitFor(t, 30*time.Second, "the first half stored", func() bool { return p.Stats().Acked == int64(len(first)) })
	resets := folder.Stats().CacheResets
	proxy.Cut()
	e.add(t, rest)
	testenv.WaitFor(t, 30*time.Second, "the breaker to open", func() bool { return p.Stats().Breaker == "open" })
	proxy.Restore()
	testenv.WaitFor(t, 60*time.Second, "every entry acknowledged", func() bool { return e.Drained(t) })
	if folder.Stats().CacheResets == resets {
		t.Fatal("the cache was not emptied by the outage")
	}
	if folder.Stats().CacheHits == 0 {
		t.Fatal("the cache was never used")
	}
	equalsARebuild(t, e, folder, 100)
}

// equalsARebuild checks that the folded instances (at least min of them)
// and their funnels equal a rebuild of every journey from the events table.
func equalsARebuild(t *testing.T, e *env, folder *journeys.Fold, min int) {
	t.Helper()
	ctx := context.Background()
	folded := snapshot(t, e.db)
	checkFunnel(t, e.db, folder.Set())
	err := pgx.BeginFunc(ctx, e.db, func(tx pgx.Tx) error {
		for _, d := range folder.Set().Journeys {
			if _, err := folder.Rebuild(ctx, tx, d.Name, journeys.RebuildOptions{}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	rebuilt := snapshot(t, e.db)
	checkFunnel(t, e.db, folder.Set())
	if len(rebuilt) != len(folded) || len(folded) < min {
		t.Fatalf("%d instances folded, %d rebuilt (want at least %d)", len(folded), len(rebuilt), min)
	}
	for i := range folded {
		if folded[i] != rebuilt[i] {
			t.Fatalf("instance differs:\nfolded  %s\nrebuilt %s", folded[i], rebuilt[i])
		}
	}
}

// customerEvent is an event of subject, a customer that is also the
// resource.
func customerEvent(id, topic, subject string, at time.Time) store.Event {
	return store.Event{ID: id, Topic: topic, ResourceID: subject, CustomerID: subject, Created: at, Received: at, Source: "webhook", Body: []byte("{}")}
}

// insertEvents stores evs in the events table (what a rebuild reads).
func insertEvents(t *testing.T, db *pgxpool.Pool, evs ...store.Event) {
	t.Helper()
	ctx := context.Background()
	if err := pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error { _, err := store.InsertEvents(ctx, tx, evs); return err }); err != nil {
		t.Fatal(err)
	}
}

func mustGet(f *journeys.Fold, name string) *journeys.Definition {
	d, _ := f.Set().Get(name)
	return d
}

// checkFunnel compares the funnel aggregates the fold kept with a
// recomputation from the instance rows.
func checkFunnel(t *testing.T, db *pgxpool.Pool, set *journeys.Set) {
	t.Helper()
	ctx := context.Background()
	want := map[journeys.FunnelKey]int64{}
	for _, d := range set.Journeys {
		err := journeys.EachRow(ctx, db, d.Name, func(r *journeys.Row) error {
			steps := journeys.ReachesOf(r)
			journeys.Contribution(d, steps, d.Derive(steps, r.AbandonedAt != nil), 1, want)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	got := map[journeys.FunnelKey]int64{}
	rows, err := db.Query(ctx, `SELECT journey, day, dim, kind, step, bucket, n FROM journey_funnel WHERE n <> 0`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var k journeys.FunnelKey
		var n int64
		var b int32
		if err := rows.Scan(&k.Journey, &k.Day, &k.Dim, &k.Kind, &k.Step, &b, &n); err != nil {
			t.Fatal(err)
		}
		k.Bucket, k.Day = int(b), k.Day.UTC()
		got[k] = n
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	for k, n := range want {
		if n != 0 && got[k] != n {
			t.Errorf("funnel %+v: kept %d, instances say %d", k, got[k], n)
		}
	}
	for k, n := range got {
		if want[k] != n {
			t.Errorf("funnel %+v: kept %d, instances say %d", k, n, want[k])
		}
	}
}

// TestConcurrentFoldsOfTheSameInstancesLoseNothing: two folders write the
// same instances at once, in many small transactions (the optimistic
// writes must retry what the other changed); the result equals a rebuild.
func TestConcurrentFoldsOfTheSameInstancesLoseNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	sc := sim.Generate(sim.Config{Customers: 60, Seed: 77})
	// Two folders, as two processes would have, each with its own cache.
	// Store the events (the rebuild reads them), then fold them from both,
	// each taking every event in its own random order; then rebuild, and
	// fold the rest: both caches now hold instances the rebuild deleted
	// and wrote again, which the version check must notice.
	folders := []*journeys.Fold{journeys.NewFold(journeys.Default(), journeys.DefaultCacheMB), journeys.NewFold(journeys.Default(), journeys.DefaultCacheMB)}
	folder := folders[0]
	var evs []store.Event
	for _, ev := range sc.Events {
		parsed, err := dwolla.ParseEvent(ev.Body)
		if err != nil {
			t.Fatal(err)
		}
		evs = append(evs, store.Event{ID: parsed.ID, Topic: parsed.Topic, ResourceID: parsed.ResourceID, CustomerID: parsed.CustomerID(),
			CorrelationID: parsed.CorrelationID, Created: parsed.Created, Received: parsed.Created, Source: "webhook", Body: ev.Body})
	}
	rand.New(rand.NewPCG(77, 1)).Shuffle(len(evs), func(i, j int) { evs[i], evs[j] = evs[j], evs[i] })
	first, rest := evs[:len(evs)*7/10], evs[len(evs)*7/10:]
	foldBoth := func(evs []store.Event) {
		t.Helper()
		if err := pgx.BeginFunc(ctx, e.db, func(tx pgx.Tx) error { _, err := store.InsertEvents(ctx, tx, evs); return err }); err != nil {
			t.Fatal(err)
		}
		errs := make(chan error, 2)
		for w, f := range folders {
			go func() {
				rng := rand.New(rand.NewPCG(uint64(w), 3))
				order := rng.Perm(len(evs))
				for i := 0; i < len(order); i += 7 {
					var batch []store.Event
					for _, j := range order[i:min(i+7, len(order))] {
						batch = append(batch, evs[j])
					}
					if err := foldTx(ctx, e.db, f, batch); err != nil {
						errs <- err
						return
					}
				}
				errs <- nil
			}()
		}
		for range 2 {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
	}
	foldBoth(first)
	err := pgx.BeginFunc(ctx, e.db, func(tx pgx.Tx) error {
		for _, d := range folder.Set().Journeys {
			if _, err := folder.Rebuild(ctx, tx, d.Name, journeys.RebuildOptions{}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	before := folders[0].Stats().CacheHits + folders[1].Stats().CacheHits
	retriedBefore := folders[0].Stats().Retried + folders[1].Stats().Retried
	foldBoth(rest)
	// The second phase must have used the caches, and the version check
	// must have turned stale entries (the rebuild rewrote every instance,
	// and the other folder writes too) into retries.
	hits := folders[0].Stats().CacheHits + folders[1].Stats().CacheHits - before
	retried := folders[0].Stats().Retried + folders[1].Stats().Retried - retriedBefore
	if hits == 0 || retried == 0 {
		t.Fatalf("second phase: %d cache hits, %d retried writes; want both above zero", hits, retried)
	}
	equalsARebuild(t, e, folder, 100)
}

// TestFactsAreCountedOnceTheirTransactionCommits: a batch that un-abandons
// an instance and makes it a conflict is folded in transactions that are
// rolled back (a later folding step failed), then in one that commits:
// each fact is recorded and counted once.
func TestFactsAreCountedOnceTheirTransactionCommits(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	fold := journeys.NewFold(journeys.Default(), journeys.DefaultCacheMB)
	t0 := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	ev := func(id, topic string, at time.Time) store.Event {
		return store.Event{ID: id, Topic: topic, ResourceID: "tr-1", CustomerID: "c-1", Created: at, Received: at}
	}
	if err := foldTx(ctx, e.db, fold, []store.Event{ev("e1", "customer_bank_transfer_created", t0)}); err != nil {
		t.Fatal(err)
	}
	ab := &journeys.Abandoner{DB: e.db, Set: fold.Set(), Watermark: func(context.Context) (time.Time, bool, error) { return t0.Add(169 * time.Hour), true, nil }}
	if n, err := ab.Tick(ctx); err != nil || n != 1 {
		t.Fatalf("abandoned %d (%v), want 1", n, err)
	}
	// Completed, then failed (a late return): progress that un-abandons,
	// and a conflict.
	batch := []store.Event{ev("e2", "customer_bank_transfer_completed", t0.Add(170*time.Hour)), ev("e3", "customer_bank_transfer_failed", t0.Add(171*time.Hour))}
	failed := errors.New("a later folding step failed")
	for range 2 {
		var used pgx.Tx
		err := pgx.BeginFunc(ctx, e.db, func(tx pgx.Tx) error {
			used = tx
			if err := fold.Fold(ctx, tx, batch); err != nil {
				return err
			}
			return failed
		})
		fold.TxEnded(used, false)
		if !errors.Is(err, failed) {
			t.Fatal(err)
		}
	}
	if st := fold.Stats(); st.Conflicts != 0 || st.Unabandoned != 0 {
		t.Fatalf("rolled back: counted %d conflicts and %d un-abandonments, want none", st.Conflicts, st.Unabandoned)
	}
	if err := foldTx(ctx, e.db, fold, batch); err != nil {
		t.Fatal(err)
	}
	// The batch makes a conflict in every journey the topics advance.
	recorded := recordedKinds(t, e.db)
	if st := fold.Stats(); st.Conflicts != recorded[journeys.RecordConflict] || st.Unabandoned != 1 || recorded[journeys.RecordUnabandoned] != 1 {
		t.Fatalf("committed once after two rollbacks: counted %d conflicts and %d un-abandonments, want %d (as recorded) and 1",
			st.Conflicts, st.Unabandoned, recorded[journeys.RecordConflict])
	}
	var kinds []string
	for _, r := range records(t, e, fold, "bank_transfer", "tr-1") {
		kinds = append(kinds, r.Kind)
	}
	sort.Strings(kinds)
	if got := strings.Join(kinds, ","); got != "abandoned,conflict,unabandoned" {
		t.Fatalf("records %s, want abandoned, conflict and unabandoned once each", got)
	}
}

// TestBatchesTheProcessorRetriesCountEachFactOnce: whatever a processor
// rolls back and retries, the conflicts the fold counts are the conflicts
// recorded in PostgreSQL.
func TestBatchesTheProcessorRetriesCountEachFactOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	sc := sim.Generate(sim.Config{Customers: 60, Seed: 5})
	evs := append([]sim.Event(nil), sc.Events...)
	rand.New(rand.NewPCG(5, 1)).Shuffle(len(evs), func(i, j int) { evs[i], evs[j] = evs[j], evs[i] }) // steps skipped for a while: conflicts
	e.add(t, evs)
	fold := journeys.NewFold(journeys.Default(), journeys.DefaultCacheMB)
	flaky := &testenv.FlakyFold{Every: 4}
	// A transaction whose commit times out may have committed: the fold
	// treats it as rolled back and does not count its facts (it must not
	// risk counting them twice). drain's long TxTimeout keeps the commits
	// this test makes known, so every rollback is one the flaky step caused.
	e.drain(t, []process.Fold{fold, flaky}, false)
	recorded := recordedKinds(t, e.db)
	st := fold.Stats()
	if flaky.Fails() == 0 || recorded[journeys.RecordConflict] == 0 {
		t.Fatalf("%d failed calls, %d conflicts recorded: the test needs both", flaky.Fails(), recorded[journeys.RecordConflict])
	}
	if st.Conflicts != recorded[journeys.RecordConflict] || st.Unabandoned != recorded[journeys.RecordUnabandoned] {
		t.Fatalf("counted %d conflicts and %d un-abandonments; PostgreSQL recorded %d and %d",
			st.Conflicts, st.Unabandoned, recorded[journeys.RecordConflict], recorded[journeys.RecordUnabandoned])
	}
}

// recordedKinds counts journey_records by kind.
func recordedKinds(t *testing.T, db *pgxpool.Pool) map[string]int64 {
	t.Helper()
	recorded := map[string]int64{}
	rows, err := db.Query(context.Background(), `SELECT kind, count(*) FROM journey_records GROUP BY kind`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var k string
		var n int64
		if err := rows.Scan(&k, &n); err != nil {
			t.Fatal(err)
		}
		recorded[k] = n
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return recorded
}
