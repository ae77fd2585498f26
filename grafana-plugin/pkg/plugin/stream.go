package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/backend/log"
	"github.com/grafana/grafana-plugin-sdk-go/data"
	"github.com/grafana/grafana-plugin-sdk-go/live"

	"github.com/hookstream/hookstream/grafana-plugin/pkg/apiclient"
	"github.com/hookstream/hookstream/grafana-plugin/pkg/models"
)

// Live streams (Grafana Live channels ds/<uid>/<path>), each fed by the
// API's live feed:
//
//	live/events[/logs][/topic=<t>...]       every stored event (of those topics), as a row of
//	                                        the events query's table (or logs) frame
//	live/metrics/<metric>                   every closed window (all sizes and clocks), the metric's value
//	live/metrics/<metric>/<window>/<basis>  the windows of one size and clock, as a point of the
//	                                        metrics query's series
//	live/anomalies                          every anomaly the scorer finds
//	live/alerts                             every alert state change
//
// RunStream reconnects with Last-Event-ID, so a dropped connection neither
// loses nor repeats a message. A query with "live": true answers its frames
// with the matching channel in meta.channel (liveFor), so Grafana subscribes
// the panel and appends each new message to what the query returned.
var (
	_ backend.StreamHandler = (*Datasource)(nil)
)

// livePath is what a stream path asks of the feed and how its messages
// become frames.
type livePath struct {
	params apiclient.LiveParams
	metric string // live/metrics/<metric>
	frame  func(m apiclient.LiveMessage) (*data.Frame, error)
}

func parseLivePath(path string) (livePath, bool) {
	switch {
	case path == "live/events" || strings.HasPrefix(path, "live/events/"):
		return parseLiveEvents(strings.TrimPrefix(path, "live/events"))
	case path == "live/anomalies":
		return livePath{params: apiclient.LiveParams{Types: []string{"anomaly"}}, frame: liveAnomalyFrame}, true
	case path == "live/alerts":
		return livePath{params: apiclient.LiveParams{Types: []string{"alert"}}, frame: liveAlertFrame}, true
	case strings.HasPrefix(path, "live/metrics/"):
		parts := strings.Split(strings.TrimPrefix(path, "live/metrics/"), "/")
		if slices.Contains(parts, "") {
			return livePath{}, false
		}
		metric, params := parts[0], apiclient.LiveParams{Types: []string{"window"}}
		switch len(parts) {
		case 1:
			return livePath{params: params, metric: metric,
				frame: func(m apiclient.LiveMessage) (*data.Frame, error) { return liveWindowFrame(metric, m) }}, true
		case 3:
			window, basis := parts[1], parts[2]
			return livePath{params: params, metric: metric,
				frame: func(m apiclient.LiveMessage) (*data.Frame, error) { return liveSeriesFrame(metric, window, basis, m) }}, true
		}
	}
	return livePath{}, false
}

// parseLiveEvents reads what follows live/events: an optional /logs, then
// /topic=<topic> segments.
func parseLiveEvents(rest string) (livePath, bool) {
	lp := livePath{params: apiclient.LiveParams{Types: []string{"event"}}}
	logs := false
	for i, seg := range strings.Split(strings.TrimPrefix(rest, "/"), "/") {
		switch {
		case rest == "":
		case seg == "logs" && i == 0:
			logs = true
		case strings.HasPrefix(seg, "topic=") && len(seg) > len("topic="):
			lp.params.Topics = append(lp.params.Topics, strings.TrimPrefix(seg, "topic="))
		default:
			return livePath{}, false
		}
	}
	lp.frame = func(m apiclient.LiveMessage) (*data.Frame, error) { return liveEventFrame(m, logs) }
	return lp, true
}

