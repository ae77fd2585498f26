package plugin

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"runtime"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/data"

	"github.com/hookstream/hookstream/grafana-plugin/pkg/apiclient"
)

// BenchmarkMetricsPanel compares, side by side in one run, a 24-hour
// metrics panel of one series per topic (1m windows) read two ways from
// the test hookstream:
//
//   - api: the API call a client makes (GET /api/v1/metrics, body read and
//     decoded);
//   - plugin: the plugin's QueryData for the same panel (the same call,
//     the frames built) and the frames encoded as Arrow, what the plugin
//     hands Grafana over gRPC.
//
// go test ./pkg/plugin -run '^$' -bench BenchmarkMetricsPanel -benchmem -count 5
func BenchmarkMetricsPanel(b *testing.B) {
	hs := sharedHookstream(b)
	ds := newTestDatasource(b, hs.apiURL, readSecret)
	// the last 24 hours of the simulated traffic
	to := simStart.Add(mustDuration(simSpan))
	tr := backend.TimeRange{From: to.Add(-24 * time.Hour), To: to}
	q := backend.DataQuery{RefID: "A", QueryType: "metrics", TimeRange: tr, MaxDataPoints: 1440, Interval: time.Minute,
		JSON: []byte(`{"metric":"count","window":"1m","groupBy":"topic"}`)}

	v := url.Values{"metric": {"count"}, "window": {"1m"}, "group_by": {"topic"},
		"from": {tr.From.Format(time.RFC3339)}, "to": {tr.To.Format(time.RFC3339)}}
	apiURL := hs.apiURL + "/api/v1/metrics?" + v.Encode()
	client := &http.Client{}
	apiCall := func() (apiclient.Metrics, int) {
		req, _ := http.NewRequest(http.MethodGet, apiURL, nil)
		req.Header.Set("Authorization", "Bearer "+readSecret)
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != http.StatusOK {
			b.Fatalf("%s %v: %s", resp.Status, err, body)
		}
		var m apiclient.Metrics
		if err := json.Unmarshal(body, &m); err != nil {
			b.Fatal(err)
		}
		return m, len(body)
	}
	m, size := apiCall()
	b.Logf("%d series, %d points, %d bytes of JSON from the API", len(m.Groups), len(m.Points), size)

	plugin := func() {
		resp, err := ds.QueryData(context.Background(), &backend.QueryDataRequest{Queries: []backend.DataQuery{q}})
		if err != nil || resp.Responses["A"].Error != nil {
			b.Fatal(err, resp.Responses["A"].Error)
		}
		if _, err := resp.Responses["A"].Frames.MarshalArrow(); err != nil {
			b.Fatal(err)
		}
	}
	// alternating the two in one loop, so a noisy neighbour slows both
	b.Run("interleaved", func(b *testing.B) {
		var api, plug time.Duration
		timed := func(f func()) time.Duration { t0 := time.Now(); f(); return time.Since(t0) }
		odd := false
		for b.Loop() {
			// each goes first every other time: neither profits from
			// what the other warmed
			if odd = !odd; odd {
				api += timed(func() { apiCall() })
				plug += timed(plugin)
			} else {
				plug += timed(plugin)
				api += timed(func() { apiCall() })
			}
		}
		b.ReportMetric(float64(api.Milliseconds())/float64(b.N), "api-ms/op")
		b.ReportMetric(float64(plug.Milliseconds())/float64(b.N), "plugin-ms/op")
		b.ReportMetric(float64(plug)/float64(api), "plugin/api")
	})
	b.Run("api", func(b *testing.B) {
		for b.Loop() {
			apiCall()
		}
	})
	b.Run("plugin", func(b *testing.B) {
		for b.Loop() {
			plugin()
		}
	})
}

// BenchmarkMetricFrames measures the frame conversion alone (no HTTP) for
// 50 series of growing length: bytes and allocations per point should stay
// flat as the points grow (proportional to the data).
//
// go test ./pkg/plugin -run '^$' -bench BenchmarkMetricFrames -benchmem
func BenchmarkMetricFrames(b *testing.B) {
	const series = 50
	start := time.Date(2025, 6, 2, 0, 0, 0, 0, time.UTC)
	for _, perSeries := range []int{60, 1440, 14400} {
		res := apiclient.Metrics{Window: "1m", Basis: "event", Metric: "count"}
		for g := range series {
			res.Groups = append(res.Groups, fmt.Sprintf("topic_%02d", g))
		}
		for i := range perSeries {
			for g := range series {
				res.Points = append(res.Points, apiclient.Point{Start: start.Add(time.Duration(i) * time.Minute), Group: res.Groups[g], Value: float64(i + g)})
			}
		}
		points := float64(len(res.Points))
		b.Run(fmt.Sprintf("points=%d", len(res.Points)), func(b *testing.B) {
			b.ReportAllocs()
			var frames data.Frames
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			for b.Loop() {
				frames = metricFrames(res, "topic", "")
			}
			runtime.ReadMemStats(&after)
			if len(frames) != series || frames[0].Rows() != perSeries {
				b.Fatalf("%d frames of %d rows", len(frames), frames[0].Rows())
			}
			// per point: the figures that must stay flat as the data grows
			b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/float64(b.N)/points, "B/point")
			b.ReportMetric(float64(after.Mallocs-before.Mallocs)/float64(b.N)/points, "allocs/point")
		})
	}
}
