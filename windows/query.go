package windows

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/hookstream/hookstream/store"
)

// Metric names what a series shows per window.
type Metric string

const (
	MetricCount        Metric = "count"              // events
	MetricSuccesses    Metric = "successes"          // events with a success outcome
	MetricFailures     Metric = "failures"           // events with a failure outcome
	MetricTerminal     Metric = "terminal"           // events that end a lifecycle
	MetricFailureRatio Metric = "failure_ratio"      // failures / terminal
	MetricLagMean      Metric = "lag_mean"           // mean delivery lag, ms
	MetricLagP50       Metric = "lag_p50"            // delivery lag quantiles, ms, within 1%
	MetricLagP90       Metric = "lag_p90"            //
	MetricLagP99       Metric = "lag_p99"            //
	MetricDistinct     Metric = "distinct_customers" // HyperLogLog estimate, ~0.8% standard error
	MetricLate         Metric = "late"               // events that arrived after the window closed
)

// Metrics lists every metric.
var Metrics = []Metric{MetricCount, MetricSuccesses, MetricFailures, MetricTerminal, MetricFailureRatio,
	MetricLagMean, MetricLagP50, MetricLagP90, MetricLagP99, MetricDistinct, MetricLate}

// MetricQuery asks for one metric over a time range: what "hookstream
// query metrics", the JSON API and the Grafana plugin ask, answered the same
// way by QueryMetrics.
type MetricQuery struct {
	Window  time.Duration // window size: one of the configured sizes
	Basis   Basis         // event (default) or received time
	Metric  Metric
	GroupBy string              // "" (one series) or a dimension: topic, family, resource_type
	Filter  map[string][]string // dimension -> values to keep (one dimension)
	From    time.Time           // first window is the one holding From
	To      time.Time           // exclusive: windows starting before To
}

// Point is one window of one series.
type Point struct {
	Start    time.Time `json:"start"`
	Group    string    `json:"group"`
	Value    float64   `json:"value"`
	Count    int64     `json:"count"`    // events behind the value (0: an empty window)
	Closed   bool      `json:"closed"`   // final for detection (a late event can still revise it)
	Revision int32     `json:"revision"` // raised by every change after the close
}

// MetricResult is every window in the range for every group, empty ones as
// zero, ordered by group then start.
type MetricResult struct {
	Window time.Duration `json:"-"`
	Basis  Basis         `json:"basis"`
	Metric Metric        `json:"metric"`
	Groups []string      `json:"groups"`
	Points []Point       `json:"points"`
}

// Validate says what is wrong with q under cfg (defaults filled in), and
// normalises it (default basis, "none" grouping, filter values trimmed and
// deduplicated). It reads nothing: callers validate before connecting.
func (r *MetricQuery) Validate(cfg Config) error {
	cfg = cfg.WithDefaults()
	if !slices.Contains(cfg.Sizes, r.Window) {
		return fmt.Errorf("window %s is not kept; kept sizes: %s", r.Window, sizes(cfg.Sizes))
	}
	if r.Basis == "" {
		r.Basis = EventTime
	}
	if r.Basis != EventTime && r.Basis != ReceivedTime {
		return fmt.Errorf("basis %q: use event or received", r.Basis)
	}
	if !slices.Contains(Metrics, r.Metric) {
		names := make([]string, len(Metrics))
		for i, m := range Metrics {
			names[i] = string(m)
		}
		return fmt.Errorf("unknown metric %q; one of: %s", r.Metric, strings.Join(names, ", "))
	}
	if r.GroupBy == "none" || r.GroupBy == DimAll {
		r.GroupBy = ""
	}
	if r.GroupBy != "" && !slices.Contains(cfg.Dims, r.GroupBy) {
		return fmt.Errorf("cannot group by %q; kept dimensions: %s", r.GroupBy, strings.Join(cfg.Dims, ", "))
	}
	if len(r.Filter) > 1 {
		return fmt.Errorf("filter on one dimension at a time (aggregates are kept per dimension, not per combination)")
	}
	for dim := range r.Filter {
		if !slices.Contains(cfg.Dims, dim) {
			return fmt.Errorf("cannot filter on %q; kept dimensions: %s", dim, strings.Join(cfg.Dims, ", "))
		}
		if r.GroupBy != "" && r.GroupBy != dim {
			return fmt.Errorf("a filter on %s can only be combined with --group-by %s or no grouping (aggregates are kept per dimension)", dim, dim)
		}
	}
	if !r.From.Before(r.To) {
		return fmt.Errorf("empty range: from %s is not before to %s", r.From.Format(time.RFC3339), r.To.Format(time.RFC3339))
	}
	for dim, vals := range r.Filter {
		var clean []string
		for _, v := range vals {
			if v = strings.TrimSpace(v); v != "" && !slices.Contains(clean, v) {
				clean = append(clean, v)
			}
		}
		if len(clean) == 0 {
			return fmt.Errorf("filter on %s names no value", dim)
		}
		r.Filter[dim] = clean
	}
	if n := r.To.Sub(r.From) / r.Window; n > 100_000 {
		return fmt.Errorf("the range holds %d windows of %s; ask for at most 100000 (a larger window, or a shorter range)", n, r.Window)
	}
	return nil
}

