package dwolla

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/google/uuid"
	"github.com/sony/gobreaker/v2"
	"golang.org/x/time/rate"
)

// The client of Dwolla's API (../shared/reference/dwolla.md, section 4):
// OAuth client credentials, the events feed, webhook subscriptions and
// their delivery records, webhook retries and the resources events point
// at. It is what reconciliation and journey repair read Dwolla through;
// it does not create or change subscriptions.
//
// Every request waits on a client-side rate limit, goes through a circuit
// breaker, and is retried on its own: 5xx answers and transport errors
// with exponential backoff and full jitter, 429s as Dwolla says (or
// doubling waits) until Dwolla's five-minute volume lockout would be
// outlasted, a 401 once with a fresh token.

// Errors a caller can test for with errors.Is.
var (
	// ErrNotFound is a 404: the event, webhook or resource does not exist
	// (or is older than Dwolla's 30 days).
	ErrNotFound = errors.New("not found at Dwolla")
	// ErrRateLimited is Dwolla answering 429 for longer than the client
	// waits (ClientConfig.LockoutMax).
	ErrRateLimited = errors.New("rate limited by Dwolla")
	// ErrUnavailable is Dwolla not answering usefully: 5xx answers or
	// transport errors on every attempt, or the circuit breaker open after
	// such failures.
	ErrUnavailable = errors.New("Dwolla API unavailable")
)

// ClientConfig configures a Client. Zero fields take the defaults named.
type ClientConfig struct {
	// BaseURL is the API root, ProductionAPI by default (SandboxAPI, or a
	// fake in tests). Requests and followed links never leave its
	// scheme and host: the bearer token goes nowhere else.
	BaseURL string
	// Key and Secret are the application's OAuth client credentials.
	Key, Secret string
	// HTTP sends the requests; by default a client with a 30s timeout.
	// Redirects are never followed (Dwolla answers plain HTTP with 302).
	HTTP *http.Client
	// Rate and Burst limit the requests this client sends, 10/s with a
	// burst of 10 by default.
	Rate  float64
	Burst int
	// MaxAttempts bounds the attempts of one request that fail with a 5xx
	// answer or a transport error (6 by default). 429s are bounded by
	// LockoutMax instead, and a 401 gets one extra attempt.
	MaxAttempts int
	// BackoffBase and BackoffMax shape the wait between such attempts:
	// a random duration up to min(BackoffMax, BackoffBase·2^(n-1))
	// (full jitter), 500ms and 30s by default.
	BackoffBase, BackoffMax time.Duration
	// RateLimitWait is the first wait after a 429 without Retry-After
	// (5s by default); it doubles on each further 429.
	RateLimitWait time.Duration
	// LockoutMax bounds the total time one request waits on 429s, 5m by
	// default: Dwolla's volume lockout lasts five minutes. Past it, the
	// request fails with ErrRateLimited.
	LockoutMax time.Duration
	// BreakerFailures consecutive failed requests (after their retries)
	// open the circuit breaker for BreakerOpen; 5 and 30s by default.
	BreakerFailures uint32
	BreakerOpen     time.Duration
	// Now is the clock token expiry is judged by (time.Now by default).
	Now func() time.Time
	// Sleep waits between attempts; by default a timer, cut short by ctx.
	Sleep func(ctx context.Context, d time.Duration) error
	// Logger receives retries and token refreshes (slog.Default() by
	// default). It never receives the secret or a token.
	Logger *slog.Logger
}

// Defaults of ClientConfig.
const (
	DefaultHTTPTimeout     = 30 * time.Second
	DefaultRate            = 10
	DefaultBurst           = 10
	DefaultMaxAttempts     = 6
	DefaultBackoffBase     = 500 * time.Millisecond
	DefaultBackoffMax      = 30 * time.Second
	DefaultRateLimitWait   = 5 * time.Second
	DefaultLockoutMax      = 5 * time.Minute
	DefaultBreakerFailures = 5
	DefaultBreakerOpen     = 30 * time.Second
)