// SubscribeStream accepts the live paths above.
func (d *Datasource) SubscribeStream(ctx context.Context, req *backend.SubscribeStreamRequest) (*backend.SubscribeStreamResponse, error) {
	lp, ok := parseLivePath(req.Path)
	if !ok {
		return &backend.SubscribeStreamResponse{Status: backend.SubscribeStreamStatusNotFound}, nil
	}
	if d.cfgErr != nil {
		return nil, fmt.Errorf("the datasource is misconfigured: %w", d.cfgErr)
	}
	if lp.metric != "" {
		// An unknown metric is not found; when the catalog cannot be read,
		// the stream itself will say what is wrong.
		if cat, err := d.api.Catalog(ctx, time.Now()); err == nil &&
			!slices.ContainsFunc(cat.Metrics, func(m apiclient.MetricInfo) bool { return m.Name == lp.metric }) {
			return &backend.SubscribeStreamResponse{Status: backend.SubscribeStreamStatusNotFound}, nil
		}
	}
	return &backend.SubscribeStreamResponse{Status: backend.SubscribeStreamStatusOK}, nil
}

// PublishStream refuses: the streams are hookstream's, read only.
func (d *Datasource) PublishStream(context.Context, *backend.PublishStreamRequest) (*backend.PublishStreamResponse, error) {
	return &backend.PublishStreamResponse{Status: backend.PublishStreamStatusPermissionDenied}, nil
}

// Reconnection delays: the first retry is quick (a dropped connection is
// usually a restart or a proxy's timeout), then they double.
const (
	liveRetryMin = 100 * time.Millisecond
	liveRetryMax = 5 * time.Second
)

// sendError is a failure to hand a frame to Grafana: the stream ends.
type sendError struct{ err error }

func (e sendError) Error() string { return "send a frame to Grafana: " + e.err.Error() }
func (e sendError) Unwrap() error { return e.err }

// RunStream follows the live feed for req.Path until ctx is done (no
// subscriber is left), sending a frame per message.
func (d *Datasource) RunStream(ctx context.Context, req *backend.RunStreamRequest, sender *backend.StreamSender) error {
	lp, ok := parseLivePath(req.Path)
	if !ok {
		return fmt.Errorf("no live stream %q", req.Path)
	}
	if d.cfgErr != nil {
		return fmt.Errorf("the datasource is misconfigured: %w", d.cfgErr)
	}
	logger := log.DefaultLogger.FromContext(ctx).With("path", req.Path)
	lastID, retry := "", liveRetryMin
	for {
		got := false
		connected := func() {
			if d.liveConnected != nil {
				d.liveConnected(req.Path)
			}
		}
		var err error
		lastID, err = d.api.Live(ctx, lp.params, lastID, connected, func(m apiclient.LiveMessage) error {
			got = true
			if m.Event == "gap" {
				// Messages older than the feed keeps were missed; the API
				// says where to read them.
				logger.Warn("the live feed lost messages while disconnected", "gap", string(m.Data))
				return nil
			}
			f, err := lp.frame(m)
			if err != nil {
				logger.Warn("skip a live message that cannot be read", "event", m.Event, "error", err)
				return nil
			}
			if f == nil {
				return nil
			}
			if err := sender.SendFrame(f, data.IncludeAll); err != nil {
				return sendError{err}
			}
			return nil
		})
		if ctx.Err() != nil {
			return nil
		}
		var se sendError
		if errors.As(err, &se) {
			return se
		}
		if got {
			retry = liveRetryMin
		}
		logger.Warn("the live feed's connection ended; reconnecting", "error", err, "retry", retry, "lastEventID", lastID)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(retry):
		}
		retry = min(retry*2, liveRetryMax)
	}
}

// liveEventFrame is one event as a row of the events query's frame (table
// or logs), so a live panel appends it to what the query returned.
func liveEventFrame(m apiclient.LiveMessage, logs bool) (*data.Frame, error) {
	if m.Event != "event" {
		return nil, nil
	}
	var e apiclient.Event
	if err := json.Unmarshal(m.Data, &e); err != nil {
		return nil, err
	}
	if logs {
		return eventLogFrame([]apiclient.Event{e}), nil
	}
	return eventTableFrame([]apiclient.Event{e}), nil
}

// liveWindow is a window message.
type liveWindow struct {
	Basis    string             `json:"basis"`
	Window   string             `json:"window"`
	Start    time.Time          `json:"start"`
	End      time.Time          `json:"end"`
	Count    int64              `json:"count"`
	Revision int64              `json:"revision"`
	Metrics  map[string]float64 `json:"metrics"`
	Error    string             `json:"error"`
}

