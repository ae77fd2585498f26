package anomaly_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/hookstream/hookstream/anomaly"
	"github.com/hookstream/hookstream/store"
	"github.com/hookstream/hookstream/windows"
)

// cycle folds Poisson counts of transfer events around a daily cycle
// (4 to 20 a 5m window) in [from, to), then closes what it can.
func (s *scoring) cycle(t *testing.T, from, to time.Time) {
	t.Helper()
	var evs []store.Event
	for w := from; w.Before(to); w = w.Add(5 * time.Minute) {
		h := float64(w.Sub(day0)%(24*time.Hour)) / float64(24*time.Hour)
		lambda := 12 - 8*math.Cos(2*math.Pi*h)
		n := poisson(s, lambda)
		for i := range n {
			s.n++
			at := w.Add(time.Duration(i) * time.Second)
			evs = append(evs, store.Event{ID: fmt.Sprint("e", s.n), Topic: "customer_transfer_created", Family: "transfer", Created: at, Received: at, Source: "webhook", Body: []byte("{}")})
		}
	}
	s.fold(t, evs)
	s.clock = to.Add(time.Minute)
	if _, err := s.closer.Tick(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func poisson(s *scoring, lambda float64) int {
	l, k, p := math.Exp(-lambda), 0, 1.0
	for {
		p *= s.rng.Float64()
		if p <= l {
			return k
		}
		k++
	}
}

// A watched series is forecast from its closed windows: the next windows
// from where the closed ones end, intervals in order, and the next six
// hours, once they happen, mostly inside the 95% interval. The backtest
// replays the week and compares with the seasonal naive.
func TestForecastWatchedSeries(t *testing.T) {
	t.Parallel()
	s := newScoring(t)
	ctx := context.Background()
	wcfg := s.wf.Config()
	f0, err := anomaly.Forecasts(ctx, s.DB, wcfg, s.watch, anomaly.ForecastQuery{Series: "vol", Horizon: time.Hour})
	if err != nil || len(f0) != 0 {
		t.Fatalf("before any window: %+v, %v", f0, err)
	}
	until := day0.Add(8 * 24 * time.Hour)
	s.cycle(t, day0, until)

	fs, err := anomaly.Forecasts(ctx, s.DB, wcfg, s.watch, anomaly.ForecastQuery{Series: "vol", Horizon: 6 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if len(fs) != 1 || fs[0].Series != "vol/family=transfer" || len(fs[0].Points) != 72 {
		t.Fatalf("forecasts: %+v", fs)
	}
	f := fs[0]
	closed := f.LearntUntil
	if !f.Points[0].Start.Equal(closed) || closed.After(until) || closed.Before(until.Add(-10*time.Minute)) {
		t.Fatalf("the forecast starts at %s; the closed windows end at %s", f.Points[0].Start, closed)
	}
	if f.Learnt < 2000 {
		t.Errorf("learnt from %d windows", f.Learnt)
	}
	for i, p := range f.Points {
		if !(0 <= p.Low95 && p.Low95 <= p.Low80 && p.Low80 <= p.Expected && p.Expected <= p.High80 && p.High80 <= p.High95) {
			t.Fatalf("point %d out of order: %+v", i, p)
		}
		if i > 0 && !p.Start.Equal(f.Points[i-1].Start.Add(5*time.Minute)) {
			t.Fatalf("point %d at %s", i, p.Start)
		}
	}
	// One instance by name gives the same forecast.
	one, err := anomaly.Forecasts(ctx, s.DB, wcfg, s.watch, anomaly.ForecastQuery{Series: "vol/family=transfer", Horizon: 6 * time.Hour})
	if err != nil || len(one) != 1 || one[0].Points[71] != f.Points[71] {
		t.Fatalf("by instance: %+v, %v", one, err)
	}

	// The six hours happen.
	s.cycle(t, until, until.Add(7*time.Hour))
	res, err := windows.QueryMetrics(ctx, s.DB, wcfg, windows.MetricQuery{Window: 5 * time.Minute, Metric: windows.MetricCount,
		From: closed, To: closed.Add(6 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	in := 0
	for i, p := range res.Points {
		if fp := f.Points[i]; p.Value >= fp.Low95 && p.Value <= fp.High95 {
			in++
		}
	}
	// 95% of 72 is 68.4; fewer than 62 inside would be very unlikely for
	// a calibrated interval (binomial, p < 0.001).
	if in < 62 {
		t.Errorf("%d of 72 windows inside the 95%% interval", in)
	}

	bts, err := anomaly.Backtests(ctx, s.DB, wcfg, s.watch, anomaly.BacktestQuery{Series: "vol", Days: 3, Horizon: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if len(bts) != 1 || bts[0].Origins < 3*288 || bts[0].Model.Forecasts < 3*288*11 {
		t.Fatalf("backtest: %+v", bts)
	}
	bt := bts[0]
	t.Logf("model %+v", bt.Model)
	t.Logf("seasonal naive %+v", bt.SeasonalNaive)
	if bt.Model.Coverage95 < 0.88 || bt.Model.Coverage80 < 0.70 || bt.Skill == nil || *bt.Skill <= 0 {
		t.Errorf("backtest: coverage %.3f / %.3f, skill %v", bt.Model.Coverage80, bt.Model.Coverage95, bt.Skill)
	}

	for _, bad := range []string{"nope", "vol/topic=x", "vol/family"} {
		if _, err := anomaly.Forecasts(ctx, s.DB, wcfg, s.watch, anomaly.ForecastQuery{Series: bad}); !errors.Is(err, anomaly.ErrNoSeries) {
			t.Errorf("series %q: %v", bad, err)
		}
	}
	if _, err := anomaly.Forecasts(ctx, s.DB, wcfg, s.watch, anomaly.ForecastQuery{Series: "vol", Horizon: 365 * 24 * time.Hour}); err == nil {
		t.Error("a year of 5m windows was forecast")
	}
}
