package alert_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/hookstream/hookstream/alert"
	"github.com/hookstream/hookstream/internal/testenv"
	"github.com/hookstream/hookstream/store"
	"github.com/hookstream/hookstream/stream"
	"github.com/hookstream/hookstream/windows"
	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
)

// t0 is where each test's clock starts: ten seconds into a minute, so the
// open 1m window is partial. Only the tests' own clocks are used (the
// evaluator's and notifier's Now), never the wall clock.
var t0 = time.Date(2026, 3, 2, 9, 0, 10, 0, time.UTC)

// fixture is one test's alerting installation: a private Redis namespace
// and PostgreSQL schema, windows folded by the test, and a clock.
type fixture struct {
	*testenv.Pipeline
	wf    *windows.Fold
	mu    sync.Mutex
	clock time.Time
	n     int
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	p := testenv.NewPipeline(t, 1)
	wf, err := windows.NewFold(windows.Config{Sizes: []time.Duration{time.Minute, 5 * time.Minute, 15 * time.Minute, time.Hour},
		Dims: []string{windows.DimTopic, windows.DimFamily}, Delay: time.Second, Idle: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{Pipeline: p, wf: wf, clock: t0}
	wf.WithClock(f.now)
	return f
}

func (f *fixture) now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.clock
}

func (f *fixture) set(t time.Time) {
	f.mu.Lock()
	f.clock = t
	f.mu.Unlock()
}

func (f *fixture) advance(d time.Duration) { f.set(f.now().Add(d)) }

// events folds n events of topic created at (and received at) at.
func (f *fixture) events(t *testing.T, topic, family string, at time.Time, n int) {
	t.Helper()
	evs := make([]store.Event, n)
	for i := range evs {
		f.n++
		evs[i] = store.Event{ID: fmt.Sprint("e", f.n), Topic: topic, Family: family, Created: at, Received: at, Source: "webhook", Body: []byte("{}")}
	}
	f.fold(t, evs)
}

func (f *fixture) fold(t testing.TB, evs []store.Event) {
	t.Helper()
	ctx := context.Background()
	var used pgx.Tx
	err := pgx.BeginFunc(ctx, f.DB, func(tx pgx.Tx) error {
		used = tx
		if _, err := store.InsertEvents(ctx, tx, evs); err != nil {
			return err
		}
		return f.wf.Fold(ctx, tx, evs)
	})
	f.wf.TxEnded(used, err == nil)
	if err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) rules(t *testing.T, yaml string) *alert.Rules {
	t.Helper()
	rs, err := alert.ParseRules([]byte(yaml), f.wf.Config())
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

func (f *fixture) evaluator(rs *alert.Rules) *alert.Evaluator {
	return alert.NewEvaluator(f.DB, f.Redis, f.Keys, rs, f.wf.Config(), alert.EvaluatorOptions{Now: f.now, Holder: "test"})
}

func (f *fixture) notifier(rs *alert.Rules, o alert.NotifierOptions) *alert.Notifier {
	o.Now = f.now
	return alert.NewNotifier(f.DB, rs.Targets, o)
}

// tick evaluates once at the fixture's clock and fails unless it did.
func (f *fixture) tick(t *testing.T, ev *alert.Evaluator) {
	t.Helper()
	did, err := ev.Tick(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !did {
		t.Fatalf("no evaluation at %s", f.now())
	}
}

func (f *fixture) alerts(t *testing.T, state string) []alert.View {
	t.Helper()
	as, err := alert.List(context.Background(), f.DB, state, 100, f.now())
	if err != nil {
		t.Fatal(err)
	}
	return as
}

// sink stands in for Slack or a webhook receiver: it records every request
// and answers what respond says (200 by default).
type sink struct {
	*httptest.Server
	mu       sync.Mutex
	got      []received
	respond  func(r *http.Request) (status int, header http.Header)
	secret   alert.Secret
	now      func() time.Time
	verified int
}

type received struct {
	ID      string
	Body    []byte
	Status  int
	Payload alert.WebhookPayload
}

func newSink(t *testing.T, secret string, now func() time.Time) *sink {
	s := &sink{now: now}
	if secret != "" {
		var err error
		if s.secret, err = alert.ParseSecret(secret); err != nil {
			t.Fatal(err)
		}
	}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		status, header := http.StatusOK, http.Header(nil)
		s.mu.Lock()
		respond := s.respond
		s.mu.Unlock()
		if respond != nil {
			status, header = respond(r)
		}
		rec := received{ID: r.Header.Get(alert.HeaderID), Body: body, Status: status}
		if s.secret != nil {
			if err := alert.Verify(r.Header, body, s.now(), alert.DefaultTolerance, s.secret); err != nil {
				t.Errorf("sink: signature: %v", err)
				status = http.StatusUnauthorized
			} else {
				s.mu.Lock()
				s.verified++
				s.mu.Unlock()
			}
			if err := json.Unmarshal(body, &rec.Payload); err != nil {
				t.Errorf("sink: body: %v", err)
			}
		}
		s.mu.Lock()
		s.got = append(s.got, rec)
		s.mu.Unlock()
		for k, v := range header {
			w.Header()[k] = v
		}
		w.WriteHeader(status)
		if status == http.StatusOK {
			io.WriteString(w, "ok")
		}
	}))
	t.Cleanup(s.Close)
	return s
}

