package dwolla

import (
	"encoding/json"
	"time"
)

// The shapes of Dwolla's API (../shared/reference/dwolla.md, section 4),
// shared by the client (client.go) and the simulator's fake API, so the
// two cannot drift apart. Only the fields hookstream reads are named; a
// page keeps each event's JSON as it came, since a recovered event is
// stored as that JSON.

// MediaType is the HAL media type every request accepts (Accept) and POST
// bodies may carry (Content-Type).
const MediaType = "application/vnd.dwolla.v1.hal+json"

// Production and sandbox API roots.
const (
	ProductionAPI = "https://api.dwolla.com"
	SandboxAPI    = "https://api-sandbox.dwolla.com"
)

// HALLinks are a resource's _links by relation (self, next, first, last,
// resource, customer, webhooks, retry, event, ...).
type HALLinks map[string]Link

// Token is the answer of POST /token (OAuth client credentials).
type Token struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"` // bearer
	ExpiresIn   int    `json:"expires_in"` // seconds, 3600 at Dwolla
}

// EventsPage is one page of GET /events: newest first, at most limit
// events from offset, _links.next while more remain.
type EventsPage struct {
	Links    HALLinks `json:"_links"`
	Embedded struct {
		Events []json.RawMessage `json:"events"` // each parses with ParseEvent
	} `json:"_embedded"`
	Total int `json:"total"`
}

// Subscription is a webhook subscription.
type Subscription struct {
	Links   HALLinks  `json:"_links"` // self, webhooks
	ID      string    `json:"id"`
	URL     string    `json:"url"`
	Paused  bool      `json:"paused"` // Dwolla pauses a subscription after 400 consecutive failures
	Created time.Time `json:"created"`
}

// SubscriptionsPage is GET /webhook-subscriptions.
type SubscriptionsPage struct {
	Links    HALLinks `json:"_links"`
	Embedded struct {
		Subscriptions []Subscription `json:"webhook-subscriptions"`
	} `json:"_embedded"`
	Total int `json:"total"`
}

// Webhook is one event's delivery to a subscription, with every attempt.
type Webhook struct {
	Links          HALLinks  `json:"_links"` // self, subscription, retry, event
	ID             string    `json:"id"`
	Topic          string    `json:"topic"`
	AccountID      string    `json:"accountId"`
	EventID        string    `json:"eventId"`
	SubscriptionID string    `json:"subscriptionId"`
	Attempts       []Attempt `json:"attempts"`
}

// Attempt is one delivery attempt of a webhook.
type Attempt struct {
	ID       string          `json:"id"`
	Request  AttemptRequest  `json:"request"`
	Response AttemptResponse `json:"response"`
}

// AttemptRequest is what Dwolla sent. Dwolla's reference names the time
// created and its examples timestamp: both are read (At).
type AttemptRequest struct {
	Timestamp *time.Time `json:"timestamp,omitempty"`
	Created   *time.Time `json:"created,omitempty"`
	URL       string     `json:"url"`
	Headers   []Header   `json:"headers"`
	Body      string     `json:"body"` // the exact signed payload
}

// AttemptResponse is what the subscriber answered.
type AttemptResponse struct {
	Timestamp  *time.Time `json:"timestamp,omitempty"`
	Created    *time.Time `json:"created,omitempty"`
	Headers    []Header   `json:"headers"`
	StatusCode int        `json:"statusCode"`
	Body       string     `json:"body"`
}

// At is when the request was sent.
func (r AttemptRequest) At() time.Time { return firstTime(r.Timestamp, r.Created) }

// At is when the answer came.
func (r AttemptResponse) At() time.Time { return firstTime(r.Timestamp, r.Created) }

func firstTime(ts ...*time.Time) time.Time {
	for _, t := range ts {
		if t != nil {
			return *t
		}
	}
	return time.Time{}
}

// Header is a request or response header of an attempt.
type Header struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// WebhooksPage is GET /webhook-subscriptions/{id}/webhooks.
type WebhooksPage struct {
	Links    HALLinks `json:"_links"`
	Embedded struct {
		Webhooks []Webhook `json:"webhooks"`
	} `json:"_embedded"`
	Total int `json:"total"`
}

// Resource is a customer, transfer or funding source, as far as journey
// repair reads it: its status.
type Resource struct {
	Links   HALLinks  `json:"_links"`
	ID      string    `json:"id"`
	Status  string    `json:"status"`
	Created time.Time `json:"created"`
}

// APIError is Dwolla's error body, for example
// {"code": "Too Many Requests", "message": "Please wait ..."}.
type APIError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}
