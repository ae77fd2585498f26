package dwolla

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
)

const (
	testKey    = "app-key-123"
	testSecret = "s3cret-do-not-log"
)

// fakeDwolla speaks Dwolla's API as far as the client uses it: the token
// endpoint (Basic auth, form body), bearer tokens, HAL bodies. api answers
// the authorised API requests.
type fakeDwolla struct {
	t   *testing.T
	srv *httptest.Server

	mu        sync.Mutex
	expiresIn int
	issued    int
	valid     map[string]bool
	tokenErr  func(w http.ResponseWriter) bool // answers the token request instead, when it returns true
	api       func(w http.ResponseWriter, r *http.Request)
	apiCalls  atomic.Int64
	tokenHits atomic.Int64
	paths     []string
}

func newFake(t *testing.T, api func(w http.ResponseWriter, r *http.Request)) *fakeDwolla {
	t.Helper()
	f := &fakeDwolla{t: t, expiresIn: 3600, valid: map[string]bool{}, api: api}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeDwolla) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/token" {
		f.serveToken(w, r)
		return
	}
	f.apiCalls.Add(1)
	f.mu.Lock()
	f.paths = append(f.paths, r.URL.RequestURI())
	f.mu.Unlock()
	if got := r.Header.Get("Accept"); got != MediaType {
		f.t.Errorf("%s %s: Accept %q, want %q", r.Method, r.URL, got, MediaType)
	}
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	f.mu.Lock()
	ok = ok && f.valid[tok]
	f.mu.Unlock()
	if !ok {
		writeJSON(w, http.StatusUnauthorized, `{"code":"InvalidAccessToken","message":"Invalid access token."}`)
		return
	}
	f.api(w, r)
}

func (f *fakeDwolla) serveToken(w http.ResponseWriter, r *http.Request) {
	f.tokenHits.Add(1)
	if r.Method != http.MethodPost {
		f.t.Errorf("token: method %s", r.Method)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/x-www-form-urlencoded" {
		f.t.Errorf("token: Content-Type %q", ct)
	}
	if err := r.ParseForm(); err != nil || r.PostForm.Get("grant_type") != "client_credentials" {
		f.t.Errorf("token: form %v (%v), want grant_type=client_credentials", r.PostForm, err)
	}
	want := "Basic " + base64.StdEncoding.EncodeToString([]byte(testKey+":"+testSecret))
	if r.Header.Get("Authorization") != want {
		writeJSON(w, http.StatusUnauthorized, `{"error":"invalid_client"}`)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.tokenErr != nil && f.tokenErr(w) {
		return
	}
	f.issued++
	tok := fmt.Sprintf("token-%d", f.issued)
	f.valid[tok] = true
	writeJSON(w, http.StatusOK, fmt.Sprintf(`{"access_token":%q,"token_type":"bearer","expires_in":%d}`, tok, f.expiresIn))
}

// revokeAll makes every issued token answer 401, as an early expiry would.
func (f *fakeDwolla) revokeAll() {
	f.mu.Lock()
	defer f.mu.Unlock()
	clear(f.valid)
}

func (f *fakeDwolla) requested() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.paths...)
}

func writeJSON(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", MediaType)
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}

// fakeClock is the token expiry clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// sleeps records the waits the client asks for and returns at once.
type sleeps struct {
	mu sync.Mutex
	d  []time.Duration
}

func (s *sleeps) Sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.d = append(s.d, d)
	s.mu.Unlock()
	return ctx.Err()
}

func (s *sleeps) got() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.d...)
}

type harness struct {
	fake  *fakeDwolla
	c     *Client
	clock *fakeClock
	sleep *sleeps
}

func newHarness(t *testing.T, api func(w http.ResponseWriter, r *http.Request), tweak func(*ClientConfig)) *harness {
	t.Helper()
	h := &harness{
		fake:  newFake(t, api),
		clock: &fakeClock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)},
		sleep: &sleeps{},
	}
	cfg := ClientConfig{
		BaseURL: h.fake.srv.URL,
		Key:     testKey, Secret: testSecret,
		Rate: 1e6, Burst: 1000,
		Now:   h.clock.Now,
		Sleep: h.sleep.Sleep,
	}
	if tweak != nil {
		tweak(&cfg)
	}
	c, err := NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.c = c
	return h
}