// accepted lists the notifications the sink answered 2xx, each id once
// (a receiver deduplicates by webhook-id), and how many ids came twice.
func (s *sink) accepted() (out []received, dup int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	seen := map[string]bool{}
	for _, r := range s.got {
		if r.Status/100 != 2 {
			continue
		}
		if seen[r.ID] {
			dup++
			continue
		}
		seen[r.ID] = true
		out = append(out, r)
	}
	return out, dup
}

func (s *sink) requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.got)
}

const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

func drain(t *testing.T, n *alert.Notifier, rs *alert.Rules) int {
	t.Helper()
	total := 0
	for _, tg := range rs.Targets {
		k, err := n.Drain(context.Background(), tg)
		if err != nil {
			t.Fatal(err)
		}
		total += k
	}
	return total
}

func TestThresholdFiresWithinOneIntervalAndResolves(t *testing.T) {
	f := newFixture(t)
	s := newSink(t, secret, f.now)
	rs := f.rules(t, fmt.Sprintf(`
group_wait: 0s
group_interval: 1s
targets:
  - {name: hook, kind: webhook, url: %s, secret: %s}
rules:
  - name: bank-failures
    kind: threshold
    severity: critical
    metric: count
    window: 1m
    filter: {topic: [customer_bank_transfer_failed]}
    op: ">"
    value: 5
    summary: "{{.Value}} failures in {{.Window}}"
`, s.URL, secret))
	ev, n := f.evaluator(rs), f.notifier(rs, alert.NotifierOptions{})

	f.tick(t, ev) // nothing yet
	if got := f.alerts(t, alert.ListAll); len(got) != 0 {
		t.Fatalf("alerts before any failure: %+v", got)
	}
	// Six failures land in the open window: the next evaluation, one
	// interval later, fires without waiting for the window to close.
	f.events(t, "customer_bank_transfer_failed", "bank_transfer", f.now().Add(2*time.Second), 6)
	f.advance(15 * time.Second)
	f.tick(t, ev)
	firing := f.alerts(t, alert.ListFiring)
	if len(firing) != 1 || firing[0].State != alert.StateFiring || firing[0].Value != 6 || firing[0].Summary != "6 failures in 1m" {
		t.Fatalf("after the failures: %+v", firing)
	}
	if drain(t, n, rs) != 1 {
		t.Fatal("the firing notification was not sent")
	}
	// Into the next minute: the complete window still holds six, so it
	// keeps firing (and is not notified again).
	f.advance(time.Minute)
	f.tick(t, ev)
	if got := f.alerts(t, alert.ListFiring); len(got) != 1 {
		t.Fatalf("a minute later: %+v", got)
	}
	drain(t, n, rs)
	// Two minutes on, both windows are clear: resolved.
	f.advance(time.Minute)
	f.tick(t, ev)
	if got := f.alerts(t, alert.ListResolved); len(got) != 1 {
		t.Fatalf("two minutes later: %+v", got)
	}
	drain(t, n, rs)
	got, dup := s.accepted()
	if len(got) != 2 || dup != 0 || s.verified != 2 {
		t.Fatalf("the sink got %d notifications (%d duplicates, %d verified), want firing then resolved", len(got), dup, s.verified)
	}
	if got[0].Payload.Type != "alert.firing" || got[1].Payload.Type != "alert.resolved" ||
		got[0].Payload.Data.Alerts[0].Fingerprint != firing[0].Fingerprint || got[1].Payload.Data.Alerts[0].State != alert.StateResolved {
		t.Fatalf("payloads: %s\n%s", got[0].Body, got[1].Body)
	}
	d, err := alert.Get(context.Background(), f.DB, firing[0].Fingerprint, f.now())
	if err != nil {
		t.Fatal(err)
	}
	var path []string
	for _, h := range d.History {
		path = append(path, string(h.From)+">"+string(h.To))
	}
	if !slices.Equal(path, []string{"inactive>firing", "firing>resolved"}) || len(d.Notifications) != 2 || d.Notifications[0].DeliveredAt.IsZero() {
		t.Fatalf("history %v, notifications %+v", path, d.Notifications)
	}
}