// maxBody bounds what is read of one answer. A page of 200 events is a
// few hundred kilobytes.
const maxBody = 32 << 20

// Client calls Dwolla's API. It is safe for concurrent use.
type Client struct {
	cfg     ClientConfig
	base    *url.URL
	http    *http.Client
	limiter *rate.Limiter
	breaker *gobreaker.CircuitBreaker[reply]
	log     *slog.Logger

	// tokenSem lets one goroutine at a time fetch a token; the others
	// wait for it (or their ctx) and then use what it fetched.
	tokenSem  chan struct{}
	token     string    // guarded by tokenSem
	refreshAt time.Time // guarded by tokenSem: when to fetch a new token
}

// NewClient checks cfg, fills in the defaults and returns a Client. It does
// not call Dwolla; the first request fetches the token.
func NewClient(cfg ClientConfig) (*Client, error) {
	cfg.BaseURL = cmp.Or(strings.TrimSpace(cfg.BaseURL), ProductionAPI)
	if cfg.Key == "" || cfg.Secret == "" {
		return nil, errors.New("dwolla client: the API key and secret are required; set HOOKSTREAM_DWOLLA_KEY and HOOKSTREAM_DWOLLA_SECRET")
	}
	base, err := url.Parse(strings.TrimRight(cfg.BaseURL, "/"))
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" || base.RawQuery != "" || base.Fragment != "" {
		return nil, fmt.Errorf("dwolla client: API base URL %q is not an absolute http(s) URL such as %s; check HOOKSTREAM_DWOLLA_API", cfg.BaseURL, ProductionAPI)
	}
	base.User = nil
	if cfg.Rate < 0 || cfg.Burst < 0 || cfg.MaxAttempts < 0 || cfg.BackoffBase < 0 || cfg.BackoffMax < 0 ||
		cfg.RateLimitWait < 0 || cfg.LockoutMax < 0 || cfg.BreakerOpen < 0 {
		return nil, errors.New("dwolla client: rate, burst, attempts and durations must not be negative")
	}
	cfg.Rate = cmp.Or(cfg.Rate, DefaultRate)
	cfg.Burst = cmp.Or(cfg.Burst, DefaultBurst)
	cfg.MaxAttempts = cmp.Or(cfg.MaxAttempts, DefaultMaxAttempts)
	cfg.BackoffBase = cmp.Or(cfg.BackoffBase, DefaultBackoffBase)
	cfg.BackoffMax = cmp.Or(cfg.BackoffMax, DefaultBackoffMax)
	cfg.RateLimitWait = cmp.Or(cfg.RateLimitWait, DefaultRateLimitWait)
	cfg.LockoutMax = cmp.Or(cfg.LockoutMax, DefaultLockoutMax)
	cfg.BreakerFailures = cmp.Or(cfg.BreakerFailures, DefaultBreakerFailures)
	cfg.BreakerOpen = cmp.Or(cfg.BreakerOpen, DefaultBreakerOpen)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Sleep == nil {
		cfg.Sleep = sleep
	}
	c := &Client{
		cfg:      cfg,
		base:     base,
		limiter:  rate.NewLimiter(rate.Limit(cfg.Rate), cfg.Burst),
		log:      cmp.Or(cfg.Logger, slog.Default()).With("component", "dwolla_client"),
		tokenSem: make(chan struct{}, 1),
	}
	// A copy, so the caller's client keeps its redirect policy: a redirect
	// could carry the bearer token elsewhere, and Dwolla only redirects
	// plain HTTP, which is a configuration mistake to report.
	hc := http.Client{Timeout: DefaultHTTPTimeout}
	if cfg.HTTP != nil {
		hc = *cfg.HTTP
	}
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	c.http = &hc
	c.breaker = gobreaker.NewCircuitBreaker[reply](gobreaker.Settings{
		Name:        "dwolla",
		MaxRequests: 1,
		Timeout:     cfg.BreakerOpen,
		ReadyToTrip: func(n gobreaker.Counts) bool { return n.ConsecutiveFailures >= cfg.BreakerFailures },
		// Only Dwolla not answering (usefully) is a failure; a 404, a
		// rejected request or a 429 lockout say it is up.
		IsSuccessful: func(err error) bool { return !errors.Is(err, ErrUnavailable) },
		IsExcluded: func(err error) bool {
			return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
		},
		OnStateChange: func(_ string, from, to gobreaker.State) {
			c.log.Warn("Dwolla API circuit breaker", "from", from.String(), "to", to.String())
		},
	})
	return c, nil
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// StatusError is an answer Dwolla gave that is not a success and is not
// retried (or no longer): the status and Dwolla's error code and message.
// A 404 is ErrNotFound and a 429 ErrRateLimited for errors.Is.
type StatusError struct {
	Method   string
	Endpoint string // a template such as /events/{id}
	Status   int
	APIError // Dwolla's code and message, empty when the body was not Dwolla's error
}

