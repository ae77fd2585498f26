package api

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hookstream/hookstream/journeys"
	"github.com/hookstream/hookstream/process"
	"github.com/hookstream/hookstream/store"
	"github.com/hookstream/hookstream/windows"
	"github.com/jackc/pgx/v5"
)

func TestParseTokens(t *testing.T) {
	t.Parallel()
	digest := sha256.Sum256([]byte("hashed-secret-0123456789"))
	good := "grafana:read:clear-secret-0123456789, ops:admin:sha256:" + hex.EncodeToString(digest[:])
	tokens, err := ParseTokens(good)
	if err != nil {
		t.Fatal(err)
	}
	if len(tokens) != 2 || tokens[0].Name != "grafana" || tokens[0].Scope != ScopeRead || tokens[1].Scope != ScopeAdmin {
		t.Fatalf("parsed %+v", tokens)
	}
	s := &Server{cfg: Config{Tokens: tokens}}
	for secret, want := range map[string]string{"clear-secret-0123456789": "grafana", "hashed-secret-0123456789": "ops", "nope-nope-nope-nope": ""} {
		r := httptestRequest("Bearer " + secret)
		name, _, ok := s.authenticate(r)
		if name != want || ok != (want != "") {
			t.Errorf("secret %q authenticates as %q (%v), want %q", secret, name, ok, want)
		}
	}
	for _, c := range []struct{ in, want string }{
		{"nocolons", "want name:scope:secret"},
		{"a:write:Qx7vSecretZ9kLm2Pw", `scope "write"`},
		{"a:read:Qx7vZ", "shorter than 16"},
		{"a:read:sha256:Qx7vZ", "64 hex digits"},
		{"bad name:read:Qx7vSecretZ9kLm2Pw", `name "bad name"`},
		{"a:read:Qx7vSecretZ9kLm2Pw,a:admin:Qx7vSecretZ9kLm2Px", "used twice"},
	} {
		_, err := ParseTokens(c.in)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ParseTokens(%q) = %v, want an error saying %q", c.in, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "Qx7v") {
			t.Errorf("ParseTokens(%q): the error %q shows the secret", c.in, err)
		}
	}
	if _, err := New(nil, nil, Config{}); err != ErrNoTokens {
		t.Errorf("New without tokens: %v, want ErrNoTokens", err)
	}
}

func httptestRequest(auth string) *http.Request {
	r, _ := http.NewRequest("GET", "http://x/api/v1/info", nil)
	r.Header.Set("Authorization", auth)
	return r
}

// Every route refuses a request without a token, or with a wrong one, with
// 401 and a Bearer challenge; an admin route refuses a read token with 403.
func TestEveryRouteChecksTheTokenAndItsScope(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	for _, r := range f.s.routes {
		path := strings.NewReplacer("{id}", "1", "{name}", "customer_verification", "{subject}", "x").Replace(r.pattern)
		if r.scope == 0 {
			if a := f.do(t, r.method, path, "", nil); a.status != http.StatusOK {
				t.Errorf("%s %s without a token: %d, want 200 (it needs none)", r.method, path, a.status)
			}
			continue
		}
		for _, secret := range []string{"", "not-a-configured-secret"} {
			a := f.do(t, r.method, path, secret, nil)
			if a.status != http.StatusUnauthorized {
				t.Errorf("%s %s with secret %q: %d, want 401", r.method, path, secret, a.status)
				continue
			}
			ch := a.header.Get("WWW-Authenticate")
			if !strings.HasPrefix(ch, "Bearer ") || (secret != "") != strings.Contains(ch, "invalid_token") {
				t.Errorf("%s %s: WWW-Authenticate %q", r.method, path, ch)
			}
			if p := a.problem(t); p.Status != 401 || p.Detail == "" {
				t.Errorf("%s %s: problem %+v", r.method, path, p)
			}
		}
		if r.scope == ScopeAdmin {
			a := f.do(t, r.method, path, readSecret, nil)
			if a.status != http.StatusForbidden || !strings.Contains(a.header.Get("WWW-Authenticate"), "insufficient_scope") {
				t.Errorf("%s %s with a read token: %d %q, want 403 insufficient_scope", r.method, path, a.status, a.header.Get("WWW-Authenticate"))
			}
			if p := a.problem(t); !strings.Contains(p.Detail, "reader") || !strings.Contains(p.Detail, "admin") {
				t.Errorf("%s %s: 403 detail %q should name the token and the scope needed", r.method, path, p.Detail)
			}
		}
	}
	// A method a route does not take, and a route that does not exist.
	if a := f.send(t, "DELETE", "/api/v1/events", readSecret, nil, false); a.status != http.StatusMethodNotAllowed || a.header.Get("Allow") != "GET" {
		t.Errorf("DELETE /api/v1/events: %d, Allow %q", a.status, a.header.Get("Allow"))
	}
	if a := f.send(t, "GET", "/api/v1/nothing", readSecret, nil, false); a.status != http.StatusNotFound {
		t.Errorf("GET /api/v1/nothing: %d", a.status)
	}
}

