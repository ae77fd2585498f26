package apiclient

import (
	"context"
	"fmt"
	"net/url"
	"time"
)

// The routes of journeys (docs/api.md).

// setRange sets from and to when they are given.
func setRange(v url.Values, from, to time.Time) {
	if !from.IsZero() {
		v.Set("from", from.UTC().Format(time.RFC3339Nano))
	}
	if !to.IsZero() {
		v.Set("to", to.UTC().Format(time.RFC3339Nano))
	}
}

// Conversion is a share with its 95% Wilson interval.
type Conversion struct {
	Rate float64 `json:"rate"`
	Low  float64 `json:"low"`
	High float64 `json:"high"`
}

// FunnelStep is one step of a funnel.
type FunnelStep struct {
	Step          string     `json:"step"`
	Optional      bool       `json:"optional"`
	Reached       int64      `json:"reached"`
	Previous      string     `json:"previous"`
	FromPrevious  Conversion `json:"from_previous"`
	Overall       Conversion `json:"overall"`
	MedianSeconds *float64   `json:"median_seconds_from_previous"`
	P90Seconds    *float64   `json:"p90_seconds_from_previous"`
	InFlight      int64      `json:"in_flight"`
	Abandoned     int64      `json:"abandoned"`
	Completed     int64      `json:"completed"`
	Failed        int64      `json:"failed"`
}

// Funnel is GET /api/v1/journeys/{name}/funnel: how the cohort that
// entered in [From, To) (whole UTC days) went through the steps.
type Funnel struct {
	Journey    string       `json:"journey"`
	EntryTopic string       `json:"entry_topic"`
	From       time.Time    `json:"from"`
	To         time.Time    `json:"to"`
	Entered    int64        `json:"entered"`
	InProgress int64        `json:"in_progress"`
	Completed  int64        `json:"completed"`
	Failed     int64        `json:"failed"`
	Abandoned  int64        `json:"abandoned"`
	Steps      []FunnelStep `json:"steps"`
}

// Funnels reads journey's funnel for the cohort that entered in the range;
// with byEntryTopic, one funnel per entry topic.
func (c *Client) Funnels(ctx context.Context, journey string, from, to time.Time, byEntryTopic bool) ([]Funnel, error) {
	v := url.Values{}
	setRange(v, from, to)
	path := "/api/v1/journeys/" + url.PathEscape(journey) + "/funnel"
	if !byEntryTopic {
		var f Funnel
		if err := c.get(ctx, path, v, &f); err != nil {
			return nil, err
		}
		return []Funnel{f}, nil
	}
	v.Set("by", "entry_topic")
	var out struct {
		Funnels []Funnel `json:"funnels"`
	}
	err := c.get(ctx, path, v, &out)
	return out.Funnels, err
}

// InstanceSummary is one journey instance as listed.
type InstanceSummary struct {
	Journey     string     `json:"journey"`
	Subject     string     `json:"subject"`
	Status      string     `json:"status"`
	CurrentStep string     `json:"current_step"`
	EntryTopic  string     `json:"entry_topic"`
	EnteredAt   time.Time  `json:"entered_at"`
	LastAt      time.Time  `json:"last_progress_at"`
	Deadline    *time.Time `json:"deadline"`
	AbandonedAt *time.Time `json:"abandoned_at"`
	Conflict    string     `json:"conflict"`
}

// InstancesParams selects GET /api/v1/journeys/{name}/instances.
type InstancesParams struct {
	Journey, Status string
	From, To        time.Time
	Limit           int // instances in all, over as many pages as it takes
}

// Instances reads up to p.Limit instances, the latest to enter first,
// following the API's cursor; more says whether the listing went on.
func (c *Client) Instances(ctx context.Context, p InstancesParams) (out []InstanceSummary, more bool, err error) {
	cursor := ""
	for len(out) < p.Limit {
		v := url.Values{}
		if p.Status != "" {
			v.Set("status", p.Status)
		}
		setRange(v, p.From, p.To)
		v.Set("limit", fmt.Sprint(min(p.Limit-len(out), 1000)))
		if cursor != "" {
			v.Set("cursor", cursor)
		}
		var page struct {
			Instances  []InstanceSummary `json:"instances"`
			NextCursor *string           `json:"next_cursor"`
		}
		if err := c.get(ctx, "/api/v1/journeys/"+url.PathEscape(p.Journey)+"/instances", v, &page); err != nil {
			return nil, false, err
		}
		out = append(out, page.Instances...)
		more = page.NextCursor != nil && *page.NextCursor != ""
		if !more || len(page.Instances) == 0 {
			break
		}
		cursor = *page.NextCursor
	}
	return out, more, nil
}

// InstanceStep is one step of an instance, with when it was reached.
type InstanceStep struct {
	Step      string     `json:"step"`
	ReachedAt *time.Time `json:"reached_at"`
	EventID   string     `json:"event_id"`
}

// InstanceEvent is a stored event that built an instance.
type InstanceEvent struct {
	ID       string    `json:"id"`
	Topic    string    `json:"topic"`
	Created  time.Time `json:"created"`
	Received time.Time `json:"received"`
}

// InstanceRecord is what happened to an instance (abandoned, unabandoned,
// conflict).
type InstanceRecord struct {
	Kind   string    `json:"kind"`
	Step   string    `json:"step"`
	Detail string    `json:"detail"`
	At     time.Time `json:"at"`
}

// Instance is GET /api/v1/journeys/{name}/instances/{subject}.
type Instance struct {
	InstanceSummary
	Steps   []InstanceStep   `json:"steps"`
	Events  []InstanceEvent  `json:"events"`
	Records []InstanceRecord `json:"records"`
}

// Instance reads one instance in full.
func (c *Client) Instance(ctx context.Context, journey, subject string) (Instance, error) {
	var in Instance
	err := c.get(ctx, "/api/v1/journeys/"+url.PathEscape(journey)+"/instances/"+url.PathEscape(subject), nil, &in)
	return in, err
}