func (e *StatusError) Error() string {
	msg := fmt.Sprintf("dwolla: %s %s: HTTP %d", e.Method, e.Endpoint, e.Status)
	if e.Code != "" {
		msg += " " + e.Code
	}
	if e.Message != "" {
		msg += ": " + e.Message
	}
	return msg
}

// Is makes a 404 match ErrNotFound and a 429 ErrRateLimited.
func (e *StatusError) Is(target error) bool {
	return (target == ErrNotFound && e.Status == http.StatusNotFound) ||
		(target == ErrRateLimited && e.Status == http.StatusTooManyRequests)
}

// Events returns the first page of the events feed, newest first, with at
// most limit events (Dwolla's default of 25 when limit <= 0). Follow
// Links["next"] with EventsAt.
func (c *Client) Events(ctx context.Context, limit int) (EventsPage, error) {
	q := url.Values{}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var page EventsPage
	err := c.getJSON(ctx, "/events", c.path("/events", q), &page)
	return page, err
}

// EventsAt returns the events page at href, a _links.next of an earlier
// page. href must be on the configured API host.
func (c *Client) EventsAt(ctx context.Context, href string) (EventsPage, error) {
	var page EventsPage
	u, err := c.resolve("/events", href)
	if err != nil {
		return page, err
	}
	err = c.getJSON(ctx, "/events", u, &page)
	return page, err
}

// Event returns one event's JSON as Dwolla holds it; ParseEvent reads it.
// An unknown id is an error wrapping ErrNotFound.
func (c *Client) Event(ctx context.Context, id string) (json.RawMessage, error) {
	if id == "" {
		return nil, errors.New("dwolla: GET /events/{id}: empty event id")
	}
	var raw json.RawMessage
	if err := c.getJSON(ctx, "/events/{id}", c.path("/events/"+url.PathEscape(id), nil), &raw); err != nil {
		return nil, fmt.Errorf("event %s: %w", id, err)
	}
	return raw, nil
}

// Subscriptions returns every webhook subscription, following pages.
func (c *Client) Subscriptions(ctx context.Context) ([]Subscription, error) {
	const endpoint = "/webhook-subscriptions"
	var all []Subscription
	u := c.path(endpoint, nil)
	seen := map[string]bool{}
	for {
		seen[u.String()] = true
		var page SubscriptionsPage
		if err := c.getJSON(ctx, endpoint, u, &page); err != nil {
			return nil, err
		}
		all = append(all, page.Embedded.Subscriptions...)
		next := page.Links["next"].Href
		if next == "" || len(page.Embedded.Subscriptions) == 0 {
			return all, nil
		}
		var err error
		if u, err = c.resolve(endpoint, next); err != nil {
			return nil, err
		}
		if seen[u.String()] {
			return nil, fmt.Errorf("dwolla: GET %s: the next link %s points back at a page already read", endpoint, u.Redacted())
		}
	}
}

