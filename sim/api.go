package sim

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/hookstream/hookstream/dwolla"
)

// EventHorizon is how far back GET /events reaches: Dwolla keeps events
// available for a rolling 30 days.
const EventHorizon = 30 * 24 * time.Hour

// Default credentials of the fake API; the client reads them from
// HOOKSTREAM_DWOLLA_KEY and HOOKSTREAM_DWOLLA_SECRET.
const (
	DefaultAPIKey    = "sim-key"
	DefaultAPISecret = "sim-secret"
)

// APIConfig configures the fake Dwolla API. The zero value is usable: an
// API with the default credentials that accepts retries but sends nothing.
type APIConfig struct {
	// Key and Secret are the OAuth client credentials POST /token accepts
	// (default DefaultAPIKey, DefaultAPISecret).
	Key, Secret string
	// TokenTTL is the lifetime of an access token (default 1h, Dwolla's).
	TokenTTL time.Duration
	// BaseURL is the root of every href the API writes, such as
	// http://127.0.0.1:9090. Empty means the scheme and Host of each
	// request.
	BaseURL string
	// Now is the API's clock: token expiry and the 30-day horizon of
	// /events (default time.Now).
	Now func() time.Time
	// SubscriptionID is the id of the one webhook subscription (default a
	// UUID derived from Seed); its url is Deliver.URL.
	SubscriptionID string
	// Paused is the subscription's paused flag (see also SetPaused). It is
	// only reported: the simulator's sender does not consult it.
	Paused bool
	// AccountID is the webhooks' accountId (default the account of the
	// first event's _links.account).
	AccountID string
	// Deliver is where POST /webhooks/{id}/retries sends a webhook again
	// (URL, Secret, Client): through a Sender, signed as Dwolla signs. An
	// empty URL accepts retries (201) but sends nothing.
	Deliver SendConfig
	// Faults are injected into the answers.
	Faults APIFaults
	// Seed makes the fault injection reproducible: the same sequence of
	// requests meets the same faults.
	Seed int64
	// Logger receives a line per failed re-delivery (nil: slog.Default()).
	Logger *slog.Logger
}

// APIFaults are the troubles the fake API injects. Faults are drawn per
// request, in arrival order, from APIConfig.Seed.
type APIFaults struct {
	// TooManyRequests is the fraction of requests answered 429 with
	// Dwolla's TooManyRequests body.
	TooManyRequests float64
	// RetryAfter, when positive, is sent as Retry-After (whole seconds, at
	// least 1) on those 429s.
	RetryAfter time.Duration
	// ServerErrors is the fraction of requests answered 500 or 503 (about
	// half each).
	ServerErrors float64
	// Latency is added before every answer.
	Latency time.Duration
	// InsertWhilePaging is how many held events (API.Hold) are released
	// after each GET /events page is served, so a client paging by offset
	// sees the list shift under it, as at Dwolla when events keep coming.
	InsertWhilePaging int
}