func TestGroupingAndSilences(t *testing.T) {
	f := newFixture(t)
	s := newSink(t, secret, f.now)
	rs := f.rules(t, fmt.Sprintf(`
group_wait: 30s
group_interval: 1m
targets:
  - {name: hook, kind: webhook, url: %s, secret: %s}
rules:
  - name: busy-topic
    kind: threshold
    severity: warning
    metric: count
    window: 1m
    group_by: topic
    op: ">"
    value: 2
`, s.URL, secret))
	ev, n := f.evaluator(rs), f.notifier(rs, alert.NotifierOptions{})
	ctx := context.Background()

	// A silence on one topic, created before it fires.
	m, err := alert.ParseMatcher("topic=customer_created")
	if err != nil {
		t.Fatal(err)
	}
	sil := &alert.Silence{Matchers: []*alert.Matcher{m}, StartsAt: f.now(), EndsAt: f.now().Add(time.Hour), CreatedBy: "test", Comment: "known"}
	if err := alert.CreateSilence(ctx, f.DB, sil, f.now()); err != nil {
		t.Fatal(err)
	}

	// Two topics fire 15s apart: one notification carries both, once the
	// group has waited group_wait from the first.
	f.events(t, "transfer_created", "transfer", f.now(), 3)
	f.events(t, "customer_created", "customer", f.now(), 3)
	f.tick(t, ev)
	f.events(t, "transfer_failed", "transfer", f.now(), 3)
	f.advance(15 * time.Second)
	f.tick(t, ev)
	if drain(t, n, rs) != 0 {
		t.Fatal("sent before group_wait")
	}
	f.advance(15 * time.Second)
	f.tick(t, ev)
	drain(t, n, rs)
	got, _ := s.accepted()
	if len(got) != 1 {
		t.Fatalf("want one grouped notification, got %d", len(got))
	}
	var topics []string
	for _, a := range got[0].Payload.Data.Alerts {
		topics = append(topics, a.Labels["topic"])
	}
	if !slices.Equal(topics, []string{"transfer_created", "transfer_failed"}) && !slices.Equal(topics, []string{"transfer_failed", "transfer_created"}) {
		t.Fatalf("the group carried %v; want the two unsilenced topics", topics)
	}
	firing := f.alerts(t, alert.ListFiring)
	if len(firing) != 3 {
		t.Fatalf("want three firing alerts (one silenced), got %+v", firing)
	}
	silenced := 0
	for _, a := range firing {
		if a.Labels["topic"] == "customer_created" {
			if !slices.Equal(a.SilencedBy, []string{sil.ID}) {
				t.Fatalf("the customer_created alert: silenced by %v", a.SilencedBy)
			}
			silenced++
		}
	}
	if silenced != 1 {
		t.Fatal("the silenced alert is not listed")
	}
	// When the silence ends, the notification it held back goes out with
	// the group's next update (group_interval after its last one).
	if _, err := alert.ExpireSilence(ctx, f.DB, sil.ID, f.now()); err != nil {
		t.Fatal(err)
	}
	f.advance(15 * time.Second)
	f.tick(t, ev)
	drain(t, n, rs)
	if got, _ := s.accepted(); len(got) != 1 {
		t.Fatalf("sent before group_interval: %d notifications", len(got))
	}
	f.advance(45 * time.Second)
	f.tick(t, ev)
	drain(t, n, rs)
	got, _ = s.accepted()
	if len(got) != 2 || got[1].Payload.Type != "alert.firing" || len(got[1].Payload.Data.Alerts) != 1 ||
		got[1].Payload.Data.Alerts[0].Labels["topic"] != "customer_created" {
		t.Fatalf("want the held-back firing of customer_created; got %d notifications", len(got))
	}
	// All three clear: one resolution carries them.
	f.advance(2 * time.Minute)
	f.tick(t, ev)
	drain(t, n, rs)
	got, dup := s.accepted()
	if len(got) != 3 || dup != 0 || got[2].Payload.Type != "alert.resolved" || len(got[2].Payload.Data.Alerts) != 3 {
		t.Fatalf("want the grouped resolution of the three alerts; got %d notifications", len(got))
	}
}

