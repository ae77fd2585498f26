package anomaly

import (
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/hookstream/hookstream/windows"
)

func watchOf(t *testing.T, yaml string) *SeriesConfig {
	t.Helper()
	w, err := ParseWatch([]byte(yaml), windows.Config{}.WithDefaults())
	if err != nil {
		t.Fatal(err)
	}
	return w.Series[0]
}

func windowPoints(ps []Point) []windows.Point {
	out := make([]windows.Point, len(ps))
	for i, p := range ps {
		out[i] = windows.Point{Start: p.Time, Value: p.Value, Count: 1}
	}
	return out
}

// On a daily cycle with Gaussian noise, the model's intervals hold what
// they say (80% and 95% of the actual values, within sampling error and
// the model's bias), the model beats the seasonal naive (which carries
// two noises), and the intervals widen with the horizon.
func TestForecastCalibration(t *testing.T) {
	const sd = 5
	step := 15 * time.Minute
	ps := series(96*28, step, sd, daily(step))
	sc := watchOf(t, `series: [{name: s, metric: count, window: 15m}]`)
	origins := ps[96*14].Time
	until := ps[len(ps)-1].Time.Add(step)
	bt := replay(sc, windowPoints(ps), origins, until, 24)
	t.Logf("model %+v", bt.Model)
	t.Logf("seasonal naive %+v", bt.SeasonalNaive)
	if bt.Origins != 96*14 || bt.Model.Forecasts < 96*13*24 || bt.Model.Forecasts != bt.SeasonalNaive.Forecasts {
		t.Fatalf("origins %d, forecasts %d and %d", bt.Origins, bt.Model.Forecasts, bt.SeasonalNaive.Forecasts)
	}
	if c := bt.Model.Coverage95; c < 0.90 || c > 0.99 {
		t.Errorf("95%% interval holds %.3f of the values", c)
	}
	if c := bt.Model.Coverage80; c < 0.70 || c > 0.90 {
		t.Errorf("80%% interval holds %.3f of the values", c)
	}
	if bt.Skill == nil || *bt.Skill < 0.2 {
		t.Errorf("the model's MAE %.2f against the seasonal naive's %.2f: skill %v", bt.Model.MAE, bt.SeasonalNaive.MAE, bt.Skill)
	}
	// The seasonal naive's error is the difference of two noises: its
	// MAE is near √2·σ·√(2/π).
	if want := math.Sqrt2 * sd * math.Sqrt(2/math.Pi); math.Abs(bt.SeasonalNaive.MAE-want) > 0.1*want {
		t.Errorf("seasonal naive MAE %.2f, want about %.2f", bt.SeasonalNaive.MAE, want)
	}
	if bt.Model.MAPE == nil || bt.Model.MAPEOf != bt.Model.Forecasts || bt.Model.SMAPE <= 0 {
		t.Errorf("MAPE %v of %d, sMAPE %v", bt.Model.MAPE, bt.Model.MAPEOf, bt.Model.SMAPE)
	}

	m := newForecaster(sc)
	for _, p := range ps {
		m.feed(p)
	}
	var prev ForecastPoint
	for k := range 96 * 3 {
		p := m.point(until.Add(time.Duration(k) * step))
		if !(p.Low95 <= p.Low80 && p.Low80 <= p.Expected && p.Expected <= p.High80 && p.High80 <= p.High95) {
			t.Fatalf("step %d: intervals out of order: %+v", k+1, p)
		}
		if k > 0 && p.High95-p.Low95 < prev.High95-prev.Low95-1e-9 && p.Low95 > 0 {
			t.Fatalf("step %d: the 95%% interval narrows from %.3f to %.3f", k+1, prev.High95-prev.Low95, p.High95-p.Low95)
		}
		prev = p
	}
	// A day ahead, the forecast still follows the cycle.
	for k := 0; k < 96; k += 8 {
		at := until.Add(time.Duration(96*2+k) * step)
		want := daily(step)(int(at.Sub(t0) / step))
		if got := m.point(at).Expected; math.Abs(got-want) > 3*sd {
			t.Errorf("%s: forecast %.1f, the cycle is at %.1f", at.Format(time.RFC3339), got, want)
		}
	}
}

// Counts are never forecast below zero, ratios never above one.
func TestForecastBounds(t *testing.T) {
	step := time.Hour
	ps := series(24*10, step, 0.3, func(int) float64 { return 0.5 })
	sc := watchOf(t, `series: [{name: r, metric: failure_ratio, window: 1h}]`)
	m := newForecaster(sc)
	for _, p := range ps {
		m.feed(p)
	}
	for k := range 48 {
		p := m.point(ps[len(ps)-1].Time.Add(time.Duration(k+1) * step))
		if p.Low95 < 0 || p.High95 > 1 {
			t.Fatalf("a ratio forecast out of [0, 1]: %+v", p)
		}
	}
}

// Backtests are online: an origin's forecasts depend only on the windows
// before it, so the figures of a replay do not change when later windows
// are added beyond what it compares.
func TestBacktestOnline(t *testing.T) {
	step := time.Hour
	ps := series(24*20, step, 4, daily(step))
	sc := watchOf(t, `series: [{name: s, metric: count, window: 1h}]`)
	origins, until := ps[24*10].Time, ps[24*15].Time
	a := replay(sc, windowPoints(ps[:24*15]), origins, until, 6)
	b := replay(sc, windowPoints(ps), origins, until, 6)
	if !reflect.DeepEqual(a.Model, b.Model) || !reflect.DeepEqual(a.SeasonalNaive, b.SeasonalNaive) {
		t.Errorf("later windows changed the backtest:\n%+v\n%+v", a.Model, b.Model)
	}
}

// Too little history: no forecast, and a note that says so.
func TestBacktestTooLittleHistory(t *testing.T) {
	step := time.Hour
	ps := series(10, step, 1, func(int) float64 { return 5 })
	sc := watchOf(t, `series: [{name: s, metric: count, window: 1h}]`)
	bt := replay(sc, windowPoints(ps), ps[0].Time, ps[9].Time.Add(step), 3)
	if bt.Model.Forecasts != 0 || bt.Note == "" || bt.Skill != nil {
		t.Errorf("%+v", bt)
	}
}