// eventsAPI serves n events in pages of the requested limit, newest first,
// with absolute next links as Dwolla writes them.
func eventsAPI(base func() string, n int) func(w http.ResponseWriter, r *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/events" {
			writeJSON(w, http.StatusNotFound, `{"code":"NotFound","message":"The requested resource was not found."}`)
			return
		}
		limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
		if limit <= 0 {
			limit = 25
		}
		offset, _ := strconv.Atoi(r.URL.Query().Get("offset"))
		var events []string
		for i := offset; i < min(offset+limit, n); i++ {
			events = append(events, fmt.Sprintf(`{"_links":{"self":{"href":"%s/events/ev-%d"}},"id":"ev-%d","topic":"customer_created","resourceId":"c-%d","created":"2026-03-01T12:00:00.000Z"}`, base(), n-i, n-i, n-i))
		}
		links := fmt.Sprintf(`"self":{"href":"%s/events?limit=%d&offset=%d"}`, base(), limit, offset)
		if offset+limit < n {
			links += fmt.Sprintf(`,"next":{"href":"%s/events?limit=%d&offset=%d"}`, base(), limit, offset+limit)
		}
		writeJSON(w, http.StatusOK, fmt.Sprintf(`{"_links":{%s},"_embedded":{"events":[%s]},"total":%d}`, links, strings.Join(events, ","), n))
	}
}

func okEvents(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, `{"_links":{},"_embedded":{"events":[{"_links":{"resource":{"href":"https://api.dwolla.com/customers/c-1"}},"id":"ev-1","topic":"customer_created","resourceId":"c-1","created":"2026-03-01T12:00:00.000Z"}]},"total":1}`)
}

func TestNewClientValidates(t *testing.T) {
	t.Parallel()
	f := func(cfg ClientConfig, want string) {
		t.Helper()
		_, err := NewClient(cfg)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("NewClient(%+v) = %v, want an error with %q", cfg, err, want)
		}
	}
	f(ClientConfig{Secret: "s"}, "HOOKSTREAM_DWOLLA_KEY")
	f(ClientConfig{Key: "k"}, "HOOKSTREAM_DWOLLA_SECRET")
	f(ClientConfig{Key: "k", Secret: "s", BaseURL: "api.dwolla.com"}, "HOOKSTREAM_DWOLLA_API")
	f(ClientConfig{Key: "k", Secret: "s", BaseURL: "ftp://api.dwolla.com"}, "not an absolute http(s) URL")
	f(ClientConfig{Key: "k", Secret: "s", BaseURL: "/events"}, "not an absolute http(s) URL")
	f(ClientConfig{Key: "k", Secret: "s", Rate: -1}, "negative")

	c, err := NewClient(ClientConfig{Key: "k", Secret: "s"})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.base.String(); got != ProductionAPI {
		t.Errorf("default base %q, want %q", got, ProductionAPI)
	}
	if c.http.Timeout != DefaultHTTPTimeout || c.cfg.MaxAttempts != DefaultMaxAttempts || c.cfg.LockoutMax != DefaultLockoutMax {
		t.Errorf("defaults not filled: %+v", c.cfg)
	}
}

func TestTokenFetchedOnceAndReused(t *testing.T) {
	t.Parallel()
	h := newHarness(t, okEvents, nil)
	for range 5 {
		page, err := h.c.Events(t.Context(), 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Embedded.Events) != 1 {
			t.Fatalf("events %d, want 1", len(page.Embedded.Events))
		}
		if _, err := ParseEvent(page.Embedded.Events[0]); err != nil {
			t.Fatalf("raw event does not parse: %v", err)
		}
	}
	if n := h.fake.tokenHits.Load(); n != 1 {
		t.Errorf("token requests %d, want 1", n)
	}
	if got := h.fake.requested()[0]; got != "/events?limit=10" {
		t.Errorf("request %q, want /events?limit=10", got)
	}
}