func TestRepeatAndAcknowledge(t *testing.T) {
	f := newFixture(t)
	s := newSink(t, secret, f.now)
	rs := f.rules(t, fmt.Sprintf(`
group_wait: 0s
group_interval: 1m
repeat_interval: 10m
targets:
  - {name: hook, kind: webhook, url: %s, secret: %s}
rules:
  - {name: dlq, kind: operational, severity: warning, signal: dead_letters_open, op: ">=", value: 0}
`, s.URL, secret))
	ev, n := f.evaluator(rs), f.notifier(rs, alert.NotifierOptions{})
	f.tick(t, ev)
	for range 40 { // ten minutes of evaluations
		f.advance(15 * time.Second)
		f.tick(t, ev)
		drain(t, n, rs)
	}
	if got, _ := s.accepted(); len(got) != 2 {
		t.Fatalf("want the firing notification and one reminder after repeat_interval, got %d", len(got))
	}
	fp := f.alerts(t, alert.ListFiring)[0].Fingerprint
	if _, err := alert.Acknowledge(context.Background(), f.DB, fp, "alice", f.now()); err != nil {
		t.Fatal(err)
	}
	for range 80 {
		f.advance(15 * time.Second)
		f.tick(t, ev)
		drain(t, n, rs)
	}
	if got, _ := s.accepted(); len(got) != 2 {
		t.Fatalf("an acknowledged alert was reminded of: %d notifications", len(got))
	}
	if a := f.alerts(t, alert.ListFiring)[0]; a.AckedBy != "alice" {
		t.Fatalf("acked by %q", a.AckedBy)
	}
}

