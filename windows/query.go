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
// way by QueryMetrics. Validate checks it without reading anything.
type MetricQuery struct {
	Window  time.Duration // window size: one of the configured sizes
	Basis   Basis         // event (default) or received time
	Metric  Metric
	GroupBy string              // "" or "none" (one series) or a dimension: topic, family, resource_type
	Filter  map[string][]string // dimension -> values to keep (one dimension; see ParseFilter)
	From    time.Time           // first window is the one holding From
	To      time.Time           // exclusive: windows starting before To
	// SkipEmpty leaves out windows without events, and groups with none in
	// the range; by default every window of every group is listed, empty
	// ones as zero.
	SkipEmpty bool
}

// ParamError is a metric query parameter that cannot be answered. Param is
// its name as the CLI flag and the API parameter spell it (window, basis,
// metric, group-by, filter, from, to); Value is what was given. The message
// reads as a command-line correction: "--window 7m: not a window size; use
// 1m, 5m, 15m or 1h".
type ParamError struct {
	Param  string
	Value  string
	Reason string
}

func (e *ParamError) Error() string {
	if e.Value == "" {
		return "--" + e.Param + ": " + e.Reason
	}
	return "--" + e.Param + " " + e.Value + ": " + e.Reason
}

func paramError(param, value, format string, args ...any) error {
	return &ParamError{Param: param, Value: value, Reason: fmt.Sprintf(format, args...)}
}

// maxWindows bounds the windows one query may span.
const maxWindows = 100_000

// ParseFilter parses a filter parameter, "dimension=value[,value...]" (for
// example topic=customer_created,customer_verified), into a
// MetricQuery.Filter. "" is no filter. Validate checks the dimension and the
// values.
func ParseFilter(s string) (map[string][]string, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	dim, vals, ok := strings.Cut(s, "=")
	if !ok || strings.TrimSpace(dim) == "" {
		return nil, paramError("filter", s, "want dimension=value[,value...], for example topic=customer_created")
	}
	return map[string][]string{strings.TrimSpace(dim): strings.Split(vals, ",")}, nil
}

// Validate says what is wrong with q under cfg (defaults filled in), as a
// *ParamError naming the parameter, and normalises q: the default basis,
// "none" grouping as "", filter values trimmed and deduplicated (into a new
// map). It reads nothing, so callers validate before they connect.
func (q *MetricQuery) Validate(cfg Config) error {
	cfg = cfg.WithDefaults()
	if !slices.Contains(cfg.Sizes, q.Window) {
		return paramError("window", FormatSize(q.Window), "not a window size; use %s", oneOf(fmtSizes(cfg.Sizes)))
	}
	if q.Basis == "" {
		q.Basis = EventTime
	}
	if q.Basis != EventTime && q.Basis != ReceivedTime {
		return paramError("basis", string(q.Basis), "not a clock; use %s", oneOf([]string{string(EventTime), string(ReceivedTime)}))
	}
	if !slices.Contains(Metrics, q.Metric) {
		names := make([]string, len(Metrics))
		for i, m := range Metrics {
			names[i] = string(m)
		}
		return paramError("metric", string(q.Metric), "not a metric; use %s", oneOf(names))
	}
	if q.GroupBy == "none" || q.GroupBy == DimAll {
		q.GroupBy = ""
	}
	if q.GroupBy != "" && !slices.Contains(cfg.Dims, q.GroupBy) {
		return paramError("group-by", q.GroupBy, "not a dimension; use %s", oneOf(append(slices.Clone(cfg.Dims), "none")))
	}
	if len(q.Filter) > 1 {
		dims := make([]string, 0, len(q.Filter))
		for d := range q.Filter {
			dims = append(dims, d)
		}
		sort.Strings(dims)
		return paramError("filter", "", "filters on %s: filter on one dimension at a time (aggregates are kept per dimension, not per combination)", strings.Join(dims, " and "))
	}
	var clean map[string][]string
	for dim, vals := range q.Filter {
		given := dim + "=" + strings.Join(vals, ",")
		if !slices.Contains(cfg.Dims, dim) {
			return paramError("filter", given, "%q is not a dimension; use %s", dim, oneOf(cfg.Dims))
		}
		if q.GroupBy != "" && q.GroupBy != dim {
			return paramError("filter", given, "can only be combined with --group-by %s or no grouping (aggregates are kept per dimension)", dim)
		}
		var vs []string
		for _, v := range vals {
			if v = strings.TrimSpace(v); v != "" && !slices.Contains(vs, v) {
				vs = append(vs, v)
			}
		}
		if len(vs) == 0 {
			return paramError("filter", given, "names no value")
		}
		clean = map[string][]string{dim: vs}
	}
	q.Filter = clean
	switch {
	case q.From.IsZero():
		return paramError("from", "", "missing")
	case q.To.IsZero():
		return paramError("to", "", "missing")
	case !q.From.Before(q.To):
		return paramError("from", q.From.Format(time.RFC3339), "not before --to %s: an empty range", q.To.Format(time.RFC3339))
	}
	if n := q.To.Sub(q.From) / q.Window; n > maxWindows {
		return paramError("from", q.From.Format(time.RFC3339), "the range to %s holds %d windows of %s; ask for at most %d (a larger --window, or a shorter range)",
			q.To.Format(time.RFC3339), n, FormatSize(q.Window), maxWindows)
	}
	return nil
}

