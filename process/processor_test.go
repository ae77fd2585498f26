package process_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookstream/hookstream/dwolla"
	"github.com/hookstream/hookstream/internal/testenv"
	"github.com/hookstream/hookstream/process"
	"github.com/hookstream/hookstream/sim"
	"github.com/hookstream/hookstream/store"
	"github.com/hookstream/hookstream/stream"
	"github.com/jackc/pgx/v5"
)

// countingFold records what folding is handed, to check that only newly
// inserted events are folded, each once.
type countingFold struct {
	mu   sync.Mutex
	seen map[string]int
}

func (f *countingFold) Name() string { return "counting" }
func (f *countingFold) Fold(_ context.Context, _ pgx.Tx, evs []store.Event) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, e := range evs {
		f.seen[e.ID]++
	}
	return nil
}

func TestStoresEveryEventOnceWhateverTheOrderAndDuplicates(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	sc := sim.Generate(sim.Config{Customers: 120, Seed: 7})
	// Every event twice, shuffled: the stream can hold duplicates (seen keys
	// expired, replays) and events arrive in any order.
	evs := append(append([]sim.Event{}, sc.Events...), sc.Events...)
	rng := rand.New(rand.NewPCG(1, 2))
	rng.Shuffle(len(evs), func(i, j int) { evs[i], evs[j] = evs[j], evs[i] })
	e.add(t, evs)

	opts := fastOptions()
	opts.BatchSize = 64
	fold := &countingFold{seen: map[string]int{}}
	opts.Folds = []process.Fold{fold}
	p, stop := e.run(t, e.db, opts)
	waitFor(t, 30*time.Second, "every entry acknowledged", func() bool { return p.Stats().Acked == int64(len(evs)) })
	stop()

	rep, err := sim.VerifyEvents(context.Background(), e.db, ids(sc.Events))
	if err != nil || !rep.OK() {
		t.Fatalf("events table vs truth: %v %v", rep, err)
	}
	st := p.Stats()
	if st.Stored != int64(len(sc.Events)) || st.Duplicates != int64(len(sc.Events)) || st.Dead != 0 {
		t.Fatalf("stats %+v; want %d stored, %d duplicates, 0 dead", st, len(sc.Events), len(sc.Events))
	}
	for _, ev := range sc.Events {
		if fold.seen[ev.ID] != 1 {
			t.Fatalf("event %s folded %d times, want once", ev.ID, fold.seen[ev.ID])
		}
	}
	if n := e.pending(t); n != 0 {
		t.Fatalf("%d entries still pending", n)
	}

	// Enrichment: one transfer event, checked column by column.
	var tr sim.Event
	for _, ev := range sc.Events {
		if ev.Topic == "customer_bank_transfer_completed" {
			tr = ev
			break
		}
	}
	if tr.ID == "" {
		t.Fatal("simulation has no customer_bank_transfer_completed event")
	}
	var topic, family, outcome, rtype, rid, cid, source string
	var terminal bool
	var created time.Time
	var lag time.Duration
	var body []byte
	err = e.db.QueryRow(context.Background(), `SELECT topic, family, outcome, terminal, resource_type, resource_id, customer_id,
		created, delivery_lag, source, body FROM events WHERE id = $1`, tr.ID).
		Scan(&topic, &family, &outcome, &terminal, &rtype, &rid, &cid, &created, &lag, &source, &body)
	if err != nil {
		t.Fatal(err)
	}
	info, _ := dwolla.LookupTopic(tr.Topic)
	if topic != tr.Topic || family != info.Family || outcome != "success" || !terminal || rtype != tr.ResourceType ||
		rid != tr.ResourceID || cid != tr.CustomerID || !created.Equal(tr.Created) || source != "webhook" || string(body) != string(tr.Body) {
		t.Fatalf("stored row (%s %s %s %v %s %s %s %s %s) does not match the event %+v", topic, family, outcome, terminal, rtype, rid, cid, created, source, tr)
	}
	if lag <= 0 {
		t.Fatalf("delivery lag %s; the entry was added after the event's created time", lag)
	}
}

