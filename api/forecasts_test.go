package api

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hookstream/hookstream/anomaly"
	"github.com/hookstream/hookstream/store"
	"github.com/hookstream/hookstream/windows"
	"github.com/jackc/pgx/v5"
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
	ctx := context.Background()
	// Three days of transfers, 10 to 14 every 5m, folded and closed on a
	// clock of the test's own.
	day0 := time.Date(2025, 6, 2, 0, 0, 0, 0, time.UTC)
	clock := day0
	wf, err := windows.NewFold(windows.Config{Delay: time.Second, Idle: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	wf.WithClock(func() time.Time { return clock })
	var evs []store.Event
	for w := day0; w.Before(day0.Add(72 * time.Hour)); w = w.Add(5 * time.Minute) {
		for i := range 10 + int(w.Unix()/300)%5 {
			at := w.Add(time.Duration(i) * time.Second)
			evs = append(evs, store.Event{ID: fmt.Sprint("e", len(evs)), Topic: "customer_transfer_created", Family: "transfer", Created: at, Received: at, Source: "webhook", Body: []byte("{}")})
		}
	}
	clock = day0.Add(72 * time.Hour)
	var used pgx.Tx
	err = pgx.BeginFunc(ctx, f.DB, func(tx pgx.Tx) error {
		used = tx
		if _, err := store.InsertEvents(ctx, tx, evs); err != nil {
			return err
		}
		return wf.Fold(ctx, tx, evs)
	})
	wf.TxEnded(used, err == nil)
	if err != nil {
		t.Fatal(err)
	}
	closer := &windows.Closer{DB: f.DB, Partitions: 4, Config: wf.Config(), Now: func() time.Time { return clock.Add(2 * time.Hour) }}
	if _, err := closer.Tick(ctx); err != nil {
		t.Fatal(err)
	}

	want, err := anomaly.Forecasts(ctx, f.DB, f.s.cfg.Windows, watch, anomaly.ForecastQuery{Series: "volume", Horizon: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	cs, _ := windows.ReadCursors(ctx, f.DB)
	var mn, mx time.Time
	f.DB.QueryRow(ctx, `SELECT min(created), max(created) FROM events`).Scan(&mn, &mx)
	t.Logf("cursors %+v events %s..%s", cs, mn, mx)
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
