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
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/peterbourgon/ff/v3/ffcli"
)

// journeyQueryFlags are the flags every journey query shares.
type journeyQueryFlags struct {
	cm       common
	jf       journeyFlags
	name     *string
	from, to *time.Time
	out      *string
}

func (q *journeyQueryFlags) register(fs *flag.FlagSet) {
	q.cm.register(fs)
	q.jf.register(fs)
	q.name = fs.String("journey", "", "journey name (required)")
	q.from = cli.Time(fs, "from", "cohort start: instances that entered at or after, RFC 3339 or a date (default: 30 days before --to)")
	q.to = cli.Time(fs, "to", "cohort end, exclusive, RFC 3339 or a date (default now)")
	q.out = cli.Output(fs, "table", "json")
}

func (q *journeyQueryFlags) resolve(ctx context.Context) (*journeys.Definition, time.Time, time.Time, func(), *pgxpool.Pool, error) {
	set, err := q.jf.load()
	if err != nil {
		return nil, time.Time{}, time.Time{}, nil, nil, err
	}
	if set == nil {
		return nil, time.Time{}, time.Time{}, nil, nil, cli.Usagef("--no-journeys: there is no journey to query")
	}
	if *q.name == "" {
		return nil, time.Time{}, time.Time{}, nil, nil, cli.Usagef("--journey is required; known: %s", journeyNames(set))
	}
	d, ok := set.Get(*q.name)
	if !ok {
		return nil, time.Time{}, time.Time{}, nil, nil, cli.Usagef("no journey %q (--journey); known: %s", *q.name, journeyNames(set))
	}
	to := *q.to
	if to.IsZero() {
		to = time.Now().UTC()
	}
	from := *q.from
	if from.IsZero() {
		from = to.Add(-30 * 24 * time.Hour)
	}
	if !from.Before(to) {
		return nil, time.Time{}, time.Time{}, nil, nil, cli.Usagef("--from %s is not before --to %s", from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	db, err := q.cm.openDB(ctx)
	if err != nil {
		return nil, time.Time{}, time.Time{}, nil, nil, err
	}
	return d, from, to, db.Close, db, nil
}

func journeyNames(s *journeys.Set) string {
	out := ""
	for i, d := range s.Journeys {
		if i > 0 {
			out += ", "
		}
		out += d.Name
	}
	return out
}

func queryFunnelCommand() *ffcli.Command {
	fs := flag.NewFlagSet("hookstream query funnel", flag.ContinueOnError)
	var q journeyQueryFlags
	q.register(fs)
	by := cli.Choice(fs, "by", "break the funnel down: entry_topic (the topic instances entered with)", "", "entry_topic")
	return &ffcli.Command{
		Name:       "funnel",
		ShortUsage: "hookstream query funnel --journey NAME [--from T] [--to T] [--by entry_topic] [-o json|table]",
		ShortHelp:  "how a cohort went through a journey: reached, conversion (95% Wilson), time between steps, drop-off, in flight",
		FlagSet:    fs, Options: envOptions(),
		Exec: func(ctx context.Context, _ []string) error {
			d, from, to, done, db, err := q.resolve(ctx)
			if err != nil {
				return err
			}
			defer done()
			fs, err := journeys.Funnels(ctx, db, d, from, to, *by)
			if err != nil {
				return err
			}
			if *q.out == "json" {
				if *by == "" {
					return writeJSON(os.Stdout, fs[0])
				}
				return writeJSON(os.Stdout, fs)
			}
			for _, f := range fs {
				label := f.Journey
				if f.EntryTopic != "" {
					label += " entered by " + f.EntryTopic
				}
				fmt.Printf("%s: %d entered on %s to %s; %d completed, %d failed, %d in progress, %d abandoned\n",
					label, f.Entered, f.From.Format("2006-01-02"), f.To.Add(-time.Nanosecond).Format("2006-01-02"), f.Completed, f.Failed, f.InProgress, f.Abandoned)
				tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
				fmt.Fprintln(tw, "step\treached\tfrom\tconversion (95% CI)\toverall\tmedian\tp90\tin flight\tabandoned\tcompleted\tfailed")
				for _, s := range f.Steps {
					from := s.Previous
					if from == "" {
						from = "(entered)"
					}
					fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\n", s.Step+map[bool]string{true: " (optional)"}[s.Optional], s.Reached,
						from, pct(s.FromPrevious), pct(s.Overall), secs(s.MedianSeconds), secs(s.P90Seconds), s.InFlight, s.Abandoned, s.Completed, s.Failed)
				}
				tw.Flush()
				fmt.Println()
			}
			return nil
		},
	}
}

func pct(c journeys.Conversion) string {
	return fmt.Sprintf("%.1f%% (%.1f–%.1f)", 100*c.Rate, 100*c.Low, 100*c.High)
}

func secs(s *float64) string {
	if s == nil {
		return "-"
	}
	return (time.Duration(*s * float64(time.Second))).Round(time.Second).String()
}

func queryJourneyCommand() *ffcli.Command {
	fs := flag.NewFlagSet("hookstream query journey", flag.ContinueOnError)
	var q journeyQueryFlags
	q.register(fs)
	subject := fs.String("subject", "", "the subject: a customer, resource or correlation id, as the journey defines (required)")
	return &ffcli.Command{
		Name:       "journey",
		ShortUsage: "hookstream query journey --journey NAME --subject ID [-o json]",
		ShortHelp:  "one instance: its state, the events that built it, and what happened to it",
		FlagSet:    fs, Options: envOptions(),
		Exec: func(ctx context.Context, _ []string) error {
			if *subject == "" {
				return cli.Usagef("--subject is required: the customer, resource or correlation id the instance follows")
			}
			d, _, _, done, db, err := q.resolve(ctx)
			if err != nil {
				return err
			}
			defer done()
			inst, err := journeys.Instance(ctx, db, d, *subject)
			if err != nil {
				return err
			}
			return writeJSON(os.Stdout, inst)
		},
	}
}

func queryJourneysCommand() *ffcli.Command {
	fs := flag.NewFlagSet("hookstream query journeys", flag.ContinueOnError)
	var q journeyQueryFlags
	q.register(fs)
	status := cli.Choice(fs, "status", "only instances in this status: in_progress, completed, failed or abandoned (default: any)", "", "in_progress", "completed", "failed", "abandoned")
	limit := fs.Int("limit", 100, "most instances listed, newest entry first")
	return &ffcli.Command{
		Name:       "journeys",
		ShortUsage: "hookstream query journeys --journey NAME [--status abandoned] [--from T] [--to T] [--limit N] [-o json|table]",
		ShortHelp:  "list instances of a journey",
		FlagSet:    fs, Options: envOptions(),
		Exec: func(ctx context.Context, _ []string) error {
			d, from, to, done, db, err := q.resolve(ctx)
			if err != nil {
				return err
			}
			defer done()
			rows, err := journeys.Instances(ctx, db, d, journeys.InstanceFilter{Status: *status, From: from, To: to, Limit: *limit})
			if err != nil {
				return err
			}
			if *q.out == "json" {
				return writeJSON(os.Stdout, rows)
			}
			tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "subject\tstatus\tcurrent step\tentered\tlast progress\tdeadline\tconflict")
			for _, r := range rows {
				dl := "-"
				if r.Deadline != nil {
					dl = r.Deadline.UTC().Format(time.RFC3339)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Subject, r.Status, r.CurrentStep, r.EnteredAt.Format(time.RFC3339),
					r.LastAt.Format(time.RFC3339), dl, oneLine(r.Conflict, 80))
			}
			return tw.Flush()
		},
	}
}
