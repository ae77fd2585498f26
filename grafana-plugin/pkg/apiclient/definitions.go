package apiclient

import (
	"context"
	"net/url"
)

// JourneyStep is one step of a journey definition.
type JourneyStep struct {
	Name         string   `json:"name"`
	Topics       []string `json:"topics"`
	Optional     bool     `json:"optional"`
	AbandonAfter string   `json:"abandon_after,omitempty"`
}

// Journey is one journey definition of GET /api/v1/journeys.
type Journey struct {
	Name        string        `json:"name"`
	Description string        `json:"description,omitempty"`
	Subject     string        `json:"subject"`
	Steps       []JourneyStep `json:"steps"`
	Success     []string      `json:"success"`
	Failure     []string      `json:"failure"`
	Conflict    string        `json:"conflict"`
}

// Journeys reads the journey definitions the processors follow.
func (c *Client) Journeys(ctx context.Context) ([]Journey, error) {
	var out struct {
		Journeys []Journey `json:"journeys"`
	}
	err := c.get(ctx, "/api/v1/journeys", nil, &out)
	return out.Journeys, err
}

// ForecastHead is a forecast of GET /api/v1/forecasts without its points:
// which watched series instance it is.
type ForecastHead struct {
	Series string `json:"series"` // the instance: volume/family=transfer
	Metric string `json:"metric"`
	Window string `json:"window"`
	Method string `json:"method"`
}

// WatchedInstances lists every instance of every watched series, read from
// the forecasts route (the only one that names them all) with the shortest
// horizon, one window. A server that watches no series answers 404.
func (c *Client) WatchedInstances(ctx context.Context) ([]ForecastHead, error) {
	var out struct {
		Forecasts []ForecastHead `json:"forecasts"`
	}
	err := c.get(ctx, "/api/v1/forecasts", url.Values{"horizon": {"1m"}}, &out)
	return out.Forecasts, err
}
