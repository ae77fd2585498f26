package plugin

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/data"

	"github.com/hookstream/hookstream/grafana-plugin/pkg/apiclient"
	"github.com/hookstream/hookstream/grafana-plugin/pkg/models"
)

func (d *Datasource) queryAnomalies(ctx context.Context, _ backend.PluginContext, q backend.DataQuery) backend.DataResponse {
	var m models.AnomaliesQuery
	if err := models.Decode(q.QueryType, q.JSON, &m); err != nil {
		return badQuery(err.Error())
	}
	if err := m.Validate(); err != nil {
		return badQuery(err.Error())
	}
	p := apiclient.AnomaliesParams{Series: m.Series, From: q.TimeRange.From, To: q.TimeRange.To,
		MinScore: m.MinScore, All: m.Format == models.FormatScores, Limit: m.Limit}
	scores, more, err := d.api.Anomalies(ctx, p)
	if err != nil {
		return errResponse("anomalies", err)
	}
	var frames data.Frames
	if m.Format == models.FormatAnnotations {
		frames = data.Frames{anomalyAnnotations(scores)}
	} else {
		frames = scoreFrames(scores)
	}
	if more && len(frames) > 0 {
		frames[0].AppendNotices(data.Notice{Severity: data.NoticeSeverityWarning,
			Text: fmt.Sprintf("only the latest %d scored windows are shown; narrow the time range or the series, or raise limit (at most %d)", m.Limit, models.MaxAnomalies)})
	}
	return backend.DataResponse{Frames: frames}
}

// scoreFrames makes one wide time series frame per series instance: score,
// value, expected, low and high, sorted by window start, labelled with the
// series. Of a revised window only its latest revision is kept.
func scoreFrames(scores []apiclient.Score) data.Frames {
	bySeries := map[string][]apiclient.Score{}
	for _, s := range scores {
		bySeries[s.Series] = append(bySeries[s.Series], s)
	}
	frames := data.Frames{}
	for _, name := range slices.Sorted(maps.Keys(bySeries)) {
		ss := bySeries[name]
		slices.SortFunc(ss, func(a, b apiclient.Score) int {
			if c := a.Start.Compare(b.Start); c != 0 {
				return c
			}
			return int(a.Revision - b.Revision)
		})
		// the latest revision of each window
		kept := ss[:0]
		for _, s := range ss {
			if n := len(kept); n > 0 && kept[n-1].Start.Equal(s.Start) {
				kept[n-1] = s
				continue
			}
			kept = append(kept, s)
		}
		n := len(kept)
		times := make([]time.Time, n)
		score, value := make([]float64, n), make([]float64, n)
		expected, low, high := make([]*float64, n), make([]*float64, n), make([]*float64, n)
		for i, s := range kept {
			times[i], score[i], value[i], expected[i], low[i], high[i] = s.Start.UTC(), s.Score, s.Value, s.Expected, s.Low, s.High
		}
		labels := data.Labels{"series": name}
		f := data.NewFrame(name,
			data.NewField("time", nil, times),
			data.NewField("score", labels, score).SetConfig(&data.FieldConfig{Min: ptr(data.ConfFloat64(0)), Max: ptr(data.ConfFloat64(1))}),
			data.NewField("value", labels, value),
			data.NewField("expected", labels, expected),
			data.NewField("low", labels, low),
			data.NewField("high", labels, high),
		)
		f.SetMeta(&data.FrameMeta{Type: data.FrameTypeTimeSeriesWide, TypeVersion: data.FrameTypeVersion{0, 1}})
		frames = append(frames, f)
	}
	return frames
}