func TestTokenRefreshedBeforeExpiry(t *testing.T) {
	t.Parallel()
	h := newHarness(t, okEvents, nil)
	call := func() {
		t.Helper()
		if _, err := h.c.Events(t.Context(), 0); err != nil {
			t.Fatal(err)
		}
	}
	call()
	// 3600s token: refreshed when less than 360s (10%) remain.
	h.clock.Advance(3000 * time.Second)
	call()
	if n := h.fake.tokenHits.Load(); n != 1 {
		t.Fatalf("token requests %d after 3000s, want 1", n)
	}
	h.clock.Advance(250 * time.Second) // 350s left
	call()
	if n := h.fake.tokenHits.Load(); n != 2 {
		t.Fatalf("token requests %d with 350s left, want 2", n)
	}
	h.clock.Advance(time.Minute)
	call()
	if n := h.fake.tokenHits.Load(); n != 2 {
		t.Fatalf("token requests %d after the refresh, want 2", n)
	}
}

func TestShortTokenRefreshMargin(t *testing.T) {
	t.Parallel()
	h := newHarness(t, okEvents, nil)
	h.fake.expiresIn = 120 // a minute's margin, not the whole life
	if _, err := h.c.Events(t.Context(), 0); err != nil {
		t.Fatal(err)
	}
	h.clock.Advance(50 * time.Second)
	if _, err := h.c.Events(t.Context(), 0); err != nil {
		t.Fatal(err)
	}
	if n := h.fake.tokenHits.Load(); n != 1 {
		t.Errorf("token requests %d, want 1", n)
	}
	h.clock.Advance(11 * time.Second)
	if _, err := h.c.Events(t.Context(), 0); err != nil {
		t.Fatal(err)
	}
	if n := h.fake.tokenHits.Load(); n != 2 {
		t.Errorf("token requests %d, want 2", n)
	}
}

func TestUnauthorizedRefreshesOnceAndRetriesOnce(t *testing.T) {
	t.Parallel()
	h := newHarness(t, okEvents, nil)
	if _, err := h.c.Events(t.Context(), 0); err != nil {
		t.Fatal(err)
	}
	h.fake.revokeAll() // the cached token is still "fresh" by the clock
	if _, err := h.c.Events(t.Context(), 0); err != nil {
		t.Fatalf("after a 401: %v", err)
	}
	if n := h.fake.tokenHits.Load(); n != 2 {
		t.Errorf("token requests %d, want 2", n)
	}
	if n := h.fake.apiCalls.Load(); n != 3 {
		t.Errorf("API requests %d, want 3 (ok, 401, retry)", n)
	}
	if len(h.sleep.got()) != 0 {
		t.Errorf("slept %v before the 401 retry, want no wait", h.sleep.got())
	}

	// A 401 that a fresh token does not cure is an error after one retry.
	h.fake.api = func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusUnauthorized, `{"code":"InvalidAccessToken","message":"Invalid access token."}`)
	}
	calls := h.fake.apiCalls.Load()
	_, err := h.c.Events(t.Context(), 0)
	var se *StatusError
	if !errors.As(err, &se) || se.Status != http.StatusUnauthorized || se.Code != "InvalidAccessToken" {
		t.Fatalf("err %v, want a 401 StatusError", err)
	}
	if n := h.fake.apiCalls.Load() - calls; n != 2 {
		t.Errorf("API requests %d, want 2", n)
	}
	if strings.Contains(err.Error(), "token-") {
		t.Errorf("error shows the token: %v", err)
	}
}

func TestBadCredentials(t *testing.T) {
	t.Parallel()
	h := newHarness(t, okEvents, func(c *ClientConfig) { c.Secret = "wrong-" + testSecret })
	_, err := h.c.Events(t.Context(), 0)
	if err == nil {
		t.Fatal("no error with bad credentials")
	}
	msg := err.Error()
	for _, want := range []string{"HOOKSTREAM_DWOLLA_KEY", "HOOKSTREAM_DWOLLA_SECRET", "401", "invalid_client", "/token", "/events"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg, want)
		}
	}
	if strings.Contains(msg, testSecret) {
		t.Errorf("error %q shows the secret", msg)
	}
	if n := h.fake.tokenHits.Load(); n != 1 {
		t.Errorf("token requests %d, want 1 (bad credentials are not retried)", n)
	}
	if n := h.fake.apiCalls.Load(); n != 0 {
		t.Errorf("API requests %d without a token", n)
	}
}

