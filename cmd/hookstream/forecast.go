package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/hookstream/hookstream/anomaly"
	"github.com/hookstream/hookstream/internal/cli"
	"github.com/hookstream/hookstream/store"
	"github.com/hookstream/hookstream/windows"
	"github.com/peterbourgon/ff/v3/ffcli"
)

// watchedFlags find the watched series and the windows they are read from,
// as the processors run them.
type watchedFlags struct {
	cm     common
	wf     windowFlags
	series string
}

func (w *watchedFlags) register(fs *flag.FlagSet) {
	w.cm.register(fs)
	w.wf.register(fs)
	fs.StringVar(&w.series, "anomaly-series", "", "the watched series (YAML; see docs/anomaly.md), as the processors run with; default: the built-in set")
}

// open loads the watched series and connects; done closes the connection.
func (w *watchedFlags) open(ctx context.Context) (windows.Config, *anomaly.Watch, store.Querier, func(), error) {
	wcfg, err := w.wf.config()
	if err != nil {
		return wcfg, nil, nil, nil, err
	}
	watch, err := anomaly.LoadWatch(w.series, wcfg)
	if err != nil {
		return wcfg, nil, nil, nil, err
	}
	db, err := w.cm.openDB(ctx)
	if err != nil {
		return wcfg, nil, nil, nil, err
	}
	return wcfg, watch, db, db.Close, nil
}

// seriesError turns an unknown series into a usage error.
func seriesError(err error) error {
	if errors.Is(err, anomaly.ErrNoSeries) {
		return cli.Usagef("--series: %v", err)
	}
	return err
}

func queryForecastCommand() *ffcli.Command {
	fs := flag.NewFlagSet("hookstream query forecast", flag.ContinueOnError)
	var w watchedFlags
	w.register(fs)
	series := fs.String("series", "", "a watched series (volume), one series of a grouped one (volume/family=transfer); default: every watched series")
	horizon := fs.Duration("horizon", 6*time.Hour, "how far ahead")
	out := cli.Output(fs, "table", "json")
	return &ffcli.Command{
		Name:       "forecast",
		ShortUsage: "hookstream query forecast [--series volume] [--horizon 6h] [-o json|table]",
		ShortHelp:  "the next windows of the watched series, with 80% and 95% intervals",
		LongHelp: `Forecasts each watched series (--anomaly-series; docs/anomaly.md) from its
closed windows, a week of them, with the Holt-Winters model the detectors
use (level, damped trend and a daily season): the expected value of every
window from where the closed ones end to --horizon, and the intervals it
should fall in 80 and 95 times in 100. "hookstream anomaly backtest" says
how well such forecasts did on the series' own history.`,
		FlagSet: fs, Options: envOptions(),
		Exec: func(ctx context.Context, _ []string) error {
			wcfg, watch, db, done, err := w.open(ctx)
			if err != nil {
				return err
			}
			defer done()
			fcs, err := anomaly.Forecasts(ctx, db, wcfg, watch, anomaly.ForecastQuery{Series: *series, Horizon: *horizon})
			if err != nil {
				return seriesError(err)
			}
			if *out == "json" {
				return writeJSON(os.Stdout, struct {
					Forecasts []anomaly.Forecast `json:"forecasts"`
				}{fcs})
			}
			tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "series\twindow start\twindow\texpected\t80%\t95%")
			for _, f := range fcs {
				if f.Note != "" {
					fmt.Fprintf(tw, "%s\t-\t%s\t(%s)\n", f.Series, f.Window, f.Note)
				}
				for _, p := range f.Points {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s–%s\t%s–%s\n", f.Series, p.Start.Format(time.RFC3339), f.Window, num(p.Expected),
						num(p.Low80), num(p.High80), num(p.Low95), num(p.High95))
				}
			}
			return tw.Flush()
		},
	}
}

func num(v float64) string { return strconv.FormatFloat(v, 'g', 4, 64) }

func anomalyBacktestCommand() *ffcli.Command {
	fs := flag.NewFlagSet("hookstream anomaly backtest", flag.ContinueOnError)
	var w watchedFlags
	w.register(fs)
	series := fs.String("series", "", "a watched series (volume), one series of a grouped one (volume/family=transfer) (required)")
	days := fs.Int("days", 7, "origins over this many days of closed windows, up to the last (1 to 60)")
	horizon := fs.Duration("horizon", 6*time.Hour, "each origin forecasts this far")
	out := cli.Output(fs, "table", "json")
	return &ffcli.Command{
		Name:       "backtest",
		ShortUsage: "hookstream anomaly backtest --series transfer-failures [--days 7] [--horizon 6h] [-o json|table]",
		ShortHelp:  "replay a watched series' history: how good were its forecasts, beside a seasonal-naive forecast",
		LongHelp: `From every window of the last --days days as an origin, forecasts the next
--horizon with the model "query forecast" uses, learnt only from the windows
before the origin (as it would have been live), and with the seasonal naive
(the same window a day before). Compares both with what the windows turned
out to be: MAE, MAPE (over the windows whose value is not zero), sMAPE (0 to
200%), and the share of values inside the 80% and 95% intervals (well
calibrated: 0.80 and 0.95). Skill is 1 - MAE(model) / MAE(seasonal naive):
above zero the model forecasts better.`,
		FlagSet: fs, Options: envOptions(),
		Exec: func(ctx context.Context, _ []string) error {
			if *series == "" {
				return cli.Usagef("--series is required: a watched series, such as transfer-failures")
			}
			if *days < 1 || *days > 60 {
				return cli.Usagef("--days %d: give from 1 to 60", *days)
			}
			wcfg, watch, db, done, err := w.open(ctx)
			if err != nil {
				return err
			}
			defer done()
			bts, err := anomaly.Backtests(ctx, db, wcfg, watch, anomaly.BacktestQuery{Series: *series, Days: *days, Horizon: *horizon})
			if err != nil {
				return seriesError(err)
			}
			if *out == "json" {
				return writeJSON(os.Stdout, struct {
					Backtests []anomaly.Backtest `json:"backtests"`
				}{bts})
			}
			tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "series\tmethod\torigins\tforecasts\tMAE\tMAPE\tsMAPE\tin 80%\tin 95%\tskill")
			for _, b := range bts {
				if b.Note != "" {
					fmt.Fprintf(tw, "%s\t(%s)\n", b.Series, b.Note)
					continue
				}
				skill := "-"
				if b.Skill != nil {
					skill = strconv.FormatFloat(*b.Skill, 'f', 3, 64)
				}
				for i, a := range []anomaly.Accuracy{b.Model, b.SeasonalNaive} {
					mape := "-"
					if a.MAPE != nil {
						mape = strconv.FormatFloat(*a.MAPE, 'f', 1, 64) + "%"
					}
					if i == 1 {
						skill = ""
					}
					fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%s\t%.1f%%\t%.3f\t%.3f\t%s\n", b.Series, a.Method, b.Origins, a.Forecasts, num(a.MAE), mape,
						a.SMAPE, a.Coverage80, a.Coverage95, skill)
				}
			}
			return tw.Flush()
		},
	}
}