func TestPoisonEntriesGoToTheDeadLetterQueueAndValidOnesAreStored(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	sc := sim.Generate(sim.Config{Customers: 20, Seed: 3})
	e.add(t, sc.Events[:len(sc.Events)/2])
	// An entry that is not JSON, one without a body, and one whose topic
	// holds a NUL byte: valid JSON that ingest accepts but PostgreSQL text
	// cannot store (it must be found inside an otherwise good batch).
	notJSON := e.addRaw(t, 0, "id", "x1", "body", "this is not json")
	noBody := e.addRaw(t, 1, "id", "x2")
	nulBody := `{"id":"nul-topic","topic":"customer_created\u0000","created":"2026-11-28T10:00:00.000Z","_links":{"resource":{"href":"https://api.dwolla.com/customers/c-nul"}}}`
	nulEntry := e.addRaw(t, 2, "id", "nul-topic", "body", nulBody)
	e.add(t, sc.Events[len(sc.Events)/2:])

	opts := fastOptions()
	opts.BatchSize = 1000 // everything in one batch: the bad row must be isolated
	p, stop := e.run(t, e.db, opts)
	total := int64(len(sc.Events) + 3)
	waitFor(t, 30*time.Second, "every entry acknowledged", func() bool { return p.Stats().Acked == total })
	stop()

	rep, err := sim.VerifyEvents(context.Background(), e.db, ids(sc.Events))
	if err != nil || !rep.OK() {
		t.Fatalf("valid events vs truth: %v %v", rep, err)
	}
	dls, err := store.ListDeadLetters(context.Background(), e.db, "open", 10)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		e.keys.Stream(0) + notJSON:  "unparseable event",
		e.keys.Stream(1) + noBody:   `entry has no "body" field`,
		e.keys.Stream(2) + nulEntry: "rejected by PostgreSQL",
	}
	if len(dls) != len(want) {
		t.Fatalf("%d dead letters, want %d: %+v", len(dls), len(want), dls)
	}
	for _, d := range dls {
		if w, ok := want[d.Stream+d.EntryID]; !ok || !strings.Contains(d.Reason, w) {
			t.Errorf("dead letter for %s %s: reason %q, want it to mention %q", d.Stream, d.EntryID, d.Reason, w)
		}
		if d.EventID == "nul-topic" && string(d.Body) != nulBody {
			t.Errorf("dead letter body %q is not the original %q", d.Body, nulBody)
		}
		if d.Deliveries != 1 {
			t.Errorf("dead letter %s: deliveries %d, want 1", d.EntryID, d.Deliveries)
		}
	}
	if n, err := e.rdb.XLen(context.Background(), e.keys.DLQ()).Result(); err != nil || n != 3 {
		t.Fatalf("DLQ stream has %d entries (%v), want 3", n, err)
	}
	if n := e.pending(t); n != 0 {
		t.Fatalf("%d entries still pending", n)
	}
}

func TestADeadConsumersEntriesAreTakenOverAndOverDeliveredOnesDeadLettered(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	sc := sim.Generate(sim.Config{Customers: 30, Seed: 11})
	e.add(t, sc.Events)
	g := stream.NewGroup(e.rdb, e.keys, "process")
	if err := g.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	// A consumer reads everything and dies without acknowledging.
	got, err := g.Read(ctx, "dead-consumer", []int{0, 1, 2, 3}, 10_000, -1)
	if err != nil || len(got) != len(sc.Events) {
		t.Fatalf("dead consumer read %d of %d: %v", len(got), len(sc.Events), err)
	}
	// Two of its entries were delivered many times already (they kept
	// killing whoever processed them, or their acknowledgement kept
	// failing): after this claim one has 11 deliveries, more than twice the
	// limit of 5, and is dead-lettered untried; the other has 7, so it is
	// tried on its own, and stores fine.
	poison, retried := got[0], got[1]
	for _, c := range []struct {
		m     stream.Message
		count int
	}{{poison, 10}, {retried, 6}} {
		if err := e.rdb.Do(ctx, "XCLAIM", e.keys.Stream(c.m.Partition), "process", "dead-consumer", 0, c.m.ID, "RETRYCOUNT", c.count).Err(); err != nil {
			t.Fatal(err)
		}
	}

	p, stop := e.run(t, e.db, fastOptions())
	waitFor(t, 30*time.Second, "the dead consumer's entries taken over", func() bool { return p.Stats().Acked == int64(len(sc.Events)) })
	stop()
	st := p.Stats()
	if st.Claimed != int64(len(sc.Events)) || st.Stored != int64(len(sc.Events)-1) || st.Dead != 1 {
		t.Fatalf("stats %+v; want all %d claimed, one dead-lettered for deliveries, the rest stored", st, len(sc.Events))
	}
	d, err := store.ListDeadLetters(ctx, e.db, "open", 10)
	if err != nil || len(d) != 1 || d[0].EntryID != poison.ID || d[0].Deliveries != 11 || !strings.Contains(d[0].Reason, "delivered 11 times, more than twice the limit") {
		t.Fatalf("dead letters %+v, %v; want the over-delivered entry with 11 deliveries", d, err)
	}
	if n := e.count(t, `SELECT count(*) FROM events WHERE id = $1`, retried.Values["id"]); n != 1 {
		t.Fatalf("the entry delivered 7 times was not stored on its own")
	}
	if n := e.pending(t); n != 0 {
		t.Fatalf("%d entries still pending", n)
	}
}