func (c APIConfig) withDefaults() (APIConfig, error) {
	c.Key = cmp.Or(c.Key, DefaultAPIKey)
	c.Secret = cmp.Or(c.Secret, DefaultAPISecret)
	c.TokenTTL = cmp.Or(c.TokenTTL, time.Hour)
	c.BaseURL = strings.TrimRight(c.BaseURL, "/")
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.SubscriptionID == "" {
		c.SubscriptionID = uuid.NewSHA1(apiNamespace, fmt.Appendf(nil, "subscription/%d", c.Seed)).String()
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	f := c.Faults
	switch {
	case c.TokenTTL < 0:
		return c, errors.New("sim: the API's token TTL must not be negative")
	case f.TooManyRequests < 0 || f.ServerErrors < 0 || f.TooManyRequests+f.ServerErrors > 1:
		return c, fmt.Errorf("sim: API fault fractions (429: %g, 5xx: %g) must be within [0, 1] and add up to at most 1", f.TooManyRequests, f.ServerErrors)
	case f.Latency < 0 || f.RetryAfter < 0 || f.InsertWhilePaging < 0:
		return c, errors.New("sim: API latency, Retry-After and InsertWhilePaging must not be negative")
	}
	if c.BaseURL != "" {
		if u, err := url.Parse(c.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return c, fmt.Errorf("sim: API base URL %q must be an absolute http:// or https:// URL", c.BaseURL)
		}
	}
	return c, nil
}

// apiNamespace derives the fake API's ids (webhooks, attempts, the
// subscription) from what they belong to, so they are reproducible.
var apiNamespace = uuid.MustParse("6f2d8a4e-0c1b-4b7e-9a55-3e1f0d2c7b19")

// API is a fake of Dwolla's API (reference/dwolla.md section 4) serving the
// simulator's ground truth: OAuth client credentials (POST /token), the
// events (GET /events, /events/{id}), the one webhook subscription and its
// webhooks with every attempt the sender made (GET /webhook-subscriptions,
// /webhook-subscriptions/{id}, /webhook-subscriptions/{id}/webhooks,
// /webhooks/{id}, POST /webhooks/{id}/retries) and the resources the events
// are about (GET /customers/{id}, /funding-sources/{id}, /transfers/{id},
// /mass-payments/{id}; their status is what dwolla.StatusAfter says of their latest event). It answers
// Dwolla's error bodies (dwolla.APIError), requires Accept: MediaType and a
// token it issued on every route but /token, and can inject 429s, 5xxs,
// latency and events arriving while a client pages (APIFaults).
//
// It is an AttemptRecorder: give it to SendConfig.Attempts so the webhooks
// list shows what the sender did. Events are added with Add (or Hold, to be
// released while paging). It is safe for concurrent use and scales to
// millions of events: they are kept sorted as they are added, and a page
// costs O(limit).
type API struct {
	cfg    APIConfig
	sender *Sender // nil: retries send nothing
	mux    *http.ServeMux

	mu        sync.RWMutex
	events    []*Event // sorted by (Created, ID), oldest first
	byID      map[string]*Event
	held      []Event // oldest first, released from the front
	resources map[string]*resourceState
	webhooks  []*webhook // in the order they were first attempted
	hooksByEv map[string]*webhook
	hooksByID map[string]*webhook
	hooksByRs map[string][]*webhook
	tokens    map[string]time.Time // access token -> expiry
	paused    bool
	account   string
	created   time.Time // the subscription's

	faultMu sync.Mutex
	rng     *mrand.Rand
	faults  map[int]int64

	calls map[string]*atomic.Int64 // by route pattern
}

type resourceState struct {
	collection string
	created    time.Time // of its first event
	last       *Event
}

type webhook struct {
	id       string
	ev       Event
	at       time.Time // first attempt's request time
	attempts []SentAttempt
	retries  []retryRecord
}

type retryRecord struct {
	id string
	at time.Time
}

// NewAPI returns the fake API, with no events yet.
func NewAPI(cfg APIConfig) (*API, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	a := &API{
		cfg:       cfg,
		byID:      make(map[string]*Event),
		resources: make(map[string]*resourceState),
		hooksByEv: make(map[string]*webhook),
		hooksByID: make(map[string]*webhook),
		hooksByRs: make(map[string][]*webhook),
		tokens:    make(map[string]time.Time),
		paused:    cfg.Paused,
		account:   cfg.AccountID,
		created:   cfg.Now().UTC().Truncate(time.Millisecond),
		rng:       newRand(cfg.Seed, 0x617069), // "api"
		faults:    make(map[int]int64),
		calls:     make(map[string]*atomic.Int64),
		mux:       http.NewServeMux(),
	}
	if cfg.Deliver.URL != "" {
		if a.sender, err = NewSender(cfg.Deliver); err != nil {
			return nil, fmt.Errorf("sim: the API's retries: %w", err)
		}
		a.sender.cfg.Attempts = a
	}
	a.handle("POST /token", false, a.token)
	a.handle("GET /events", true, a.listEvents)
	a.handle("GET /events/{id}", true, a.getEvent)
	a.handle("GET /webhook-subscriptions", true, a.listSubscriptions)
	a.handle("GET /webhook-subscriptions/{id}", true, a.getSubscription)
	a.handle("GET /webhook-subscriptions/{id}/webhooks", true, a.listWebhooks)
	a.handle("GET /webhooks/{id}", true, a.getWebhook)
	a.handle("POST /webhooks/{id}/retries", true, a.retryWebhook)
	for _, coll := range []string{"customers", "funding-sources", "transfers", "mass-payments"} {
		a.handle("GET /"+coll+"/{id}", true, func(w http.ResponseWriter, r *http.Request) { a.getResource(w, r, coll) })
	}
	a.handle("/", true, func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "NotFound", "The requested resource was not found.")
	})
	return a, nil
}