func liveWindowFrame(metric string, m apiclient.LiveMessage) (*data.Frame, error) {
	if m.Event != "window" {
		return nil, nil
	}
	var w liveWindow
	if err := json.Unmarshal(m.Data, &w); err != nil {
		return nil, err
	}
	var value *float64
	if v, ok := w.Metrics[metric]; ok {
		value = &v
	}
	return data.NewFrame(metric,
		data.NewField("start", nil, []time.Time{w.Start.UTC()}),
		data.NewField(metric, nil, []*float64{value}),
		data.NewField("window", nil, []string{w.Window}),
		data.NewField("basis", nil, []string{w.Basis}),
		data.NewField("count", nil, []int64{w.Count}),
		data.NewField("revision", nil, []int64{w.Revision}),
	), nil
}

// liveSeriesFrame is a window of one size and clock as a point of the
// metrics query's series (metricFrames without groups).
func liveSeriesFrame(metric, window, basis string, m apiclient.LiveMessage) (*data.Frame, error) {
	if m.Event != "window" {
		return nil, nil
	}
	var w liveWindow
	if err := json.Unmarshal(m.Data, &w); err != nil {
		return nil, err
	}
	v, ok := w.Metrics[metric]
	if w.Window != window || w.Basis != basis || !ok {
		return nil, nil
	}
	frames := metricFrames(apiclient.Metrics{Metric: metric, Window: window, Basis: basis,
		Points: []apiclient.Point{{Start: w.Start, Value: v}}}, "", "")
	return frames[0], nil
}

// liveFor reads whether q asks for "live": true, and how its answer then
// continues live: attach puts the channel in the meta of the query's frame
// when the stream's frames have its schema (events, metrics without
// groups), or of an empty frame of the stream's schema added to the answer
// (anomalies, alerts), which Grafana fills as messages come. A query the
// live feed cannot continue gets refusal instead, before it runs.
func (d *Datasource) liveFor(q backend.DataQuery) (attach func(*backend.DataResponse), refusal string) {
	var l struct {
		Live bool `json:"live"`
	}
	if len(q.JSON) == 0 || json.Unmarshal(q.JSON, &l) != nil || !l.Live {
		return nil, ""
	}
	setChannel := func(f *data.Frame, path string) {
		if f.Meta == nil {
			f.Meta = &data.FrameMeta{}
		}
		f.Meta.Channel = live.Channel{Scope: live.ScopeDatasource, Namespace: d.uid, Path: path}.String()
	}
	switch q.QueryType {
	case models.QueryTypeEvents:
		var m models.EventsQuery
		_ = models.Decode(q.QueryType, q.JSON, &m) // a bad model is the query's own error
		if m.Customer != "" || m.Resource != "" {
			return nil, "live: the live feed follows events by topic only; remove the customer and resource filters, or turn live off"
		}
		path := "live/events"
		if m.Format == models.FormatLogs {
			path += "/logs"
		}
		for _, t := range m.Topics {
			path += "/topic=" + t
		}
		return func(r *backend.DataResponse) { setChannel(r.Frames[0], path) }, ""
	case models.QueryTypeMetrics:
		var m models.MetricsQuery
		_ = models.Decode(q.QueryType, q.JSON, &m)
		if m.GroupBy != "" || m.FilterParam() != "" {
			return nil, "live: a live metrics panel follows the metric over all events; remove groupBy and the filter, or turn live off"
		}
		if m.Offset != "" {
			return nil, "live: a query with an offset draws the past, which the live feed does not extend; turn live off for it"
		}
		// the window size and clock are the answer's (window auto is
		// resolved by the query)
		return func(r *backend.DataResponse) {
			f := r.Frames[0]
			custom, _ := f.Meta.Custom.(map[string]string)
			setChannel(f, "live/metrics/"+f.Name+"/"+custom["window"]+"/"+custom["basis"])
		}, ""
	case models.QueryTypeAnomalies, models.QueryTypeAlerts:
		return func(r *backend.DataResponse) {
			f, path := anomalyRows(nil), "live/anomalies"
			if q.QueryType == models.QueryTypeAlerts {
				f, path = alertRows(nil), "live/alerts"
			}
			f.Name += " (live)"
			setChannel(f, path)
			r.Frames = append(r.Frames, f)
		}, ""
	}
	if !slices.Contains(models.QueryTypes, q.QueryType) {
		return nil, "" // the query answers what is wrong with its type
	}
	return nil, fmt.Sprintf("live: queryType %q has no live stream; live panels follow events, metrics, anomalies and alerts", q.QueryType)
}

