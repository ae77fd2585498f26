package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"github.com/hookstream/hookstream/internal/cli"
	"github.com/hookstream/hookstream/journeys"
)

// "hookstream journeys backtest": how the predictions 'query journey'
// shows for unfinished instances would have fared at a past cut-off
// (journeys.Backtest).

const backtestHelp = `    Learns the journey's prediction model from what was known at the cut-off
    --at (each instance as its steps up to then make it), predicts for every
    instance unfinished then whether it completes within --horizon, and
    compares with what happened: the Brier score of the predictions and of
    the base rate (the share of the training instances that had completed),
    the skill score 1 - Brier/Brier(base rate), calibration bins and a
    breakdown by current step. The method is in docs/journeys.md,
    "Predictions".`

// backtestFlags are the flags of "journeys backtest" (rebuild ignores
// them: they may come from the environment, HOOKSTREAM_HORIZON for one).
type backtestFlags struct {
	at                *time.Time
	horizon, training *time.Duration
	out               *string
}

func (b *backtestFlags) register(fs *flag.FlagSet) {
	b.at = cli.Time(fs, "at", "backtest: the cut-off, RFC 3339 or a date (default: the journey's latest progress minus --horizon)")
	b.horizon = fs.Duration("horizon", journeys.DefaultHorizon, "backtest: predict completion within this long after the cut-off")
	b.training = fs.Duration("training", journeys.DefaultTraining, "backtest: learn from the instances that entered this long before the cut-off")
	b.out = cli.Output(fs, "table", "json")
}

func (b *backtestFlags) run(ctx context.Context, cm *common, set *journeys.Set, name string) error {
	if set == nil {
		return cli.Usagef("--no-journeys: there is no journey to backtest")
	}
	if name == "" {
		return cli.Usagef("backtest needs --journey; known: %s", journeyNames(set))
	}
	d, ok := set.Get(name)
	if !ok {
		return cli.Usagef("no journey %q (--journey); known: %s", name, journeyNames(set))
	}
	if *b.horizon <= 0 || *b.training <= 0 {
		return cli.Usagef("--horizon and --training must be positive")
	}
	db, err := cm.openDB(ctx)
	if err != nil {
		return err
	}
	defer db.Close()
	rep, err := journeys.Backtest(ctx, db, d, journeys.BacktestOptions{At: *b.at, Horizon: *b.horizon, Training: *b.training})
	if err != nil {
		return err
	}
	if *b.out == "json" {
		return writeJSON(os.Stdout, rep)
	}
	printBacktest(rep)
	return nil
}

func printBacktest(r journeys.BacktestReport) {
	if r.LatestProgress == nil {
		fmt.Println(r.Note)
		return
	}
	fmt.Printf("%s: cut-off %s, horizon %s (outcomes known up to %s)\n", r.Journey, r.At.Format(time.RFC3339),
		time.Duration(r.HorizonSeconds*float64(time.Second)), r.LatestProgress.Format(time.RFC3339))
	fmt.Printf("learnt from %d instances that entered %s to %s; base rate %.1f%% completed\n", r.Training.Instances,
		r.Training.From.Format(time.RFC3339), r.Training.To.Format(time.RFC3339), 100*r.BaseRate)
	if r.Note != "" {
		fmt.Println(r.Note)
		return
	}
	fmt.Printf("%d instances unfinished at the cut-off, %d completed within the horizon; %d had enough history (the others are given the base rate)\n\n",
		r.All.Instances, r.All.Completed, r.Predicted.Instances)
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "scored\tinstances\tcompleted\tBrier\tbase rate's\tskill\thindsight's\tskill vs hindsight")
	for _, s := range []struct {
		label string
		s     journeys.Score
	}{{"all", r.All}, {"with enough history", r.Predicted}} {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.4f\t%.4f\t%s\t%.4f\t%s\n", s.label, s.s.Instances, s.s.Completed, s.s.Brier, s.s.BrierBaseRate,
			optFloat(s.s.Skill), s.s.BrierHindsight, optFloat(s.s.SkillHindsight))
	}
	tw.Flush()
	fmt.Println("\ncalibration (instances with enough history)")
	tw = tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "predicted\tinstances\tmean predicted\tcompleted (95% CI)")
	for _, c := range r.Calibration {
		fmt.Fprintf(tw, "%.0f–%.0f%%\t%d\t%.1f%%\t%s\n", 100*c.From, 100*c.To, c.Instances, 100*c.MeanPredicted, pct(c.Observed))
	}
	tw.Flush()
	fmt.Println("\nby current step at the cut-off")
	tw = tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "step\tinstances\twith history\tcompleted\tmean predicted\tBrier\tbase rate's")
	for _, s := range r.Steps {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%.1f%%\t%.4f\t%.4f\n", s.Step, s.Instances, s.Predicted, s.Completed, 100*s.MeanPredicted, s.Brier, s.BrierBaseRate)
	}
	tw.Flush()
}

func optFloat(f *float64) string {
	if f == nil {
		return "-"
	}
	return fmt.Sprintf("%.3f", *f)
}