// WebhooksQuery filters GET /webhook-subscriptions/{id}/webhooks. Zero
// fields are left out.
type WebhooksQuery struct {
	Limit, Offset int
	// StartDate and EndDate are sent as their calendar dates (YYYY-MM-DD,
	// in the time's own location).
	StartDate, EndDate time.Time
	ResourceID         string // exact match
}

func (q WebhooksQuery) values() url.Values {
	v := url.Values{}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	if q.Offset > 0 {
		v.Set("offset", strconv.Itoa(q.Offset))
	}
	if !q.StartDate.IsZero() {
		v.Set("startDate", q.StartDate.Format(time.DateOnly))
	}
	if !q.EndDate.IsZero() {
		v.Set("endDate", q.EndDate.Format(time.DateOnly))
	}
	if q.ResourceID != "" {
		v.Set("resourceId", q.ResourceID)
	}
	return v
}

const webhooksEndpoint = "/webhook-subscriptions/{id}/webhooks"

// Webhooks returns a page of a subscription's delivery records (30 days
// are kept). Follow Links["next"] with WebhooksAt.
func (c *Client) Webhooks(ctx context.Context, subscriptionID string, q WebhooksQuery) (WebhooksPage, error) {
	var page WebhooksPage
	if subscriptionID == "" {
		return page, fmt.Errorf("dwolla: GET %s: empty subscription id", webhooksEndpoint)
	}
	u := c.path("/webhook-subscriptions/"+url.PathEscape(subscriptionID)+"/webhooks", q.values())
	if err := c.getJSON(ctx, webhooksEndpoint, u, &page); err != nil {
		return page, fmt.Errorf("subscription %s: %w", subscriptionID, err)
	}
	return page, nil
}

// WebhooksAt returns the webhooks page at href, a _links.next of an
// earlier page. href must be on the configured API host.
func (c *Client) WebhooksAt(ctx context.Context, href string) (WebhooksPage, error) {
	var page WebhooksPage
	u, err := c.resolve(webhooksEndpoint, href)
	if err != nil {
		return page, err
	}
	err = c.getJSON(ctx, webhooksEndpoint, u, &page)
	return page, err
}

// RetryWebhook asks Dwolla to send a webhook again and returns the retry's
// URL (the Location of the 201). The request carries an Idempotency-Key,
// so its own retries cannot make Dwolla send twice.
func (c *Client) RetryWebhook(ctx context.Context, webhookID string) (string, error) {
	const endpoint = "/webhooks/{id}/retries"
	if webhookID == "" {
		return "", fmt.Errorf("dwolla: POST %s: empty webhook id", endpoint)
	}
	rep, err := c.do(ctx, &request{
		method:   http.MethodPost,
		endpoint: endpoint,
		url:      c.path("/webhooks/"+url.PathEscape(webhookID)+"/retries", nil),
		idemKey:  uuid.NewString(),
	})
	if err != nil {
		return "", fmt.Errorf("webhook %s: %w", webhookID, err)
	}
	loc := rep.header.Get("Location")
	if loc == "" {
		return "", fmt.Errorf("dwolla: POST %s: webhook %s: HTTP %d without a Location header", endpoint, webhookID, rep.status)
	}
	return loc, nil
}

// Resource returns the customer, transfer or funding source at href, an
// absolute URL on the configured API host (an event's _links.resource) or
// a path such as /transfers/{id}.
func (c *Client) Resource(ctx context.Context, href string) (Resource, error) {
	var res Resource
	u, err := c.resolve("resource", href)
	if err != nil {
		return res, err
	}
	err = c.getJSON(ctx, c.template(u), u, &res)
	return res, err
}

// path is the URL of an escaped API path under the base URL.
func (c *Client) path(p string, q url.Values) *url.URL {
	s := strings.TrimRight(c.base.String(), "/") + p
	if len(q) > 0 {
		s += "?" + q.Encode()
	}
	u, err := url.Parse(s)
	if err != nil { // our paths are escaped: cannot happen
		panic(fmt.Sprintf("dwolla: bad API path %q: %v", p, err))
	}
	return u
}

