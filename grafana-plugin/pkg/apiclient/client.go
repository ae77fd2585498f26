// Package apiclient is the plugin's client of hookstream's JSON API
// (docs/api.md): typed answers for the routes the datasource reads, and the
// API's problem details as errors that say what to fix. It knows nothing of
// Grafana; turning answers into frames is the plugin package's job.
package apiclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Client calls one hookstream API listener with one token.
type Client struct {
	base  *url.URL
	token string
	http  *http.Client
}

// New returns a client of the API at baseURL (the --api-addr listener, e.g.
// http://127.0.0.1:8081) sending token as a Bearer secret. hc carries the
// timeouts and middlewares; nil means http.DefaultClient.
func New(baseURL, token string, hc *http.Client) (*Client, error) {
	if strings.TrimSpace(baseURL) == "" {
		return nil, errors.New("the hookstream API URL is empty; set it to the API listener, e.g. http://127.0.0.1:8081 (hookstream serve --api-addr)")
	}
	u, err := url.Parse(strings.TrimRight(baseURL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("the hookstream API URL %q is not an http(s) URL such as http://127.0.0.1:8081", baseURL)
	}
	if hc == nil {
		hc = http.DefaultClient
	}
	return &Client{base: u, token: token, http: hc}, nil
}

// Error is an answer other than 2xx: the API's problem detail when it sent
// one (docs/api.md#errors).
type Error struct {
	Status int    `json:"status"`
	Type   string `json:"type"`
	Title  string `json:"title"`
	Detail string `json:"detail"`
	Param  string `json:"param"`
	Path   string `json:"-"`
}

func (e *Error) Error() string {
	detail := e.Detail
	if detail == "" {
		detail = http.StatusText(e.Status)
	}
	return fmt.Sprintf("hookstream API %s answered %d: %s", e.Path, e.Status, detail)
}

// StatusOf returns the HTTP status of an *Error in err's chain, 0 otherwise.
func StatusOf(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Status
	}
	return 0
}

// get reads path with query params into out.
func (c *Client) get(ctx context.Context, path string, params url.Values, out any) error {
	u := *c.base
	u.Path += path
	u.RawQuery = params.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return fmt.Errorf("build request for %s: %w", path, err)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach the hookstream API at %s: %w; check that hookstream runs with the api role and that the URL is its --api-addr", c.base, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("read the answer of %s: %w", path, err)
	}
	if resp.StatusCode/100 != 2 {
		e := &Error{Status: resp.StatusCode, Path: path}
		_ = json.Unmarshal(body, e) // a proxy's HTML page leaves the detail empty
		e.Status = resp.StatusCode
		return e
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("decode the answer of %s: %w; is %s a hookstream API?", path, err, c.base)
	}
	return nil
}

// Info is GET /api/v1/info.
type Info struct {
	Namespace string    `json:"namespace"`
	Scope     string    `json:"scope"`
	Time      time.Time `json:"time"`
	Token     string    `json:"token"`
	Version   string    `json:"version"`
}

// Info says who the token is and what answers.
func (c *Client) Info(ctx context.Context) (Info, error) {
	var i Info
	err := c.get(ctx, "/api/v1/info", nil, &i)
	return i, err
}

// Partition is one stream's state in Status.
type Partition struct {
	Partition int           `json:"partition"`
	Stream    string        `json:"stream"`
	Length    int64         `json:"length"`
	Pending   int64         `json:"pending"`
	Lag       int64         `json:"lag"`
	OldestAge time.Duration `json:"oldest_pending_age_ns"`
	Consumers int64         `json:"consumers"`
}

// Status is GET /api/v1/status (the parts the plugin shows).
type Status struct {
	Paused      bool                 `json:"paused"`
	Partitions  []Partition          `json:"partitions"`
	Total       Partition            `json:"total"`
	DLQOpen     int64                `json:"dlq_open"`
	DLQStream   int64                `json:"dlq_stream_length"`
	Processors  []json.RawMessage    `json:"processors"`
	Watermark   time.Time            `json:"event_watermark"`
	ClosedUntil map[string]time.Time `json:"windows_closed_until"`
	Errors      map[string]string    `json:"errors"`
	GeneratedAt time.Time            `json:"generated_at"`
}

// Status reads the pipeline's state.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var s Status
	err := c.get(ctx, "/api/v1/status", nil, &s)
	return s, err
}

// MetricsParams selects GET /api/v1/metrics; empty fields take the API's defaults.
type MetricsParams struct {
	Window, Metric, GroupBy, Filter, Basis string
	From, To                               time.Time
	NonEmpty                               bool
}

// Point is one window of one group.
type Point struct {
	Start time.Time `json:"start"`
	Group string    `json:"group"`
	Value float64   `json:"value"`
	Count int64     `json:"count"`
}