// TestOutage: the sink answers 500 for a minute, then 429 with Retry-After
// for a while, then recovers. Every notification arrives, each id once after
// deduplication; the breaker opens and closes; Retry-After is honoured.
func TestOutage(t *testing.T) {
	f := newFixture(t)
	s := newSink(t, secret, f.now)
	start := f.now()
	var retryUntil time.Time
	s.respond = func(*http.Request) (int, http.Header) {
		now := f.now()
		switch {
		case now.Before(start.Add(time.Minute)):
			return http.StatusInternalServerError, nil
		case now.Before(start.Add(90 * time.Second)):
			retryUntil = now.Add(20 * time.Second)
			return http.StatusTooManyRequests, http.Header{"Retry-After": {"20"}}
		}
		return http.StatusOK, nil
	}
	rs := f.rules(t, fmt.Sprintf(`
group_wait: 0s
group_interval: 1s
targets:
  - {name: outage, kind: webhook, url: %s, secret: %s}
rules:
  - {name: a, kind: operational, severity: warning, signal: dead_letters_open, op: ">=", value: 0}
  - {name: b, kind: operational, severity: critical, signal: dead_letters_open, op: ">=", value: 0}
  - {name: c, kind: operational, severity: info, signal: journeys_abandoned_per_hour, op: ">=", value: 0}
`, s.URL, secret))
	ev := f.evaluator(rs)
	n := f.notifier(rs, alert.NotifierOptions{BackoffBase: 2 * time.Second, BackoffMax: 10 * time.Second, BreakerFailures: 3, BreakerOpen: time.Nanosecond})
	opened := func() uint64 {
		return metricValue(t, `hookstream_alert_breaker_transitions_total{target="outage",to="open"}`)
	}
	before := opened()
	f.tick(t, ev)
	var during429 []time.Time
	for i := 0; i < 600; i++ { // ten simulated minutes, a second at a time
		f.advance(time.Second)
		if r := s.requests(); true {
			drain(t, n, rs)
			if s.requests() > r && f.now().Before(retryUntil) && !f.now().Before(start.Add(90*time.Second)) {
				during429 = append(during429, f.now())
			}
		}
		if got, _ := s.accepted(); len(got) == 3 {
			break
		}
	}
	got, dup := s.accepted()
	if len(got) != 3 || dup != 0 {
		t.Fatalf("after the outage the sink has %d notifications (%d duplicates), want 3", len(got), dup)
	}
	if opened() == before {
		t.Fatal("the breaker never opened")
	}
	if st := n.BreakerState("outage"); st.String() != "closed" {
		t.Fatalf("breaker %s after recovery", st)
	}
	if len(during429) > 0 {
		t.Fatalf("sent inside Retry-After at %v", during429)
	}
	ds, err := alert.Deliveries(context.Background(), f.DB, "outage", 10)
	if err != nil {
		t.Fatal(err)
	}
	statuses := map[int]int{}
	for _, d := range ds {
		if d.DeliveredAt.IsZero() {
			t.Fatalf("notification %s undelivered: %+v", d.ID, d)
		}
		for _, a := range d.Log {
			statuses[a.Status]++
		}
	}
	if statuses[500] == 0 || statuses[429] == 0 || statuses[200] != 3 {
		t.Fatalf("delivery log statuses %v", statuses)
	}
}

// TestDeadTargetCostsNothingElse: with one target's breaker open, the
// other target is served, and the dead one is not even tried.
func TestDeadTargetCostsNothingElse(t *testing.T) {
	f := newFixture(t)
	good := newSink(t, secret, f.now)
	dead := newSink(t, "", f.now)
	dead.respond = func(*http.Request) (int, http.Header) { return http.StatusBadGateway, nil }
	rs := f.rules(t, fmt.Sprintf(`
group_wait: 0s
group_interval: 1s
targets:
  - {name: good, kind: webhook, url: %s, secret: %s}
  - {name: dead, kind: slack, url: %s}
rules:
  - {name: a, kind: operational, severity: warning, signal: dead_letters_open, op: ">=", value: 0}
`, good.URL, secret, dead.URL))
	ev := f.evaluator(rs)
	n := f.notifier(rs, alert.NotifierOptions{BackoffBase: time.Second, BackoffMax: time.Second, BreakerFailures: 2, BreakerOpen: time.Hour})
	f.tick(t, ev)
	for range 10 {
		f.advance(2 * time.Second)
		drain(t, n, rs)
	}
	if got, _ := good.accepted(); len(got) != 1 {
		t.Fatalf("the good target got %d notifications", len(got))
	}
	if dead.requests() != 2 || n.BreakerState("dead").String() != "open" {
		t.Fatalf("the dead target was tried %d times (breaker %s); want 2, then open", dead.requests(), n.BreakerState("dead"))
	}
}

func TestOnlyOneEvaluatesAtATime(t *testing.T) {
	f := newFixture(t)
	rs := f.rules(t, `rules: [{name: a, kind: operational, severity: warning, signal: dead_letters_open, op: ">=", value: 0}]`)
	a, b := f.evaluator(rs), f.evaluator(rs)
	f.tick(t, a)
	if did, err := b.Tick(context.Background()); err != nil || did {
		t.Fatalf("a second evaluator evaluated within the interval: %v %v", did, err)
	}
	f.advance(15 * time.Second)
	f.tick(t, b) // due again: whoever asks first evaluates
	if did, err := a.Tick(context.Background()); err != nil || did {
		t.Fatalf("evaluated twice in one interval: %v %v", did, err)
	}
}

func metricValue(t *testing.T, name string) uint64 {
	t.Helper()
	return metrics.GetOrCreateCounter(name).Get()
}

