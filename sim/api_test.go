package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hookstream/hookstream/dwolla"
)

var apiStart = time.Date(2025, 6, 2, 14, 0, 0, 0, time.UTC)

// testClock is an API clock the test moves by hand.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// apiClient talks to a fake API under test.
type apiClient struct {
	t     testing.TB
	base  string // the API root, http://127.0.0.1:PORT
	api   *API
	token string
}

func newAPIClient(t *testing.T, cfg APIConfig) *apiClient {
	t.Helper()
	if cfg.Now == nil {
		cfg.Now = func() time.Time { return apiStart.Add(24 * time.Hour) }
	}
	api, err := NewAPI(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	return &apiClient{t: t, base: srv.URL, api: api}
}

type apiReply struct {
	status int
	header http.Header
	body   []byte
}

func (r apiReply) code() string {
	var e dwolla.APIError
	_ = json.Unmarshal(r.body, &e)
	return e.Code
}

// do sends a request with Accept and the client's token; target is a path
// or an absolute URL.
func (c *apiClient) do(method, target string, body io.Reader, header map[string]string) apiReply {
	c.t.Helper()
	if !strings.HasPrefix(target, "http") {
		target = c.base + target
	}
	req, err := http.NewRequest(method, target, body)
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Accept", dwolla.MediaType)
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	for k, v := range header {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	return apiReply{resp.StatusCode, resp.Header, b}
}

func (c *apiClient) get(target string) apiReply { return c.do(http.MethodGet, target, nil, nil) }

// getJSON GETs target, wants 200, and decodes the answer into v.
func (c *apiClient) getJSON(target string, v any) {
	c.t.Helper()
	r := c.get(target)
	if r.status != http.StatusOK {
		c.t.Fatalf("GET %s: %d %s", target, r.status, r.body)
	}
	if err := json.Unmarshal(r.body, v); err != nil {
		c.t.Fatalf("GET %s: %v in %s", target, err, r.body)
	}
}

func (c *apiClient) tokenRequest(key, secret string) apiReply {
	c.t.Helper()
	req, err := http.NewRequest(http.MethodPost, c.base+"/token", strings.NewReader("grant_type=client_credentials"))
	if err != nil {
		c.t.Fatal(err)
	}
	req.SetBasicAuth(key, secret)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", dwolla.MediaType)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return apiReply{resp.StatusCode, resp.Header, b}
}

// login fetches a token with the default credentials.
func (c *apiClient) login() {
	c.t.Helper()
	r := c.tokenRequest(DefaultAPIKey, DefaultAPISecret)
	var tok dwolla.Token
	if r.status != http.StatusOK || json.Unmarshal(r.body, &tok) != nil || tok.AccessToken == "" {
		c.t.Fatalf("POST /token: %d %s", r.status, r.body)
	}
	c.token = tok.AccessToken
}

func idOf(t testing.TB, raw []byte) string {
	t.Helper()
	ev, err := dwolla.ParseEvent(raw)
	if err != nil {
		t.Fatal(err)
	}
	return ev.ID
}

// pageAll follows _links.next from first and returns the event ids in the
// order served.
func (c *apiClient) pageAll(first string) (ids []string, pages int) {
	c.t.Helper()
	next := first
	for next != "" {
		var p dwolla.EventsPage
		c.getJSON(next, &p)
		pages++
		for _, raw := range p.Embedded.Events {
			ids = append(ids, idOf(c.t, raw))
		}
		next = p.Links["next"].Href
		if pages > 10000 {
			c.t.Fatal("paging does not end")
		}
	}
	return ids, pages
}

func TestAPITokenFlow(t *testing.T) {
	t.Parallel()
	clock := &testClock{now: apiStart}
	c := newAPIClient(t, APIConfig{Now: clock.Now, TokenTTL: 10 * time.Minute})
	c.api.Add(testEvents(t, 10)...)

	if r := c.get("/events"); r.status != http.StatusUnauthorized || r.code() != "InvalidAccessToken" {
		t.Fatalf("no token: %d %s, want 401 InvalidAccessToken", r.status, r.body)
	}
	r := c.tokenRequest("sim-key", "wrong")
	if r.status != http.StatusUnauthorized || !bytes.Contains(r.body, []byte(`"invalid_client"`)) {
		t.Fatalf("bad credentials: %d %s, want 401 invalid_client", r.status, r.body)
	}
	r = c.tokenRequest(DefaultAPIKey, DefaultAPISecret)
	var tok dwolla.Token
	if err := json.Unmarshal(r.body, &tok); err != nil || r.status != http.StatusOK || tok.TokenType != "bearer" || tok.ExpiresIn != 600 {
		t.Fatalf("good credentials: %d %s", r.status, r.body)
	}
	c.token = tok.AccessToken
	if r := c.get("/events"); r.status != http.StatusOK {
		t.Fatalf("with a token: %d %s", r.status, r.body)
	}
	c.token = "not-a-token"
	if r := c.get("/events"); r.status != http.StatusUnauthorized || r.code() != "InvalidAccessToken" {
		t.Fatalf("unknown token: %d %s, want 401 InvalidAccessToken", r.status, r.body)
	}
	c.token = tok.AccessToken
	clock.Add(10 * time.Minute)
	if r := c.get("/events"); r.status != http.StatusUnauthorized || r.code() != "ExpiredAccessToken" {
		t.Fatalf("expired token: %d %s, want 401 ExpiredAccessToken", r.status, r.body)
	}
	c.login()
	if r := c.get("/events"); r.status != http.StatusOK {
		t.Fatalf("with a fresh token: %d %s", r.status, r.body)
	}
}

func TestAPIRequiresTheHALAcceptHeader(t *testing.T) {
	t.Parallel()
	c := newAPIClient(t, APIConfig{})
	c.login()
	for _, accept := range []string{"", "application/json"} {
		for _, target := range []string{"/events", "/webhook-subscriptions"} {
			r := c.do(http.MethodGet, target, nil, map[string]string{"Accept": accept})
			if r.status != http.StatusNotAcceptable || r.code() != "InvalidVersion" {
				t.Errorf("GET %s with Accept %q: %d %s, want 406 InvalidVersion", target, accept, r.status, r.body)
			}
		}
	}
}

func TestAPIPagesEveryEventOnceNewestFirst(t *testing.T) {
	t.Parallel()
	c := newAPIClient(t, APIConfig{})
	c.login()
	events := Generate(Config{Customers: 40, Seed: 5, Start: apiStart}).Events
	// Added in two halves, the second older than the first, so the
	// merge path is covered too.
	c.api.Add(events[len(events)/2:]...)
	c.api.Add(events[:len(events)/2]...)
	c.api.Add(events[:10]...) // known already: ignored

	var first dwolla.EventsPage
	c.getJSON("/events?limit=7", &first)
	if first.Total != len(events) {
		t.Fatalf("total %d, want %d", first.Total, len(events))
	}
	for _, rel := range []string{"self", "first", "last", "next"} {
		if !strings.HasPrefix(first.Links[rel].Href, c.base+"/events?") {
			t.Fatalf("_links.%s = %q, want an absolute href on %s", rel, first.Links[rel].Href, c.base)
		}
	}
	u, _ := url.Parse(first.Links["last"].Href)
	if want := fmt.Sprint((len(events) - 1) / 7 * 7); u.Query().Get("offset") != want {
		t.Fatalf("_links.last %s, want offset %s", u, want)
	}
	ids, pages := c.pageAll(c.base + "/events?limit=7")
	want := make([]Event, len(events))
	copy(want, events)
	slices.SortFunc(want, func(a, b Event) int { return -compareEvents(a, b) })
	if len(ids) != len(want) || pages != (len(want)+6)/7 {
		t.Fatalf("%d events in %d pages, want %d in %d", len(ids), pages, len(want), (len(want)+6)/7)
	}
	for i := range ids {
		if ids[i] != want[i].ID {
			t.Fatalf("event %d is %s, want %s (newest first)", i, ids[i], want[i].ID)
		}
	}

	var big dwolla.EventsPage
	c.getJSON("/events?limit=1000", &big)
	if len(big.Embedded.Events) != min(200, len(events)) {
		t.Fatalf("limit=1000 gave %d events, want at most 200", len(big.Embedded.Events))
	}
	if r := c.get("/events?limit=abc"); r.status != http.StatusBadRequest || r.code() != "ValidationError" {
		t.Fatalf("limit=abc: %d %s", r.status, r.body)
	}
}

func TestAPIInsertWhilePagingShiftsOffsets(t *testing.T) {
	t.Parallel()
	c := newAPIClient(t, APIConfig{Faults: APIFaults{InsertWhilePaging: 3}})
	c.login()
	events := Generate(Config{Customers: 30, Seed: 6, Start: apiStart}).Events
	held := events[len(events)-30:] // the newest: they land at the head
	c.api.Add(events[:len(events)-30]...)
	c.api.Hold(held...)

	ids, _ := c.pageAll(c.base + "/events?limit=10")
	seen := map[string]int{}
	for _, id := range ids {
		seen[id]++
	}
	twice := 0
	for _, n := range seen {
		if n > 1 {
			twice++
		}
	}
	if twice == 0 {
		t.Fatalf("a naive client paging while events arrive saw no event twice (%d ids); the offsets did not shift", len(ids))
	}
	released := 30 - c.api.Held()
	if released == 0 || c.api.Len() != len(events)-30+released {
		t.Fatalf("released %d held events, API has %d", released, c.api.Len())
	}
	c.api.cfg.Faults.InsertWhilePaging = 0 // look without releasing more
	var head dwolla.EventsPage
	c.getJSON(fmt.Sprintf("/events?limit=%d", released), &head)
	wantHead := map[string]bool{}
	for _, ev := range held[:released] {
		wantHead[ev.ID] = true
	}
	for _, raw := range head.Embedded.Events {
		if id := idOf(t, raw); !wantHead[id] {
			t.Fatalf("event %s at the head is not one of the %d released", id, released)
		}
	}
}

func TestAPIEventsWithinThirtyDays(t *testing.T) {
	t.Parallel()
	events := Generate(Config{Customers: 40, Seed: 7, Start: apiStart, Span: 20 * 24 * time.Hour}).Events
	now := apiStart.Add(40 * 24 * time.Hour)
	c := newAPIClient(t, APIConfig{Now: func() time.Time { return now }})
	c.login()
	c.api.Add(events...)
	visible := map[string]bool{}
	for _, ev := range events {
		if !ev.Created.Before(now.Add(-30 * 24 * time.Hour)) {
			visible[ev.ID] = true
		}
	}
	if len(visible) == 0 || len(visible) == len(events) {
		t.Fatalf("%d of %d events within 30 days: the test needs some on each side", len(visible), len(events))
	}
	ids, _ := c.pageAll(c.base + "/events?limit=50")
	if len(ids) != len(visible) {
		t.Fatalf("listed %d events, want the %d of the last 30 days", len(ids), len(visible))
	}
	for _, id := range ids {
		if !visible[id] {
			t.Fatalf("listed %s, older than 30 days", id)
		}
	}
}

func TestAPIEventIsTheWebhookBody(t *testing.T) {
	t.Parallel()
	c := newAPIClient(t, APIConfig{})
	c.login()
	events := testEvents(t, 20)
	c.api.Add(events...)
	for _, ev := range events {
		r := c.get("/events/" + ev.ID)
		if r.status != http.StatusOK || !bytes.Equal(r.body, ev.Body) {
			t.Fatalf("GET /events/%s: %d %s, want the webhook body %s", ev.ID, r.status, r.body, ev.Body)
		}
	}
	r := c.get("/events/00000000-0000-4000-8000-000000000000")
	var e dwolla.APIError
	if r.status != http.StatusNotFound || json.Unmarshal(r.body, &e) != nil || e != (dwolla.APIError{Code: "NotFound", Message: "Application event not found"}) {
		t.Fatalf("unknown event: %d %s", r.status, r.body)
	}
}

func TestAPIWebhooksShowDropsAndRetriesRedeliver(t *testing.T) {
	t.Parallel()
	rcv, recv := newReceiver(t, nil)
	target := recv.URL + "/webhooks/dwolla"
	c := newAPIClient(t, APIConfig{Deliver: SendConfig{URL: target, Secret: testSecret}, SubscriptionID: "5af4c10a-f6de-4ac8-840d-42cb65454216"})
	c.login()
	events := testEvents(t, 200)
	c.api.Add(events...)
	stats, err := Send(context.Background(), events, SendConfig{URL: target, Secret: testSecret, Drop: 0.2, Seed: 11, Attempts: c.api})
	if err != nil {
		t.Fatal(err)
	}
	dropped := map[string]bool{}
	for _, ev := range events {
		if Dropped(ev.ID, 11, 0.2) {
			dropped[ev.ID] = true
		}
	}
	arrived := rcv.check()
	if stats.Dropped != int64(len(dropped)) || len(arrived) != len(events)-len(dropped) {
		t.Fatalf("stats %v, %d arrivals; want %d dropped", stats, len(arrived), len(dropped))
	}
	for _, id := range arrived {
		if dropped[id] {
			t.Fatalf("dropped event %s reached the receiver", id)
		}
	}

	var subs dwolla.SubscriptionsPage
	c.getJSON("/webhook-subscriptions", &subs)
	if subs.Total != 1 || subs.Embedded.Subscriptions[0].URL != target || subs.Embedded.Subscriptions[0].ID != "5af4c10a-f6de-4ac8-840d-42cb65454216" {
		t.Fatalf("subscriptions %+v", subs)
	}
	var hooks []dwolla.Webhook
	next := subs.Embedded.Subscriptions[0].Links["webhooks"].Href + "?limit=30"
	for next != "" {
		var p dwolla.WebhooksPage
		c.getJSON(next, &p)
		if p.Total != len(events) {
			t.Fatalf("total %d webhooks, want one per event, %d", p.Total, len(events))
		}
		hooks = append(hooks, p.Embedded.Webhooks...)
		next = p.Links["next"].Href
	}
	var failed dwolla.Webhook
	for _, h := range hooks {
		if len(h.Attempts) != 1 {
			t.Fatalf("webhook of %s has %d attempts, want 1", h.EventID, len(h.Attempts))
		}
		at := h.Attempts[0]
		ev, err := dwolla.ParseEvent([]byte(at.Request.Body))
		if err != nil || ev.ID != h.EventID || at.Request.URL != target || !dwolla.NewVerifier([][]byte{testSecret}).Verify([]byte(at.Request.Body), headerOf(at.Request.Headers, dwolla.SignatureHeader)) {
			t.Fatalf("attempt of %s is not the signed request: %+v", h.EventID, at.Request)
		}
		switch {
		case dropped[h.EventID] && at.Response.StatusCode < 300:
			t.Fatalf("dropped event %s has an attempt answered %d", h.EventID, at.Response.StatusCode)
		case !dropped[h.EventID] && at.Response.StatusCode != http.StatusOK:
			t.Fatalf("delivered event %s has an attempt answered %d", h.EventID, at.Response.StatusCode)
		case dropped[h.EventID]:
			failed = h
		}
	}
	if failed.ID == "" {
		t.Fatal("no dropped event in the webhooks list")
	}
	var byRes dwolla.WebhooksPage
	c.getJSON(subs.Embedded.Subscriptions[0].Links["webhooks"].Href+"?resourceId="+resourceOf(events, failed.EventID), &byRes)
	if byRes.Total == 0 || !slices.ContainsFunc(byRes.Embedded.Webhooks, func(h dwolla.Webhook) bool { return h.ID == failed.ID }) {
		t.Fatalf("resourceId filter lost the webhook: %+v", byRes)
	}

	r := c.do(http.MethodPost, failed.Links["retry"].Href, nil, nil)
	if r.status != http.StatusCreated || !strings.HasPrefix(r.header.Get("Location"), c.base+"/webhooks/"+failed.ID+"/retries/") {
		t.Fatalf("retry: %d %s, Location %q", r.status, r.body, r.header.Get("Location"))
	}
	if got := rcv.check(); !slices.Contains(got, failed.EventID) {
		t.Fatalf("the retry of %s did not reach the receiver", failed.EventID)
	}
	var again dwolla.Webhook
	c.getJSON(failed.Links["self"].Href, &again)
	if len(again.Attempts) != 2 || again.Attempts[0].Response.StatusCode != http.StatusOK {
		t.Fatalf("after the retry the webhook has %+v, want a new attempt answered 200 first", again.Attempts)
	}
	if r := c.do(http.MethodPost, "/webhooks/nope/retries", nil, nil); r.status != http.StatusNotFound {
		t.Fatalf("retry of an unknown webhook: %d", r.status)
	}
}

func headerOf(hs []dwolla.Header, name string) string {
	for _, h := range hs {
		if strings.EqualFold(h.Name, name) {
			return h.Value
		}
	}
	return ""
}

func resourceOf(events []Event, id string) string {
	for _, ev := range events {
		if ev.ID == id {
			return ev.ResourceID
		}
	}
	return ""
}

func TestAPIResourcesCarryTheirLatestStatus(t *testing.T) {
	t.Parallel()
	c := newAPIClient(t, APIConfig{})
	c.login()
	events := Generate(Config{Customers: 50, Seed: 8, Start: apiStart}).Events
	c.api.Add(events...)
	last := map[string]Event{}
	for _, ev := range events {
		if l, ok := last[ev.ResourceID]; !ok || compareEvents(ev, l) >= 0 {
			last[ev.ResourceID] = ev
		}
	}
	seen := map[string]int{}
	for id, ev := range last {
		if ev.ResourceType == "mass-payments" && seen[ev.ResourceType] > 3 {
			continue
		}
		var res dwolla.Resource
		c.getJSON("/"+ev.ResourceType+"/"+strings.ToUpper(id), &res)
		if want := statusOf(ev.Topic); res.ID != id || res.Status != want {
			t.Fatalf("%s/%s: %+v, want status %q after %s", ev.ResourceType, id, res, want, ev.Topic)
		}
		seen[ev.ResourceType+" "+res.Status]++
	}
	for _, want := range []string{"customers verified", "funding-sources verified", "transfers processed", "transfers failed"} {
		if seen[want] == 0 {
			t.Errorf("no %s among %v", want, seen)
		}
	}
	if r := c.get("/customers/00000000-0000-4000-8000-000000000000"); r.status != http.StatusNotFound || r.code() != "NotFound" {
		t.Fatalf("unknown customer: %d %s", r.status, r.body)
	}
	for id, ev := range last { // a transfer is no customer
		if ev.ResourceType == "transfers" {
			if r := c.get("/customers/" + id); r.status != http.StatusNotFound {
				t.Fatalf("a transfer's id as a customer: %d", r.status)
			}
			break
		}
	}
}

func TestAPIFaultsAreSeededAndNearTheirRates(t *testing.T) {
	t.Parallel()
	count := func() map[int]int {
		c := newAPIClient(t, APIConfig{Seed: 42, Faults: APIFaults{TooManyRequests: 0.2, ServerErrors: 0.1, RetryAfter: 1500 * time.Millisecond}})
		got := map[int]int{}
		for got[http.StatusOK] == 0 { // the token request may meet a fault too
			r := c.tokenRequest(DefaultAPIKey, DefaultAPISecret)
			got[r.status]++
			var tok dwolla.Token
			_ = json.Unmarshal(r.body, &tok)
			c.token = tok.AccessToken
		}
		got = map[int]int{}
		for range 2000 {
			r := c.get("/webhook-subscriptions")
			got[r.status]++
			switch r.status {
			case http.StatusTooManyRequests:
				if r.code() != "TooManyRequests" || r.header.Get("Retry-After") != "2" {
					t.Fatalf("429: %s, Retry-After %q", r.body, r.header.Get("Retry-After"))
				}
			case http.StatusOK, http.StatusInternalServerError, http.StatusServiceUnavailable:
			default:
				t.Fatalf("unexpected %d %s", r.status, r.body)
			}
		}
		if n := c.api.Calls()["GET /webhook-subscriptions"]; n != 2000 {
			t.Fatalf("Calls counted %d, want 2000", n)
		}
		return got
	}
	a, b := count(), count()
	if fmt.Sprint(a) != fmt.Sprint(b) {
		t.Fatalf("the same seed gave %v and %v", a, b)
	}
	near := func(n int, frac float64) bool { return math.Abs(float64(n)/2000-frac) < 0.03 }
	if !near(a[429], 0.2) || !near(a[500]+a[503], 0.1) || a[500] == 0 || a[503] == 0 {
		t.Fatalf("faults %v, want about 20%% 429 and 10%% 500/503", a)
	}
}

func TestDroppedIsADeterministicFraction(t *testing.T) {
	t.Parallel()
	events := Generate(Config{Customers: 1000, Seed: 9}).Events
	n := 0
	for _, ev := range events {
		d := Dropped(ev.ID, 1, 0.1)
		if d != Dropped(ev.ID, 1, 0.1) {
			t.Fatal("Dropped is not deterministic")
		}
		if d && !Dropped(ev.ID, 1, 0.2) {
			t.Fatal("a larger fraction does not drop a superset")
		}
		if d {
			n++
		}
	}
	if frac := float64(n) / float64(len(events)); math.Abs(frac-0.1) > 0.01 {
		t.Fatalf("dropped %d of %d (%.3f), want about 10%%", n, len(events), frac)
	}
	same := 0
	for _, ev := range events {
		if Dropped(ev.ID, 1, 0.1) && Dropped(ev.ID, 2, 0.1) {
			same++
		}
	}
	if same > n/2 {
		t.Fatalf("seeds 1 and 2 drop %d of the same %d events", same, n)
	}
	if Dropped(events[0].ID, 1, 0) || !Dropped(events[0].ID, 1, 1) {
		t.Fatal("drop 0 must drop nothing and 1 everything")
	}
}

func TestRunServesTheAPIUntilStopped(t *testing.T) {
	t.Parallel()
	rcv, recv := newReceiver(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &lockedBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, RunConfig{
			Generate: Config{Customers: 30, Seed: 3, Start: apiStart},
			Send:     SendConfig{URL: recv.URL + "/webhooks/dwolla", Secret: testSecret, Drop: 0.25, TimeScale: 3600},
			APIAddr:  "127.0.0.1:0",
			// The API's clock: its 30-day horizon is judged by it.
			API: APIConfig{Now: func() time.Time { return apiStart.Add(24 * time.Hour) }},
			Out: out,
		})
	}()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(out.String(), "still serving the fake Dwolla API") {
		if time.Now().After(deadline) {
			t.Fatalf("the run did not get to serving:\n%s", out.String())
		}
		select {
		case err := <-done:
			t.Fatalf("the run ended early: %v\n%s", err, out.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	s := out.String()
	_, rest, _ := strings.Cut(s, "fake Dwolla API at ")
	base, _, _ := strings.Cut(rest, " ")
	arrived := countUnique(rcv.check())
	if !strings.Contains(s, fmt.Sprintf(", %d dropped (never delivered)", 0)) && !strings.Contains(s, " dropped (never delivered)") {
		t.Fatalf("the summary does not say how many were dropped:\n%s", s)
	}

	c := &apiClient{t: t, base: base}
	c.login()
	var p dwolla.EventsPage
	c.getJSON("/events?limit=1", &p)
	if p.Total <= arrived {
		t.Fatalf("the API has %d events, the receiver got %d with 25%% dropped", p.Total, arrived)
	}
	if !strings.Contains(s, fmt.Sprintf("  injected    0 duplicate deliveries, 0 reordered, %d dropped (never delivered)", p.Total-arrived)) {
		t.Fatalf("the summary does not count the %d dropped events:\n%s", p.Total-arrived, s)
	}
	// The bodies link to the fake API.
	if ev, err := dwolla.ParseEvent(p.Embedded.Events[0]); err != nil || !strings.HasPrefix(ev.Links.Self.Href, base+"/events/") {
		t.Fatalf("event links %+v, want them on %s", ev.Links, base)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
}

// lockedBuffer is a bytes.Buffer safe for a writer and a reader.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// BenchmarkAPIEventsPage pages deep into a million events.
func BenchmarkAPIEventsPage(b *testing.B) {
	api, err := NewAPI(APIConfig{Now: func() time.Time { return apiStart.Add(24 * time.Hour) }})
	if err != nil {
		b.Fatal(err)
	}
	const n = 1_000_000
	events := make([]Event, n)
	for i := range events {
		id := fmt.Sprintf("00000000-0000-4000-8000-%012d", i)
		events[i] = Event{ID: id, Topic: "customer_created", ResourceID: id, ResourceType: "customers",
			Created: apiStart.Add(time.Duration(i) * time.Millisecond), Body: []byte(`{"id":"` + id + `"}`)}
	}
	api.Add(events...)
	srv := httptest.NewServer(api)
	defer srv.Close()
	c := &apiClient{t: b, base: srv.URL, api: api}
	c.login()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		r := c.get(fmt.Sprintf("/events?limit=200&offset=%d", (i*7919)%n))
		if r.status != http.StatusOK {
			b.Fatalf("%d %s", r.status, r.body)
		}
	}
}
