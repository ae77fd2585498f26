package plugin

import (
	"context"
	"maps"
	"slices"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/data"

	"github.com/hookstream/hookstream/grafana-plugin/pkg/apiclient"
	"github.com/hookstream/hookstream/grafana-plugin/pkg/models"
)

func (d *Datasource) queryStatus(ctx context.Context, _ backend.PluginContext, q backend.DataQuery) backend.DataResponse {
	var m models.StatusQuery
	if err := models.Decode(q.QueryType, q.JSON, &m); err != nil {
		return badQuery(err.Error())
	}
	st, err := d.api.Status(ctx)
	if err != nil {
		return errResponse("status", err)
	}
	return backend.DataResponse{Frames: statusFrames(st)}
}

// statusFrames are a one-row "status" frame of totals (for stat panels)
// and a "partitions" table. The parts the API could not read become
// warnings on the first frame.
func statusFrames(st apiclient.Status) data.Frames {
	var watermark *time.Time
	if st.Watermark.Year() > 1 {
		w := st.Watermark.UTC()
		watermark = &w
	}
	summary := data.NewFrame("status",
		data.NewField("paused", nil, []bool{st.Paused}),
		data.NewField("partitions", nil, []int64{int64(len(st.Partitions))}),
		data.NewField("length", nil, []int64{st.Total.Length}),
		data.NewField("pending", nil, []int64{st.Total.Pending}),
		data.NewField("lag", nil, []int64{st.Total.Lag}),
		data.NewField("backlog", nil, []int64{st.Total.Pending + max(st.Total.Lag, 0)}),
		data.NewField("oldest_pending_age", nil, []float64{st.Total.OldestAge.Seconds()}).SetConfig(&data.FieldConfig{Unit: "s"}),
		data.NewField("dlq_open", nil, []int64{st.DLQOpen}),
		data.NewField("dlq_stream_length", nil, []int64{st.DLQStream}),
		data.NewField("processors", nil, []int64{int64(len(st.Processors))}),
		data.NewField("event_watermark", nil, []*time.Time{watermark}),
	)
	meta := &data.FrameMeta{Type: data.FrameTypeTable, PreferredVisualization: data.VisTypeTable}
	for _, part := range slices.Sorted(maps.Keys(st.Errors)) {
		meta.Notices = append(meta.Notices, data.Notice{Severity: data.NoticeSeverityWarning,
			Text: "status part " + part + " could not be read: " + st.Errors[part]})
	}
	summary.SetMeta(meta)

	n := len(st.Partitions)
	part, length, pending, lag, consumers := make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
	age := make([]float64, n)
	for i, p := range st.Partitions {
		part[i], length[i], pending[i], lag[i], consumers[i], age[i] = int64(p.Partition), p.Length, p.Pending, p.Lag, p.Consumers, p.OldestAge.Seconds()
	}
	parts := data.NewFrame("partitions",
		data.NewField("partition", nil, part),
		data.NewField("length", nil, length),
		data.NewField("pending", nil, pending),
		data.NewField("lag", nil, lag),
		data.NewField("oldest_pending_age", nil, age).SetConfig(&data.FieldConfig{Unit: "s"}),
		data.NewField("consumers", nil, consumers),
	)
	parts.SetMeta(&data.FrameMeta{Type: data.FrameTypeTable, PreferredVisualization: data.VisTypeTable})
	return data.Frames{summary, parts}
}
