package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/hookstream/hookstream/anomaly"
	"github.com/hookstream/hookstream/internal/cli"
	"github.com/peterbourgon/ff/v3/ffcli"
)

func queryAnomaliesCommand() *ffcli.Command {
	fs := flag.NewFlagSet("hookstream query anomalies", flag.ContinueOnError)
	var cm common
	cm.register(fs)
	series := fs.String("series", "", "one group of a watched series (volume/family=transfer), a series with every group of it (volume), or only its groups (volume/); default all")
	from := cli.Time(fs, "from", "windows starting at or after, RFC 3339 or a date (default: one day before --to)")
	to := cli.Time(fs, "to", "windows starting before, RFC 3339 or a date (default now)")
	minScore := fs.Float64("min-score", 0, "only windows scoring at least this (0..1)")
	all := fs.Bool("all", false, "every scored window, not only the anomalies")
	limit := fs.Int("limit", 100, "most windows listed, newest first")
	out := cli.Output(fs, "table", "json")
	return &ffcli.Command{
		Name:       "anomalies",
		ShortUsage: "hookstream query anomalies [--series S] [--from T] [--to T] [--min-score 0.9] [--all] [-o json|table]",
		ShortHelp:  "anomalies found in the watched series: value, expected range, score and why",
		LongHelp: `Lists what the anomaly scorer recorded as windows of the watched series
closed (--anomaly-series; docs/anomaly.md): by default the anomalies only
(a score at or above the series' threshold), with --all every scored window.
A window revised by late events after it was scored is scored again and
listed once per revision.`,
		FlagSet: fs, Options: envOptions(),
		Exec: func(ctx context.Context, _ []string) error {
			if *minScore < 0 || *minScore > 1 {
				return cli.Usagef("--min-score %v: want a score from 0 to 1", *minScore)
			}
			f := anomaly.Filter{Series: *series, From: *from, To: *to, MinScore: *minScore, Only: !*all, Limit: *limit}
			if f.To.IsZero() {
				f.To = time.Now().UTC()
			}
			if f.From.IsZero() {
				f.From = f.To.Add(-24 * time.Hour)
			}
			db, err := cm.openDB(ctx)
			if err != nil {
				return err
			}
			defer db.Close()
			recs, err := anomaly.List(ctx, db, f)
			if err != nil {
				return err
			}
			if *out == "json" {
				return writeJSON(os.Stdout, recs)
			}
			tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "window start\twindow\tseries\tvalue\texpected\tscore\trevision\treason")
			for _, r := range recs {
				exp := "-"
				if r.Expected != nil {
					exp = strconv.FormatFloat(*r.Expected, 'g', 4, 64)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%.3f\t%d\t%s\n", r.Start.Format(time.RFC3339), r.Window, r.Series,
					strconv.FormatFloat(r.Value, 'g', 6, 64), exp, r.Score, r.Revision, oneLine(r.Reason, 100))
			}
			return tw.Flush()
		},
	}
}