// failingFold fails for the events it is told to, or for all while broken.
type failingFold struct {
	badID  string
	broken atomic.Bool
}

func (f *failingFold) Name() string { return "failing" }
func (f *failingFold) Fold(_ context.Context, _ pgx.Tx, evs []store.Event) error {
	if f.broken.Load() {
		return errors.New("folding step is broken")
	}
	for _, e := range evs {
		if e.ID == f.badID {
			return fmt.Errorf("cannot fold event %s", e.ID)
		}
	}
	return nil
}

func TestAnEventAFoldingStepCannotTakeIsDeadLetteredAlone(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	sc := sim.Generate(sim.Config{Customers: 30, Seed: 17})
	e.add(t, sc.Events)
	opts := fastOptions()
	opts.BatchSize = 1000
	bad := sc.Events[len(sc.Events)/3].ID
	opts.Folds = []process.Fold{&failingFold{badID: bad}}
	p, stop := e.run(t, e.db, opts)
	waitFor(t, 30*time.Second, "every entry acknowledged", func() bool { return p.Stats().Acked == int64(len(sc.Events)) })
	stop()
	// The table, not Stored: a commit that outlived its deadline is retried
	// and counts its events as duplicates.
	if n, st := e.count(t, `SELECT count(*) FROM events`), p.Stats(); n != int64(len(sc.Events)-1) || st.Dead != 1 {
		t.Fatalf("%d events stored, stats %+v; want all but one stored and one dead letter", n, st)
	}
	d, err := store.ListDeadLetters(context.Background(), e.db, "open", 10)
	if err != nil || len(d) != 1 || d[0].EventID != bad || !strings.Contains(d[0].Reason, "cannot fold event") {
		t.Fatalf("dead letters %+v, %v; want the event the folding step refused", d, err)
	}
}

func TestABrokenFoldingStepHoldsProcessingInsteadOfDeadLetteringEverything(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	sc := sim.Generate(sim.Config{Customers: 20, Seed: 19})
	e.add(t, sc.Events)
	f := &failingFold{}
	f.broken.Store(true)
	opts := fastOptions()
	opts.Folds = []process.Fold{f}
	p, stop := e.run(t, e.db, opts)
	waitFor(t, 30*time.Second, "the processor to hold the failing batches", func() bool { return p.Stats().Holding })
	r0 := p.Stats().Retries
	waitFor(t, 30*time.Second, "several retries of the held batches", func() bool { return p.Stats().Retries >= r0+10 })
	if st := p.Stats(); st.Stored != 0 || st.Dead != 0 || st.Breaker != "closed" {
		t.Fatalf("with every event failing: %+v; want nothing stored and nothing dead-lettered", st)
	}
	f.broken.Store(false) // the fix is deployed
	waitFor(t, 30*time.Second, "every event stored after the fix", func() bool { return p.Stats().Acked == int64(len(sc.Events)) })
	stop()
	if st := p.Stats(); st.Stored != int64(len(sc.Events)) || st.Dead != 0 {
		t.Fatalf("after the fix: %+v", st)
	}
}

func TestAnOutageOpensTheBreakerDeadLettersNothingAndRecovers(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	viaProxy, proxy := testenv.PostgresViaProxy(t, e.dbURL)

	sc := sim.Generate(sim.Config{Customers: 60, Seed: 5})
	first, rest := sc.Events[:len(sc.Events)/3], sc.Events[len(sc.Events)/3:]
	e.add(t, first)
	opts := fastOptions()
	opts.BatchSize = 50
	// Entries held through the outage must not be claimed over and over
	// until they count as poison: a low limit makes that visible.
	opts.MaxDeliveries = 2
	p, stop := e.run(t, viaProxy, opts)
	waitFor(t, 30*time.Second, "the first third stored", func() bool { return p.Stats().Stored == int64(len(first)) })

	proxy.Cut()
	e.add(t, rest)
	waitFor(t, 30*time.Second, "the breaker to open", func() bool { return p.Stats().Breaker == "open" })
	// An outage that outlasts several open/half-open cycles: each failed
	// half-open probe counts a retry (attempts the open breaker refuses do
	// not).
	r0 := p.Stats().Retries
	waitFor(t, 30*time.Second, "three failed half-open probes", func() bool { return p.Stats().Retries >= r0+3 })
	if st := p.Stats(); st.Dead != 0 || st.Stored != int64(len(first)) {
		t.Fatalf("during the outage: %+v; want nothing dead-lettered and nothing more stored", st)
	}
	proxy.Restore()
	waitFor(t, 30*time.Second, "the backlog stored after recovery", func() bool { return p.Stats().Acked == int64(len(sc.Events)) })
	stop()
	rep, err := sim.VerifyEvents(ctx, e.db, ids(sc.Events))
	if err != nil || !rep.OK() {
		t.Fatalf("events vs truth: %v %v", rep, err)
	}
	if st := p.Stats(); st.Dead != 0 || st.Retries == 0 || st.Breaker != "closed" {
		t.Fatalf("after recovery: %+v; want no dead letters, some retries, breaker closed", st)
	}
	if n := e.count(t, `SELECT count(*) FROM dead_letters`); n != 0 {
		t.Fatalf("%d dead letters after an outage", n)
	}
}