func TestTokenEndpoint5xxRetried(t *testing.T) {
	t.Parallel()
	h := newHarness(t, okEvents, nil)
	fails := 2
	h.fake.tokenErr = func(w http.ResponseWriter) bool {
		if fails == 0 {
			return false
		}
		fails--
		writeJSON(w, http.StatusServiceUnavailable, `{"code":"ServerError","message":"A server error occurred."}`)
		return true
	}
	if _, err := h.c.Events(t.Context(), 0); err != nil {
		t.Fatal(err)
	}
	if n := h.fake.tokenHits.Load(); n != 3 {
		t.Errorf("token requests %d, want 3", n)
	}
	if n := len(h.sleep.got()); n != 2 {
		t.Errorf("waits %d, want 2", n)
	}
}

func TestPagingFollowsNextToTheEnd(t *testing.T) {
	t.Parallel()
	var base string
	h := newHarness(t, eventsAPI(func() string { return base }, 23), nil)
	base = h.fake.srv.URL
	page, err := h.c.Events(t.Context(), 10)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	pages := 0
	for {
		pages++
		for _, raw := range page.Embedded.Events {
			ev, err := ParseEvent(raw)
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, ev.ID)
		}
		next := page.Links["next"].Href
		if next == "" {
			break
		}
		if page, err = h.c.EventsAt(t.Context(), next); err != nil {
			t.Fatal(err)
		}
	}
	if pages != 3 || len(ids) != 23 || ids[0] != "ev-23" || ids[22] != "ev-1" {
		t.Errorf("pages %d, ids %d (%v ... %v), want 3 pages, 23 events newest first", pages, len(ids), ids[0], ids[len(ids)-1])
	}
	want := []string{"/events?limit=10", "/events?limit=10&offset=10", "/events?limit=10&offset=20"}
	if got := h.fake.requested(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("requests %v, want %v", got, want)
	}
}

func TestSubscriptionsAllPages(t *testing.T) {
	t.Parallel()
	var base string
	h := newHarness(t, func(w http.ResponseWriter, r *http.Request) {
		sub := func(id string) string {
			return fmt.Sprintf(`{"_links":{"self":{"href":"%[1]s/webhook-subscriptions/%[2]s"},"webhooks":{"href":"%[1]s/webhook-subscriptions/%[2]s/webhooks"}},"id":%[2]q,"url":"https://hooks.example.com/dwolla","paused":false,"created":"2026-01-02T03:04:05.000Z"}`, base, id)
		}
		if r.URL.Query().Get("offset") == "" {
			writeJSON(w, http.StatusOK, fmt.Sprintf(`{"_links":{"self":{"href":"%[1]s/webhook-subscriptions"},"next":{"href":"%[1]s/webhook-subscriptions?offset=2"}},"_embedded":{"webhook-subscriptions":[%s,%s]},"total":3}`, base, sub("s1"), sub("s2")))
			return
		}
		writeJSON(w, http.StatusOK, fmt.Sprintf(`{"_links":{"self":{"href":"%s/webhook-subscriptions?offset=2"}},"_embedded":{"webhook-subscriptions":[%s]},"total":3}`, base, sub("s3")))
	}, nil)
	base = h.fake.srv.URL
	subs, err := h.c.Subscriptions(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(subs) != 3 || subs[0].ID != "s1" || subs[2].ID != "s3" || subs[2].Links["webhooks"].Href == "" || subs[0].Created.IsZero() {
		t.Errorf("subscriptions %+v", subs)
	}
}

func TestNextOnAnotherHostRefused(t *testing.T) {
	t.Parallel()
	var stolen atomic.Int64
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		stolen.Add(1)
		writeJSON(w, http.StatusOK, `{}`)
	}))
	t.Cleanup(evil.Close)
	h := newHarness(t, func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, fmt.Sprintf(`{"_links":{"next":{"href":"%s/webhook-subscriptions?offset=1"}},"_embedded":{"webhook-subscriptions":[{"id":"s1"}]},"total":2}`, evil.URL))
	}, nil)
	u, _ := url.Parse(h.fake.srv.URL)

	for _, href := range []string{
		evil.URL + "/events?offset=25",
		"https://" + u.Host + "/events?offset=25", // another scheme
		"http://" + u.Hostname() + ":1/events",    // another port
		"//" + evil.Listener.Addr().String() + "/events",
	} {
		_, err := h.c.EventsAt(t.Context(), href)
		if err == nil || !strings.Contains(err.Error(), "not on the configured API host") {
			t.Errorf("EventsAt(%s) = %v, want a refusal", href, err)
		}
	}
	if _, err := h.c.WebhooksAt(t.Context(), evil.URL+"/webhook-subscriptions/s1/webhooks"); err == nil {
		t.Error("WebhooksAt followed another host")
	}
	if _, err := h.c.Resource(t.Context(), evil.URL+"/customers/c1"); err == nil {
		t.Error("Resource followed another host")
	}
	if _, err := h.c.Subscriptions(t.Context()); err == nil || !strings.Contains(err.Error(), "not on the configured API host") {
		t.Errorf("Subscriptions followed a next link to another host: %v", err)
	}
	if n := stolen.Load(); n != 0 {
		t.Errorf("the other host got %d requests", n)
	}
}

