package plugin

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/data"

	"github.com/hookstream/hookstream/grafana-plugin/pkg/apiclient"
	"github.com/hookstream/hookstream/grafana-plugin/pkg/models"
)

func (d *Datasource) queryMetrics(ctx context.Context, _ backend.PluginContext, q backend.DataQuery) backend.DataResponse {
	var m models.MetricsQuery
	if err := models.Decode(q.QueryType, q.JSON, &m); err != nil {
		return badQuery(err.Error())
	}
	if err := m.Validate(); err != nil {
		return badQuery(err.Error())
	}
	window := m.Window
	if window == "" || window == models.WindowAuto {
		sizes, err := d.windowSizes(ctx)
		if err != nil {
			return errResponse("read the window sizes", err)
		}
		window = formatWindow(chooseWindow(sizes, q.TimeRange.Duration(), q.Interval, q.MaxDataPoints))
	}
	offset, _ := m.OffsetDuration() // validated
	p := apiclient.MetricsParams{Window: window, Metric: m.Metric, GroupBy: m.GroupBy, Filter: m.FilterParam(),
		Basis: m.Basis, From: q.TimeRange.From.Add(-offset), To: q.TimeRange.To.Add(-offset), NonEmpty: m.NonEmpty}
	res, err := d.api.Metrics(ctx, p)
	if err != nil {
		return errResponse("metrics", err)
	}
	frames := metricFrames(res, m.GroupBy, executed(p))
	if offset > 0 {
		shiftFrames(frames, offset, m.Offset)
	}
	return backend.DataResponse{Frames: frames}
}

// shiftFrames draws series read offset earlier at the panel's times, each
// labelled offset=<label>, so they overlay the unshifted ones.
func shiftFrames(frames data.Frames, offset time.Duration, label string) {
	for _, f := range frames {
		ts := f.Fields[0]
		for i := range ts.Len() {
			ts.Set(i, ts.At(i).(time.Time).Add(offset))
		}
		v := f.Fields[1]
		if v.Labels == nil {
			v.Labels = data.Labels{}
		}
		v.Labels["offset"] = label
	}
}

// metricFrames makes one time series frame per group, each sorted by time,
// labelled with its group's dimension value (multi-frame time series:
// Grafana's panels and alert rules read it without transformations).
func metricFrames(res apiclient.Metrics, groupBy, query string) data.Frames {
	groups := res.Groups
	if len(groups) == 0 {
		groups = []string{""}
	}
	// Two passes over the points, no copies of them: count each group's,
	// then fill its time and value columns at their final size (the
	// conversion allocates what the frames hold, and little else).
	index := make(map[string]int, len(groups))
	for i, g := range groups {
		index[g] = i
	}
	counts := make([]int, len(groups))
	for _, p := range res.Points {
		if i, ok := index[p.Group]; ok {
			counts[i]++
		}
	}
	times, values := make([][]time.Time, len(groups)), make([][]float64, len(groups))
	for i, n := range counts {
		times[i], values[i] = make([]time.Time, 0, n), make([]float64, 0, n)
	}
	for _, p := range res.Points {
		if i, ok := index[p.Group]; ok {
			times[i] = append(times[i], p.Start.UTC())
			values[i] = append(values[i], p.Value)
		}
	}
	frames := make(data.Frames, 0, len(groups))
	for i, g := range groups {
		sortByTime(times[i], values[i])
		var labels data.Labels
		if groupBy != "" {
			labels = data.Labels{groupBy: g}
		}
		value := data.NewField(res.Metric, labels, values[i])
		value.SetConfig(&data.FieldConfig{Unit: metricUnit(res.Metric)})
		f := data.NewFrame(res.Metric, data.NewField("time", nil, times[i]), value)
		f.SetMeta(&data.FrameMeta{
			Type:                   data.FrameTypeTimeSeriesMulti,
			TypeVersion:            data.FrameTypeVersion{0, 1},
			ExecutedQueryString:    query,
			PreferredVisualization: data.VisTypeGraph,
			Custom:                 map[string]string{"window": res.Window, "basis": res.Basis},
		})
		frames = append(frames, f)
	}
	return frames
}

// sortByTime sorts a series' points by time (the API lists them in order:
// then it only checks).
func sortByTime(times []time.Time, values []float64) {
	if slices.IsSortedFunc(times, time.Time.Compare) {
		return
	}
	order := make([]int, len(times))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return times[a].Compare(times[b]) })
	t, v := slices.Clone(times), slices.Clone(values)
	for i, o := range order {
		times[i], values[i] = t[o], v[o]
	}
}

// metricUnit is the Grafana unit of an API metric.
func metricUnit(metric string) string {
	switch {
	case metric == "failure_ratio":
		return "percentunit"
	case strings.HasPrefix(metric, "lag_"):
		return "ms"
	default:
		return "short"
	}
}

// chooseWindow picks the finest window size that neither gives more points
// than the panel can draw (maxPoints over span) nor is finer than the
// query's interval (Grafana's interval, which honours the panel's minimum
// interval). When none is coarse enough, the coarsest size.
func chooseWindow(sizes []time.Duration, span, interval time.Duration, maxPoints int64) time.Duration {
	if len(sizes) == 0 {
		return time.Minute
	}
	need := interval
	if maxPoints > 0 {
		perPoint := time.Duration(int64(span) / maxPoints)
		if time.Duration(maxPoints)*perPoint < span {
			perPoint++ // round up: span/perPoint must not exceed maxPoints
		}
		need = max(need, perPoint)
	}
	for _, s := range sizes {
		if s >= need {
			return s
		}
	}
	return sizes[len(sizes)-1]
}

// windowSizes reads the API's configured window sizes once per instance.
func (d *Datasource) windowSizes(ctx context.Context) ([]time.Duration, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.windows != nil {
		return d.windows, nil
	}
	cat, err := d.api.Catalog(ctx, time.Now())
	if err != nil {
		return nil, err
	}
	var sizes []time.Duration
	for _, w := range cat.Windows {
		s, err := time.ParseDuration(w)
		if err != nil {
			return nil, fmt.Errorf("the API's catalog lists window %q, which is not a duration: %w", w, err)
		}
		sizes = append(sizes, s)
	}
	slices.Sort(sizes)
	d.windows = sizes
	return sizes, nil
}

// formatWindow writes a size as the API's windows are named (1m, 5m, 1h).
func formatWindow(d time.Duration) string {
	switch {
	case d >= time.Hour && d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d >= time.Minute && d%time.Minute == 0:
		return fmt.Sprintf("%dm", d/time.Minute)
	default:
		return d.String()
	}
}

// executed is the API call a query made, for Grafana's query inspector.
func executed(p apiclient.MetricsParams) string {
	v := url.Values{}
	for k, s := range map[string]string{"window": p.Window, "metric": p.Metric, "group_by": p.GroupBy, "filter": p.Filter, "basis": p.Basis} {
		if s != "" {
			v.Set(k, s)
		}
	}
	v.Set("from", p.From.UTC().Format(time.RFC3339))
	v.Set("to", p.To.UTC().Format(time.RFC3339))
	if p.NonEmpty {
		v.Set("non_empty", "true")
	}
	return "GET /api/v1/metrics?" + v.Encode()
}
