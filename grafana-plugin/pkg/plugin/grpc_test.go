package plugin

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/experimental/datasourcetest"
)

// TestOverGRPC serves the datasource over the plugin protocol's gRPC
// services, as Grafana talks to it, and calls CheckHealth and QueryData
// through the client: settings and secrets cross the wire, instances are
// built by the SDK's instance manager, frames come back as Arrow.
func TestOverGRPC(t *testing.T) {
	hs := sharedHookstream(t)
	// datasourcetest dials the address it is given, so it needs a real
	// port, not :0.
	tp, err := datasourcetest.Manage(NewDatasource, datasourcetest.ManageOpts{Address: fmt.Sprintf("127.0.0.1:%d", freePort())})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tp.Shutdown() })
	set := instanceSettings(hs.apiURL, readSecret)
	pc := backend.PluginContext{PluginID: PluginID, OrgID: 1, DataSourceInstanceSettings: &set}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	health, err := tp.Client.CheckHealth(ctx, &backend.CheckHealthRequest{PluginContext: pc})
	if err != nil {
		t.Fatal(err)
	}
	if health.Status != backend.HealthStatusOk || !strings.Contains(health.Message, "read scope") {
		t.Fatalf("health over gRPC: %v %s", health.Status, health.Message)
	}

	tr := rng("0s", "1h")
	resp, err := tp.Client.QueryData(ctx, &backend.QueryDataRequest{PluginContext: pc, Queries: []backend.DataQuery{
		{RefID: "M", QueryType: "metrics", JSON: []byte(`{"metric":"count","groupBy":"family","window":"auto"}`), TimeRange: tr, MaxDataPoints: 20, Interval: time.Minute},
		{RefID: "E", QueryType: "events", JSON: []byte(`{"limit":5,"format":"logs"}`), TimeRange: tr},
		{RefID: "S", QueryType: "status", JSON: []byte(`{}`), TimeRange: tr},
		{RefID: "X", QueryType: "metrics", JSON: []byte(`{"metric":"speed"}`), TimeRange: tr},
	}})
	if err != nil {
		t.Fatal(err)
	}
	m := resp.Responses["M"]
	if m.Error != nil || len(m.Frames) < 2 {
		t.Fatalf("metrics over gRPC: %v, %d frames", m.Error, len(m.Frames))
	}
	var total float64
	for _, f := range m.Frames {
		if f.Fields[1].Labels["family"] == "" {
			t.Errorf("series without its family label: %v", f.Fields[1].Labels)
		}
		if f.Rows() != 12 { // 20 points over an hour need 3m: the 5m windows
			t.Errorf("series %v has %d points, want 12 windows of 5m", f.Fields[1].Labels, f.Rows())
		}
		for r := range f.Rows() {
			total += f.Fields[1].At(r).(float64)
		}
	}
	if total == 0 {
		t.Error("metrics over gRPC sum to zero")
	}
	if e := resp.Responses["E"]; e.Error != nil || len(e.Frames) != 1 || e.Frames[0].Rows() != 5 {
		t.Errorf("events over gRPC: %v %v", e.Error, e.Frames)
	}
	if s := resp.Responses["S"]; s.Error != nil || len(s.Frames) != 2 || s.Frames[1].Rows() == 0 {
		t.Errorf("status over gRPC: %v %v", s.Error, s.Frames)
	}
	if x := resp.Responses["X"]; x.Error == nil || !strings.Contains(x.Error.Error(), "not a metric") || x.Status != backend.StatusBadRequest {
		t.Errorf("a bad query over gRPC: status %v, error %v", x.Status, x.Error)
	}
}
