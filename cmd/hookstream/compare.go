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
	"github.com/hookstream/hookstream/windows"
	"github.com/peterbourgon/ff/v3/ffcli"
)

// parsePeriod reads the period flag name (FROM..TO).
func parsePeriod(flagName, s string) (from, to time.Time, err error) {
	if from, to, err = cli.ParsePeriod(s); err != nil {
		return from, to, cli.Usagef("--%s: %v", flagName, err)
	}
	return from, to, nil
}

func queryCompareCommand() *ffcli.Command {
	fs := flag.NewFlagSet("hookstream query compare", flag.ContinueOnError)
	var cm common
	cm.register(fs)
	var wf windowFlags
	wf.register(fs)
	var jf journeyFlags
	jf.register(fs)
	journey := fs.String("journey", "", "compare this journey's funnel between the periods (or --metric)")
	metric := cli.Choice(fs, "metric", "compare this metric between the periods: count, successes, failures, terminal, late (rates per hour) or failure_ratio", "",
		"count", "successes", "failures", "terminal", "late", "failure_ratio")
	filter := fs.String("filter", "", "with --metric: the series, dimension=value[,value...], for example topic=customer_bank_transfer_failed (default: every event)")
	basis := fs.String("basis", "event", "with --metric: event or received time")
	window := fs.Duration("window", time.Hour, "with --metric: the window size summed (each period a whole number of them)")
	a := fs.String("a", "", "the first period, FROM..TO (RFC 3339 or dates; TO exclusive)")
	b := fs.String("b", "", "the second period, FROM..TO")
	out := cli.Output(fs, "table", "json")
	return &ffcli.Command{
		Name:       "compare",
		ShortUsage: "hookstream query compare --journey NAME --a FROM..TO --b FROM..TO [-o json|table] | hookstream query compare --metric count [--filter topic=customer_created] --a FROM..TO --b FROM..TO",
		ShortHelp:  "does a period really differ from another? funnel steps (two-proportion tests, Holm-corrected) or a metric (exact Poisson rates)",
		LongHelp: `With --journey, compares the cohorts that entered the journey in the two
periods (whole UTC days): each step's conversion from entry (reached /
entered) and the journey's completion, with 95% Wilson intervals, the
difference, a two-proportion z-test's p-value, and that p-value after Holm's
correction for asking about every step at once. "significant" says the
corrected p-value is below 0.05.

With --metric, compares one series (--filter) between the periods: counts as
rates per hour with the exact conditional Poisson test, the failure ratio as
two proportions (failures of terminal events).

A p-value is the chance of a difference at least as large as the one seen if
nothing had changed; it is not the chance that nothing changed. A small
p-value on a large cohort can be a difference too small to matter: read the
intervals too. See docs/statistics.md.`,
		FlagSet: fs, Options: envOptions(),
		Exec: func(ctx context.Context, _ []string) error {
			if (*journey == "") == (*metric == "") {
				return cli.Usagef("give --journey NAME or --metric M (one of them)")
			}
			if *a == "" || *b == "" {
				return cli.Usagef("--a and --b are required: the two periods, FROM..TO")
			}
			aFrom, aTo, err := parsePeriod("a", *a)
			if err != nil {
				return err
			}
			bFrom, bTo, err := parsePeriod("b", *b)
			if err != nil {
				return err
			}
			if *journey != "" {
				set, err := jf.load()
				if err != nil {
					return err
				}
				if set == nil {
					return cli.Usagef("--no-journeys: there is no journey to compare")
				}
				d, ok := set.Get(*journey)
				if !ok {
					return cli.Usagef("no journey %q (--journey); known: %s", *journey, journeyNames(set))
				}
				db, err := cm.openDB(ctx)
				if err != nil {
					return err
				}
				defer db.Close()
				c, err := journeys.CompareFunnels(ctx, db, d, aFrom, aTo, bFrom, bTo)
				if err != nil {
					return err
				}
				if *out == "json" {
					return writeJSON(os.Stdout, c)
				}
				fmt.Printf("%s: a = entered %s to %s (%d), b = entered %s to %s (%d); p adjusted by Holm over %d rows\n", c.Journey,
					c.A.From.Format(time.DateOnly), c.A.To.Add(-time.Nanosecond).Format(time.DateOnly), c.A.Entered,
					c.B.From.Format(time.DateOnly), c.B.To.Add(-time.Nanosecond).Format(time.DateOnly), c.B.Entered, len(c.Steps))
				tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
				fmt.Fprintln(tw, "step\ta (95% CI)\tb (95% CI)\tdiff\tp\tp adjusted\t")
				for _, s := range c.Steps {
					mark := ""
					if s.Significant {
						mark = "significant"
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%+.1f pts\t%.3g\t%.3g\t%s\n", s.Step, pct(s.A.Conversion), pct(s.B.Conversion), 100*s.Diff, s.P, s.PAdjusted, mark)
				}
				return tw.Flush()
			}
			cfg, err := wf.config()
			if err != nil {
				return err
			}
			q := windows.MetricQuery{Window: *window, Basis: windows.Basis(*basis), Metric: windows.Metric(*metric)}
			if q.Filter, err = windows.ParseFilter(*filter); err != nil {
				return cli.Usagef("%v", err)
			}
			for _, p := range [][2]time.Time{{aFrom, aTo}, {bFrom, bTo}} {
				v := q
				v.From, v.To = p[0], p[1]
				if err := v.Validate(cfg); err != nil {
					return cli.Usagef("%v", err)
				}
			}
			db, err := cm.openDB(ctx)
			if err != nil {
				return err
			}
			defer db.Close()
			c, err := windows.CompareMetric(ctx, db, cfg, q, aFrom, aTo, bFrom, bTo)
			if err != nil {
				return err
			}
			if *out == "json" {
				return writeJSON(os.Stdout, c)
			}
			series := "every event"
			if *filter != "" {
				series = *filter
			}
			verdict := "no significant difference"
			if c.Significant {
				verdict = "significant"
			}
			if c.Metric == windows.MetricFailureRatio {
				fmt.Printf("failure_ratio of %s: a %d/%d = %.2f%% (%.2f–%.2f), b %d/%d = %.2f%% (%.2f–%.2f); diff %+.2f pts, p %.3g (%s, %s)\n", series,
					c.A.Total, c.A.Of, 100*c.A.Rate, 100*c.A.Low, 100*c.A.High, c.B.Total, c.B.Of, 100*c.B.Rate, 100*c.B.Low, 100*c.B.High, 100*c.Diff, c.P, c.Test, verdict)
				return nil
			}
			fmt.Printf("%s of %s: a %d in %.1f h = %.2f/h, b %d in %.1f h = %.2f/h; ratio %.3g, p %.3g (%s, %s)\n", c.Metric, series,
				c.A.Total, c.A.Hours, c.A.Rate, c.B.Total, c.B.Hours, c.B.Rate, c.Ratio, c.P, c.Test, verdict)
			return nil
		},
	}
}
