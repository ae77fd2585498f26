package apiclient

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"time"
)

// The routes of the anomaly detector, the forecaster and the alert
// evaluator (docs/api.md).

// Score is one scored window of GET /api/v1/anomalies.
type Score struct {
	Series   string    `json:"series"`
	Start    time.Time `json:"start"`
	Window   string    `json:"window"`
	Revision int32     `json:"revision"`
	Value    float64   `json:"value"`
	Expected *float64  `json:"expected"`
	Low      *float64  `json:"low"`
	High     *float64  `json:"high"`
	Score    float64   `json:"score"`
	Anomaly  bool      `json:"anomaly"`
	Reason   string    `json:"reason"`
}

// AnomaliesParams selects scored windows.
type AnomaliesParams struct {
	Series   string
	From, To time.Time
	MinScore float64
	All      bool // every scored window, not the anomalies only
	Limit    int  // windows in all, over as many pages as it takes
}

// Anomalies reads up to p.Limit scored windows, newest first, following
// the API's cursor; more says whether the listing went on.
func (c *Client) Anomalies(ctx context.Context, p AnomaliesParams) (out []Score, more bool, err error) {
	cursor := ""
	for len(out) < p.Limit {
		v := url.Values{}
		if p.Series != "" {
			v.Set("series", p.Series)
		}
		setRange(v, p.From, p.To)
		if p.MinScore > 0 {
			v.Set("min_score", strconv.FormatFloat(p.MinScore, 'g', -1, 64))
		}
		if p.All {
			v.Set("all", "true")
		}
		v.Set("limit", fmt.Sprint(min(p.Limit-len(out), 1000)))
		if cursor != "" {
			v.Set("cursor", cursor)
		}
		var page struct {
			Anomalies  []Score `json:"anomalies"`
			NextCursor *string `json:"next_cursor"`
		}
		if err := c.get(ctx, "/api/v1/anomalies", v, &page); err != nil {
			return nil, false, err
		}
		out = append(out, page.Anomalies...)
		more = page.NextCursor != nil && *page.NextCursor != ""
		if !more || len(page.Anomalies) == 0 {
			break
		}
		cursor = *page.NextCursor
	}
	return out, more, nil
}

// ForecastPoint is one window ahead with its intervals.
type ForecastPoint struct {
	Start    time.Time `json:"start"`
	Expected float64   `json:"expected"`
	Low80    float64   `json:"low_80"`
	High80   float64   `json:"high_80"`
	Low95    float64   `json:"low_95"`
	High95   float64   `json:"high_95"`
}

// Forecast is one watched series instance's forecast.
type Forecast struct {
	ForecastHead
	Learnt      int             `json:"windows_learnt"`
	LearntUntil time.Time       `json:"learnt_until"`
	Points      []ForecastPoint `json:"points"`
	Note        string          `json:"note"`
}

// Forecasts reads the forecasts of series (an instance or a series' name)
// over horizon (0: the API's default).
func (c *Client) Forecasts(ctx context.Context, series string, horizon time.Duration) ([]Forecast, error) {
	v := url.Values{}
	if series != "" {
		v.Set("series", series)
	}
	if horizon > 0 {
		v.Set("horizon", horizon.String())
	}
	var out struct {
		Forecasts []Forecast `json:"forecasts"`
	}
	err := c.get(ctx, "/api/v1/forecasts", v, &out)
	return out.Forecasts, err
}

// Alert is one alert of GET /api/v1/alerts.
type Alert struct {
	Fingerprint   string            `json:"fingerprint"`
	Rule          string            `json:"rule"`
	Severity      string            `json:"severity"`
	State         string            `json:"state"`
	Labels        map[string]string `json:"labels"`
	Value         *float64          `json:"value"`
	Op            string            `json:"op"`
	Threshold     *float64          `json:"threshold"`
	Window        string            `json:"window"`
	Summary       string            `json:"summary"`
	Description   string            `json:"description"`
	RunbookURL    string            `json:"runbook_url"`
	ActiveSince   *time.Time        `json:"active_since"`
	FiringSince   *time.Time        `json:"firing_since"`
	ResolvedAt    *time.Time        `json:"resolved_at"`
	LastEvaluated *time.Time        `json:"last_evaluated"`
	AckedBy       string            `json:"acked_by"`
	SilencedBy    []string          `json:"silenced_by"`
}

// Alerts lists the alerts of a state (firing, resolved or all).
func (c *Client) Alerts(ctx context.Context, state string, limit int) ([]Alert, error) {
	var out struct {
		Alerts []Alert `json:"alerts"`
	}
	err := c.get(ctx, "/api/v1/alerts", url.Values{"state": {state}, "limit": {fmt.Sprint(limit)}}, &out)
	return out.Alerts, err
}

// Matcher is one matcher of a silence.
type Matcher struct {
	Name  string `json:"name"`
	Type  string `json:"type"`
	Value string `json:"value"`
}

// Silence is one silence of GET /api/v1/silences.
type Silence struct {
	ID        string    `json:"id"`
	Matchers  []Matcher `json:"matchers"`
	StartsAt  time.Time `json:"starts_at"`
	EndsAt    time.Time `json:"ends_at"`
	CreatedBy string    `json:"created_by"`
	Comment   string    `json:"comment"`
	Status    string    `json:"status"`
}

// Silences lists the silences not expired yet, and with expired those of
// the last 30 days.
func (c *Client) Silences(ctx context.Context, expired bool) ([]Silence, error) {
	v := url.Values{}
	if expired {
		v.Set("all", "true")
	}
	var out struct {
		Silences []Silence `json:"silences"`
	}
	err := c.get(ctx, "/api/v1/silences", v, &out)
	return out.Silences, err
}

// Notification is one entry of the notification log.
type Notification struct {
	ID           string     `json:"id"`
	Target       string     `json:"target"`
	Kind         string     `json:"kind"`
	GroupKey     string     `json:"group_key"`
	Status       string     `json:"status"`
	Fingerprints []string   `json:"fingerprints"`
	CreatedAt    time.Time  `json:"created_at"`
	Attempts     int        `json:"attempts"`
	DeliveredAt  *time.Time `json:"delivered_at"`
	GaveUpAt     *time.Time `json:"gave_up_at"`
	LastError    string     `json:"last_error"`
}

// Notifications reads the latest notifications, newest first.
func (c *Client) Notifications(ctx context.Context, limit int) ([]Notification, error) {
	var out struct {
		Notifications []Notification `json:"notifications"`
	}
	err := c.get(ctx, "/api/v1/alerts/notifications", url.Values{"limit": {fmt.Sprint(limit)}}, &out)
	return out.Notifications, err
}