// FormatSize writes a window size as people do: 1m, 15m, 1h, 90s, 1h30m.
func FormatSize(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func fmtSizes(sizes []time.Duration) []string {
	out := make([]string, len(sizes))
	for i, d := range sizes {
		out[i] = FormatSize(d)
	}
	return out
}

// oneOf lists choices as "a, b or c".
func oneOf(choices []string) string {
	if len(choices) < 2 {
		return strings.Join(choices, "")
	}
	return strings.Join(choices[:len(choices)-1], ", ") + " or " + choices[len(choices)-1]
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
// zero (or, with SkipEmpty, only the windows and groups with events),
// ordered by group then start.
type MetricResult struct {
	Window time.Duration `json:"-"`
	Basis  Basis         `json:"basis"`
	Metric Metric        `json:"metric"`
	Groups []string      `json:"groups"`
	Points []Point       `json:"points"`
}

// QueryMetrics answers r from the window aggregates kept under cfg,
// validating it first (see MetricQuery.Validate). Open
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
	need := sketchesOf(r.Metric)
	closedUntil, err := closedUntilOf(ctx, db, string(r.Basis), sizeS)
	if err != nil {
		return res, err
	}
	// One cell per group and window start; several rows fall in one cell
	// when a filter merges values into one series, or base windows are
	// rolled up. Counters are summed in place: only the metrics that read a
	// sketch build (and merge) one.
	type cellKey struct {
		group string
		start int64 // UnixNano
	}
	type cell struct {
		agg      Agg
		revision int32
		late     int64
	}
	cells := map[cellKey]cell{}
	seen := map[string]struct{}{}
	add := func(row *aggRow) error {
		group := ""
		if r.GroupBy != "" {
			group = row.Value
		}
		k := cellKey{group, row.Start.UnixNano()}
		c, ok := cells[k]
		if !ok {
			if _, ok := seen[group]; !ok {
				seen[strings.Clone(group)] = struct{}{}
			}
			k.group = strings.Clone(k.group) // the row's strings are reused
		}
		if need != (sketches{}) {
			agg, err := fromRowWith(row, need)
			if err != nil {
				return fmt.Errorf("window %s %s=%s: %w", row.Start.Format(time.RFC3339), row.Dim, row.Value, err)
			}
			if !ok {
				c.agg = *agg
			} else if err := c.agg.Merge(agg); err != nil {
				return err
			}
		} else {
			c.agg.Count += row.Count
			c.agg.Successes += row.Successes
			c.agg.Failures += row.Failures
			c.agg.Terminal += row.Terminal
			c.agg.LagSumMs += row.LagSumMs
		}
		c.revision = max(c.revision, row.Revision)
		c.late += row.Late
		cells[k] = c
		return nil
	}
	// Closed windows of a larger size were rolled up when they closed; open
	// ones are rolled up here from the base windows they hold.
	if r.Window == cfg.Base() {
		err = eachAggRowFor(ctx, db, string(r.Basis), sizeS, dim, values, first, r.To, need, add)
	} else {
		split := first
		if closedUntil.After(split) {
			split = closedUntil
		}
		if split.After(r.To) {
			split = r.To
		}
		err = eachAggRowFor(ctx, db, string(r.Basis), sizeS, dim, values, first, split, need, add)
		if err == nil && split.Before(r.To) {
			// Whole windows: up to the end of the last one starting before To.
			end := Start(r.To.Add(-time.Nanosecond), r.Window).Add(r.Window)
			err = eachAggRowFor(ctx, db, string(r.Basis), int32(cfg.Base()/time.Second), dim, values, split, end, need, func(row *aggRow) error {
				row.Start = Start(row.Start, r.Window)
				row.SizeS = sizeS
				row.Late, row.Revision = 0, 0 // the larger window is not closed, so nothing in it is late
				return add(row)
			})
		}
	}
	if err != nil {
		return res, err
	}
	groups := make([]string, 0, len(seen))
	for g := range seen {
		groups = append(groups, g)
	}
	if r.GroupBy == "" && len(groups) == 0 {
		groups = []string{""}
	}
	if r.GroupBy != "" && len(values) > 0 {
		groups = values // every asked-for value, even one without events
	}
	sort.Strings(groups)
	point := func(g string, s time.Time) Point {
		p := Point{Start: s, Group: g, Closed: !s.Add(r.Window).After(closedUntil) && !closedUntil.IsZero()}
		if c, ok := cells[cellKey{g, s.UnixNano()}]; ok {
			p.Count, p.Revision = c.agg.Count, c.revision
			p.Value = value(r.Metric, &c.agg, c.late)
		}
		return p
	}
	res.Groups, res.Points = []string{}, []Point{}
	if r.SkipEmpty {
		// Only the cells with events: no more points than rows read.
		starts := map[string][]int64{}
		for k, c := range cells {
			if c.agg.Count > 0 {
				starts[k.group] = append(starts[k.group], k.start)
			}
		}
		for _, g := range groups {
			if len(starts[g]) == 0 {
				continue
			}
			slices.Sort(starts[g])
			res.Groups = append(res.Groups, g)
			for _, s := range starts[g] {
				res.Points = append(res.Points, point(g, time.Unix(0, s).UTC()))
			}
		}
		return res, nil
	}
	n := len(groups) * int(r.To.Sub(first)/r.Window+1)
	if n > 1_000_000 {
		return res, paramError("from", r.From.Format(time.RFC3339), "the answer would hold %d points (%d groups); narrow the range, filter the groups or list only the non-empty windows", n, len(groups))
	}
	res.Groups = groups
	res.Points = make([]Point, 0, n)
	for _, g := range groups {
		for s := first; s.Before(r.To); s = s.Add(r.Window) {
			res.Points = append(res.Points, point(g, s))
		}
	}
	return res, nil
}

// sketchesOf is what metric m reads of a window's sketches.
func sketchesOf(m Metric) sketches {
	switch m {
	case MetricLagP50, MetricLagP90, MetricLagP99:
		return sketches{lag: true}
	case MetricDistinct:
		return sketches{customers: true}
	}
	return sketches{}
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
