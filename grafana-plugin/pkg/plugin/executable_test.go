package plugin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/backend/grpcplugin"
	"github.com/grafana/grafana-plugin-sdk-go/data"
	"github.com/grafana/grafana-plugin-sdk-go/genproto/pluginv2"
	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"
)

// TestExecutable builds gpx_hookstream and starts it the way Grafana does:
// as a child process through hashicorp/go-plugin, with the SDK's handshake
// and plugin set over gRPC. The settings travel in a pluginv2.PluginContext
// as Grafana sends them; CheckHealth, a metrics QueryData (Arrow frames)
// and the other query types, a CallResource and a live stream of new
// events are answered by the process, and Kill ends it.
func TestExecutable(t *testing.T) {
	hs := sharedHookstream(t)

	bin := filepath.Join(t.TempDir(), "gpx_hookstream")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/hookstream/hookstream/grafana-plugin/pkg").CombinedOutput(); err != nil {
		t.Fatalf("build the plugin: %v\n%s", err, out)
	}

	logs := &syncBuffer{}
	client := goplugin.NewClient(&goplugin.ClientConfig{
		Cmd: exec.Command(bin),
		HandshakeConfig: goplugin.HandshakeConfig{
			ProtocolVersion:  grpcplugin.ProtocolVersion,
			MagicCookieKey:   grpcplugin.MagicCookieKey,
			MagicCookieValue: grpcplugin.MagicCookieValue,
		},
		VersionedPlugins: map[int]goplugin.PluginSet{grpcplugin.ProtocolVersion: {
			"diagnostics": &grpcplugin.DiagnosticsGRPCPlugin{},
			"resource":    &grpcplugin.ResourceGRPCPlugin{},
			"data":        &grpcplugin.DataGRPCPlugin{},
			"stream":      &grpcplugin.StreamGRPCPlugin{},
		}},
		AllowedProtocols: []goplugin.Protocol{goplugin.ProtocolGRPC},
		Logger:           hclog.New(&hclog.LoggerOptions{Name: "gpx_hookstream", Output: logs, Level: hclog.Debug}),
	})
	killed := false
	t.Cleanup(func() {
		if !killed {
			client.Kill()
		}
		if t.Failed() {
			t.Logf("plugin log:\n%s", logs.String())
		}
	})

	rpc, err := client.Client()
	if err != nil {
		t.Fatalf("start the plugin: %v", err)
	}
	if client.NegotiatedVersion() != grpcplugin.ProtocolVersion || client.Protocol() != goplugin.ProtocolGRPC {
		t.Fatalf("negotiated protocol %s version %d", client.Protocol(), client.NegotiatedVersion())
	}
	dispense := func(name string) any {
		t.Helper()
		v, err := rpc.Dispense(name)
		if err != nil {
			t.Fatalf("dispense %s: %v", name, err)
		}
		return v
	}
	diagnostics := dispense("diagnostics").(pluginv2.DiagnosticsClient)
	dataClient := dispense("data").(pluginv2.DataClient)
	resources := dispense("resource").(pluginv2.ResourceClient)

	jsonData, _ := json.Marshal(map[string]string{"url": hs.apiURL})
	pc := &pluginv2.PluginContext{
		OrgId:    1,
		PluginId: PluginID,
		DataSourceInstanceSettings: &pluginv2.DataSourceInstanceSettings{
			Id:                      1,
			Uid:                     "hookstream-exec",
			Name:                    "hookstream",
			JsonData:                jsonData,
			DecryptedSecureJsonData: map[string]string{"apiToken": readSecret},
			LastUpdatedMS:           1000,
		},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	health, err := diagnostics.CheckHealth(ctx, &pluginv2.CheckHealthRequest{PluginContext: pc})
	if err != nil {
		t.Fatal(err)
	}
	if health.Status != pluginv2.CheckHealthResponse_OK || !strings.Contains(health.Message, "read scope") {
		t.Fatalf("health: %v %s", health.Status, health.Message)
	}

	tr := rng("0s", "1h")
	resp, err := dataClient.QueryData(ctx, &pluginv2.QueryDataRequest{PluginContext: pc, Queries: []*pluginv2.DataQuery{{
		RefId:         "M",
		QueryType:     "metrics",
		Json:          []byte(`{"metric":"count","groupBy":"family","window":"auto"}`),
		TimeRange:     &pluginv2.TimeRange{FromEpochMS: tr.From.UnixMilli(), ToEpochMS: tr.To.UnixMilli()},
		MaxDataPoints: 20,
		IntervalMS:    time.Minute.Milliseconds(),
	}}})
	if err != nil {
		t.Fatal(err)
	}
	m, ok := resp.Responses["M"]
	if !ok || m.Error != "" {
		t.Fatalf("metrics: present %v, error %q", ok, m.GetError())
	}
	frames, err := data.UnmarshalArrowFrames(m.Frames)
	if err != nil {
		t.Fatalf("decode the Arrow frames: %v", err)
	}
	if len(frames) < 2 {
		t.Fatalf("metrics: %d frames, want a series per family", len(frames))
	}
	var total float64
	for _, f := range frames {
		if len(f.Fields) < 2 || f.Fields[1].Labels["family"] == "" {
			t.Fatalf("a series without its family label: %v", f.Fields)
		}
		if f.Rows() != 12 { // 20 points over an hour need 3m: the 5m windows
			t.Errorf("series %v has %d points, want 12 windows of 5m", f.Fields[1].Labels, f.Rows())
		}
		for r := range f.Rows() {
			total += f.Fields[1].At(r).(float64)
		}
	}
	if total == 0 {
		t.Error("metrics sum to zero")
	}

	// Every other query type in one request, each answered on its own
	// with rows.
	day := rng("0s", "31h")
	others := map[string][2]string{
		"events":    {"events", `{"limit":5}`},
		"logs":      {"events", `{"limit":5,"format":"logs"}`},
		"funnel":    {"funnel", `{"journey":"customer_verification"}`},
		"journeys":  {"journeys", `{"journey":"customer_verification","limit":5}`},
		"anomalies": {"anomalies", `{"series":"transfer-failures"}`},
		"annotate":  {"anomalies", `{"format":"annotations"}`},
		"forecast":  {"forecast", `{"series":"volume/family=transfer","horizon":"1h"}`},
		"alerts":    {"alerts", `{}`},
		"status":    {"status", `{}`},
		"values":    {"values", `{"kind":"journeys"}`},
	}
	req := &pluginv2.QueryDataRequest{PluginContext: pc}
	for ref, q := range others {
		req.Queries = append(req.Queries, &pluginv2.DataQuery{RefId: ref, QueryType: q[0], Json: []byte(q[1]),
			TimeRange: &pluginv2.TimeRange{FromEpochMS: day.From.UnixMilli(), ToEpochMS: day.To.UnixMilli()}, MaxDataPoints: 500, IntervalMS: 60000})
	}
	all, err := dataClient.QueryData(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	for ref := range others {
		r, ok := all.Responses[ref]
		if !ok || r.Error != "" {
			t.Errorf("%s: present %v, error %q", ref, ok, r.GetError())
			continue
		}
		fs, err := data.UnmarshalArrowFrames(r.Frames)
		if err != nil {
			t.Fatalf("%s: decode the Arrow frames: %v", ref, err)
		}
		rows := 0
		for _, f := range fs {
			rows += f.Rows()
		}
		if rows == 0 {
			t.Errorf("%s: %d frames without a row", ref, len(fs))
		}
	}

	stream, err := resources.CallResource(ctx, &pluginv2.CallResourceRequest{PluginContext: pc, Method: "GET", Path: "topics", Url: "topics?since=2025-06-01"})
	if err != nil {
		t.Fatal(err)
	}
	var code int32
	var body []byte
	for {
		r, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("topics: %v", err)
		}
		if r.Code != 0 {
			code = r.Code
		}
		body = append(body, r.Body...)
	}
	if code != 200 {
		t.Fatalf("topics: status %d: %s", code, body)
	}
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, body, "", "  "); err != nil {
		t.Fatalf("topics is not JSON: %v: %s", err, body)
	}
	pretty.WriteByte('\n')
	want, err := os.ReadFile(filepath.Join("testdata", "resources", "topics.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(want, pretty.Bytes()) {
		t.Errorf("topics from the executable differs from the golden answer:\n%s", pretty.String())
	}

	// A live stream through the executable: events sent to the live
	// hookstream (the shared one's data must not change) arrive as frames.
	// The stream connects in its own time: batches go until one arrives,
	// then every event of the next batch must.
	streams := dispense("stream").(pluginv2.StreamClient)
	lhs := liveHookstream(t)
	liveJSON, _ := json.Marshal(map[string]string{"url": lhs.apiURL})
	livePC := &pluginv2.PluginContext{OrgId: 1, PluginId: PluginID, DataSourceInstanceSettings: &pluginv2.DataSourceInstanceSettings{
		Id: 2, Uid: "hookstream-exec-live", Name: "hookstream live", JsonData: liveJSON,
		DecryptedSecureJsonData: map[string]string{"apiToken": readSecret}, LastUpdatedMS: 1000}}
	sctx, scancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer scancel()
	sub, err := streams.SubscribeStream(sctx, &pluginv2.SubscribeStreamRequest{PluginContext: livePC, Path: "live/events"})
	if err != nil || sub.Status != pluginv2.SubscribeStreamResponse_OK {
		t.Fatalf("SubscribeStream live/events: %v %v", sub, err)
	}
	run, err := streams.RunStream(sctx, &pluginv2.RunStreamRequest{PluginContext: livePC, Path: "live/events"})
	if err != nil {
		t.Fatal(err)
	}
	rec := &packetRecorder{}
	recvErr := make(chan error, 1)
	go func() {
		for {
			p, err := run.Recv()
			if err != nil {
				recvErr <- err
				return
			}
			if err := rec.Send(&backend.StreamPacket{Data: p.Data}); err != nil {
				recvErr <- err
				return
			}
		}
	}()
	for arrived := false; !arrived; {
		ids := lhs.simEvents(t, 1)
		arrived = poll(10*time.Second, "an event on the stream", func() bool { return len(rec.received()) > 0 }) == nil
		if sctx.Err() != nil {
			t.Fatalf("no event arrived on the stream: %v", ids)
		}
	}
	ids := lhs.simEvents(t, 2)
	if err := poll(60*time.Second, "every event of the batch on the stream", func() bool { return hasAll(rec.received(), ids) }); err != nil {
		t.Fatalf("%v: received %d", err, len(rec.received()))
	}
	select {
	case err := <-recvErr:
		t.Fatalf("the stream ended: %v", err)
	default:
	}
	scancel()

	// Kill ends the process: it returns once the child has been waited for,
	// so the pid is gone, not a zombie.
	pid := client.ReattachConfig().Pid
	client.Kill()
	killed = true
	if !client.Exited() {
		t.Fatal("the client does not report the plugin exited after Kill")
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Fatalf("plugin process %d still exists after Kill: %v", pid, err)
	}
}