// ServeHTTP serves the API.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.mux.ServeHTTP(w, r) }

// Calls returns how many requests each route received, faulted ones
// included, keyed by its pattern ("GET /events", "POST /token", ...; "/"
// for paths the API does not know).
func (a *API) Calls() map[string]int64 {
	out := make(map[string]int64, len(a.calls))
	for p, n := range a.calls {
		if v := n.Load(); v > 0 {
			out[p] = v
		}
	}
	return out
}

// Faults returns how many answers were injected faults, by status code.
func (a *API) Faults() map[int]int64 {
	a.faultMu.Lock()
	defer a.faultMu.Unlock()
	return maps.Clone(a.faults)
}

// SetPaused sets the subscription's paused flag.
func (a *API) SetPaused(p bool) {
	a.mu.Lock()
	a.paused = p
	a.mu.Unlock()
}

// Add makes events known to the API, at any time: they appear in /events
// (within the 30-day horizon) and set their resources' status. Events
// already known are ignored. Adding events newer than all others costs
// O(1) each; older ones cost a merge.
func (a *API) Add(events ...Event) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.addLocked(events)
}

// Hold keeps events back, for InsertWhilePaging to release, oldest first,
// after each page of /events. Hold the newest events of a scenario so they
// land at the head of the list, as new events do at Dwolla. Held events
// are unknown to the API until released.
func (a *API) Hold(events ...Event) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.held = append(a.held, events...)
	slices.SortStableFunc(a.held, compareEvents)
}

// Held reports how many held events are not released yet.
func (a *API) Held() int {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return len(a.held)
}

// Len reports how many events the API has, whatever their age.
func (a *API) Len() int {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return len(a.events)
}

func compareEvents(x, y Event) int {
	if c := x.Created.Compare(y.Created); c != 0 {
		return c
	}
	return strings.Compare(x.ID, y.ID)
}

func (a *API) addLocked(events []Event) {
	n := len(a.events)
	sorted := true
	for i := range events {
		ev := events[i]
		if _, ok := a.byID[ev.ID]; ok {
			continue
		}
		p := &ev
		if len(a.events) > 0 && compareEvents(*a.events[len(a.events)-1], ev) > 0 {
			sorted = false
		}
		a.events = append(a.events, p)
		a.byID[ev.ID] = p
		a.noteResource(p)
		if a.account == "" {
			a.account = accountOf(p.Body)
		}
	}
	if sorted {
		return
	}
	// Sort the new tail, then merge it with the sorted head.
	cmpp := func(x, y *Event) int { return compareEvents(*x, *y) }
	tail := a.events[n:]
	slices.SortFunc(tail, cmpp)
	merged := make([]*Event, 0, len(a.events))
	head := a.events[:n]
	i, j := 0, 0
	for i < len(head) && j < len(tail) {
		if cmpp(head[i], tail[j]) <= 0 {
			merged = append(merged, head[i])
			i++
		} else {
			merged = append(merged, tail[j])
			j++
		}
	}
	merged = append(merged, head[i:]...)
	merged = append(merged, tail[j:]...)
	a.events = merged
}