// TestOperationalSignals: the operational rules read what the receivers
// report (rejections and 503s per minute, spool depth) and the consumer
// group's lag from Redis.
func TestOperationalSignals(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	minute := f.now().Unix() / 60
	rdb := f.Redis
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	// The last complete minute had 7 rejections, this one 3 so far; 503s
	// only this minute.
	must(rdb.HSet(ctx, f.Keys.IngestMinute(minute-1), stream.IngestRejected, 7).Err())
	must(rdb.HSet(ctx, f.Keys.IngestMinute(minute), stream.IngestRejected, 3, stream.IngestUnavailable, 12).Err())
	// Two fresh spool reports and a stale one (a receiver gone).
	must(rdb.HSet(ctx, f.Keys.IngestSpool(),
		"a", stream.SpoolReport(40, f.now().Add(-5*time.Second)),
		"b", stream.SpoolReport(2, f.now()),
		"gone", stream.SpoolReport(1000, f.now().Add(-10*time.Minute))).Err())
	// Five entries the group has not read.
	must(rdb.XGroupCreateMkStream(ctx, f.Keys.Stream(0), "process", "0").Err())
	for i := range 5 {
		must(rdb.XAdd(ctx, &redis.XAddArgs{Stream: f.Keys.Stream(0), Values: []any{"i", i}}).Err())
	}
	rs := f.rules(t, `rules:
  - {name: rejections, kind: operational, severity: info, signal: ingest_rejections, op: ">=", value: 0}
  - {name: unavailable, kind: operational, severity: info, signal: ingest_503s, op: ">=", value: 0}
  - {name: spool, kind: operational, severity: info, signal: spool_depth, op: ">=", value: 0}
  - {name: lag, kind: operational, severity: info, signal: consumer_lag, op: ">=", value: 0}
  - {name: dlq, kind: operational, severity: info, signal: dead_letters_open, op: ">=", value: 0}
  - {name: abandoned, kind: operational, severity: info, signal: journeys_abandoned_per_hour, op: ">=", value: 0}
`)
	f.tick(t, f.evaluator(rs))
	got := map[string]float64{}
	for _, a := range f.alerts(t, alert.ListFiring) {
		got[a.Rule] = a.Value
	}
	want := map[string]float64{"rejections": 7, "unavailable": 12, "spool": 42, "lag": 5, "dlq": 0, "abandoned": 0}
	if !maps.Equal(got, want) {
		t.Fatalf("signals %v, want %v", got, want)
	}
}

// TestPrune: what is older than it is kept for goes; the rest stays.
func TestPrune(t *testing.T) {
	f := newFixture(t)
	s := newSink(t, secret, f.now)
	rs := f.rules(t, fmt.Sprintf(`
group_wait: 0s
group_interval: 1s
targets: [{name: hook, kind: webhook, url: %s, secret: %s}]
rules: [{name: dlq, kind: operational, severity: warning, signal: dead_letters_open, op: ">", value: 0}]
`, s.URL, secret))
	ctx := context.Background()
	// An old episode: fired and resolved 100 days ago.
	ev, n := f.evaluator(rs), f.notifier(rs, alert.NotifierOptions{})
	f.set(t0.Add(-100 * 24 * time.Hour))
	if _, err := f.DB.Exec(ctx, `INSERT INTO dead_letters (stream, entry_id, event_id, reason, deliveries, fields, body) VALUES ('s', '1-1', 'e', 'r', 1, '{}', '')`); err != nil {
		t.Fatal(err)
	}
	f.tick(t, ev)
	drain(t, n, rs)
	if _, err := f.DB.Exec(ctx, `UPDATE dead_letters SET discarded_at = now()`); err != nil {
		t.Fatal(err)
	}
	f.advance(time.Minute)
	f.tick(t, ev)
	drain(t, n, rs)
	if got, _ := s.accepted(); len(got) != 2 {
		t.Fatalf("the old episode sent %d notifications", len(got))
	}
	// Today's evaluator prunes it all.
	f.set(t0)
	f.tick(t, f.evaluator(rs))
	for _, table := range []string{"alerts", "alert_history", "alert_outbox", "alert_deliveries"} {
		var n int
		if err := f.DB.QueryRow(ctx, `SELECT count(*) FROM `+table).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("%s: %d rows left", table, n)
		}
	}
}