// The routes answer what the query code the CLI uses answers, and bad
// parameters get a 400 naming them.
func TestRoutesAnswerWhatTheQueryCodeAnswers(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	f.process(t)
	sc := scenario(60, 7)
	f.store(t, sc.Events)
	ctx := context.Background()

	// Events: newest first, as store.ListEvents lists them, with filters.
	var page struct {
		Events     []Event `json:"events"`
		NextCursor *string `json:"next_cursor"`
	}
	f.get(t, "/api/v1/events?limit=10").ok(t).decode(t, &page)
	want, err := store.ListEvents(ctx, f.DB, store.EventFilter{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Events) != 10 || page.NextCursor == nil {
		t.Fatalf("first page: %d events, next %v", len(page.Events), page.NextCursor)
	}
	for i := range want {
		if page.Events[i] != eventOf(&want[i]) {
			t.Fatalf("event %d: %+v, want %+v", i, page.Events[i], eventOf(&want[i]))
		}
	}
	ev := sc.Events[len(sc.Events)/2]
	f.get(t, "/api/v1/events?customer="+strings.ToUpper(ev.CustomerID)+"&topic="+ev.Topic).ok(t).decode(t, &page)
	if len(page.Events) == 0 || page.NextCursor != nil {
		t.Fatalf("by customer and topic: %d events, next %v", len(page.Events), page.NextCursor)
	}
	for _, e := range page.Events {
		if e.CustomerID != ev.CustomerID || e.Topic != ev.Topic {
			t.Fatalf("by customer and topic: got %+v", e)
		}
	}

	// One event in full: its body byte for byte (as JSON), the journey
	// instances it moved.
	var d EventDetail
	f.get(t, "/api/v1/events/"+ev.ID).ok(t).decode(t, &d)
	var gotBody, wantBody any
	json.Unmarshal(d.Body, &gotBody)
	json.Unmarshal(ev.Body, &wantBody)
	if d.ID != ev.ID || fmt.Sprint(gotBody) != fmt.Sprint(wantBody) || d.Source == "" || d.StoredAt.IsZero() {
		t.Fatalf("event detail %+v", d)
	}
	stored, err := store.GetEvent(ctx, f.DB, ev.ID)
	if err != nil {
		t.Fatal(err)
	}
	instances, err := journeys.InstancesOf(ctx, f.DB, journeys.Default(), &stored.Event)
	if err != nil {
		t.Fatal(err)
	}
	jsonEq(t, "journey instances of the event", mustJSON(d.Journeys), instances)
	if len(journeys.Default().ForTopic(ev.Topic)) > 0 && len(d.Journeys) == 0 {
		t.Fatalf("event %s (%s) moved no journey instance", ev.ID, ev.Topic)
	}

	// Metrics: exactly what "query metrics -o json" writes (windows.QueryMetrics).
	q := windows.MetricQuery{Window: 5 * time.Minute, Metric: windows.MetricCount, GroupBy: "topic",
		From: time.Date(2025, 6, 2, 14, 0, 0, 0, time.UTC), To: time.Date(2025, 6, 2, 16, 0, 0, 0, time.UTC)}
	res, err := windows.QueryMetrics(ctx, f.DB, windows.Config{}, q)
	if err != nil {
		t.Fatal(err)
	}
	a := f.get(t, "/api/v1/metrics?window=5m&metric=count&group_by=topic&from=2025-06-02T14:00:00Z&to=2025-06-02T16:00:00Z").ok(t)
	jsonEq(t, "metrics", a.body, res)
	var total float64
	for _, p := range res.Points {
		total += p.Value
	}
	if total == 0 {
		t.Fatal("the metric query counted no events; the test data is not where it looks")
	}
	var cat windows.Catalog
	f.get(t, "/api/v1/metrics/catalog?since=2025-06-01").ok(t).decode(t, &cat)
	if len(cat.Metrics) != len(windows.Metrics) || len(cat.Windows) != 4 || len(cat.Dimensions) == 0 || len(cat.Dimensions[0].Values) == 0 {
		t.Fatalf("catalog %+v", cat)
	}

	// Journeys: definitions, a funnel (as journeys.Funnels), instances,
	// one instance (as journeys.Instance).
	var defs struct {
		Journeys []journeyDef `json:"journeys"`
	}
	f.get(t, "/api/v1/journeys").ok(t).decode(t, &defs)
	if len(defs.Journeys) != len(journeys.Default().Journeys) || len(defs.Journeys[0].Steps) == 0 {
		t.Fatalf("journeys %+v", defs)
	}
	name := defs.Journeys[0].Name
	def, _ := journeys.Default().Get(name)
	from, to := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC), time.Date(2025, 6, 10, 0, 0, 0, 0, time.UTC)
	funnels, err := journeys.Funnels(ctx, f.DB, def, from, to, "")
	if err != nil {
		t.Fatal(err)
	}
	jsonEq(t, "funnel", f.get(t, "/api/v1/journeys/"+name+"/funnel?"+simRange).ok(t).body, funnels[0])
	if funnels[0].Entered == 0 {
		t.Fatalf("funnel of %s: nobody entered", name)
	}
	byTopic, err := journeys.Funnels(ctx, f.DB, def, from, to, "entry_topic")
	if err != nil {
		t.Fatal(err)
	}
	jsonEq(t, "funnel by entry topic", f.get(t, "/api/v1/journeys/"+name+"/funnel?by=entry_topic&"+simRange).ok(t).body,
		map[string]any{"by": "entry_topic", "funnels": byTopic})
	var list struct {
		Instances  []journeys.InstanceSummary `json:"instances"`
		NextCursor *string                    `json:"next_cursor"`
	}
	f.get(t, "/api/v1/journeys/"+name+"/instances?"+simRange).ok(t).decode(t, &list)
	if len(list.Instances) == 0 {
		t.Fatal("no instances listed")
	}
	subject := list.Instances[0].Subject
	inst, err := journeys.Instance(ctx, f.DB, def, subject)
	if err != nil {
		t.Fatal(err)
	}
	jsonEq(t, "instance", f.get(t, "/api/v1/journeys/"+name+"/instances/"+url.PathEscape(subject)).ok(t).body, inst)

	// Comparisons: what "query compare" answers.
	cmp, err := journeys.CompareFunnels(ctx, f.DB, def, from, time.Date(2025, 6, 3, 0, 0, 0, 0, time.UTC), time.Date(2025, 6, 3, 0, 0, 0, 0, time.UTC), to)
	if err != nil {
		t.Fatal(err)
	}
	jsonEq(t, "funnel comparison", f.get(t, "/api/v1/journeys/"+name+"/compare?a=2025-06-01..2025-06-03&b=2025-06-03..2025-06-10").ok(t).body, cmp)
	mq := windows.MetricQuery{Window: time.Hour, Metric: windows.MetricCount, Filter: map[string][]string{"family": {"transfer"}}}
	mc, err := windows.CompareMetric(ctx, f.DB, windows.Config{}, mq, time.Date(2025, 6, 2, 14, 0, 0, 0, time.UTC), time.Date(2025, 6, 2, 15, 0, 0, 0, time.UTC),
		time.Date(2025, 6, 2, 15, 0, 0, 0, time.UTC), time.Date(2025, 6, 2, 16, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	jsonEq(t, "metric comparison", f.get(t, "/api/v1/metrics/compare?metric=count&filter=family=transfer&a=2025-06-02T14:00:00Z..2025-06-02T15:00:00Z&b=2025-06-02T15:00:00Z..2025-06-02T16:00:00Z").ok(t).body, mc)
	if mc.A.Total == 0 {
		t.Fatal("the metric comparison counted nothing; the test data is not where it looks")
	}

	// Status: what "status -o json" writes, but for when it was generated.
	var st process.Status
	f.get(t, "/api/v1/status").ok(t).decode(t, &st)
	if st.Namespace != f.Keys.Namespace || len(st.Partitions) != 4 || len(st.Errors) != 0 || st.DLQOpen != 0 {
		t.Fatalf("status %+v", st)
	}
	var info map[string]any
	f.get(t, "/api/v1/info").ok(t).decode(t, &info)
	if info["token"] != "reader" || info["scope"] != "read" {
		t.Fatalf("info %v", info)
	}
}

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}

// Bad parameters get a 400 naming the parameter; what does not exist, 404.
func TestBadParametersAreRefusedNamingThem(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	for _, c := range []struct{ path, param string }{
		{"/api/v1/events?limit=0", "limit"},
		{"/api/v1/events?limit=abc", "limit"},
		{"/api/v1/events?from=yesterday", "from"},
		{"/api/v1/events?from=2025-06-02&to=2025-06-01", "from"},
		{"/api/v1/events?cursor=garbage", "cursor"},
		{"/api/v1/events?topics=customer_created", "topics"},
		{"/api/v1/events?limit=1&limit=2", "limit"},
		{"/api/v1/events/x?x=1", "x"},
		{"/api/v1/metrics?window=7m", "window"},
		{"/api/v1/metrics?metric=volume", "metric"},
		{"/api/v1/metrics?group_by=color", "group_by"},
		{"/api/v1/metrics?filter=topic", "filter"},
		{"/api/v1/metrics?basis=wall", "basis"},
		{"/api/v1/metrics?non_empty=yes", "non_empty"},
		{"/api/v1/metrics?window=1m&from=2020-01-01&to=2025-01-01", "from"},
		{"/api/v1/metrics/catalog?since=soon", "since"},
		{"/api/v1/journeys/customer_verification/funnel?by=color", "by"},
		{"/api/v1/journeys/customer_verification/instances?status=lost", "status"},
		{"/api/v1/journeys/customer_verification/instances?cursor=" + encodeCursor("events", eventCursor{}), "cursor"},
		{"/api/v1/dlq?state=lost", "state"},
		{"/api/v1/journeys/customer_verification/compare?a=2025-06-01..2025-06-02", "b"},
		{"/api/v1/journeys/customer_verification/compare?a=2025-06-01&b=2025-06-01..2025-06-02", "a"},
		{"/api/v1/journeys/customer_verification/compare?a=2025-06-02..2025-06-01&b=2025-06-01..2025-06-02", "a"},
		{"/api/v1/metrics/compare?metric=lag_p99&a=2025-06-01..2025-06-02&b=2025-06-02..2025-06-03", "metric"},
		{"/api/v1/metrics/compare?window=7m&a=2025-06-01..2025-06-02&b=2025-06-02..2025-06-03", "window"},
		{"/api/v1/dlq/abc", "id"},
		{"/api/v1/live?types=bogus", "types"},
		{"/api/v1/live?include=everything", "include"},
	} {
		a := f.get(t, c.path)
		if a.status != http.StatusBadRequest {
			t.Errorf("%s: %d, want 400: %s", c.path, a.status, a.body)
			continue
		}
		if p := a.problem(t); p.Param != c.param || !strings.Contains(p.Detail, c.param) || p.Type != problemBase+ProblemBadParameter {
			t.Errorf("%s: problem %+v, want one naming %s", c.path, p, c.param)
		}
	}
	for _, path := range []string{"/api/v1/events/no-such-event", "/api/v1/journeys/no_such_journey/funnel", "/api/v1/journeys/customer_verification/instances/nobody", "/api/v1/dlq/999999"} {
		if a := f.get(t, path); a.status != http.StatusNotFound || a.problem(t).Detail == "" {
			t.Errorf("%s: %d, want 404: %s", path, a.status, a.body)
		}
	}
	// A metric query that is fine, over a range without data: every window, zero.
	var res struct {
		Window string          `json:"window"`
		Points []windows.Point `json:"points"`
	}
	f.get(t, "/api/v1/metrics?window=1h&from=2025-01-01T00:00:00Z&to=2025-01-01T03:00:00Z").ok(t).decode(t, &res)
	if res.Window != "1h" || len(res.Points) != 3 {
		t.Fatalf("empty range: %+v", res)
	}
}

// Walking a listing page by page by next_cursor gives every item once, in
// order, however many share a timestamp, and the last page says it is last.
func TestPaginationWalksALargeSetWithoutGapsOrRepeats(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	ctx := context.Background()
	const n = 5000
	base := time.Date(2025, 6, 2, 12, 0, 0, 0, time.UTC)
	evs := make([]store.Event, n)
	var dls []store.DeadLetter
	for i := range evs {
		// Runs of 7 events share a created time: the keyset must break ties.
		evs[i] = store.Event{ID: fmt.Sprintf("e%05d-%d", (i*7919)%n, i), Topic: []string{"customer_created", "customer_verified"}[i%2],
			CustomerID: fmt.Sprintf("c%d", i%3), Created: base.Add(time.Duration(i/7) * time.Second), Received: base, Source: "webhook", Body: []byte(`{}`)}
		if i < 230 {
			dls = append(dls, store.DeadLetter{Stream: "s", EntryID: fmt.Sprintf("%d-0", i+1), Reason: "test", Fields: map[string]string{}})
		}
	}
	err := pgx.BeginFunc(ctx, f.DB, func(tx pgx.Tx) error {
		if _, err := store.InsertEvents(ctx, tx, evs); err != nil {
			return err
		}
		_, err := store.InsertDeadLetters(ctx, tx, dls)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	walk := func(path string, limit int, items func(answer) ([]string, *string)) []string {
		var all []string
		cursor := ""
		for pages := 0; ; pages++ {
			if pages > n {
				t.Fatalf("%s: more pages than items", path)
			}
			p := path + "&limit=" + fmt.Sprint(limit)
			if cursor != "" {
				p += "&cursor=" + url.QueryEscape(cursor)
			}
			ids, next := items(f.get(t, p).ok(t))
			if len(ids) > limit || (next != nil && len(ids) != limit) {
				t.Fatalf("%s: a page of %d (limit %d), next %v", p, len(ids), limit, next)
			}
			all = append(all, ids...)
			if next == nil {
				return all
			}
			cursor = *next
		}
	}
	events := func(a answer) ([]string, *string) {
		var page struct {
			Events     []Event `json:"events"`
			NextCursor *string `json:"next_cursor"`
		}
		a.decode(t, &page)
		var ids []string
		for _, e := range page.Events {
			ids = append(ids, e.Created.Format(time.RFC3339Nano)+" "+e.ID)
		}
		return ids, page.NextCursor
	}
	check := func(what string, got []string, want int) {
		t.Helper()
		seen := map[string]bool{}
		for i, id := range got {
			if seen[id] {
				t.Fatalf("%s: %s repeated", what, id)
			}
			seen[id] = true
			if i > 0 && strings.Compare(got[i-1], id) <= 0 && what != "dead letters" {
				t.Fatalf("%s: %s listed after %s: not newest first", what, id, got[i-1])
			}
		}
		if len(got) != want {
			t.Fatalf("%s: walked %d, want %d", what, len(got), want)
		}
	}
	check("events", walk("/api/v1/events?", 37, events), n)
	check("events of one topic", walk("/api/v1/events?topic=customer_created", 100, events), n/2)
	check("events of one customer in a range", walk("/api/v1/events?customer=c1&from=2025-06-02T12:05:00Z&to=2025-06-02T12:10:00Z", 9, events), countIn(evs, "c1", base.Add(5*time.Minute), base.Add(10*time.Minute)))
	check("dead letters", walk("/api/v1/dlq?state=all", 50, func(a answer) ([]string, *string) {
		var page struct {
			DeadLetters []DeadLetter `json:"dead_letters"`
			NextCursor  *string      `json:"next_cursor"`
		}
		a.decode(t, &page)
		var ids []string
		for _, d := range page.DeadLetters {
			ids = append(ids, fmt.Sprint(d.ID))
		}
		return ids, page.NextCursor
	}), len(dls))
}

func countIn(evs []store.Event, customer string, from, to time.Time) int {
	n := 0
	for _, e := range evs {
		if e.CustomerID == customer && !e.Created.Before(from) && e.Created.Before(to) {
			n++
		}
	}
	return n
}

// Journey instances page the same way.
func TestJourneyInstancesPageByCursor(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	f.process(t)
	f.store(t, scenario(150, 11).Events)
	for _, d := range journeys.Default().Journeys {
		var want int
		f.DB.QueryRow(context.Background(), `SELECT count(*) FROM journey_instances WHERE journey = $1`, d.Name).Scan(&want)
		var got []string
		cursor := ""
		for {
			p := "/api/v1/journeys/" + d.Name + "/instances?limit=7&" + simRange
			if cursor != "" {
				p += "&cursor=" + url.QueryEscape(cursor)
			}
			var page struct {
				Instances  []journeys.InstanceSummary `json:"instances"`
				NextCursor *string                    `json:"next_cursor"`
			}
			f.get(t, p).ok(t).decode(t, &page)
			for _, in := range page.Instances {
				got = append(got, in.Subject)
			}
			if page.NextCursor == nil {
				break
			}
			cursor = *page.NextCursor
		}
		slices.Sort(got)
		if len(slices.Compact(got)) != want || len(got) != want {
			t.Fatalf("%s: walked %d instances (%d distinct), want %d", d.Name, len(got), len(slices.Compact(got)), want)
		}
	}
}

// The admin actions do what the CLI's dlq, pause and resume do.
func TestAdminActions(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	ctx := context.Background()
	good := scenario(1, 3).Events[0]
	var dls []store.DeadLetter
	err := pgx.BeginFunc(ctx, f.DB, func(tx pgx.Tx) (err error) {
		dls, err = store.InsertDeadLetters(ctx, tx, []store.DeadLetter{
			{Stream: f.Keys.Stream(0), EntryID: "1-0", EventID: good.ID, Reason: "fold failed", Fields: map[string]string{"id": good.ID}, Body: good.Body},
			{Stream: f.Keys.Stream(0), EntryID: "2-0", Reason: "unparsable", Fields: map[string]string{}, Body: []byte("not json")},
			{Stream: f.Keys.Stream(0), EntryID: "3-0", Reason: "unparsable", Fields: map[string]string{}, Body: []byte("not json")},
		})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	id := func(i int) string { return fmt.Sprint(dls[i].ID) }
	var one DeadLetterDetail
	f.get(t, "/api/v1/dlq/"+id(0)).ok(t).decode(t, &one)
	if one.State != "open" || one.Body != string(good.Body) || one.Reason != "fold failed" {
		t.Fatalf("dead letter %+v", one)
	}
	// Requeue: back on a partition stream, and replayed.
	a := f.do(t, "POST", "/api/v1/dlq/"+id(0)+"/replay", adminSecret, nil).ok(t)
	var r map[string]any
	a.decode(t, &r)
	if r["state"] != "replayed" || r["entry_id"] == "" {
		t.Fatalf("requeue: %s", a.body)
	}
	if n := f.streamLength(t); n != 1 {
		t.Fatalf("after requeue the streams hold %d entries, want 1", n)
	}
	if a := f.do(t, "POST", "/api/v1/dlq/"+id(0)+"/replay", adminSecret, nil); a.status != http.StatusConflict {
		t.Fatalf("requeue twice: %d, want 409", a.status)
	}
	// A body that cannot be requeued as it is: 400; repaired: requeued.
	if a := f.do(t, "POST", "/api/v1/dlq/"+id(1)+"/replay", adminSecret, nil); a.status != http.StatusBadRequest || a.problem(t).Param != "body" {
		t.Fatalf("requeue of an unparsable body: %d %s", a.status, a.body)
	}
	if a := f.do(t, "POST", "/api/v1/dlq/"+id(1)+"/replay", adminSecret, strings.NewReader("still not json")); a.status != http.StatusBadRequest {
		t.Fatalf("requeue with a bad repaired body: %d %s", a.status, a.body)
	}
	repaired := scenario(1, 4).Events[0].Body
	f.do(t, "POST", "/api/v1/dlq/"+id(1)+"/replay", adminSecret, strings.NewReader(string(repaired))).ok(t)
	if n := f.streamLength(t); n != 2 {
		t.Fatalf("after requeue with a repaired body the streams hold %d entries, want 2", n)
	}
	// Discard: once.
	f.do(t, "POST", "/api/v1/dlq/"+id(2)+"/discard", adminSecret, nil).ok(t)
	if a := f.do(t, "POST", "/api/v1/dlq/"+id(2)+"/discard", adminSecret, nil); a.status != http.StatusConflict {
		t.Fatalf("discard twice: %d", a.status)
	}
	if a := f.do(t, "POST", "/api/v1/dlq/999999/discard", adminSecret, nil); a.status != http.StatusNotFound {
		t.Fatalf("discard of nothing: %d", a.status)
	}
	var list struct {
		DeadLetters []DeadLetter `json:"dead_letters"`
	}
	f.get(t, "/api/v1/dlq").ok(t).decode(t, &list)
	if len(list.DeadLetters) != 0 {
		t.Fatalf("open dead letters after the actions: %+v", list.DeadLetters)
	}
	// Pause and resume: the switch the processors read.
	for _, pause := range []bool{true, false} {
		path := map[bool]string{true: "/api/v1/process/pause", false: "/api/v1/process/resume"}[pause]
		f.do(t, "POST", path, adminSecret, nil).ok(t)
		if got, err := process.IsPaused(ctx, f.Redis, f.Keys, process.DefaultGroup); err != nil || got != pause {
			t.Fatalf("after %s: paused %v (%v)", path, got, err)
		}
		var st process.Status
		f.get(t, "/api/v1/status").ok(t).decode(t, &st)
		if st.Paused != pause {
			t.Fatalf("status after %s: paused %v", path, st.Paused)
		}
	}
}

func (f *fixture) streamLength(t *testing.T) int64 {
	var n int64
	for p := range f.Keys.Partitions {
		l, err := f.Redis.XLen(context.Background(), f.Keys.Stream(p)).Result()
		if err != nil {
			t.Fatal(err)
		}
		n += l
	}
	return n
}
