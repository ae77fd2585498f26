package windows

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
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
	c := Catalog{Metrics: MetricInfos, Windows: fmtSizes(cfg.Sizes), Bases: Bases, Dimensions: []Dimension{}, ValuesSince: since.UTC()}
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
	r := WindowReport{Basis: basis, Window: FormatSize(size), Start: start.UTC(), End: start.Add(size).UTC(), Metrics: map[Metric]float64{}}
	rows, err := aggRowsFor(ctx, db, string(basis), int32(size/time.Second), DimAll, nil, start, start.Add(time.Microsecond), allSketches)
	if err != nil {
		return r, err
	}
	agg := NewAgg()
	var late int64
	if len(rows) > 0 {
		if agg, err = fromRow(&rows[0]); err != nil {
			return r, fmt.Errorf("window %s: %w", start.Format(time.RFC3339), err)
		}
		r.Revision, late = rows[0].Revision, rows[0].Late
	}
	closedUntil, err := closedUntilOf(ctx, db, string(basis), int32(size/time.Second))
	if err != nil {
		return r, err
	}
	r.Closed = !closedUntil.IsZero() && !r.End.After(closedUntil)
	r.Count = agg.Count
	for _, m := range Metrics {
		r.Metrics[m] = value(m, agg, late)
	}
	return r, nil
}

// MarshalJSON writes the result as "hookstream query metrics -o json" and
// the API answer it, the window size as people write it (1m, 1h). A day of
// 1m windows over 50 groups is 72,000 points, so the points are written by
// hand: the same bytes encoding/json writes (a test holds them equal), in a
// fraction of the time.
func (r MetricResult) MarshalJSON() ([]byte, error) {
	type head struct {
		Window string   `json:"window"`
		Basis  Basis    `json:"basis"`
		Metric Metric   `json:"metric"`
		Groups []string `json:"groups"`
	}
	b, err := json.Marshal(head{FormatSize(r.Window), r.Basis, r.Metric, r.Groups})
	if err != nil {
		return nil, err
	}
	b = b[:len(b)-1] // reopen the object
	b = append(b, `,"points":`...)
	if r.Points == nil {
		return append(b, "null}"...), nil
	}
	b = slices.Grow(b, len(r.Points)*110)
	quoted := map[string][]byte{}
	b = append(b, '[')
	for i := range r.Points {
		p := &r.Points[i]
		if i > 0 {
			b = append(b, ',')
		}
		g, ok := quoted[p.Group]
		if !ok {
			if g, err = json.Marshal(p.Group); err != nil {
				return nil, err
			}
			quoted[p.Group] = g
		}
		if math.IsNaN(p.Value) || math.IsInf(p.Value, 0) {
			return nil, fmt.Errorf("point %s %s: unsupported value %v", p.Start.Format(time.RFC3339), p.Group, p.Value)
		}
		b = append(b, `{"start":"`...)
		b = p.Start.AppendFormat(b, time.RFC3339Nano)
		b = append(b, `","group":`...)
		b = append(b, g...)
		b = append(b, `,"value":`...)
		b = appendJSONFloat(b, p.Value)
		b = append(b, `,"count":`...)
		b = strconv.AppendInt(b, p.Count, 10)
		b = append(b, `,"closed":`...)
		b = strconv.AppendBool(b, p.Closed)
		b = append(b, `,"revision":`...)
		b = strconv.AppendInt(b, int64(p.Revision), 10)
		b = append(b, '}')
	}
	return append(b, "]}"...), nil
}

// appendJSONFloat writes f as encoding/json writes a float64.
func appendJSONFloat(b []byte, f float64) []byte {
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// clean up e-09 to e-9, as encoding/json does
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}
