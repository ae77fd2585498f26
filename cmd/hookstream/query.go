package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/hookstream/hookstream/internal/cli"
	"github.com/hookstream/hookstream/windows"
	"github.com/peterbourgon/ff/v3/ffcli"
)

func queryCommand() *ffcli.Command {
	return &ffcli.Command{
		Name:        "query",
		ShortUsage:  "hookstream query metrics|funnel|journey|journeys|compare|anomalies|forecast [flags]",
		ShortHelp:   "read metrics, funnels and journeys through the query layer the API and Grafana use",
		Subcommands: []*ffcli.Command{queryMetricsCommand(), queryFunnelCommand(), queryJourneyCommand(), queryJourneysCommand(), queryCompareCommand(), queryAnomaliesCommand(), queryForecastCommand()},
	}
}

func queryMetricsCommand() *ffcli.Command {
	fs := flag.NewFlagSet("hookstream query metrics", flag.ContinueOnError)
	var cm common
	cm.register(fs)
	var wf windowFlags
	wf.register(fs)
	window := fs.Duration("window", time.Minute, "window size: one of --window-sizes")
	basis := fs.String("basis", "event", "clock: event (Dwolla's created) or received (when hookstream got it)")
	metric := fs.String("metric", "count", "count, successes, failures, terminal, failure_ratio, lag_mean, lag_p50, lag_p90, lag_p99, distinct_customers or late")
	groupBy := fs.String("group-by", "", "break down by topic, family or resource_type (default: one series)")
	filter := fs.String("filter", "", "keep only dimension=value[,value...], for example topic=customer_created")
	from := cli.Time(fs, "from", "start, RFC 3339 or a date (default: one hour before --to)")
	to := cli.Time(fs, "to", "end, exclusive, RFC 3339 or a date (default now)")
	nonEmpty := fs.Bool("non-empty", false, "list only the windows and groups that had events (default: every window, empty ones as zero)")
	out := cli.Output(fs, "table", "json")
	return &ffcli.Command{
		Name:       "metrics",
		ShortUsage: "hookstream query metrics --window 1m --metric count [--group-by topic] [--from T] [--to T] [--filter topic=x] [--non-empty] [-o json|table]",
		ShortHelp:  "one metric per window over a time range, every window listed (empty ones as zero unless --non-empty)",
		LongHelp: `Reads the window aggregates the processor keeps (open windows included: they
are committed before the entries are acknowledged) and prints every window in
[--from, --to) with its group and value; windows without events show 0 with
count 0. "closed" says the watermark has passed the window's end plus its
allowed lateness (a late event can still revise a closed window: see
revision). lag_* are in milliseconds, within 1% (DDSketch);
distinct_customers is a HyperLogLog estimate (0.8% standard error).

A filter combines with grouping by the same dimension, or with no grouping
(the selected values are merged into one series). --non-empty lists only
the windows and groups that had events.

The parameters are checked before connecting: a window size that is not
one of --window-sizes, an unknown metric, clock, dimension or filter is
refused at once, naming the flag.`,
		FlagSet: fs,
		Options: envOptions(),
		Exec: func(ctx context.Context, _ []string) error {
			cfg, err := wf.config()
			if err != nil {
				return err
			}
			req := windows.MetricQuery{Window: *window, Basis: windows.Basis(*basis), Metric: windows.Metric(*metric), GroupBy: *groupBy,
				To: *to, SkipEmpty: *nonEmpty}
			if req.To.IsZero() {
				req.To = time.Now().UTC()
			}
			if req.From = *from; req.From.IsZero() {
				req.From = req.To.Add(-time.Hour)
			}
			if req.Filter, err = windows.ParseFilter(*filter); err != nil {
				return cli.Usagef("%v", err)
			}
			if err := req.Validate(cfg); err != nil {
				return cli.Usagef("%v", err)
			}
			db, err := cm.openDB(ctx)
			if err != nil {
				return err
			}
			defer db.Close()
			res, err := windows.QueryMetrics(ctx, db, cfg, req)
			if err != nil {
				return err
			}
			if *out == "json" {
				return writeJSON(os.Stdout, res)
			}
			tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintf(tw, "window start\tgroup\t%s\tevents\tclosed\trevision\n", res.Metric)
			for _, p := range res.Points {
				g := p.Group
				if g == "" {
					g = "(all)"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%v\t%d\n", p.Start.Format(time.RFC3339), g, strconv.FormatFloat(p.Value, 'f', -1, 64), p.Count, p.Closed, p.Revision)
			}
			return tw.Flush()
		},
	}
}