// Metrics is the answer of GET /api/v1/metrics.
type Metrics struct {
	Window string   `json:"window"`
	Basis  string   `json:"basis"`
	Metric string   `json:"metric"`
	Groups []string `json:"groups"`
	Points []Point  `json:"points"`
}

// Metrics reads one metric over the windows of one size.
func (c *Client) Metrics(ctx context.Context, p MetricsParams) (Metrics, error) {
	v := url.Values{}
	set := func(k, s string) {
		if s != "" {
			v.Set(k, s)
		}
	}
	set("window", p.Window)
	set("metric", p.Metric)
	set("group_by", p.GroupBy)
	set("filter", p.Filter)
	set("basis", p.Basis)
	if !p.From.IsZero() {
		v.Set("from", p.From.UTC().Format(time.RFC3339Nano))
	}
	if !p.To.IsZero() {
		v.Set("to", p.To.UTC().Format(time.RFC3339Nano))
	}
	if p.NonEmpty {
		v.Set("non_empty", "true")
	}
	var m Metrics
	err := c.get(ctx, "/api/v1/metrics", v, &m)
	return m, err
}

// MetricInfo describes one metric of the catalog.
type MetricInfo struct {
	Name        string `json:"name"`
	Unit        string `json:"unit"`
	Description string `json:"description"`
}

// Dimension is a dimension metrics can be grouped and filtered by, with the
// values seen in it since the catalog's ValuesSince.
type Dimension struct {
	Name   string   `json:"name"`
	Values []string `json:"values"`
}

// Catalog is GET /api/v1/metrics/catalog: what a metric query can ask for.
type Catalog struct {
	Metrics     []MetricInfo    `json:"metrics"`
	Windows     []string        `json:"windows"`
	Bases       json.RawMessage `json:"bases"`
	Dimensions  []Dimension     `json:"dimensions"`
	ValuesSince time.Time       `json:"values_since"`
}

// Catalog reads what a metric query can ask for. since bounds the dimension
// values the API collects; the plugin only needs the window sizes, so it
// passes a recent time to keep the answer cheap.
func (c *Client) Catalog(ctx context.Context, since time.Time) (Catalog, error) {
	var cat Catalog
	v := url.Values{}
	if !since.IsZero() {
		v.Set("since", since.UTC().Format(time.RFC3339))
	}
	err := c.get(ctx, "/api/v1/metrics/catalog", v, &cat)
	return cat, err
}

// Event is one stored event, without its body.
type Event struct {
	ID            string    `json:"id"`
	Topic         string    `json:"topic"`
	Family        string    `json:"family"`
	Outcome       string    `json:"outcome"`
	Terminal      bool      `json:"terminal"`
	ResourceType  string    `json:"resource_type"`
	ResourceID    string    `json:"resource_id"`
	CustomerID    string    `json:"customer_id"`
	CorrelationID string    `json:"correlation_id"`
	Created       time.Time `json:"created"`
	Received      time.Time `json:"received"`
	Source        string    `json:"source"`
}

// EventsParams selects GET /api/v1/events.
type EventsParams struct {
	Topics             []string
	Customer, Resource string
	From, To           time.Time
	Limit              int // events in all, over as many pages as it takes
}

// Events reads up to p.Limit stored events, newest first, following the
// API's cursor across pages.
func (c *Client) Events(ctx context.Context, p EventsParams) ([]Event, error) {
	var out []Event
	cursor := ""
	for len(out) < p.Limit {
		v := url.Values{}
		if len(p.Topics) > 0 {
			v.Set("topic", strings.Join(p.Topics, ","))
		}
		if p.Customer != "" {
			v.Set("customer", p.Customer)
		}
		if p.Resource != "" {
			v.Set("resource", p.Resource)
		}
		if !p.From.IsZero() {
			v.Set("from", p.From.UTC().Format(time.RFC3339Nano))
		}
		if !p.To.IsZero() {
			v.Set("to", p.To.UTC().Format(time.RFC3339Nano))
		}
		v.Set("limit", fmt.Sprint(min(p.Limit-len(out), 1000)))
		if cursor != "" {
			v.Set("cursor", cursor)
		}
		var page struct {
			Events     []Event `json:"events"`
			NextCursor *string `json:"next_cursor"`
		}
		if err := c.get(ctx, "/api/v1/events", v, &page); err != nil {
			return nil, err
		}
		out = append(out, page.Events...)
		if page.NextCursor == nil || *page.NextCursor == "" || len(page.Events) == 0 {
			break
		}
		cursor = *page.NextCursor
	}
	return out, nil
}

// CloseIdleConnections releases the client's idle connections.
func (c *Client) CloseIdleConnections() { c.http.CloseIdleConnections() }