func (a *API) noteResource(ev *Event) {
	id := strings.ToLower(ev.ResourceID)
	rs := a.resources[id]
	if rs == nil {
		a.resources[id] = &resourceState{collection: ev.ResourceType, created: ev.Created, last: ev}
		return
	}
	if ev.Created.Before(rs.created) {
		rs.created = ev.Created
	}
	if compareEvents(*ev, *rs.last) >= 0 {
		rs.last = ev
	}
}

// accountOf returns the account id of an event body's _links.account.
func accountOf(body []byte) string {
	ev, err := dwolla.ParseEvent(body)
	if err != nil {
		return ""
	}
	href := ev.Links.Account.Href
	return href[strings.LastIndexByte(href, '/')+1:]
}

// RecordAttempt records a delivery attempt of ev as a webhook attempt
// (AttemptRecorder). The first attempt of an event creates its webhook.
func (a *API) RecordAttempt(ev Event, at SentAttempt) {
	a.mu.Lock()
	defer a.mu.Unlock()
	h := a.hooksByEv[ev.ID]
	if h == nil {
		h = &webhook{id: uuid.NewSHA1(apiNamespace, []byte("webhook/"+ev.ID)).String(), ev: ev, at: at.Sent}
		a.hooksByEv[ev.ID] = h
		a.hooksByID[h.id] = h
		rid := strings.ToLower(ev.ResourceID)
		a.hooksByRs[rid] = append(a.hooksByRs[rid], h)
		a.webhooks = append(a.webhooks, h)
		if a.account == "" {
			a.account = accountOf(ev.Body)
		}
	}
	if len(at.Body) > 0 {
		at.Body = slices.Clone(at.Body)
	}
	h.attempts = append(h.attempts, at)
}

// Webhooks reports how many webhooks (events the sender tried to deliver)
// the API knows.
func (a *API) Webhooks() int {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return len(a.webhooks)
}

// handle registers a route behind the checks every route shares: call
// counting, latency, injected faults, the Accept header and (auth) a valid
// access token.
func (a *API) handle(pattern string, auth bool, h http.HandlerFunc) {
	n := new(atomic.Int64)
	a.calls[pattern] = n
	a.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		if d := a.cfg.Faults.Latency; d > 0 {
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
				return
			}
		}
		if a.injectFault(w) {
			return
		}
		if !strings.Contains(r.Header.Get("Accept"), dwolla.MediaType) {
			writeError(w, http.StatusNotAcceptable, "InvalidVersion",
				"Missing or invalid API version. Send the header Accept: "+dwolla.MediaType+".")
			return
		}
		if auth && !a.authorized(w, r) {
			return
		}
		h(w, r)
	})
}

// injectFault answers the request with a fault if the seeded draw says so.
func (a *API) injectFault(w http.ResponseWriter) bool {
	f := a.cfg.Faults
	if f.TooManyRequests == 0 && f.ServerErrors == 0 {
		return false
	}
	a.faultMu.Lock()
	x := a.rng.Float64()
	status := 0
	switch {
	case x < f.TooManyRequests:
		status = http.StatusTooManyRequests
	case x < f.TooManyRequests+f.ServerErrors:
		status = http.StatusInternalServerError
		if a.rng.IntN(2) == 1 {
			status = http.StatusServiceUnavailable
		}
	}
	if status != 0 {
		a.faults[status]++
	}
	a.faultMu.Unlock()
	switch status {
	case 0:
		return false
	case http.StatusTooManyRequests:
		if f.RetryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(max(1, int((f.RetryAfter+time.Second-1)/time.Second))))
		}
		writeError(w, status, "TooManyRequests", "Please wait a short period of time before re-attempting the request.")
	case http.StatusServiceUnavailable:
		writeError(w, status, "ServiceUnavailable", "Service unavailable. Please try again later.")
	default:
		writeError(w, status, "ServerError", "A server error occurred.")
	}
	return true
}