// QueryMetrics answers r from the window aggregates kept under cfg. Open
// windows are read like closed ones: the processor commits them before it
// acknowledges the entries, so they are current to the last committed batch.
func QueryMetrics(ctx context.Context, db store.Querier, cfg Config, r MetricQuery) (MetricResult, error) {
	cfg = cfg.WithDefaults()
	if err := r.Validate(cfg); err != nil {
		return MetricResult{}, err
	}
	res := MetricResult{Window: r.Window, Basis: r.Basis, Metric: r.Metric}
	dim, values := DimAll, []string(nil)
	if r.GroupBy != "" {
		dim = r.GroupBy
	}
	for d, v := range r.Filter {
		dim, values = d, v
	}
	first := Start(r.From, r.Window)
	sizeS := int32(r.Window / time.Second)
	closedUntil, err := closedUntilOf(ctx, db, string(r.Basis), sizeS)
	if err != nil {
		return res, err
	}
	// Closed windows of a larger size were rolled up when they closed; open
	// ones are rolled up here from the base windows they hold.
	var rows []aggRow
	if r.Window == cfg.Base() {
		rows, err = aggRowsFor(ctx, db, string(r.Basis), sizeS, dim, values, first, r.To)
	} else {
		split := first
		if closedUntil.After(split) {
			split = closedUntil
		}
		if split.After(r.To) {
			split = r.To
		}
		rows, err = aggRowsFor(ctx, db, string(r.Basis), sizeS, dim, values, first, split)
		if err == nil && split.Before(r.To) {
			// Whole windows: up to the end of the last one starting before To.
			end := Start(r.To.Add(-time.Nanosecond), r.Window).Add(r.Window)
			var open []aggRow
			open, err = aggRowsFor(ctx, db, string(r.Basis), int32(cfg.Base()/time.Second), dim, values, split, end)
			for i := range open {
				open[i].Start = Start(open[i].Start, r.Window)
				open[i].SizeS = sizeS
				open[i].Late, open[i].Revision = 0, 0 // the larger window is not closed, so nothing in it is late
			}
			rows = append(rows, open...)
		}
	}
	if err != nil {
		return res, err
	}
	type cell struct {
		agg      *Agg
		revision int32
		late     int64
	}
	cells := map[string]map[time.Time]*cell{}
	for i := range rows {
		row := &rows[i]
		group := ""
		if r.GroupBy != "" {
			group = row.Value
		}
		agg, err := fromRow(row)
		if err != nil {
			return res, fmt.Errorf("window %s %s=%s: %w", row.Start.Format(time.RFC3339), row.Dim, row.Value, err)
		}
		byStart := cells[group]
		if byStart == nil {
			byStart = map[time.Time]*cell{}
			cells[group] = byStart
		}
		c := byStart[row.Start]
		if c == nil {
			byStart[row.Start] = &cell{agg: agg, revision: row.Revision, late: row.Late}
			continue
		}
		// Several rows in one point: values merged into one series (a
		// filter without grouping), or base windows rolled up.
		if err := c.agg.Merge(agg); err != nil {
			return res, err
		}
		c.revision = max(c.revision, row.Revision)
		c.late += row.Late
	}
	groups := make([]string, 0, len(cells))
	for g := range cells {
		groups = append(groups, g)
	}
	if r.GroupBy == "" && len(groups) == 0 {
		groups = []string{""}
	}
	if r.GroupBy != "" && len(values) > 0 {
		groups = values // every asked-for value, even one without events
	}
	sort.Strings(groups)
	if n := len(groups) * int(r.To.Sub(first)/r.Window+1); n > 1_000_000 {
		return res, fmt.Errorf("the answer would hold %d points (%d groups); narrow the range or filter the groups", n, len(groups))
	}
	res.Groups = groups
	for _, g := range groups {
		for s := first; s.Before(r.To); s = s.Add(r.Window) {
			p := Point{Start: s, Group: g, Closed: !s.Add(r.Window).After(closedUntil) && !closedUntil.IsZero()}
			if c := cells[g][s]; c != nil {
				p.Count, p.Revision = c.agg.Count, c.revision
				p.Value = value(r.Metric, c.agg, c.late)
			}
			res.Points = append(res.Points, p)
		}
	}
	return res, nil
}

func value(m Metric, a *Agg, late int64) float64 {
	q := func(x float64) float64 {
		v, ok := a.LagQuantile(x)
		if !ok {
			return 0
		}
		return math.Round(v*1000) / 1000
	}
	switch m {
	case MetricCount:
		return float64(a.Count)
	case MetricSuccesses:
		return float64(a.Successes)
	case MetricFailures:
		return float64(a.Failures)
	case MetricTerminal:
		return float64(a.Terminal)
	case MetricFailureRatio:
		return a.FailureRatio()
	case MetricLagMean:
		if a.Count == 0 {
			return 0
		}
		return a.LagSumMs / float64(a.Count)
	case MetricLagP50:
		return q(0.5)
	case MetricLagP90:
		return q(0.9)
	case MetricLagP99:
		return q(0.99)
	case MetricDistinct:
		return float64(a.Distinct())
	case MetricLate:
		return float64(late)
	}
	return 0
}

func sizes(s []time.Duration) string {
	out := make([]string, len(s))
	for i, d := range s {
		out[i] = d.String()
	}
	return strings.Join(out, ", ")
}
