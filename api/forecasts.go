package api

import (
	"errors"
	"net/http"
	"strings"

	"github.com/hookstream/hookstream/anomaly"
)

// watch is the watched series, or the error a route answers without them.
func (s *Server) watch() (*anomaly.Watch, error) {
	if s.cfg.Watch == nil {
		return nil, notFound("no series are watched (the processors run with --no-anomalies)")
	}
	return s.cfg.Watch, nil
}

// forecastError turns the anomaly package's errors about what was asked
// into the parameter problems they are.
func forecastError(err error) error {
	switch {
	case errors.Is(err, anomaly.ErrNoSeries):
		return badParam("series", strings.TrimPrefix(err.Error(), anomaly.ErrNoSeries.Error()+": "))
	case errors.Is(err, anomaly.ErrHorizon):
		return badParam("horizon", strings.TrimPrefix(err.Error(), anomaly.ErrHorizon.Error()+": "))
	}
	return err
}

// forecasts forecasts the watched series (query forecast).
func (s *Server) forecasts(w http.ResponseWriter, r *http.Request) {
	p := readParams(r.URL, "series", "horizon")
	q := anomaly.ForecastQuery{Series: p.str("series"), Horizon: p.duration("horizon")}
	watch, err := s.watch()
	if err == nil {
		err = p.err
	}
	if err != nil {
		s.fail(w, r, "", err)
		return
	}
	fcs, err := anomaly.Forecasts(r.Context(), s.db, s.cfg.Windows, watch, q)
	if err != nil {
		s.fail(w, r, "forecast", forecastError(err))
		return
	}
	writeJSON(w, struct {
		Forecasts []anomaly.Forecast `json:"forecasts"`
	}{fcs})
}

// backtests replays a watched series' forecasts (anomaly backtest).
func (s *Server) backtests(w http.ResponseWriter, r *http.Request) {
	p := readParams(r.URL, "series", "days", "horizon")
	q := anomaly.BacktestQuery{Series: p.str("series"), Days: p.intIn("days", 7, 1, 60), Horizon: p.duration("horizon")}
	if q.Series == "" {
		p.fail("series", "required: a watched series, such as transfer-failures")
	}
	watch, err := s.watch()
	if err == nil {
		err = p.err
	}
	if err != nil {
		s.fail(w, r, "", err)
		return
	}
	bts, err := anomaly.Backtests(r.Context(), s.db, s.cfg.Windows, watch, q)
	if err != nil {
		s.fail(w, r, "backtest", forecastError(err))
		return
	}
	writeJSON(w, struct {
		Backtests []anomaly.Backtest `json:"backtests"`
	}{bts})
}