func TestRetryAfterHonoured(t *testing.T) {
	t.Parallel()
	var h *harness
	var n atomic.Int64
	h = newHarness(t, func(w http.ResponseWriter, r *http.Request) {
		switch n.Add(1) {
		case 1:
			w.Header().Set("Retry-After", "7")
			writeJSON(w, http.StatusTooManyRequests, `{"code":"TooManyRequests","message":"Please wait a short period of time before re-attempting the request."}`)
		case 2:
			w.Header().Set("Retry-After", h.clock.Now().Add(20*time.Second).Format(http.TimeFormat))
			writeJSON(w, http.StatusTooManyRequests, `{"code":"TooManyRequests","message":"Please wait a short period of time before re-attempting the request."}`)
		default:
			okEvents(w, r)
		}
	}, nil)
	if _, err := h.c.Events(t.Context(), 0); err != nil {
		t.Fatal(err)
	}
	if got, want := fmt.Sprint(h.sleep.got()), fmt.Sprint([]time.Duration{7 * time.Second, 20 * time.Second}); got != want {
		t.Errorf("waits %s, want %s", got, want)
	}
}

func TestRateLimitLockoutExhausted(t *testing.T) {
	t.Parallel()
	tooMany := func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusTooManyRequests, `{"code":"TooManyRequests","message":"Please wait a short period of time before re-attempting the request."}`)
	}
	h := newHarness(t, tooMany, nil)
	_, err := h.c.Events(t.Context(), 0)
	if !errors.Is(err, ErrRateLimited) {
		t.Fatalf("err %v, want ErrRateLimited", err)
	}
	if !strings.Contains(err.Error(), "Please wait a short period") || !strings.Contains(err.Error(), "/events") {
		t.Errorf("error %q lacks Dwolla's message or the endpoint", err)
	}
	// 5s doubling, the last wait cut to the 5 minutes of the lockout.
	want := []time.Duration{5 * time.Second, 10 * time.Second, 20 * time.Second, 40 * time.Second, 80 * time.Second, 145 * time.Second}
	if got := h.sleep.got(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("waits %v, want %v", got, want)
	}
	if n := h.fake.apiCalls.Load(); n != 7 {
		t.Errorf("API requests %d, want 7", n)
	}

	// A Retry-After past the lockout bound is not waited for.
	h2 := newHarness(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "400")
		tooMany(w, r)
	}, nil)
	if _, err := h2.c.Events(t.Context(), 0); !errors.Is(err, ErrRateLimited) {
		t.Fatalf("err %v, want ErrRateLimited", err)
	}
	if got := h2.sleep.got(); len(got) != 0 {
		t.Errorf("waited %v for a Retry-After past LockoutMax", got)
	}
	// 429s do not open the breaker: Dwolla is up.
	if s := h2.c.breaker.State().String(); s != "closed" {
		t.Errorf("breaker %s after 429s", s)
	}
}