// resolve turns a link into a URL, refusing any other scheme or host than
// the base URL's: the request would carry the bearer token there.
func (c *Client) resolve(endpoint, href string) (*url.URL, error) {
	href = strings.TrimSpace(href)
	if href == "" {
		return nil, fmt.Errorf("dwolla: GET %s: empty link", endpoint)
	}
	u, err := url.Parse(href)
	if err != nil {
		return nil, fmt.Errorf("dwolla: GET %s: link %q is not a URL: %w", endpoint, href, err)
	}
	if !u.IsAbs() && u.Host == "" && strings.HasPrefix(u.Path, "/") {
		abs := c.path(u.EscapedPath(), nil)
		abs.RawQuery = u.RawQuery
		return abs, nil
	}
	if !strings.EqualFold(u.Scheme, c.base.Scheme) || !strings.EqualFold(hostPort(u), hostPort(c.base)) {
		return nil, fmt.Errorf("dwolla: GET %s: refusing to follow link %s: it is not on the configured API host %s://%s (HOOKSTREAM_DWOLLA_API), and the request would carry the access token there",
			endpoint, u.Redacted(), c.base.Scheme, c.base.Host)
	}
	u.User = nil
	u.Fragment = ""
	return u, nil
}

// hostPort is a URL's host with the scheme's default port made explicit.
func hostPort(u *url.URL) string {
	if u.Port() != "" {
		return u.Host
	}
	port := "443"
	if strings.EqualFold(u.Scheme, "http") {
		port = "80"
	}
	return net.JoinHostPort(u.Hostname(), port)
}

// template names a resource path for metrics and errors, with ids (any
// segment that is not a lower-case word) replaced by {id}, so the label
// stays bounded.
func (c *Client) template(u *url.URL) string {
	p := strings.TrimPrefix(u.Path, strings.TrimRight(c.base.Path, "/"))
	segs := strings.Split(strings.Trim(p, "/"), "/")
	for i, s := range segs {
		word := s != "" && len(s) <= 32
		for _, r := range s {
			if (r < 'a' || r > 'z') && r != '-' {
				word = false
				break
			}
		}
		if !word {
			segs[i] = "{id}"
		}
	}
	return "/" + strings.Join(segs, "/")
}

// request is one API call, retried as a whole by do.
type request struct {
	method   string
	endpoint string // template, for metrics and errors
	url      *url.URL
	idemKey  string
}

// reply is one HTTP answer, read in full.
type reply struct {
	status int
	header http.Header
	body   []byte
}

// transportError is a request that got no answer (or an unreadable one):
// worth retrying.
type transportError struct{ err error }

func (e *transportError) Error() string { return e.err.Error() }
func (e *transportError) Unwrap() error { return e.err }

func (c *Client) getJSON(ctx context.Context, endpoint string, u *url.URL, out any) error {
	rep, err := c.do(ctx, &request{method: http.MethodGet, endpoint: endpoint, url: u})
	if err != nil {
		return err
	}
	if err := json.Unmarshal(rep.body, out); err != nil {
		return fmt.Errorf("dwolla: GET %s: HTTP %d with a body that is not the expected JSON: %w", endpoint, rep.status, err)
	}
	return nil
}

// do runs a request through the circuit breaker, with its retries inside:
// the breaker counts requests that failed after retrying.
func (c *Client) do(ctx context.Context, r *request) (reply, error) {
	rep, err := c.breaker.Execute(func() (reply, error) { return c.attempts(ctx, r) })
	if errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests) {
		return rep, fmt.Errorf("dwolla: %s %s: not calling Dwolla, the circuit breaker is open after %d consecutive failed requests (it tries again %s after opening): %w: %w",
			r.method, r.endpoint, c.cfg.BreakerFailures, c.cfg.BreakerOpen, ErrUnavailable, err)
	}
	return rep, err
}