// authorized checks the bearer token, answering 401 when it is missing,
// unknown or expired.
func (a *API) authorized(w http.ResponseWriter, r *http.Request) bool {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || tok == "" {
		writeError(w, http.StatusUnauthorized, "InvalidAccessToken", "Invalid access token.")
		return false
	}
	a.mu.RLock()
	exp, known := a.tokens[tok]
	a.mu.RUnlock()
	switch {
	case !known:
		writeError(w, http.StatusUnauthorized, "InvalidAccessToken", "Invalid access token.")
		return false
	case !a.cfg.Now().Before(exp):
		writeError(w, http.StatusUnauthorized, "ExpiredAccessToken", "Expired access token.")
		return false
	}
	return true
}

// oauthError is the token endpoint's error body: Dwolla's code and
// message, and the OAuth 2 error fields (RFC 6749 section 5.2).
type oauthError struct {
	dwolla.APIError
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

func (a *API) token(w http.ResponseWriter, r *http.Request) {
	key, secret, ok := r.BasicAuth()
	if err := r.ParseForm(); err != nil {
		writeJSON(w, http.StatusBadRequest, oauthError{dwolla.APIError{Code: "InvalidRequest", Message: "The body is not a form."}, "invalid_request", "The body is not a form."})
		return
	}
	if !ok { // client_secret_post, which some clients use
		key, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	if key != a.cfg.Key || secret != a.cfg.Secret {
		writeJSON(w, http.StatusUnauthorized, oauthError{dwolla.APIError{Code: "InvalidCredentials", Message: "Invalid application credentials."}, "invalid_client", "Invalid application credentials."})
		return
	}
	if gt := r.PostForm.Get("grant_type"); gt != "client_credentials" {
		writeJSON(w, http.StatusBadRequest, oauthError{dwolla.APIError{Code: "UnsupportedGrantType", Message: fmt.Sprintf("Unsupported grant_type %q; use client_credentials.", gt)}, "unsupported_grant_type", "Use grant_type=client_credentials."})
		return
	}
	var b [20]byte
	_, _ = rand.Read(b[:])
	tok := hex.EncodeToString(b[:])
	now := a.cfg.Now()
	a.mu.Lock()
	for t, exp := range a.tokens { // few tokens live at a time; keep the map small
		if !now.Before(exp) && len(a.tokens) > 64 {
			delete(a.tokens, t)
		}
	}
	a.tokens[tok] = now.Add(a.cfg.TokenTTL)
	a.mu.Unlock()
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, dwolla.Token{AccessToken: tok, TokenType: "bearer", ExpiresIn: int(a.cfg.TokenTTL / time.Second)})
}

// base is the root of the hrefs in answers to r.
func (a *API) base(r *http.Request) string {
	if a.cfg.BaseURL != "" {
		return a.cfg.BaseURL
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

func link(href, resourceType string) dwolla.Link {
	return dwolla.Link{Href: href, Type: dwolla.MediaType, ResourceType: resourceType}
}

// paging reads limit (default 25, at most 200) and offset.
func paging(w http.ResponseWriter, r *http.Request) (limit, offset int, ok bool) {
	limit, offset = 25, 0
	q := r.URL.Query()
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			writeValidation(w, "/limit", "limit must be a whole number from 1 to 200.")
			return 0, 0, false
		}
		limit = min(n, 200)
	}
	if s := q.Get("offset"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			writeValidation(w, "/offset", "offset must be a whole number, 0 or more.")
			return 0, 0, false
		}
		offset = n
	}
	return limit, offset, true
}

