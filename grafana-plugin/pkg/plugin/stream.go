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

	"github.com/hookstream/hookstream/grafana-plugin/pkg/apiclient"
)

// Live streams (Grafana Live channels ds/<uid>/<path>), each fed by the
// API's live feed:
//
//	live/events            every stored event
//	live/metrics/<metric>  every closed window (all sizes and clocks), the metric's value
//	live/anomalies         every anomaly the scorer finds
//	live/alerts            every alert state change
//
// RunStream reconnects with Last-Event-ID, so a dropped connection neither
// loses nor repeats a message.
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
	case path == "live/events":
		return livePath{params: apiclient.LiveParams{Types: []string{"event"}}, frame: liveEventFrame}, true
	case path == "live/anomalies":
		return livePath{params: apiclient.LiveParams{Types: []string{"anomaly"}}, frame: liveAnomalyFrame}, true
	case path == "live/alerts":
		return livePath{params: apiclient.LiveParams{Types: []string{"alert"}}, frame: liveAlertFrame}, true
	case strings.HasPrefix(path, "live/metrics/"):
		metric := strings.TrimPrefix(path, "live/metrics/")
		if metric == "" || strings.Contains(metric, "/") {
			return livePath{}, false
		}
		return livePath{params: apiclient.LiveParams{Types: []string{"window"}}, metric: metric,
			frame: func(m apiclient.LiveMessage) (*data.Frame, error) { return liveWindowFrame(metric, m) }}, true
	}
	return livePath{}, false
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

func liveEventFrame(m apiclient.LiveMessage) (*data.Frame, error) {
	if m.Event != "event" {
		return nil, nil
	}
	var e apiclient.Event
	if err := json.Unmarshal(m.Data, &e); err != nil {
		return nil, err
	}
	return data.NewFrame("events",
		data.NewField("created", nil, []time.Time{e.Created.UTC()}),
		data.NewField("received", nil, []time.Time{e.Received.UTC()}),
		data.NewField("topic", nil, []string{e.Topic}),
		data.NewField("resource_type", nil, []string{e.ResourceType}),
		data.NewField("resource_id", nil, []string{e.ResourceID}),
		data.NewField("customer_id", nil, []string{e.CustomerID}),
		data.NewField("source", nil, []string{e.Source}),
		data.NewField("id", nil, []string{e.ID}),
	), nil
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
	return data.NewFrame("anomalies",
		data.NewField("start", nil, []time.Time{a.Start.UTC()}),
		data.NewField("series", nil, []string{a.Series}),
		data.NewField("window", nil, []string{a.Window}),
		data.NewField("value", nil, []float64{a.Value}),
		data.NewField("expected", nil, []*float64{a.Expected}),
		data.NewField("low", nil, []*float64{a.Low}),
		data.NewField("high", nil, []*float64{a.High}),
		data.NewField("score", nil, []float64{a.Score}),
		data.NewField("reason", nil, []string{a.Reason}),
	), nil
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
	labels, _ := json.Marshal(a.Labels)
	return data.NewFrame("alerts",
		data.NewField("at", nil, []time.Time{a.At.UTC()}),
		data.NewField("rule", nil, []string{a.Rule}),
		data.NewField("severity", nil, []string{a.Severity}),
		data.NewField("from", nil, []string{a.From}),
		data.NewField("state", nil, []string{a.State}),
		data.NewField("value", nil, []float64{a.Value}),
		data.NewField("summary", nil, []string{a.Summary}),
		data.NewField("labels", nil, []json.RawMessage{labels}),
		data.NewField("fingerprint", nil, []string{a.Fingerprint}),
	), nil
}
