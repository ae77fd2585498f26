package plugin

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/live"

	"github.com/hookstream/hookstream/grafana-plugin/pkg/apiclient"
)

// TestLiveQueries: a query with "live": true answers its data with the
// channel that continues it (the frame's meta.channel, which Grafana
// subscribes the panel to), a channel SubscribeStream accepts; a query the
// live feed cannot continue gets an error that says why.
func TestLiveQueries(t *testing.T) {
	hs := sharedHookstream(t)
	ds := newTestDatasource(t, hs.apiURL, readSecret)
	tr := rng("0s", "24h")
	cases := []struct {
		name, queryType, json string
		// frame is the index of the frame that carries the channel; path
		// its path ("" for an error)
		frame int
		path  string
		err   string
	}{
		{"events", "events", `{"live":true,"topics":["customer_created","transfer_failed"]}`, 0, "live/events/topic=customer_created/topic=transfer_failed", ""},
		{"events logs", "events", `{"live":true,"format":"logs"}`, 0, "live/events/logs", ""},
		{"events of a customer", "events", `{"live":true,"customer":"c1"}`, 0, "", "customer and resource filters"},
		{"metrics", "metrics", `{"live":true,"metric":"failures","window":"5m"}`, 0, "live/metrics/failures/5m/event", ""},
		{"metrics auto on received time", "metrics", `{"live":true,"basis":"received"}`, 0, "live/metrics/count/1m/received", ""},
		{"metrics grouped", "metrics", `{"live":true,"groupBy":"topic"}`, 0, "", "remove groupBy"},
		{"anomalies", "anomalies", `{"live":true}`, -1, "live/anomalies", ""},
		{"alerts", "alerts", `{"live":true}`, -1, "live/alerts", ""},
		{"status", "status", `{"live":true}`, 0, "", "has no live stream"},
		{"not live", "events", `{"live":false}`, 0, "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			q := backend.DataQuery{RefID: "A", QueryType: c.queryType, JSON: []byte(c.json), TimeRange: tr, MaxDataPoints: 2000, Interval: time.Minute}
			resp, err := ds.QueryData(context.Background(), &backend.QueryDataRequest{Queries: []backend.DataQuery{q}})
			if err != nil {
				t.Fatal(err)
			}
			dr := resp.Responses["A"]
			if c.err != "" {
				if dr.Error == nil || !strings.Contains(dr.Error.Error(), c.err) {
					t.Fatalf("error %v, want one saying %q", dr.Error, c.err)
				}
				return
			}
			if dr.Error != nil {
				t.Fatal(dr.Error)
			}
			if c.path == "" {
				for _, f := range dr.Frames {
					if f.Meta != nil && f.Meta.Channel != "" {
						t.Errorf("frame %s has the channel %s, asked for none", f.Name, f.Meta.Channel)
					}
				}
				return
			}
			i := c.frame
			if i < 0 {
				i = len(dr.Frames) - 1
			}
			f := dr.Frames[i]
			if f.Meta == nil || f.Meta.Channel == "" {
				t.Fatalf("frame %d (%s) has no channel", i, f.Name)
			}
			ch, err := live.ParseChannel(f.Meta.Channel)
			if err != nil {
				t.Fatalf("channel %q: %v", f.Meta.Channel, err)
			}
			if ch.Scope != live.ScopeDatasource || ch.Namespace != "hookstream-test" || ch.Path != c.path {
				t.Errorf("channel %q, want ds/hookstream-test/%s", f.Meta.Channel, c.path)
			}
			sub, err := ds.SubscribeStream(context.Background(), &backend.SubscribeStreamRequest{Path: ch.Path})
			if err != nil || sub.Status != backend.SubscribeStreamStatusOK {
				t.Errorf("SubscribeStream %s: %v %v", ch.Path, sub, err)
			}
			if c.frame < 0 {
				// the stream's frame is added, empty, after the query's own
				if len(dr.Frames) < 2 || f.Rows() != 0 {
					t.Errorf("%d frames, the live one with %d rows; want the query's frames and an empty live frame", len(dr.Frames), f.Rows())
				}
			}
		})
	}
}

// TestLiveSeriesFrame: a live/metrics/<metric>/<window>/<basis> stream
// sends a window as one point with the schema of the metrics query's
// frame (so Grafana appends it), and ignores the other sizes and clocks.
func TestLiveSeriesFrame(t *testing.T) {
	hs := sharedHookstream(t)
	ds := newTestDatasource(t, hs.apiURL, readSecret)
	resp, err := ds.QueryData(context.Background(), &backend.QueryDataRequest{Queries: []backend.DataQuery{{
		RefID: "A", QueryType: "metrics", JSON: []byte(`{"live":true,"metric":"failures","window":"5m"}`), TimeRange: rng("0s", "2h")}}})
	if err != nil || resp.Responses["A"].Error != nil {
		t.Fatalf("metrics query: %v %v", err, resp.Responses["A"].Error)
	}
	query := resp.Responses["A"].Frames[0]
	lp, ok := parseLivePath(strings.TrimPrefix(query.Meta.Channel, "ds/hookstream-test/"))
	if !ok {
		t.Fatalf("the query's channel %q is not a live path", query.Meta.Channel)
	}
	start := simStart.Add(3 * time.Hour)
	msg := func(window, basis string) apiclient.LiveMessage {
		b, _ := json.Marshal(map[string]any{"basis": basis, "window": window, "start": start, "end": start.Add(5 * time.Minute),
			"count": 12, "revision": 1, "metrics": map[string]float64{"count": 12, "failures": 3}})
		return apiclient.LiveMessage{Event: "window", Data: b}
	}
	f, err := lp.frame(msg("5m", "event"))
	if err != nil || f == nil {
		t.Fatalf("frame of a 5m event window: %v %v", f, err)
	}
	if got, want := schemaOf(f), schemaOf(query); got != want {
		t.Errorf("live fields %s, query fields %s", got, want)
	}
	if f.Rows() != 1 || !f.Fields[0].At(0).(time.Time).Equal(start) || f.Fields[1].At(0).(float64) != 3 {
		t.Errorf("live frame %v, want one point (%s, 3)", f.Fields, start)
	}
	for _, other := range [][2]string{{"1m", "event"}, {"5m", "received"}} {
		if f, err := lp.frame(msg(other[0], other[1])); f != nil || err != nil {
			t.Errorf("a %s %s window gave %v %v, want nothing", other[0], other[1], f, err)
		}
	}
}
