package plugin

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/data"

	"github.com/hookstream/hookstream/grafana-plugin/pkg/apiclient"
	"github.com/hookstream/hookstream/grafana-plugin/pkg/models"
)

// queryValues answers the template variables' queries: one frame, "text"
// and "value" (the same strings), what the kind lists.
func (d *Datasource) queryValues(ctx context.Context, _ backend.PluginContext, q backend.DataQuery) backend.DataResponse {
	var m models.ValuesQuery
	if err := models.Decode(q.QueryType, q.JSON, &m); err != nil {
		return badQuery(err.Error())
	}
	if err := m.Validate(); err != nil {
		return badQuery(err.Error())
	}
	vals, err := d.values(ctx, m, q.TimeRange)
	if err != nil {
		if _, ok := err.(*resourceError); ok {
			return badQuery(err.Error())
		}
		return errResponse("values", err)
	}
	f := data.NewFrame("values", data.NewField("text", nil, vals), data.NewField("value", nil, slices.Clone(vals)))
	f.SetMeta(&data.FrameMeta{Type: data.FrameTypeTable})
	return backend.DataResponse{Frames: data.Frames{f}}
}

func (d *Datasource) values(ctx context.Context, m models.ValuesQuery, tr backend.TimeRange) ([]string, error) {
	out := []string{}
	switch m.Kind {
	case models.ValuesTopics, models.ValuesMetrics, models.ValuesDimensions, models.ValuesDimensionValues:
		// the dimension values seen in the query's time range (a
		// dashboard's variable lists what its panels can show)
		cat, err := d.api.Catalog(ctx, tr.From)
		if err != nil {
			return nil, err
		}
		dim := map[string]string{models.ValuesTopics: "topic", models.ValuesDimensionValues: m.Dimension}[m.Kind]
		var dims []string
		for _, dm := range cat.Dimensions {
			dims = append(dims, dm.Name)
			if m.Kind == models.ValuesDimensions {
				out = append(out, dm.Name)
			} else if dm.Name == dim {
				out = append(out, dm.Values...)
			}
		}
		if m.Kind == models.ValuesMetrics {
			for _, mi := range cat.Metrics {
				out = append(out, mi.Name)
			}
		}
		if m.Kind == models.ValuesDimensionValues && !slices.Contains(dims, dim) {
			return nil, &resourceError{400, fmt.Sprintf("dimension: no dimension %q; the dimensions are %s", dim, strings.Join(dims, ", "))}
		}
		if m.Kind == models.ValuesTopics || m.Kind == models.ValuesDimensionValues {
			slices.Sort(out)
		}
	case models.ValuesJourneys, models.ValuesSteps:
		js, err := d.api.Journeys(ctx)
		if err != nil {
			return nil, err
		}
		var names []string
		for _, j := range js {
			names = append(names, j.Name)
			if m.Kind == models.ValuesJourneys {
				out = append(out, j.Name)
			} else if j.Name == m.Journey {
				for _, s := range j.Steps {
					out = append(out, s.Name)
				}
				return out, nil
			}
		}
		if m.Kind == models.ValuesSteps {
			return nil, &resourceError{400, fmt.Sprintf("journey: no journey %q; the journeys are %s", m.Journey, strings.Join(names, ", "))}
		}
	case models.ValuesSubjects:
		ins, _, err := d.api.Instances(ctx, apiclient.InstancesParams{Journey: m.Journey, Status: m.Status, From: tr.From, To: tr.To, Limit: m.Limit})
		if err != nil {
			return nil, err
		}
		for _, in := range ins {
			out = append(out, in.Subject)
		}
	case models.ValuesSeries:
		heads, err := d.api.WatchedInstances(ctx)
		if apiclient.StatusOf(err) == 404 {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		seen := map[string]bool{}
		for _, h := range heads {
			if name := seriesName(h.Series); !seen[name] {
				seen[name] = true
				out = append(out, name)
			}
			if strings.Contains(h.Series, "/") {
				out = append(out, h.Series)
			}
		}
	}
	return out, nil
}