// attempts sends a request until it succeeds or is not worth retrying.
func (c *Client) attempts(ctx context.Context, r *request) (reply, error) {
	var (
		failures   int           // 5xx answers and transport errors
		locked     time.Duration // waited on 429s
		rlWait     = c.cfg.RateLimitWait
		stale      string // a token Dwolla refused with 401
		refreshed  bool
		lastFailed error
	)
	for {
		rep, tok, err := c.once(ctx, r, stale)
		var wait time.Duration
		var reason string
		var te *transportError
		switch {
		case err == nil && rep.status >= 200 && rep.status < 300:
			return rep, nil
		case errors.As(err, &te):
			if ctx.Err() != nil {
				return reply{}, fmt.Errorf("dwolla: %s %s: %w", r.method, r.endpoint, ctx.Err())
			}
			failures++
			lastFailed = err
			if failures >= c.cfg.MaxAttempts {
				return reply{}, fmt.Errorf("dwolla: %s %s: giving up after %d failed attempts, last: %w: %w", r.method, r.endpoint, failures, ErrUnavailable, err)
			}
			reason, wait = "transport", c.backoff(failures)
		case err != nil:
			return reply{}, err
		case rep.status == http.StatusTooManyRequests:
			var ok bool
			wait, ok = c.retryAfter(rep.header)
			if !ok {
				wait = min(rlWait, c.cfg.LockoutMax-locked)
				rlWait *= 2
			}
			if wait <= 0 || locked+wait > c.cfg.LockoutMax {
				return reply{}, fmt.Errorf("dwolla: %s %s: still answered 429 after waiting %s in total (at most %s, Dwolla's volume lockout lasts 5 minutes); try again later or lower the request rate: %w",
					r.method, r.endpoint, locked, c.cfg.LockoutMax, c.statusError(r, rep))
			}
			locked += wait
			reason = "429"
		case rep.status >= 500:
			failures++
			lastFailed = c.statusError(r, rep)
			if failures >= c.cfg.MaxAttempts {
				return reply{}, fmt.Errorf("dwolla: %s %s: giving up after %d failed attempts, last: %w: %w", r.method, r.endpoint, failures, ErrUnavailable, lastFailed)
			}
			reason, wait = "5xx", c.backoff(failures)
		case rep.status == http.StatusUnauthorized && !refreshed:
			// The token expired early or was revoked: one fresh token,
			// one more try.
			refreshed, stale = true, tok
			reason = "401"
		case rep.status >= 300 && rep.status < 400:
			return reply{}, fmt.Errorf("dwolla: %s %s: HTTP %d redirect to %q, not followed; the API URL (HOOKSTREAM_DWOLLA_API) should be Dwolla's https URL",
				r.method, r.endpoint, rep.status, rep.header.Get("Location"))
		default:
			return reply{}, c.statusError(r, rep)
		}
		metrics.GetOrCreateCounter(`hookstream_dwolla_retries_total{reason="` + reason + `"}`).Inc()
		c.log.Warn("retrying Dwolla request", "method", r.method, "endpoint", r.endpoint, "reason", reason,
			"status", rep.status, "failures", failures, "wait", wait, "error", errString(lastFailed, err))
		if wait > 0 {
			if err := c.cfg.Sleep(ctx, wait); err != nil {
				return reply{}, fmt.Errorf("dwolla: %s %s: waiting %s to retry (%s): %w", r.method, r.endpoint, wait, reason, err)
			}
		}
	}
}

func errString(errs ...error) string {
	for _, err := range errs {
		if err != nil {
			return err.Error()
		}
	}
	return ""
}

// backoff is the wait after the n-th failure: full jitter up to
// min(BackoffMax, BackoffBase·2^(n-1)).
func (c *Client) backoff(n int) time.Duration {
	ceil := c.cfg.BackoffMax
	if n-1 < 62 {
		if d := c.cfg.BackoffBase << (n - 1); d > 0 && d < ceil {
			ceil = d
		}
	}
	if ceil <= 0 {
		return 0
	}
	return rand.N(ceil + 1)
}