// pageLinks are the self, first, last and (while more remain) next links
// of a page of total items at path.
func pageLinks(path string, extra url.Values, limit, offset, total int, resourceType string) dwolla.HALLinks {
	href := func(off int) string {
		v := url.Values{}
		for k, vs := range extra {
			v[k] = vs
		}
		v.Set("limit", strconv.Itoa(limit))
		v.Set("offset", strconv.Itoa(off))
		return path + "?" + v.Encode()
	}
	last := 0
	if total > 0 {
		last = (total - 1) / limit * limit
	}
	l := dwolla.HALLinks{
		"self":  link(href(offset), resourceType),
		"first": link(href(0), resourceType),
		"last":  link(href(last), resourceType),
	}
	if offset+limit < total {
		l["next"] = link(href(offset+limit), resourceType)
	}
	if offset > 0 {
		l["prev"] = link(href(max(0, offset-limit)), resourceType)
	}
	return l
}

// listEvents serves GET /events: newest first, within the 30-day horizon.
func (a *API) listEvents(w http.ResponseWriter, r *http.Request) {
	limit, offset, ok := paging(w, r)
	if !ok {
		return
	}
	horizon := a.cfg.Now().Add(-EventHorizon)
	var page dwolla.EventsPage
	a.mu.RLock()
	cut := sort.Search(len(a.events), func(i int) bool { return !a.events[i].Created.Before(horizon) })
	total := len(a.events) - cut
	page.Embedded.Events = make([]json.RawMessage, 0, max(0, min(limit, total-offset)))
	for i := len(a.events) - 1 - offset; i >= cut && len(page.Embedded.Events) < limit; i-- {
		page.Embedded.Events = append(page.Embedded.Events, a.events[i].Body)
	}
	a.mu.RUnlock()
	page.Total = total
	page.Links = pageLinks(a.base(r)+"/events", nil, limit, offset, total, "event")
	writeJSON(w, http.StatusOK, &page)

	if n := a.cfg.Faults.InsertWhilePaging; n > 0 {
		a.mu.Lock()
		k := min(n, len(a.held))
		release := a.held[:k:k]
		a.held = a.held[k:]
		a.addLocked(release)
		a.mu.Unlock()
	}
}

// getEvent serves GET /events/{id}: the webhook body itself.
func (a *API) getEvent(w http.ResponseWriter, r *http.Request) {
	a.mu.RLock()
	ev := a.byID[strings.ToLower(r.PathValue("id"))]
	a.mu.RUnlock()
	if ev == nil {
		writeError(w, http.StatusNotFound, "NotFound", "Application event not found")
		return
	}
	w.Header().Set("Content-Type", dwolla.MediaType)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(ev.Body)
}

func (a *API) subscription(r *http.Request) dwolla.Subscription {
	base := a.base(r)
	self := base + "/webhook-subscriptions/" + a.cfg.SubscriptionID
	a.mu.RLock()
	paused := a.paused
	a.mu.RUnlock()
	return dwolla.Subscription{
		Links: dwolla.HALLinks{
			"self":     link(self, "webhook-subscription"),
			"webhooks": link(self+"/webhooks", "webhook"),
		},
		ID: a.cfg.SubscriptionID, URL: a.cfg.Deliver.URL, Paused: paused, Created: a.created,
	}
}

func (a *API) listSubscriptions(w http.ResponseWriter, r *http.Request) {
	var p dwolla.SubscriptionsPage
	p.Links = dwolla.HALLinks{"self": link(a.base(r)+"/webhook-subscriptions", "webhook-subscription")}
	p.Embedded.Subscriptions = []dwolla.Subscription{a.subscription(r)}
	p.Total = 1
	writeJSON(w, http.StatusOK, &p)
}

func (a *API) getSubscription(w http.ResponseWriter, r *http.Request) {
	if !strings.EqualFold(r.PathValue("id"), a.cfg.SubscriptionID) {
		writeError(w, http.StatusNotFound, "NotFound", "Webhook subscription not found.")
		return
	}
	writeJSON(w, http.StatusOK, a.subscription(r))
}

