package plugin

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/data"

	"github.com/hookstream/hookstream/grafana-plugin/pkg/apiclient"
	"github.com/hookstream/hookstream/grafana-plugin/pkg/models"
)

func (d *Datasource) queryEvents(ctx context.Context, _ backend.PluginContext, q backend.DataQuery) backend.DataResponse {
	var m models.EventsQuery
	if err := models.Decode(q.QueryType, q.JSON, &m); err != nil {
		return badQuery(err.Error())
	}
	if err := m.Validate(); err != nil {
		return badQuery(err.Error())
	}
	evs, err := d.api.Events(ctx, apiclient.EventsParams{Topics: m.Topics, Customer: m.Customer, Resource: m.Resource,
		From: q.TimeRange.From, To: q.TimeRange.To, Limit: m.Limit})
	if err != nil {
		return errResponse("events", err)
	}
	if m.Format == models.FormatLogs {
		return backend.DataResponse{Frames: data.Frames{eventLogFrame(evs)}}
	}
	return backend.DataResponse{Frames: data.Frames{eventTableFrame(evs)}}
}

// eventTableFrame is one row per event, newest first, as the API lists them.
func eventTableFrame(evs []apiclient.Event) *data.Frame {
	n := len(evs)
	created, received := make([]time.Time, n), make([]time.Time, n)
	str := func() []string { return make([]string, n) }
	topic, family, outcome, rtype, rid, cust, corr, source, id := str(), str(), str(), str(), str(), str(), str(), str(), str()
	terminal := make([]bool, n)
	for i, e := range evs {
		created[i], received[i] = e.Created.UTC(), e.Received.UTC()
		topic[i], family[i], outcome[i], terminal[i] = e.Topic, e.Family, e.Outcome, e.Terminal
		rtype[i], rid[i], cust[i], corr[i], source[i], id[i] = e.ResourceType, e.ResourceID, e.CustomerID, e.CorrelationID, e.Source, e.ID
	}
	f := data.NewFrame("events",
		data.NewField("created", nil, created),
		data.NewField("received", nil, received),
		data.NewField("topic", nil, topic),
		data.NewField("family", nil, family),
		data.NewField("outcome", nil, outcome),
		data.NewField("terminal", nil, terminal),
		data.NewField("resource_type", nil, rtype),
		data.NewField("resource_id", nil, rid),
		data.NewField("customer_id", nil, cust),
		data.NewField("correlation_id", nil, corr),
		data.NewField("source", nil, source),
		data.NewField("id", nil, id),
	)
	f.SetMeta(&data.FrameMeta{Type: data.FrameTypeTable, PreferredVisualization: data.VisTypeTable, UniqueRowIDFields: []int{11}})
	return f
}

// eventLogFrame is the events as log lines (Grafana's logs data frame:
// timestamp, body, severity, id, labels), for Explore and the logs panel.
func eventLogFrame(evs []apiclient.Event) *data.Frame {
	n := len(evs)
	ts := make([]time.Time, n)
	body, severity, id := make([]string, n), make([]string, n), make([]string, n)
	labels := make([]json.RawMessage, n)
	for i, e := range evs {
		ts[i], id[i] = e.Created.UTC(), e.ID
		body[i] = logLine(e)
		severity[i] = "info"
		if e.Outcome == "failure" {
			severity[i] = "error"
		}
		l := map[string]string{"topic": e.Topic, "source": e.Source}
		for k, v := range map[string]string{"family": e.Family, "outcome": e.Outcome, "resource_type": e.ResourceType, "customer_id": e.CustomerID} {
			if v != "" {
				l[k] = v
			}
		}
		labels[i] = mustJSON(l) // map keys marshal sorted: stable output
	}
	f := data.NewFrame("events",
		data.NewField("timestamp", nil, ts),
		data.NewField("body", nil, body),
		data.NewField("severity", nil, severity),
		data.NewField("id", nil, id),
		data.NewField("labels", nil, labels),
	)
	f.SetMeta(&data.FrameMeta{Type: data.FrameTypeLogLines, TypeVersion: data.FrameTypeVersion{0, 0}, PreferredVisualization: data.VisTypeLogs})
	return f
}

// logLine reads as "customer_verified customers/c105... customer=c105..."
func logLine(e apiclient.Event) string {
	var b strings.Builder
	b.WriteString(e.Topic)
	if e.ResourceType != "" || e.ResourceID != "" {
		fmt.Fprintf(&b, " %s/%s", e.ResourceType, e.ResourceID)
	}
	if e.CustomerID != "" && e.CustomerID != e.ResourceID {
		fmt.Fprintf(&b, " customer=%s", e.CustomerID)
	}
	if e.Outcome != "" {
		fmt.Fprintf(&b, " outcome=%s", e.Outcome)
	}
	fmt.Fprintf(&b, " id=%s", e.ID)
	return b.String()
}