// liveAnomaly is an anomaly message (as GET /api/v1/anomalies lists them).
type liveAnomaly struct {
	Series   string    `json:"series"`
	Start    time.Time `json:"start"`
	Window   string    `json:"window"`
	Value    float64   `json:"value"`
	Expected *float64  `json:"expected"`
	Low      *float64  `json:"low"`
	High     *float64  `json:"high"`
	Score    float64   `json:"score"`
	Reason   string    `json:"reason"`
}

func liveAnomalyFrame(m apiclient.LiveMessage) (*data.Frame, error) {
	if m.Event != "anomaly" {
		return nil, nil
	}
	var a liveAnomaly
	if err := json.Unmarshal(m.Data, &a); err != nil {
		return nil, err
	}
	return anomalyRows([]liveAnomaly{a}), nil
}

// anomalyRows is the frame of live/anomalies.
func anomalyRows(as []liveAnomaly) *data.Frame {
	n := len(as)
	start := make([]time.Time, n)
	series, window, reason := make([]string, n), make([]string, n), make([]string, n)
	value, score := make([]float64, n), make([]float64, n)
	expected, low, high := make([]*float64, n), make([]*float64, n), make([]*float64, n)
	for i, a := range as {
		start[i], series[i], window[i], reason[i] = a.Start.UTC(), a.Series, a.Window, a.Reason
		value[i], score[i], expected[i], low[i], high[i] = a.Value, a.Score, a.Expected, a.Low, a.High
	}
	return data.NewFrame("anomalies",
		data.NewField("start", nil, start),
		data.NewField("series", nil, series),
		data.NewField("window", nil, window),
		data.NewField("value", nil, value),
		data.NewField("expected", nil, expected),
		data.NewField("low", nil, low),
		data.NewField("high", nil, high),
		data.NewField("score", nil, score),
		data.NewField("reason", nil, reason),
	)
}

// liveAlert is an alert message.
type liveAlert struct {
	Fingerprint string            `json:"fingerprint"`
	Rule        string            `json:"rule"`
	Severity    string            `json:"severity"`
	From        string            `json:"from"`
	State       string            `json:"state"`
	Labels      map[string]string `json:"labels"`
	Value       float64           `json:"value"`
	Summary     string            `json:"summary"`
	At          time.Time         `json:"at"`
}

func liveAlertFrame(m apiclient.LiveMessage) (*data.Frame, error) {
	if m.Event != "alert" {
		return nil, nil
	}
	var a liveAlert
	if err := json.Unmarshal(m.Data, &a); err != nil {
		return nil, err
	}
	return alertRows([]liveAlert{a}), nil
}

// alertRows is the frame of live/alerts.
func alertRows(as []liveAlert) *data.Frame {
	n := len(as)
	at := make([]time.Time, n)
	str := func() []string { return make([]string, n) }
	rule, severity, from, state, summary, fingerprint := str(), str(), str(), str(), str(), str()
	value, labels := make([]float64, n), make([]json.RawMessage, n)
	for i, a := range as {
		at[i], rule[i], severity[i], from[i], state[i] = a.At.UTC(), a.Rule, a.Severity, a.From, a.State
		value[i], summary[i], fingerprint[i] = a.Value, a.Summary, a.Fingerprint
		labels[i] = mustJSON(a.Labels)
	}
	return data.NewFrame("alerts",
		data.NewField("at", nil, at),
		data.NewField("rule", nil, rule),
		data.NewField("severity", nil, severity),
		data.NewField("from", nil, from),
		data.NewField("state", nil, state),
		data.NewField("value", nil, value),
		data.NewField("summary", nil, summary),
		data.NewField("labels", nil, labels),
		data.NewField("fingerprint", nil, fingerprint),
	)
}
