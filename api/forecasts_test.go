package api

import (
	"context"
	"testing"
	"time"

	"github.com/hookstream/hookstream/anomaly"
	"github.com/hookstream/hookstream/internal/testenv"
	"github.com/hookstream/hookstream/windows"
)

// The forecast routes answer what "query forecast" and "anomaly backtest"
// print (the same functions), and name the parameter at fault.
func TestForecastRoutes(t *testing.T) {
	t.Parallel()
	watch, err := anomaly.DefaultWatch(windows.Config{}.WithDefaults())
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, func(c *Config) { c.Watch = watch })
	f.process(t)
	f.store(t, scenario(300, 5).Events)
	ctx := context.Background()
	// Every 5m window the traffic folded closes (the partitions are idle).
	var last time.Time
	if err := f.DB.QueryRow(ctx, `SELECT max(created) FROM events`).Scan(&last); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 30*time.Second, "the 5m windows to close", func() bool {
		cs, err := windows.ReadCursors(ctx, f.DB)
		for _, c := range cs {
			if err == nil && c.Basis == windows.EventTime && c.Size == 5*time.Minute {
				return c.ClosedUntil.After(last)
			}
		}
		return false
	})

	want, err := anomaly.Forecasts(ctx, f.DB, f.s.cfg.Windows, watch, anomaly.ForecastQuery{Series: "volume", Horizon: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if len(want) == 0 || len(want[0].Points) != 12 {
		t.Fatalf("forecasts %+v", want)
	}
	jsonEq(t, "forecasts", f.get(t, "/api/v1/forecasts?series=volume&horizon=1h").ok(t).body, map[string]any{"forecasts": want})

	bts, err := anomaly.Backtests(ctx, f.DB, f.s.cfg.Windows, watch, anomaly.BacktestQuery{Series: "volume", Days: 1, Horizon: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	jsonEq(t, "backtests", f.get(t, "/api/v1/forecasts/backtest?series=volume&days=1&horizon=1h").ok(t).body, map[string]any{"backtests": bts})

	for q, param := range map[string]string{
		"/api/v1/forecasts?series=nope":                    "series",
		"/api/v1/forecasts?series=volume/topic=x":          "series",
		"/api/v1/forecasts?horizon=100000h":                "horizon",
		"/api/v1/forecasts?horizon=soon":                   "horizon",
		"/api/v1/forecasts?window=5m":                      "window",
		"/api/v1/forecasts/backtest":                       "series",
		"/api/v1/forecasts/backtest?series=volume&days=99": "days",
	} {
		a := f.get(t, q)
		if a.status != 400 || a.problem(t).Param != param {
			t.Errorf("%s: %d %s, want 400 naming %s", q, a.status, a.body, param)
		}
	}

	// Without watched series the routes say so.
	g := newFixture(t, nil)
	if a := g.get(t, "/api/v1/forecasts"); a.status != 404 {
		t.Errorf("without watched series: %d %s", a.status, a.body)
	}
}
