package models

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Query types, the values of a query's queryType.
const (
	QueryTypeMetrics = "metrics"
	QueryTypeEvents  = "events"
	QueryTypeStatus  = "status"
)

// QueryTypes lists the query types this backend answers.
var QueryTypes = []string{QueryTypeMetrics, QueryTypeEvents, QueryTypeFunnel, QueryTypeJourneys, QueryTypeAnomalies, QueryTypeForecast, QueryTypeAlerts, QueryTypeStatus, QueryTypeValues}

// WindowAuto asks the plugin to choose the window size from the panel's
// width (maxDataPoints) and interval.
const WindowAuto = "auto"

// Filter keeps some values of one dimension (the API's filter parameter,
// dimension=value[,value...]).
type Filter struct {
	Dimension string   `json:"dimension"`
	Values    []string `json:"values"`
}

// MetricsQuery is queryType "metrics": one window metric over the panel's
// time range, one series per group.
type MetricsQuery struct {
	// Metric is one of the API's metrics (count, failures, lag_p99, ...);
	// default count.
	Metric string `json:"metric"`
	// Window is a configured window size (1m, 5m, 15m, 1h) or "auto"
	// (the default).
	Window string `json:"window"`
	// GroupBy names a dimension (topic, family, resource_type) to get one
	// series per value; empty for one series.
	GroupBy string `json:"groupBy"`
	// Filter keeps some values of one dimension; with GroupBy it must be
	// the grouped dimension.
	Filter *Filter `json:"filter"`
	// Basis is the clock windows are cut on: event (default) or received.
	Basis string `json:"basis"`
	// NonEmpty leaves out windows without events.
	NonEmpty bool `json:"nonEmpty"`
	// Offset, a duration such as 24h or 168h, reads the panel's range that
	// long before and draws it shifted forward, labelled offset=<Offset>:
	// a second query of a panel with an offset compares periods.
	Offset string `json:"offset"`
}

// MaxOffset bounds a metrics query's offset.
const MaxOffset = 366 * 24 * time.Hour

// OffsetDuration is the offset as a duration (0 for none).
func (q MetricsQuery) OffsetDuration() (time.Duration, error) {
	return optionalDuration("offset", q.Offset, time.Minute, MaxOffset, "24h or 168h")
}

// optionalDuration reads a query's duration field: 0 when it is empty,
// else a Go duration from lo to hi; the error names the field and shows
// how to write one.
func optionalDuration(field, s string, lo, hi time.Duration, examples string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < lo || d > hi {
		return 0, fmt.Errorf("%s: %q is not a duration from %s to %s (write it like %s)", field, s, lo, hi, examples)
	}
	return d, nil
}

// FilterParam is the filter as the API takes it, or "" for none.
func (q MetricsQuery) FilterParam() string {
	if q.Filter == nil || (q.Filter.Dimension == "" && len(q.Filter.Values) == 0) {
		return ""
	}
	return q.Filter.Dimension + "=" + strings.Join(q.Filter.Values, ",")
}

// Validate checks what the API would refuse less clearly.
func (q MetricsQuery) Validate() error {
	if f := q.Filter; f != nil && (f.Dimension != "" || len(f.Values) > 0) {
		if f.Dimension == "" || len(f.Values) == 0 {
			return fmt.Errorf("filter: give both a dimension and at least one value, e.g. {\"dimension\":\"topic\",\"values\":[\"customer_created\"]}")
		}
	}
	_, err := q.OffsetDuration()
	return err
}

// Event formats.
const (
	FormatTable = "table"
	FormatLogs  = "logs"
)

// EventsQuery is queryType "events": the stored events in the panel's time
// range, newest first.
type EventsQuery struct {
	Topics   []string `json:"topics"`
	Customer string   `json:"customer"`
	Resource string   `json:"resource"`
	// Limit is how many events at most, 1 to 10000; default 100.
	Limit int `json:"limit"`
	// Format is "table" (the default) or "logs" (a logs frame, for Explore
	// and the logs panel).
	Format string `json:"format"`
}

// MaxEvents bounds an events query, so a panel cannot page through the
// whole table.
const MaxEvents = 10000

// Validate fills defaults and checks the ranges.
func (q *EventsQuery) Validate() error {
	if q.Limit == 0 {
		q.Limit = 100
	}
	if q.Limit < 1 || q.Limit > MaxEvents {
		return fmt.Errorf("limit: %d is out of range; ask for 1 to %d events", q.Limit, MaxEvents)
	}
	if q.Format == "" {
		q.Format = FormatTable
	}
	if q.Format != FormatTable && q.Format != FormatLogs {
		return fmt.Errorf("format: %q is not a format; use %q or %q", q.Format, FormatTable, FormatLogs)
	}
	return nil
}

// StatusQuery is queryType "status": the pipeline's partitions, lag and
// dead letters now (the panel's time range does not apply).
type StatusQuery struct{}

// Decode unmarshals a query's JSON into q, refusing what is not a JSON
// object with a message naming the query type.
func Decode(queryType string, raw []byte, q any) error {
	if len(raw) == 0 {
		return nil
	}
	if err := json.Unmarshal(raw, q); err != nil {
		return fmt.Errorf("the %s query is not valid JSON for its model: %w", queryType, err)
	}
	return nil
}