func TestServerErrorsRetried(t *testing.T) {
	t.Parallel()
	var n atomic.Int64
	h := newHarness(t, func(w http.ResponseWriter, r *http.Request) {
		switch n.Add(1) {
		case 1:
			writeJSON(w, http.StatusBadGateway, `<html>bad gateway</html>`)
		case 2:
			// The connection drops mid-body: a transport error. (Dropping
			// it before the headers would be retried by net/http itself.)
			w.Header().Set("Content-Length", "100")
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write([]byte(`{"_links":`))
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler)
		case 3:
			writeJSON(w, http.StatusInternalServerError, `{"code":"ServerError","message":"A server error occurred. Error ID: 1234."}`)
		default:
			okEvents(w, r)
		}
	}, func(c *ClientConfig) { c.BackoffBase, c.BackoffMax = time.Second, 3*time.Second })
	if _, err := h.c.Events(t.Context(), 0); err != nil {
		t.Fatal(err)
	}
	got := h.sleep.got()
	if len(got) != 3 {
		t.Fatalf("waits %v, want 3", got)
	}
	for i, ceil := range []time.Duration{time.Second, 2 * time.Second, 3 * time.Second} {
		if got[i] < 0 || got[i] > ceil {
			t.Errorf("wait %d = %s, want within [0, %s] (full jitter)", i, got[i], ceil)
		}
	}

	// Failing on every attempt: MaxAttempts, then ErrUnavailable with
	// Dwolla's last message.
	h2 := newHarness(t, func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusServiceUnavailable, `{"code":"ServiceUnavailable","message":"Down for maintenance."}`)
	}, func(c *ClientConfig) { c.MaxAttempts = 4 })
	_, err := h2.c.Events(t.Context(), 0)
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "Down for maintenance.") || !strings.Contains(err.Error(), "4 failed attempts") {
		t.Fatalf("err %v, want ErrUnavailable after 4 attempts with Dwolla's message", err)
	}
	if n := h2.fake.apiCalls.Load(); n != 4 {
		t.Errorf("API requests %d, want 4", n)
	}
}

func TestClientErrorsNotRetried(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasPrefix(r.URL.Path, "/events/"):
			writeJSON(w, http.StatusNotFound, `{"code":"NotFound","message":"Application event not found."}`)
		default:
			writeJSON(w, http.StatusBadRequest, `{"code":"ValidationError","message":"Validation error(s) present. See embedded errors list for more details.","_embedded":{"errors":[{"code":"Invalid","message":"Invalid date.","path":"/startDate"}]}}`)
		}
	}, nil)
	_, err := h.c.Webhooks(t.Context(), "sub-1", WebhooksQuery{StartDate: time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)})
	var se *StatusError
	if !errors.As(err, &se) || se.Status != 400 || se.Code != "ValidationError" {
		t.Fatalf("err %v, want a 400 StatusError", err)
	}
	if !strings.Contains(err.Error(), "Validation error(s) present") || !strings.Contains(err.Error(), webhooksEndpoint) {
		t.Errorf("error %q lacks Dwolla's message or the endpoint", err)
	}
	_, err = h.c.Event(t.Context(), "8c2f8d7e-0000-4000-8000-000000000001")
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "Application event not found.") {
		t.Fatalf("err %v, want ErrNotFound with Dwolla's message", err)
	}
	if n := h.fake.apiCalls.Load(); n != 2 {
		t.Errorf("API requests %d, want 2 (no retries)", n)
	}
	if got := h.sleep.got(); len(got) != 0 {
		t.Errorf("waited %v", got)
	}
	if s := h.c.breaker.State().String(); s != "closed" {
		t.Errorf("breaker %s after 4xx answers", s)
	}
}

func TestBreakerOpensAndFailsFast(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusInternalServerError, `{"code":"ServerError","message":"A server error occurred."}`)
	}, func(c *ClientConfig) { c.MaxAttempts, c.BreakerFailures, c.BreakerOpen = 2, 3, time.Hour })
	for i := range 3 {
		if _, err := h.c.Events(t.Context(), 0); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("call %d: err %v, want ErrUnavailable", i, err)
		}
	}
	calls := h.fake.apiCalls.Load()
	if calls != 6 {
		t.Errorf("API requests %d, want 6", calls)
	}
	_, err := h.c.Event(t.Context(), "ev-1")
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "circuit breaker is open") {
		t.Fatalf("err %v, want a fast ErrUnavailable naming the breaker", err)
	}
	if n := h.fake.apiCalls.Load(); n != calls {
		t.Errorf("an open breaker still sent %d requests", n-calls)
	}
}

