package plugin

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/data"

	"github.com/hookstream/hookstream/grafana-plugin/pkg/apiclient"
	"github.com/hookstream/hookstream/grafana-plugin/pkg/models"
)

func (d *Datasource) queryFunnel(ctx context.Context, _ backend.PluginContext, q backend.DataQuery) backend.DataResponse {
	var m models.FunnelQuery
	if err := models.Decode(q.QueryType, q.JSON, &m); err != nil {
		return badQuery(err.Error())
	}
	if err := m.Validate(); err != nil {
		return badQuery(err.Error())
	}
	fs, err := d.api.Funnels(ctx, m.Journey, q.TimeRange.From, q.TimeRange.To, m.ByEntryTopic)
	if err != nil {
		return errResponse("funnel", err)
	}
	frames := make(data.Frames, 0, len(fs))
	for _, f := range fs {
		frames = append(frames, funnelFrame(f, m.ByEntryTopic))
	}
	return backend.DataResponse{Frames: frames}
}

// funnelFrame is one row per step, in the journey's order: a table, and
// with the step names as the string field a bar gauge draws one bar per
// step. Conversions are shares (percentunit) with their 95% interval,
// times between steps in seconds (null when no instance reached both).
// With byEntryTopic, the numbers are labelled with the funnel's entry
// topic, so that frames of several funnels stay apart.
func funnelFrame(f apiclient.Funnel, byEntryTopic bool) *data.Frame {
	n := len(f.Steps)
	step, previous := make([]string, n), make([]string, n)
	optional := make([]bool, n)
	reached, inFlight, abandoned, completed, failed := make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
	fl := func() []float64 { return make([]float64, n) }
	fromPrev, fromPrevLow, fromPrevHigh, overall, overallLow, overallHigh := fl(), fl(), fl(), fl(), fl(), fl()
	median, p90 := make([]*float64, n), make([]*float64, n)
	for i, s := range f.Steps {
		step[i], previous[i], optional[i], reached[i] = s.Step, s.Previous, s.Optional, s.Reached
		fromPrev[i], fromPrevLow[i], fromPrevHigh[i] = s.FromPrevious.Rate, s.FromPrevious.Low, s.FromPrevious.High
		overall[i], overallLow[i], overallHigh[i] = s.Overall.Rate, s.Overall.Low, s.Overall.High
		median[i], p90[i] = s.MedianSeconds, s.P90Seconds
		inFlight[i], abandoned[i], completed[i], failed[i] = s.InFlight, s.Abandoned, s.Completed, s.Failed
	}
	var labels data.Labels
	name := f.Journey
	if byEntryTopic {
		labels = data.Labels{"entry_topic": f.EntryTopic}
		name += " " + f.EntryTopic
	}
	zero, one := data.ConfFloat64(0), data.ConfFloat64(1)
	pct := &data.FieldConfig{Unit: "percentunit", Min: &zero, Max: &one}
	secs := &data.FieldConfig{Unit: "s"}
	frame := data.NewFrame(name,
		data.NewField("step", nil, step),
		data.NewField("reached", labels, reached),
		data.NewField("from_previous", labels, fromPrev).SetConfig(pct),
		data.NewField("from_previous_low", labels, fromPrevLow).SetConfig(pct),
		data.NewField("from_previous_high", labels, fromPrevHigh).SetConfig(pct),
		data.NewField("overall", labels, overall).SetConfig(pct),
		data.NewField("overall_low", labels, overallLow).SetConfig(pct),
		data.NewField("overall_high", labels, overallHigh).SetConfig(pct),
		data.NewField("median_seconds_from_previous", labels, median).SetConfig(secs),
		data.NewField("p90_seconds_from_previous", labels, p90).SetConfig(secs),
		data.NewField("in_flight", labels, inFlight),
		data.NewField("abandoned", labels, abandoned),
		data.NewField("completed", labels, completed),
		data.NewField("failed", labels, failed),
		data.NewField("previous", nil, previous),
		data.NewField("optional", nil, optional),
	)
	frame.SetMeta(&data.FrameMeta{
		Type:                   data.FrameTypeTable,
		PreferredVisualization: data.VisTypeTable,
		ExecutedQueryString:    fmt.Sprintf("GET /api/v1/journeys/%s/funnel (cohort %s to %s)", f.Journey, f.From.UTC().Format(time.RFC3339), f.To.UTC().Format(time.RFC3339)),
		Custom: map[string]any{"journey": f.Journey, "entry_topic": f.EntryTopic, "from": f.From.UTC(), "to": f.To.UTC(),
			"entered": f.Entered, "in_progress": f.InProgress, "completed": f.Completed, "failed": f.Failed, "abandoned": f.Abandoned},
	})
	return frame
}

func (d *Datasource) queryJourneys(ctx context.Context, _ backend.PluginContext, q backend.DataQuery) backend.DataResponse {
	var m models.JourneysQuery
	if err := models.Decode(q.QueryType, q.JSON, &m); err != nil {
		return badQuery(err.Error())
	}
	if err := m.Validate(); err != nil {
		return badQuery(err.Error())
	}
	if m.Subject != "" {
		in, err := d.api.Instance(ctx, m.Journey, m.Subject)
		if err != nil {
			return errResponse("journey instance", err)
		}
		return backend.DataResponse{Frames: instanceFrames(in)}
	}
	ins, more, err := d.api.Instances(ctx, apiclient.InstancesParams{Journey: m.Journey, Status: m.Status,
		From: q.TimeRange.From, To: q.TimeRange.To, Limit: m.Limit})
	if err != nil {
		return errResponse("journey instances", err)
	}
	return backend.DataResponse{Frames: instancesFrames(ins, more, m.Limit)}
}