// retryAfter reads Retry-After, in seconds or as an HTTP date. A value that
// is already past waits a second, so a confused server cannot spin us.
func (c *Client) retryAfter(h http.Header) (time.Duration, bool) {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0, false
	}
	var d time.Duration
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs > int64(math.MaxInt64/time.Second) {
			return time.Duration(math.MaxInt64), true
		}
		d = time.Duration(secs) * time.Second
	} else if at, err := http.ParseTime(v); err == nil {
		d = at.Sub(c.cfg.Now())
	} else {
		return 0, false
	}
	return max(d, time.Second), true
}

func (c *Client) statusError(r *request, rep reply) *StatusError {
	e := &StatusError{Method: r.method, Endpoint: r.endpoint, Status: rep.status}
	_ = json.Unmarshal(rep.body, &e.APIError) // a body that is not Dwolla's error leaves them empty
	return e
}

// once gets a token and sends the request once. A 429 or 5xx from the
// token endpoint comes back as the reply, to be retried like the call's.
func (c *Client) once(ctx context.Context, r *request, stale string) (reply, string, error) {
	tok, rep, err := c.accessToken(ctx, stale)
	if err != nil {
		return reply{}, "", fmt.Errorf("dwolla: %s %s: getting an access token: %w", r.method, r.endpoint, err)
	}
	if rep.status != 0 {
		return rep, "", nil
	}
	req, err := http.NewRequestWithContext(ctx, r.method, r.url.String(), nil)
	if err != nil {
		return reply{}, "", fmt.Errorf("dwolla: %s %s: %w", r.method, r.endpoint, err)
	}
	req.Header.Set("Accept", MediaType)
	req.Header.Set("Authorization", "Bearer "+tok)
	if r.method == http.MethodPost {
		req.Header.Set("Content-Type", MediaType)
	}
	if r.idemKey != "" {
		req.Header.Set("Idempotency-Key", r.idemKey)
	}
	rep, err = c.send(ctx, r.endpoint, req)
	var le *limitError
	switch {
	case errors.As(err, &le):
		err = fmt.Errorf("dwolla: %s %s: %w", r.method, r.endpoint, err)
	case err != nil:
		err = &transportError{fmt.Errorf("dwolla: %s %s: %w", r.method, r.endpoint, err)}
	}
	return rep, tok, err
}

// send waits on the rate limit, sends req and reads the answer, counting
// it. Its errors are transport errors, or the rate limit's wait ending.
func (c *Client) send(ctx context.Context, endpoint string, req *http.Request) (reply, error) {
	if err := c.limiter.Wait(ctx); err != nil {
		// Not a transport error: the wait outlasts ctx (or ctx ended).
		return reply{}, &limitError{fmt.Errorf("waiting for the client's own rate limit (%g requests/s, burst %d): %w", c.cfg.Rate, c.cfg.Burst, err)}
	}
	start := time.Now()
	resp, err := c.http.Do(req)
	status := "error"
	var rep reply
	if err == nil {
		rep = reply{status: resp.StatusCode, header: resp.Header}
		rep.body, err = io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
		resp.Body.Close()
		if err == nil && len(rep.body) > maxBody {
			err = fmt.Errorf("HTTP %d with a body over %d bytes", resp.StatusCode, maxBody)
		}
		if err == nil {
			status = strconv.Itoa(resp.StatusCode)
		} else {
			err = fmt.Errorf("reading the answer: %w", err)
		}
	}
	metrics.GetOrCreatePrometheusHistogram(`hookstream_dwolla_request_seconds{endpoint="` + endpoint + `"}`).UpdateDuration(start)
	metrics.GetOrCreateCounter(`hookstream_dwolla_requests_total{endpoint="` + endpoint + `",status="` + status + `"}`).Inc()
	if err != nil {
		return reply{}, redactURLError(err)
	}
	return rep, nil
}

// limitError is the client's own rate limit refusing to wait: final.
type limitError struct{ err error }

func (e *limitError) Error() string { return e.err.Error() }
func (e *limitError) Unwrap() error { return e.err }

// redactURLError drops the URL from a *url.Error: the endpoint already
// names the request, and a URL could carry credentials.
func redactURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}