func TestRateLimiterUsed(t *testing.T) {
	t.Parallel()
	// A burst of 3 and almost no refill: the token and two calls pass, the
	// third would wait far longer than its context allows, so Wait refuses
	// at once.
	h := newHarness(t, okEvents, func(c *ClientConfig) { c.Rate, c.Burst = 0.001, 3 })
	for range 2 {
		if _, err := h.c.Events(t.Context(), 0); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	_, err := h.c.Events(ctx, 0)
	if err == nil || !strings.Contains(err.Error(), "rate limit") {
		t.Fatalf("err %v, want the client's rate limit", err)
	}
	if n := h.fake.apiCalls.Load(); n != 2 {
		t.Errorf("API requests %d, want 2", n)
	}
	if got := h.sleep.got(); len(got) != 0 {
		t.Errorf("a rate limit refusal was retried: waits %v", got)
	}
}

func TestConcurrentCallsFetchOneToken(t *testing.T) {
	t.Parallel()
	h := newHarness(t, okEvents, nil)
	burst := func() {
		t.Helper()
		var wg sync.WaitGroup
		errs := make(chan error, 20)
		start := make(chan struct{})
		for range 20 {
			wg.Go(func() {
				<-start
				_, err := h.c.Events(t.Context(), 5)
				errs <- err
			})
		}
		close(start)
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	burst() // no token yet
	if n := h.fake.tokenHits.Load(); n != 1 {
		t.Fatalf("token requests %d from a cold start, want 1", n)
	}
	h.clock.Advance(2 * time.Hour) // expired
	burst()
	if n := h.fake.tokenHits.Load(); n != 2 {
		t.Fatalf("token requests %d with an expired token, want 2 in all", n)
	}
}

func TestWebhooksRetryAndResource(t *testing.T) {
	t.Parallel()
	var base string
	var keys []string
	var mu sync.Mutex
	var retries atomic.Int64
	h := newHarness(t, func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodGet && r.URL.Path == "/webhook-subscriptions/sub-1/webhooks":
			q := r.URL.Query()
			if q.Get("limit") != "50" || q.Get("offset") != "100" || q.Get("startDate") != "2026-02-01" || q.Get("endDate") != "2026-02-28" || q.Get("resourceId") != "c-1" {
				t.Errorf("webhooks query %v", q)
			}
			writeJSON(w, http.StatusOK, fmt.Sprintf(`{"_links":{"next":{"href":"%[1]s/webhook-subscriptions/sub-1/webhooks?limit=50&offset=150"}},"_embedded":{"webhooks":[{"_links":{"retry":{"href":"%[1]s/webhooks/wh-1/retries"}},"id":"wh-1","topic":"customer_created","accountId":"acc","eventId":"ev-1","subscriptionId":"sub-1","attempts":[{"id":"at-1","request":{"timestamp":"2026-02-02T10:00:00.000Z","url":"https://hooks.example.com","headers":[{"name":"X-Request-Signature-SHA-256","value":"ab"}],"body":"{\"id\":\"ev-1\"}"},"response":{"created":"2026-02-02T10:00:01.000Z","headers":[],"statusCode":200,"body":"ok"}}]}]},"total":151}`, base))
		case r.Method == http.MethodPost && r.URL.Path == "/webhooks/wh-1/retries":
			mu.Lock()
			keys = append(keys, r.Header.Get("Idempotency-Key"))
			mu.Unlock()
			if retries.Add(1) == 1 {
				writeJSON(w, http.StatusServiceUnavailable, `{"code":"ServerError","message":"A server error occurred."}`)
				return
			}
			w.Header().Set("Location", base+"/webhooks/wh-1/retries/rt-9")
			w.WriteHeader(http.StatusCreated)
		case r.URL.Path == "/transfers/15c6bcce-46f7-e811-8112-e8dd3bececa8":
			writeJSON(w, http.StatusOK, `{"_links":{"self":{"href":"x"}},"id":"15c6bcce-46f7-e811-8112-e8dd3bececa8","status":"processed","created":"2026-02-02T10:00:00.000Z"}`)
		default:
			writeJSON(w, http.StatusNotFound, `{"code":"NotFound","message":"The requested resource was not found."}`)
		}
	}, nil)
	base = h.fake.srv.URL

	page, err := h.c.Webhooks(t.Context(), "sub-1", WebhooksQuery{
		Limit: 50, Offset: 100, ResourceID: "c-1",
		StartDate: time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC), EndDate: time.Date(2026, 2, 28, 23, 0, 0, 0, time.UTC),
	})
	if err != nil {
		t.Fatal(err)
	}
	wh := page.Embedded.Webhooks
	if len(wh) != 1 || wh[0].EventID != "ev-1" || len(wh[0].Attempts) != 1 || wh[0].Attempts[0].Request.Body != `{"id":"ev-1"}` ||
		wh[0].Attempts[0].Response.At().IsZero() || page.Links["next"].Href == "" {
		t.Fatalf("webhooks page %+v", page)
	}

	loc, err := h.c.RetryWebhook(t.Context(), "wh-1")
	if err != nil {
		t.Fatal(err)
	}
	if loc != base+"/webhooks/wh-1/retries/rt-9" {
		t.Errorf("Location %q", loc)
	}
	mu.Lock()
	if len(keys) != 2 || keys[0] == "" || keys[0] != keys[1] {
		t.Errorf("Idempotency-Keys %q, want one key on both attempts", keys)
	}
	mu.Unlock()

	for _, href := range []string{base + "/transfers/15c6bcce-46f7-e811-8112-e8dd3bececa8", "/transfers/15c6bcce-46f7-e811-8112-e8dd3bececa8"} {
		res, err := h.c.Resource(t.Context(), href)
		if err != nil {
			t.Fatal(err)
		}
		if res.Status != "processed" {
			t.Errorf("Resource(%s) = %+v", href, res)
		}
	}
	if _, err := h.c.Resource(t.Context(), "/customers/nope-1"); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "/customers/{id}") {
		t.Errorf("err %v, want ErrNotFound naming /customers/{id}", err)
	}
}

