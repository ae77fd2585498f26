package windows_test

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/hookstream/hookstream/windows"
)

// MetricResult's hand-written JSON is byte for byte what encoding/json
// writes for the same fields.
func TestMetricResultJSONIsEncodingJSONs(t *testing.T) {
	t.Parallel()
	type plainPoint windows.Point
	type plain struct {
		Window string         `json:"window"`
		Basis  windows.Basis  `json:"basis"`
		Metric windows.Metric `json:"metric"`
		Groups []string       `json:"groups"`
		Points []plainPoint   `json:"points"`
	}
	rng := rand.New(rand.NewPCG(1, 2))
	values := []float64{0, 1, -1, 0.5, 1e-7, 1.5e-9, 2e21, 123456789.125, 1e20, 0.000001, math.SmallestNonzeroFloat64, math.MaxFloat64}
	groups := []string{"", "customer_created", `quote"and\\back`, "<html>&", "ünïcødé", "tab\there"}
	for round := range 200 {
		r := windows.MetricResult{Window: []time.Duration{time.Minute, time.Hour, 90 * time.Second}[round%3], Basis: windows.EventTime,
			Metric: windows.MetricFailureRatio, Groups: groups[:round%len(groups)]}
		if round%17 != 0 {
			r.Points = []windows.Point{}
		}
		for i := range rng.IntN(20) {
			v := values[rng.IntN(len(values))] * float64(rng.IntN(3)-1)
			if rng.IntN(2) == 0 {
				v = rng.NormFloat64() * math.Pow(10, float64(rng.IntN(40)-20))
			}
			r.Points = append(r.Points, windows.Point{Start: time.Unix(rng.Int64N(4e9), rng.Int64N(1e9)*int64(i%2)).In(time.FixedZone("x", 3600*(i%3))),
				Group: groups[rng.IntN(len(groups))], Value: v, Count: rng.Int64N(1e12) - 1e6, Closed: i%2 == 0, Revision: int32(rng.IntN(5))})
		}
		got, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		p := plain{Window: map[time.Duration]string{time.Minute: "1m", time.Hour: "1h", 90 * time.Second: "1m30s"}[r.Window], Basis: r.Basis, Metric: r.Metric, Groups: r.Groups}
		if r.Points != nil {
			p.Points = []plainPoint{}
		}
		for _, pt := range r.Points {
			p.Points = append(p.Points, plainPoint(pt))
		}
		want, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Fatalf("round %d:\n got %s\nwant %s", round, got, want)
		}
	}
	if _, err := json.Marshal(windows.MetricResult{Points: []windows.Point{{Value: math.NaN()}}}); err == nil {
		t.Fatal("NaN encoded without an error")
	}
}

func BenchmarkMetricResultJSON(b *testing.B) {
	r := windows.MetricResult{Window: time.Minute, Basis: windows.EventTime, Metric: windows.MetricCount}
	start := time.Date(2025, 6, 2, 0, 0, 0, 0, time.UTC)
	for g := range 50 {
		r.Groups = append(r.Groups, "topic_"+string(rune('a'+g%26))+string(rune('a'+g/26)))
		for m := range 1440 {
			r.Points = append(r.Points, windows.Point{Start: start.Add(time.Duration(m) * time.Minute), Group: r.Groups[g], Value: float64(m % 97), Count: int64(m % 97), Closed: true})
		}
	}
	type plain windows.Point
	pts := make([]plain, len(r.Points))
	for i, p := range r.Points {
		pts[i] = plain(p)
	}
	b.Run("hand-written", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			r.MarshalJSON()
		}
	})
	b.Run("hand-written-through-json.Marshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			json.Marshal(r)
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			json.Marshal(pts)
		}
	})
}