// listWebhooks serves GET /webhook-subscriptions/{id}/webhooks: newest
// first (by first attempt), filtered by resourceId and by the UTC date of
// the first attempt, startDate and endDate both included.
func (a *API) listWebhooks(w http.ResponseWriter, r *http.Request) {
	if !strings.EqualFold(r.PathValue("id"), a.cfg.SubscriptionID) {
		writeError(w, http.StatusNotFound, "NotFound", "Webhook subscription not found.")
		return
	}
	limit, offset, ok := paging(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	extra := url.Values{}
	var from, to time.Time
	for _, d := range []struct {
		name string
		t    *time.Time
		add  time.Duration
	}{{"startDate", &from, 0}, {"endDate", &to, 24 * time.Hour}} {
		s := q.Get(d.name)
		if s == "" {
			continue
		}
		t, err := time.Parse(time.DateOnly, s)
		if err != nil {
			writeValidation(w, "/"+d.name, d.name+" must be a date, YYYY-MM-DD.")
			return
		}
		*d.t = t.Add(d.add)
		extra.Set(d.name, s)
	}
	rid := strings.ToLower(q.Get("resourceId"))
	if rid != "" {
		extra.Set("resourceId", q.Get("resourceId"))
	}

	base := a.base(r)
	var p dwolla.WebhooksPage
	a.mu.RLock()
	list := a.webhooks
	if rid != "" {
		list = a.hooksByRs[rid]
	}
	if !from.IsZero() || !to.IsZero() {
		// A scan: webhooks are in the order of their first attempts, whose
		// times need not be monotonic.
		var kept []*webhook
		for _, h := range list {
			if (from.IsZero() || !h.at.Before(from)) && (to.IsZero() || h.at.Before(to)) {
				kept = append(kept, h)
			}
		}
		list = kept
	}
	total := len(list)
	p.Embedded.Webhooks = make([]dwolla.Webhook, 0, max(0, min(limit, total-offset)))
	for i := total - 1 - offset; i >= 0 && len(p.Embedded.Webhooks) < limit; i-- {
		p.Embedded.Webhooks = append(p.Embedded.Webhooks, a.webhookJSON(base, list[i]))
	}
	a.mu.RUnlock()
	p.Total = total
	p.Links = pageLinks(base+"/webhook-subscriptions/"+a.cfg.SubscriptionID+"/webhooks", extra, limit, offset, total, "webhook")
	writeJSON(w, http.StatusOK, &p)
}

// webhookJSON renders h; a.mu must be held.
func (a *API) webhookJSON(base string, h *webhook) dwolla.Webhook {
	self := base + "/webhooks/" + h.id
	out := dwolla.Webhook{
		Links: dwolla.HALLinks{
			"self":         link(self, "webhook"),
			"subscription": link(base+"/webhook-subscriptions/"+a.cfg.SubscriptionID, "webhook-subscription"),
			"retry":        link(self+"/retries", "retry"),
			"event":        link(base+"/events/"+h.ev.ID, "event"),
		},
		ID: h.id, Topic: h.ev.Topic, AccountID: a.account, EventID: h.ev.ID, SubscriptionID: a.cfg.SubscriptionID,
		Attempts: make([]dwolla.Attempt, 0, len(h.attempts)),
	}
	body := string(h.ev.Body)
	for i, at := range h.attempts {
		sent, answered := at.Sent.UTC(), at.Answered.UTC()
		var respHeaders []dwolla.Header
		for _, name := range slices.Sorted(maps.Keys(at.Header)) {
			for _, v := range at.Header[name] {
				respHeaders = append(respHeaders, dwolla.Header{Name: name, Value: v})
			}
		}
		respBody := string(at.Body)
		if at.Err != nil {
			respBody = errString(at.Err)
		}
		out.Attempts = append(out.Attempts, dwolla.Attempt{
			ID: uuid.NewSHA1(apiNamespace, fmt.Appendf(nil, "attempt/%s/%d", h.id, i)).String(),
			Request: dwolla.AttemptRequest{
				Timestamp: &sent, URL: at.URL, Body: body,
				Headers: []dwolla.Header{
					{Name: "Content-Type", Value: "application/json"},
					{Name: "User-Agent", Value: UserAgent},
					{Name: dwolla.TopicHeader, Value: h.ev.Topic},
					{Name: dwolla.SignatureHeader, Value: at.Signature},
				},
			},
			Response: dwolla.AttemptResponse{Timestamp: &answered, Headers: respHeaders, StatusCode: at.StatusCode, Body: respBody},
		})
	}
	// Newest attempt first, as Dwolla lists them.
	slices.Reverse(out.Attempts)
	return out
}

func (a *API) getWebhook(w http.ResponseWriter, r *http.Request) {
	a.mu.RLock()
	h := a.hooksByID[strings.ToLower(r.PathValue("id"))]
	var out dwolla.Webhook
	if h != nil {
		out = a.webhookJSON(a.base(r), h)
	}
	a.mu.RUnlock()
	if h == nil {
		writeError(w, http.StatusNotFound, "NotFound", "Webhook not found.")
		return
	}
	writeJSON(w, http.StatusOK, &out)
}

// retryWebhook serves POST /webhooks/{id}/retries. Unlike Dwolla, which
// answers first and sends later, it sends before it answers, so the new
// attempt is in the webhook when the client reads it next.
func (a *API) retryWebhook(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	h := a.hooksByID[strings.ToLower(r.PathValue("id"))]
	var rt retryRecord
	var ev Event
	if h != nil {
		rt = retryRecord{id: uuid.NewSHA1(apiNamespace, fmt.Appendf(nil, "retry/%s/%d", h.id, len(h.retries))).String(), at: a.cfg.Now().UTC()}
		h.retries = append(h.retries, rt)
		ev = h.ev
	}
	a.mu.Unlock()
	if h == nil {
		writeError(w, http.StatusNotFound, "NotFound", "Webhook not found.")
		return
	}
	if a.sender != nil {
		// Not the request's context: a client giving up does not cancel
		// Dwolla's delivery. The sender's client bounds it (10 s).
		if _, err := a.sender.Deliver(context.WithoutCancel(r.Context()), ev); err != nil {
			a.cfg.Logger.Warn("sim: API retry of a webhook got no answer", "webhook_id", h.id, "event_id", ev.ID, "error", err)
		}
	}
	w.Header().Set("Location", a.base(r)+"/webhooks/"+h.id+"/retries/"+rt.id)
	w.WriteHeader(http.StatusCreated)
}

// statusOf is the status a resource has after an event of topic.
func statusOf(topic string) string {
	_, status := dwolla.StatusAfter(topic)
	return status
}

func (a *API) getResource(w http.ResponseWriter, r *http.Request, collection string) {
	id := strings.ToLower(r.PathValue("id"))
	a.mu.RLock()
	rs := a.resources[id]
	var out dwolla.Resource
	if rs != nil && rs.collection == collection {
		out = dwolla.Resource{ID: id, Status: statusOf(rs.last.Topic), Created: rs.created}
	}
	a.mu.RUnlock()
	if out.ID == "" {
		writeError(w, http.StatusNotFound, "NotFound", "Resource not found.")
		return
	}
	out.Links = dwolla.HALLinks{"self": link(a.base(r)+"/"+collection+"/"+id, strings.TrimSuffix(collection, "s"))}
	writeJSON(w, http.StatusOK, &out)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "sim: encode answer: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", dwolla.MediaType)
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, dwolla.APIError{Code: code, Message: msg})
}

// writeValidation answers Dwolla's 400 ValidationError with one item.
func writeValidation(w http.ResponseWriter, path, msg string) {
	type item struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Path    string `json:"path"`
	}
	var body struct {
		dwolla.APIError
		Embedded struct {
			Errors []item `json:"errors"`
		} `json:"_embedded"`
	}
	body.Code, body.Message = "ValidationError", "Validation error(s) present. See embedded errors list for more details."
	body.Embedded.Errors = []item{{Code: "Invalid", Message: msg, Path: path}}
	writeJSON(w, http.StatusBadRequest, &body)
}