// instancesFrames are "instances_by_status", one row per status in a fixed
// order (zeros included, so a bar gauge or pie chart keeps its bars), and
// "instances", the listing, the latest to enter first. When the listing
// stopped at the limit, both say so in a warning.
func instancesFrames(ins []apiclient.InstanceSummary, more bool, limit int) data.Frames {
	counts := make([]int64, len(models.InstanceStatuses))
	n := len(ins)
	str := func() []string { return make([]string, n) }
	subject, status, step, entry, conflict := str(), str(), str(), str(), str()
	entered, last := make([]time.Time, n), make([]time.Time, n)
	deadline, abandonedAt := make([]*time.Time, n), make([]*time.Time, n)
	for i, in := range ins {
		if k := slices.Index(models.InstanceStatuses, in.Status); k >= 0 {
			counts[k]++
		}
		subject[i], status[i], step[i], entry[i], conflict[i] = in.Subject, in.Status, in.CurrentStep, in.EntryTopic, in.Conflict
		entered[i], last[i] = in.EnteredAt.UTC(), in.LastAt.UTC()
		deadline[i], abandonedAt[i] = utcPtr(in.Deadline), utcPtr(in.AbandonedAt)
	}
	var notices []data.Notice
	if more {
		notices = append(notices, data.Notice{Severity: data.NoticeSeverityWarning,
			Text: fmt.Sprintf("only the latest %d instances to enter are listed and counted; raise the query's limit (at most %d) or narrow the time range", limit, models.MaxInstances)})
	}
	byStatus := data.NewFrame("instances_by_status",
		data.NewField("status", nil, slices.Clone(models.InstanceStatuses)),
		data.NewField("instances", nil, counts),
	)
	byStatus.SetMeta(&data.FrameMeta{Type: data.FrameTypeTable, PreferredVisualization: data.VisTypeTable, Notices: notices})
	list := data.NewFrame("instances",
		data.NewField("subject", nil, subject),
		data.NewField("status", nil, status),
		data.NewField("current_step", nil, step),
		data.NewField("entry_topic", nil, entry),
		data.NewField("entered_at", nil, entered),
		data.NewField("last_progress_at", nil, last),
		data.NewField("deadline", nil, deadline),
		data.NewField("abandoned_at", nil, abandonedAt),
		data.NewField("conflict", nil, conflict),
	)
	list.SetMeta(&data.FrameMeta{Type: data.FrameTypeTable, PreferredVisualization: data.VisTypeTable, UniqueRowIDFields: []int{0}, Notices: notices})
	return data.Frames{byStatus, list}
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// instanceFrames are "instance", a one-row table of its state (for stat
// panels), and "timeline", what happened to it in time order: each step
// reached (with the event and topic that reached it) and each record
// (abandoned, unabandoned, conflict).
func instanceFrames(in apiclient.Instance) data.Frames {
	summary := data.NewFrame("instance",
		data.NewField("journey", nil, []string{in.Journey}),
		data.NewField("subject", nil, []string{in.Subject}),
		data.NewField("status", nil, []string{in.Status}),
		data.NewField("current_step", nil, []string{in.CurrentStep}),
		data.NewField("entry_topic", nil, []string{in.EntryTopic}),
		data.NewField("entered_at", nil, []time.Time{in.EnteredAt.UTC()}),
		data.NewField("last_progress_at", nil, []time.Time{in.LastAt.UTC()}),
		data.NewField("deadline", nil, []*time.Time{utcPtr(in.Deadline)}),
		data.NewField("abandoned_at", nil, []*time.Time{utcPtr(in.AbandonedAt)}),
		data.NewField("conflict", nil, []string{in.Conflict}),
	)
	summary.SetMeta(&data.FrameMeta{Type: data.FrameTypeTable, PreferredVisualization: data.VisTypeTable})

	topics := map[string]string{}
	for _, e := range in.Events {
		topics[e.ID] = e.Topic
	}
	type row struct {
		at                                 time.Time
		kind, step, topic, eventID, detail string
	}
	var rows []row
	for _, s := range in.Steps {
		if s.ReachedAt == nil {
			continue
		}
		rows = append(rows, row{at: s.ReachedAt.UTC(), kind: "reached", step: s.Step, topic: topics[s.EventID], eventID: s.EventID})
	}
	for _, r := range in.Records {
		rows = append(rows, row{at: r.At.UTC(), kind: r.Kind, step: r.Step, detail: r.Detail})
	}
	slices.SortStableFunc(rows, func(a, b row) int { return a.at.Compare(b.at) })
	n := len(rows)
	at := make([]time.Time, n)
	kind, step, topic, eventID, detail := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	for i, r := range rows {
		at[i], kind[i], step[i], topic[i], eventID[i], detail[i] = r.at, r.kind, r.step, r.topic, r.eventID, r.detail
	}
	timeline := data.NewFrame("timeline",
		data.NewField("time", nil, at),
		data.NewField("kind", nil, kind),
		data.NewField("step", nil, step),
		data.NewField("topic", nil, topic),
		data.NewField("event_id", nil, eventID),
		data.NewField("detail", nil, detail),
	)
	timeline.SetMeta(&data.FrameMeta{Type: data.FrameTypeTable, PreferredVisualization: data.VisTypeTable,
		ExecutedQueryString: "GET /api/v1/journeys/" + in.Journey + "/instances/" + in.Subject})
	return data.Frames{summary, timeline}
}
