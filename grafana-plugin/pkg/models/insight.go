package models

import (
	"fmt"
	"slices"
	"time"
)

// Query types of the anomaly detector, the forecaster and the alert
// evaluator, and the template variables' query type.
const (
	QueryTypeAnomalies = "anomalies"
	QueryTypeForecast  = "forecast"
	QueryTypeAlerts    = "alerts"
	QueryTypeValues    = "values"
)

// Anomaly formats.
const (
	// FormatScores is one series per watched series instance: the score
	// of each window in [0, 1], and its value with the expected range.
	FormatScores = "scores"
	// FormatAnnotations is one row per anomaly: time, timeEnd, title,
	// text (the reason) and tags, what Grafana turns into annotations.
	FormatAnnotations = "annotations"
)

// MaxAnomalies bounds an anomalies query's rows.
const MaxAnomalies = 10000

// AnomaliesQuery is queryType "anomalies": the scored windows of the
// watched series whose windows start in the panel's time range.
type AnomaliesQuery struct {
	// Series is one watched series instance (volume/family=transfer), or a
	// watched series' name (volume, every group of it); empty for all.
	Series string `json:"series"`
	// Format is "scores" (the default, time series) or "annotations".
	Format string `json:"format"`
	// MinScore keeps the windows scored at least this (0 to 1); with
	// "annotations" only the anomalies are listed whatever it says.
	MinScore float64 `json:"minScore"`
	// Limit is how many scored windows at most, 1 to 10000; default 5000.
	Limit int `json:"limit"`
}

// Validate fills defaults and checks the ranges.
func (q *AnomaliesQuery) Validate() error {
	if q.Format == "" {
		q.Format = FormatScores
	}
	if q.Format != FormatScores && q.Format != FormatAnnotations {
		return fmt.Errorf("format: %q is not a format; use %q (time series) or %q", q.Format, FormatScores, FormatAnnotations)
	}
	if q.MinScore < 0 || q.MinScore > 1 {
		return fmt.Errorf("minScore: %g is out of range; scores are 0 to 1", q.MinScore)
	}
	if q.Limit == 0 {
		q.Limit = 5000
	}
	if q.Limit < 1 || q.Limit > MaxAnomalies {
		return fmt.Errorf("limit: %d is out of range; ask for 1 to %d scored windows", q.Limit, MaxAnomalies)
	}
	return nil
}

// ForecastQuery is queryType "forecast": a watched series' next windows
// with their 80% and 95% intervals, from where its closed windows end.
type ForecastQuery struct {
	// Series is one watched series instance or a watched series' name
	// (one forecast per group); required.
	Series string `json:"series"`
	// Horizon is how far ahead, a Go duration (6h); default the API's, 6h.
	Horizon string `json:"horizon"`
}

// MaxHorizon bounds a forecast's horizon.
const MaxHorizon = 7 * 24 * time.Hour

// Validate checks the series and horizon and returns the horizon (0: none
// given).
func (q ForecastQuery) Validate() (time.Duration, error) {
	if q.Series == "" {
		return 0, fmt.Errorf("series: required; name a watched series (volume) or one of its groups (volume/family=transfer); the series resource lists them")
	}
	return optionalDuration("horizon", q.Horizon, time.Minute, MaxHorizon, "6h or 90m")
}

// Alert views.
const (
	ViewAlerts        = "alerts"
	ViewSilences      = "silences"
	ViewNotifications = "notifications"
)

// Alert states a query may ask for.
var AlertStates = []string{"firing", "resolved", "all"}

// AlertsQuery is queryType "alerts": the alert evaluator's alerts, the
// silences, or the notification log (the time range does not apply).
type AlertsQuery struct {
	// View is "alerts" (the default), "silences" or "notifications".
	View string `json:"view"`
	// State is for alerts: firing (the default: firing and pending),
	// resolved or all.
	State string `json:"state"`
	// Expired adds, for silences, those expired in the last 30 days.
	Expired bool `json:"expired"`
	// Limit is how many rows at most, 1 to 1000; default 100.
	Limit int `json:"limit"`
}

// Validate fills defaults and checks the fields.
func (q *AlertsQuery) Validate() error {
	if q.View == "" {
		q.View = ViewAlerts
	}
	if !slices.Contains([]string{ViewAlerts, ViewSilences, ViewNotifications}, q.View) {
		return fmt.Errorf("view: %q is not a view; use %q, %q or %q", q.View, ViewAlerts, ViewSilences, ViewNotifications)
	}
	if q.State == "" {
		q.State = "firing"
	}
	if !slices.Contains(AlertStates, q.State) {
		return fmt.Errorf("state: %q is not an alert state; use one of %v", q.State, AlertStates)
	}
	if q.Limit == 0 {
		q.Limit = 100
	}
	if q.Limit < 1 || q.Limit > 1000 {
		return fmt.Errorf("limit: %d is out of range; ask for 1 to 1000", q.Limit)
	}
	return nil
}

// What a values query lists.
const (
	ValuesTopics          = "topics"
	ValuesJourneys        = "journeys"
	ValuesSteps           = "steps"
	ValuesSubjects        = "subjects"
	ValuesMetrics         = "metrics"
	ValuesDimensions      = "dimensions"
	ValuesDimensionValues = "dimensionValues"
	ValuesSeries          = "series"
)

// ValuesKinds lists what a values query may list.
var ValuesKinds = []string{ValuesTopics, ValuesJourneys, ValuesSteps, ValuesSubjects, ValuesMetrics, ValuesDimensions, ValuesDimensionValues, ValuesSeries}

// ValuesQuery is queryType "values", for template variables: one frame
// of one string field, "text" (and "value"), listing what Kind says.
type ValuesQuery struct {
	Kind string `json:"kind"`
	// Journey is for steps and subjects.
	Journey string `json:"journey"`
	// Dimension is for dimensionValues.
	Dimension string `json:"dimension"`
	// Status keeps, for subjects, the instances of one status.
	Status string `json:"status"`
	// Limit bounds subjects, 1 to 1000; default 100.
	Limit int `json:"limit"`
}

// Validate checks that the kind has what it needs.
func (q *ValuesQuery) Validate() error {
	if !slices.Contains(ValuesKinds, q.Kind) {
		return fmt.Errorf("kind: %q is not a kind of values; use one of %v", q.Kind, ValuesKinds)
	}
	if (q.Kind == ValuesSteps || q.Kind == ValuesSubjects) && q.Journey == "" {
		return fmt.Errorf("journey: required for %s; name a configured journey", q.Kind)
	}
	if q.Kind == ValuesDimensionValues && q.Dimension == "" {
		return fmt.Errorf("dimension: required for dimensionValues; name a dimension (topic, family, resource_type)")
	}
	if q.Status != "" && !slices.Contains(InstanceStatuses, q.Status) {
		return fmt.Errorf("status: %q is not an instance status; use one of %v", q.Status, InstanceStatuses)
	}
	if q.Limit == 0 {
		q.Limit = 100
	}
	if q.Limit < 1 || q.Limit > 1000 {
		return fmt.Errorf("limit: %d is out of range; ask for 1 to 1000", q.Limit)
	}
	return nil
}