// anomalyAnnotations is one row per anomaly, oldest first, in the shape
// Grafana turns into annotations: time and timeEnd (the window), title,
// text (the reason) and tags (the series and "anomaly").
func anomalyAnnotations(scores []apiclient.Score) *data.Frame {
	slices.SortStableFunc(scores, func(a, b apiclient.Score) int { return a.Start.Compare(b.Start) })
	f := data.NewFrame("anomalies",
		data.NewField("time", nil, []time.Time{}),
		data.NewField("timeEnd", nil, []time.Time{}),
		data.NewField("title", nil, []string{}),
		data.NewField("text", nil, []string{}),
		data.NewField("tags", nil, []string{}),
		data.NewField("series", nil, []string{}),
		data.NewField("score", nil, []float64{}),
		data.NewField("value", nil, []float64{}),
	)
	for _, s := range scores {
		if !s.Anomaly {
			continue
		}
		win, _ := time.ParseDuration(s.Window)
		text := s.Series + " " + s.Reason
		f.AppendRow(s.Start.UTC(), s.Start.Add(win).UTC(), "anomaly on "+s.Series, text,
			"anomaly,"+seriesName(s.Series), s.Series, s.Score, s.Value)
	}
	f.SetMeta(&data.FrameMeta{Type: data.FrameTypeTable, DataTopic: data.DataTopicAnnotations})
	return f
}

// seriesName is the watched series an instance belongs to (volume of
// volume/family=transfer).
func seriesName(instance string) string {
	name, _, _ := strings.Cut(instance, "/")
	return name
}

func (d *Datasource) queryForecast(ctx context.Context, _ backend.PluginContext, q backend.DataQuery) backend.DataResponse {
	var m models.ForecastQuery
	if err := models.Decode(q.QueryType, q.JSON, &m); err != nil {
		return badQuery(err.Error())
	}
	horizon, err := m.Validate()
	if err != nil {
		return badQuery(err.Error())
	}
	fs, err := d.api.Forecasts(ctx, m.Series, horizon)
	if err != nil {
		return errResponse("forecast", err)
	}
	frames := data.Frames{}
	for _, fc := range fs {
		frames = append(frames, forecastFrame(fc))
	}
	return backend.DataResponse{Frames: frames}
}

// forecastFrame is one wide time series frame per forecast: expected and
// the 80% and 95% bands (low_95 ... high_95; a panel fills between them
// with a "fill below to" override), labelled with the series. A series
// with too little history has an empty frame whose notice says why.
func forecastFrame(fc apiclient.Forecast) *data.Frame {
	n := len(fc.Points)
	times := make([]time.Time, n)
	exp, l80, h80, l95, h95 := make([]float64, n), make([]float64, n), make([]float64, n), make([]float64, n), make([]float64, n)
	for i, p := range fc.Points {
		times[i], exp[i], l80[i], h80[i], l95[i], h95[i] = p.Start.UTC(), p.Expected, p.Low80, p.High80, p.Low95, p.High95
	}
	labels := data.Labels{"series": fc.Series}
	f := data.NewFrame(fc.Series,
		data.NewField("time", nil, times),
		data.NewField("expected", labels, exp),
		data.NewField("low_80", labels, l80),
		data.NewField("high_80", labels, h80),
		data.NewField("low_95", labels, l95),
		data.NewField("high_95", labels, h95),
	)
	meta := &data.FrameMeta{Type: data.FrameTypeTimeSeriesWide, TypeVersion: data.FrameTypeVersion{0, 1},
		ExecutedQueryString: fmt.Sprintf("forecast of %s (%s, %s windows) by %s, learnt from %d windows until %s",
			fc.Series, fc.Metric, fc.Window, fc.Method, fc.Learnt, fc.LearntUntil.UTC().Format(time.RFC3339))}
	if fc.Note != "" {
		meta.Notices = append(meta.Notices, data.Notice{Severity: data.NoticeSeverityInfo, Text: fc.Series + ": " + fc.Note})
	}
	f.SetMeta(meta)
	return f
}

func (d *Datasource) queryAlerts(ctx context.Context, _ backend.PluginContext, q backend.DataQuery) backend.DataResponse {
	var m models.AlertsQuery
	if err := models.Decode(q.QueryType, q.JSON, &m); err != nil {
		return badQuery(err.Error())
	}
	if err := m.Validate(); err != nil {
		return badQuery(err.Error())
	}
	switch m.View {
	case models.ViewSilences:
		ss, err := d.api.Silences(ctx, m.Expired)
		if err != nil {
			return errResponse("silences", err)
		}
		return backend.DataResponse{Frames: data.Frames{silencesFrame(ss)}}
	case models.ViewNotifications:
		ns, err := d.api.Notifications(ctx, m.Limit)
		if err != nil {
			return errResponse("notifications", err)
		}
		return backend.DataResponse{Frames: data.Frames{notificationsFrame(ns)}}
	default:
		as, err := d.api.Alerts(ctx, m.State, m.Limit)
		if err != nil {
			return errResponse("alerts", err)
		}
		return backend.DataResponse{Frames: data.Frames{alertsFrame(as)}}
	}
}

