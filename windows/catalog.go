package windows

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/hookstream/hookstream/store"
	"github.com/jackc/pgx/v5"
)

// What query builders (the console, the Grafana plugin's editor) need to
// know: the metrics, the window sizes and clocks, the dimensions and the
// values seen in them; and one closed window's metrics, as the live feed
// announces it.

// MetricInfo describes a metric.
type MetricInfo struct {
	Name        Metric `json:"name"`
	Unit        string `json:"unit"` // events, ratio, ms or customers
	Description string `json:"description"`
}

// MetricInfos describes every metric, in the order of Metrics.
var MetricInfos = []MetricInfo{
	{MetricCount, "events", "events in the window"},
	{MetricSuccesses, "events", "events with a success outcome"},
	{MetricFailures, "events", "events with a failure outcome"},
	{MetricTerminal, "events", "events that end a lifecycle (success or failure)"},
	{MetricFailureRatio, "ratio", "failures / terminal events"},
	{MetricLagMean, "ms", "mean delivery lag (received - created)"},
	{MetricLagP50, "ms", "median delivery lag, within 1%"},
	{MetricLagP90, "ms", "90th percentile delivery lag, within 1%"},
	{MetricLagP99, "ms", "99th percentile delivery lag, within 1%"},
	{MetricDistinct, "customers", "distinct customers, a HyperLogLog estimate (0.8% standard error)"},
	{MetricLate, "events", "events that arrived after the window closed"},
}

// Dimension is a dimension metrics can be grouped and filtered by, with the
// values seen in it.
type Dimension struct {
	Name   string   `json:"name"`
	Values []string `json:"values"`
}

// Catalog is what a metric query can ask for under a configuration.
type Catalog struct {
	Metrics    []MetricInfo `json:"metrics"`
	Windows    []string     `json:"windows"`
	Bases      []Basis      `json:"bases"`
	Dimensions []Dimension  `json:"dimensions"`
	// ValuesSince is the start of the range the values were read from.
	ValuesSince time.Time `json:"values_since"`
}

// ReadCatalog describes cfg's metrics, windows and dimensions, with the
// values seen in event-time windows starting at or after since.
func ReadCatalog(ctx context.Context, db store.Querier, cfg Config, since time.Time) (Catalog, error) {
	cfg = cfg.WithDefaults()
	c := Catalog{Metrics: MetricInfos, Windows: fmtSizes(cfg.Sizes), Bases: Bases, ValuesSince: since.UTC()}
	// Closed windows of the largest size hold every value of their range
	// in the fewest rows; past where they are closed (open windows are not
	// rolled up yet), the base windows do.
	largest := int32(slices.Max(cfg.Sizes) / time.Second)
	closedUntil, err := closedUntilOf(ctx, db, string(EventTime), largest)
	if err != nil {
		return c, err
	}
	split := since
	if closedUntil.After(split) {
		split = closedUntil
	}
	rows, err := db.Query(ctx, `SELECT dim, value FROM window_aggs WHERE basis = $1 AND size_s = $2 AND start >= $3 AND start < $4 AND dim <> $5
UNION
SELECT dim, value FROM window_aggs WHERE basis = $1 AND size_s = $6 AND start >= $4 AND dim <> $5
ORDER BY dim, value`, string(EventTime), largest, since, split, DimAll, int32(cfg.Base()/time.Second))
	if err != nil {
		return c, fmt.Errorf("read the dimension values seen: %w", err)
	}
	seen := map[string][]string{}
	var dim, value string
	if _, err := pgx.ForEachRow(rows, []any{&dim, &value}, func() error {
		seen[dim] = append(seen[dim], value)
		return nil
	}); err != nil {
		return c, fmt.Errorf("read the dimension values seen: %w", err)
	}
	for _, d := range cfg.Dims {
		c.Dimensions = append(c.Dimensions, Dimension{Name: d, Values: append([]string{}, seen[d]...)})
	}
	return c, nil
}

// WindowReport is one window over every event, with every metric.
type WindowReport struct {
	Basis    Basis              `json:"basis"`
	Window   string             `json:"window"`
	Start    time.Time          `json:"start"`
	End      time.Time          `json:"end"`
	Count    int64              `json:"count"`
	Revision int32              `json:"revision"`
	Closed   bool               `json:"closed"`
	Metrics  map[Metric]float64 `json:"metrics"`
}

// ReadWindow reports the window of basis and size starting at start over
// every event, every metric with it (all zero for a window without events).
func ReadWindow(ctx context.Context, db store.Querier, basis Basis, size time.Duration, start time.Time) (WindowReport, error) {
	r := WindowReport{Basis: basis, Window: fmtSize(size), Start: start.UTC(), End: start.Add(size).UTC(), Metrics: map[Metric]float64{}}
	rows, err := aggRowsFor(ctx, db, string(basis), int32(size/time.Second), DimAll, nil, start, start.Add(time.Microsecond))
	if err != nil {
		return r, err
	}
	agg := NewAgg()
	var late int64
	if len(rows) > 0 {
		if agg, err = fromRow(&rows[0]); err != nil {
			return r, fmt.Errorf("window %s: %w", start.Format(time.RFC3339), err)
		}
		r.Revision, r.Closed, late = rows[0].Revision, rows[0].ClosedAt != nil, rows[0].Late
	}
	r.Count = agg.Count
	for _, m := range Metrics {
		r.Metrics[m] = value(m, agg, late)
	}
	return r, nil
}

// MarshalJSON writes the result as "hookstream query metrics -o json" and
// the API answer it, the window size as people write it (1m, 1h).
func (r MetricResult) MarshalJSON() ([]byte, error) {
	type plain MetricResult
	return json.Marshal(struct {
		Window string `json:"window"`
		plain
	}{fmtSize(r.Window), plain(r)})
}