func TestRedirectNotFollowed(t *testing.T) {
	t.Parallel()
	var followed atomic.Int64
	h := newHarness(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/elsewhere" {
			followed.Add(1)
			return
		}
		http.Redirect(w, r, "/elsewhere", http.StatusFound)
	}, nil)
	_, err := h.c.Events(t.Context(), 0)
	if err == nil || !strings.Contains(err.Error(), "redirect") {
		t.Fatalf("err %v, want a redirect error", err)
	}
	if followed.Load() != 0 {
		t.Error("the redirect was followed")
	}
}

func TestTemplate(t *testing.T) {
	t.Parallel()
	c, err := NewClient(ClientConfig{Key: "k", Secret: "s", BaseURL: "https://api-sandbox.dwolla.com/"})
	if err != nil {
		t.Fatal(err)
	}
	f := func(href, want string) {
		t.Helper()
		u, err := c.resolve("resource", href)
		if err != nil {
			t.Fatal(err)
		}
		if got := c.template(u); got != want {
			t.Errorf("template(%s) = %s, want %s", href, got, want)
		}
	}
	f("https://api-sandbox.dwolla.com/customers/0b2b1b0e-1234-4a5b-8c9d-0123456789ab", "/customers/{id}")
	f("https://API-SANDBOX.dwolla.com:443/funding-sources/abc123/balance", "/funding-sources/{id}/balance")
	f("/transfers/15c6bcce-46f7-e811-8112-e8dd3bececa8", "/transfers/{id}")
}

// Not parallel: it reads the process-wide metrics.
func TestMetrics(t *testing.T) {
	counter := func(name string) uint64 { return metrics.GetOrCreateCounter(name).Get() }
	var n atomic.Int64
	h := newHarness(t, func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			writeJSON(w, http.StatusInternalServerError, `{"code":"ServerError","message":"A server error occurred."}`)
			return
		}
		writeJSON(w, http.StatusNotFound, `{"code":"NotFound","message":"Application event not found."}`)
	}, nil)
	names := []string{
		`hookstream_dwolla_requests_total{endpoint="/events/{id}",status="500"}`,
		`hookstream_dwolla_requests_total{endpoint="/events/{id}",status="404"}`,
		`hookstream_dwolla_requests_total{endpoint="/token",status="200"}`,
		`hookstream_dwolla_retries_total{reason="5xx"}`,
		`hookstream_dwolla_token_refreshes_total`,
	}
	before := make([]uint64, len(names))
	for i, name := range names {
		before[i] = counter(name)
	}
	if _, err := h.c.Event(t.Context(), "ev-1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("err %v", err)
	}
	for i, name := range names {
		if d := counter(name) - before[i]; d != 1 {
			t.Errorf("%s grew by %d, want 1", name, d)
		}
	}
	if metrics.GetOrCreatePrometheusHistogram(`hookstream_dwolla_request_seconds{endpoint="/events/{id}"}`) == nil {
		t.Error("no request histogram")
	}
}