// alertsFrame is a table of alerts in the API's order (firing first).
func alertsFrame(as []apiclient.Alert) *data.Frame {
	f := data.NewFrame("alerts",
		data.NewField("state", nil, []string{}),
		data.NewField("severity", nil, []string{}),
		data.NewField("rule", nil, []string{}),
		data.NewField("labels", nil, []string{}),
		data.NewField("summary", nil, []string{}),
		data.NewField("value", nil, []*float64{}),
		data.NewField("active_since", nil, []*time.Time{}),
		data.NewField("firing_since", nil, []*time.Time{}),
		data.NewField("resolved_at", nil, []*time.Time{}),
		data.NewField("acked_by", nil, []string{}),
		data.NewField("silenced", nil, []bool{}),
		data.NewField("fingerprint", nil, []string{}),
	)
	for _, a := range as {
		f.AppendRow(a.State, a.Severity, a.Rule, data.Labels(a.Labels).String(), a.Summary, a.Value,
			utcPtr(a.ActiveSince), utcPtr(a.FiringSince), utcPtr(a.ResolvedAt), a.AckedBy, len(a.SilencedBy) > 0, a.Fingerprint)
	}
	f.SetMeta(&data.FrameMeta{Type: data.FrameTypeTable, PreferredVisualization: data.VisTypeTable})
	return f
}

// silencesFrame is a table of silences, matchers written as Alertmanager
// writes them (name=value, name=~regexp).
func silencesFrame(ss []apiclient.Silence) *data.Frame {
	f := data.NewFrame("silences",
		data.NewField("status", nil, []string{}),
		data.NewField("matchers", nil, []string{}),
		data.NewField("starts_at", nil, []time.Time{}),
		data.NewField("ends_at", nil, []time.Time{}),
		data.NewField("created_by", nil, []string{}),
		data.NewField("comment", nil, []string{}),
		data.NewField("id", nil, []string{}),
	)
	for _, s := range ss {
		ms := make([]string, len(s.Matchers))
		for i, m := range s.Matchers {
			ms[i] = m.Name + m.Type + m.Value
		}
		f.AppendRow(s.Status, strings.Join(ms, ", "), s.StartsAt.UTC(), s.EndsAt.UTC(), s.CreatedBy, s.Comment, s.ID)
	}
	f.SetMeta(&data.FrameMeta{Type: data.FrameTypeTable, PreferredVisualization: data.VisTypeTable})
	return f
}

// notificationsFrame is a table of the notification log, newest first.
func notificationsFrame(ns []apiclient.Notification) *data.Frame {
	f := data.NewFrame("notifications",
		data.NewField("created_at", nil, []time.Time{}),
		data.NewField("target", nil, []string{}),
		data.NewField("status", nil, []string{}),
		data.NewField("alerts", nil, []int64{}),
		data.NewField("attempts", nil, []int64{}),
		data.NewField("delivered_at", nil, []*time.Time{}),
		data.NewField("gave_up_at", nil, []*time.Time{}),
		data.NewField("last_error", nil, []string{}),
		data.NewField("id", nil, []string{}),
	)
	for _, n := range ns {
		f.AppendRow(n.CreatedAt.UTC(), n.Target, n.Status, int64(len(n.Fingerprints)), int64(n.Attempts),
			utcPtr(n.DeliveredAt), utcPtr(n.GaveUpAt), n.LastError, n.ID)
	}
	f.SetMeta(&data.FrameMeta{Type: data.FrameTypeTable, PreferredVisualization: data.VisTypeTable})
	return f
}

func ptr[T any](v T) *T { return &v }