// accessToken returns the cached token unless it is due for refresh or
// is stale (refused with 401), else fetches one; one goroutine fetches at a
// time and the others use its token. A 429 or 5xx of the token endpoint
// is returned as the reply.
func (c *Client) accessToken(ctx context.Context, stale string) (string, reply, error) {
	select {
	case c.tokenSem <- struct{}{}:
	case <-ctx.Done():
		return "", reply{}, ctx.Err()
	}
	defer func() { <-c.tokenSem }()
	if c.token != "" && c.token != stale && c.cfg.Now().Before(c.refreshAt) {
		return c.token, reply{}, nil
	}
	tok, rep, err := c.fetchToken(ctx)
	if err != nil || rep.status != 0 {
		return "", rep, err
	}
	c.token = tok.AccessToken
	lifetime := time.Duration(tok.ExpiresIn) * time.Second
	if lifetime <= 0 {
		lifetime = time.Hour // Dwolla's; a 401 corrects it if wrong
	}
	// Refresh when less than a minute or a tenth of the lifetime remains,
	// whichever is more, but use a short-lived token at least for half
	// of its life.
	margin := min(max(time.Minute, lifetime/10), lifetime/2)
	c.refreshAt = c.cfg.Now().Add(lifetime - margin)
	metrics.GetOrCreateCounter(`hookstream_dwolla_token_refreshes_total`).Inc()
	c.log.Debug("fetched a Dwolla access token", "expires_in", lifetime, "refresh_at", c.refreshAt)
	return c.token, reply{}, nil
}

// fetchToken asks POST /token for a token with the client credentials.
func (c *Client) fetchToken(ctx context.Context) (Token, reply, error) {
	const endpoint = "/token"
	var tok Token
	body := strings.NewReader(url.Values{"grant_type": {"client_credentials"}}.Encode())
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.path(endpoint, nil).String(), body)
	if err != nil {
		return tok, reply{}, fmt.Errorf("POST %s: %w", endpoint, err)
	}
	req.SetBasicAuth(c.cfg.Key, c.cfg.Secret)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", MediaType)
	rep, err := c.send(ctx, endpoint, req)
	var le *limitError
	switch {
	case errors.As(err, &le):
		return tok, reply{}, fmt.Errorf("POST %s: %w", endpoint, err)
	case err != nil:
		return tok, reply{}, &transportError{fmt.Errorf("POST %s: %w", endpoint, err)}
	case rep.status == http.StatusTooManyRequests || rep.status >= 500:
		return tok, rep, nil
	case rep.status == http.StatusOK || rep.status == http.StatusCreated:
		if err := json.Unmarshal(rep.body, &tok); err != nil || tok.AccessToken == "" {
			return Token{}, reply{}, fmt.Errorf("POST %s: HTTP %d without an access_token in the answer; is the API URL (HOOKSTREAM_DWOLLA_API) Dwolla's?", endpoint, rep.status)
		}
		return tok, reply{}, nil
	}
	// Dwolla answers bad credentials with OAuth's {"error": "invalid_client"}
	// or its own {"code", "message"}.
	var e struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
		APIError
	}
	_ = json.Unmarshal(rep.body, &e)
	detail := strings.TrimSpace(strings.Join([]string{e.Error, e.Description, e.Code, e.Message}, " "))
	if detail != "" {
		detail = " (" + detail + ")"
	}
	if rep.status == http.StatusBadRequest || rep.status == http.StatusUnauthorized || rep.status == http.StatusForbidden {
		return tok, reply{}, fmt.Errorf("POST %s: Dwolla refused the client credentials with HTTP %d%s; check HOOKSTREAM_DWOLLA_KEY and HOOKSTREAM_DWOLLA_SECRET, and that they belong to this environment (%s)",
			endpoint, rep.status, detail, c.base.Host)
	}
	return tok, reply{}, fmt.Errorf("POST %s: HTTP %d%s", endpoint, rep.status, detail)
}