func TestPauseStopsStoringAndResumeDrainsTheBacklog(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	sc := sim.Generate(sim.Config{Customers: 40, Seed: 9})
	half := len(sc.Events) / 2
	e.add(t, sc.Events[:half])
	p, stop := e.run(t, e.db, fastOptions())
	waitFor(t, 30*time.Second, "the first half stored", func() bool { return p.Stats().Stored == int64(half) })

	if err := e.rdb.Set(ctx, e.keys.Control("process"), process.PausedValue, 0).Err(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the processor to see the pause", func() bool { return p.Stats().Paused })
	e.add(t, sc.Events[half:])
	// Nothing to wait for when nothing happens: give the paused workers a
	// few rounds of their loop (the processor's heartbeats count them).
	e.waitControlRounds(t, 3)
	if n := e.count(t, `SELECT count(*) FROM events`); n != int64(half) {
		t.Fatalf("stored %d events while paused, want %d", n, half)
	}
	if pending, lag := e.Backlog(t); pending+lag != int64(len(sc.Events)-half) {
		t.Fatalf("while paused: %d pending and %d undelivered, want the %d appended", pending, lag, len(sc.Events)-half)
	}
	if err := e.rdb.Del(ctx, e.keys.Control("process")).Err(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the backlog drained after resume", func() bool { return p.Stats().Stored == int64(len(sc.Events)) })
	stop()
	if rep, err := sim.VerifyEvents(ctx, e.db, ids(sc.Events)); err != nil || !rep.OK() {
		t.Fatalf("events vs truth: %v %v", rep, err)
	}
}

func TestShutdownFinishesTheBatchInFlight(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	sc := sim.Generate(sim.Config{Customers: 200, Seed: 13})
	e.add(t, sc.Events)
	opts := fastOptions()
	opts.BatchSize = 20
	p, stop := e.run(t, e.db, opts)
	waitFor(t, 30*time.Second, "some events stored", func() bool { return p.Stats().Stored > 0 })
	stop()
	// Whatever was read was committed and acknowledged: nothing is left
	// pending, and every acknowledged entry's event is stored.
	st := p.Stats()
	if n := e.pending(t); n != 0 {
		t.Fatalf("%d entries left pending after a graceful stop", n)
	}
	if n := e.count(t, `SELECT count(*) FROM events`); n != st.Acked || n == int64(len(sc.Events)) {
		t.Fatalf("stored %d, acknowledged %d of %d; want equal and short of all (stopped mid-way)", n, st.Acked, len(sc.Events))
	}
}

func TestTheGroupIsRecreatedWhenRedisLosesIt(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	sc := sim.Generate(sim.Config{Customers: 20, Seed: 23})
	half := len(sc.Events) / 2
	e.add(t, sc.Events[:half])
	p, stop := e.run(t, e.db, fastOptions())
	waitFor(t, 30*time.Second, "the first half stored", func() bool { return p.Stats().Stored == int64(half) })
	// Redis restarted without persistence: the streams and the group are gone.
	for part := range e.keys.Partitions {
		e.rdb.Del(ctx, e.keys.Stream(part))
	}
	e.add(t, sc.Events[half:])
	waitFor(t, 30*time.Second, "the second half stored after the group was recreated", func() bool { return p.Stats().Stored == int64(len(sc.Events)) })
	stop()
	if rep, err := sim.VerifyEvents(ctx, e.db, ids(sc.Events)); err != nil || !rep.OK() {
		t.Fatalf("events vs truth: %v %v", rep, err)
	}
}
