package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hookstream/hookstream/dwolla"
	"github.com/hookstream/hookstream/internal/cli"
	"github.com/hookstream/hookstream/reconcile"
	"github.com/hookstream/hookstream/stream"
	"github.com/peterbourgon/ff/v3/ffcli"
)

// dwollaConfig is how hookstream reaches Dwolla's API.
type dwollaConfig struct {
	api, key, secret string
	rate             float64
}

func (c *dwollaConfig) register(fs *flag.FlagSet) {
	fs.StringVar(&c.api, "dwolla-api", dwolla.ProductionAPI, "Dwolla's API root: "+dwolla.ProductionAPI+", "+dwolla.SandboxAPI+", or the simulator's (sim --api-addr)")
	fs.StringVar(&c.key, "dwolla-key", "", "the Dwolla application's key (OAuth client id), for reconciliation")
	fs.StringVar(&c.secret, "dwolla-secret", "", "the Dwolla application's secret, for reconciliation")
	fs.Float64Var(&c.rate, "dwolla-rate", 10, "most requests per second to Dwolla's API")
}

func (c *dwollaConfig) configured() bool { return c.key != "" || c.secret != "" }

func (c *dwollaConfig) client(log *slog.Logger) (*dwolla.Client, error) {
	if c.key == "" || c.secret == "" {
		return nil, errors.New("reconciliation needs Dwolla API credentials: set HOOKSTREAM_DWOLLA_KEY and HOOKSTREAM_DWOLLA_SECRET (or --dwolla-key and --dwolla-secret), and HOOKSTREAM_DWOLLA_API for the sandbox")
	}
	return dwolla.NewClient(dwolla.ClientConfig{BaseURL: c.api, Key: c.key, Secret: c.secret, Rate: c.rate, Burst: max(1, int(c.rate)), Logger: log})
}

// reconcileConfig is everything a reconciliation is configured with.
type reconcileConfig struct {
	dwolla      dwollaConfig
	every       time.Duration
	overlap     time.Duration
	settle      time.Duration
	pageSize    int
	retryFailed bool
	stuck       int
}

func (c *reconcileConfig) register(fs *flag.FlagSet) {
	c.dwolla.register(fs)
	fs.DurationVar(&c.every, "reconcile-every", 5*time.Minute, "serve --roles reconcile: how often a reconciliation runs")
	fs.DurationVar(&c.overlap, "reconcile-overlap", time.Hour, "a run starts this far before the newest event the last complete run saw")
	fs.DurationVar(&c.settle, "reconcile-settle", time.Minute, "compare only events at least this old (without --until): newer ones may still be on their way by webhook")
	fs.IntVar(&c.pageSize, "reconcile-page-size", 200, "events per page asked of Dwolla's /events")
	fs.BoolVar(&c.retryFailed, "retry-failed", false, "ask Dwolla to deliver again the failed webhooks whose events are still missing after recovery")
	fs.IntVar(&c.stuck, "reconcile-stuck", 100, "journey instances past their deadline checked against Dwolla per run (0: none)")
}

func (c *reconcileConfig) options(log *slog.Logger, seenTTL time.Duration, j *journeyFlags) (reconcile.Options, error) {
	o := reconcile.Options{PageSize: c.pageSize, Overlap: c.overlap, Settle: c.settle, SeenTTL: seenTTL, RetryFailed: c.retryFailed, StuckLimit: c.stuck, Logger: log}
	if c.stuck == 0 {
		o.StuckLimit = -1
	}
	set, err := j.load()
	if err != nil {
		return o, err
	}
	o.Journeys = set
	return o, nil
}

// serveReconcile runs the reconcile role until ctx ends.
func serveReconcile(ctx context.Context, cfg *serveConfig) error {
	log := slog.Default()
	api, err := cfg.reconcile.dwolla.client(log)
	if err != nil {
		return err
	}
	opts, err := cfg.reconcile.options(log, cfg.seenTTL, &cfg.process.journeys)
	if err != nil {
		return err
	}
	rdb, pool, done, err := roleConns(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer done()
	r := reconcile.New(pool, rdb, stream.NewKeys(cfg.namespace, cfg.partitions), api, opts)
	log.Info("reconciliation running", "every", cfg.reconcile.every, "dwolla_api", cfg.reconcile.dwolla.api)
	r.RunEvery(ctx, cfg.reconcile.every)
	return nil
}

func reconcileCommand() *ffcli.Command {
	fs := flag.NewFlagSet("hookstream reconcile", flag.ContinueOnError)
	var (
		cm  common
		rc  reconcileConfig
		jf  journeyFlags
		ttl time.Duration
	)
	cm.register(fs)
	rc.register(fs)
	jf.register(fs)
	fs.DurationVar(&ttl, "seen-ttl", 72*time.Hour, "how long a recovered event's id is remembered for dedup (ingest's --seen-ttl)")
	since := cli.Time(fs, "since", "compare events created from here (RFC 3339 or a date; default: the last complete run's high-water mark minus --reconcile-overlap, or Dwolla's 30 days)")
	until := cli.Time(fs, "until", "compare events created before this (default now minus --reconcile-settle)")
	dry := fs.Bool("dry-run", false, "compare and report; recover nothing, retry nothing, move no high-water mark")
	out := cli.Output(fs, "table", "json")

	runs := reconcileRunsCommand()
	report := reconcileReportCommand()
	return &ffcli.Command{
		Name:       "reconcile",
		ShortUsage: "hookstream reconcile [--since T] [--until T] [--dry-run] [--retry-failed] | reconcile report|runs [flags]",
		ShortHelp:  "compare with Dwolla's events API, recover missing events, audit deliveries; report",
		LongHelp: `Compares the events Dwolla has (GET /events, newest first, 30 days) with
the events table and recovers the missing ones through the same exactly-once
path as webhooks (source reconcile). A run pages from the newest event until
it passes the last complete run's high-water mark minus --reconcile-overlap,
so it is cheap when run often; it then audits the webhook subscriptions
(paused? which deliveries failed, and why; --retry-failed asks Dwolla to send
the still-missing ones again) and checks journey instances stuck past their
deadline against the resource's current status. Each run is recorded
(hookstream reconcile runs); serve --roles reconcile runs one every
--reconcile-every. docs/reconcile.md has the detail.

Credentials: HOOKSTREAM_DWOLLA_KEY, HOOKSTREAM_DWOLLA_SECRET, and
HOOKSTREAM_DWOLLA_API for the sandbox or the simulator.

  reconcile                 one run now
  reconcile runs            the latest runs (--limit, -o)
  reconcile report          per topic and day: at Dwolla, stored, by webhook or
                            by reconciliation, missing, recovered (--from, --to)`,
		FlagSet:     fs,
		Options:     envOptions(),
		Subcommands: []*ffcli.Command{runs, report},
		Exec: func(ctx context.Context, args []string) error {
			if len(args) > 0 {
				return cli.Usagef("unknown reconcile verb %q; use reconcile, reconcile runs or reconcile report", args[0])
			}
			log := slog.Default()
			api, err := rc.dwolla.client(log)
			if err != nil {
				return err
			}
			opts, err := rc.options(log, ttl, &jf)
			if err != nil {
				return err
			}
			env, done, err := cm.connect(ctx, true)
			if err != nil {
				return err
			}
			defer done()
			r := reconcile.New(env.db, env.rdb, env.keys, api, opts)
			run, err := r.Run(ctx, reconcile.Window{Since: *since, Until: *until, DryRun: *dry})
			if run.ID != 0 {
				if *out == "json" {
					if werr := writeJSON(os.Stdout, run); werr != nil {
						return werr
					}
				} else {
					printRun(os.Stdout, run)
				}
			}
			return err
		},
	}
}

func reconcileRunsCommand() *ffcli.Command {
	fs := flag.NewFlagSet("hookstream reconcile runs", flag.ContinueOnError)
	var cm common
	cm.register(fs)
	limit := fs.Int("limit", 20, "most runs shown, newest first")
	out := cli.Output(fs, "table", "json")
	return &ffcli.Command{
		Name:       "runs",
		ShortUsage: "hookstream reconcile runs [--limit N] [-o table|json]",
		ShortHelp:  "the latest reconciliation runs",
		FlagSet:    fs, Options: envOptions(),
		Exec: func(ctx context.Context, args []string) error {
			if len(args) > 0 {
				return cli.Usagef("runs takes no arguments (got %q)", args[0])
			}
			db, err := cm.openDB(ctx)
			if err != nil {
				return err
			}
			defer db.Close()
			rs, err := reconcile.Runs(ctx, db, *limit)
			if err != nil {
				return err
			}
			if *out == "json" {
				return writeJSON(os.Stdout, map[string]any{"runs": rs})
			}
			if len(rs) == 0 {
				fmt.Println("no reconciliation runs yet")
				return nil
			}
			tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tSTARTED\tSTATUS\tSINCE\tCOMPARED\tMISSING\tRECOVERED\tIN FLIGHT\tUNRECOVERED\tERRORS\tPAGES\tCALLS\tSECONDS")
			for _, r := range rs {
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%.1f\n", r.ID, r.StartedAt.Format(time.RFC3339), r.Status,
					r.Since.Format(time.RFC3339), r.Compared, r.Missing, r.Recovered, r.InFlight, r.Unrecovered, r.Errors, r.Pages, r.APICalls, r.DurationMS/1000)
			}
			return tw.Flush()
		},
	}
}

func reconcileReportCommand() *ffcli.Command {
	fs := flag.NewFlagSet("hookstream reconcile report", flag.ContinueOnError)
	var cm common
	cm.register(fs)
	from := cli.Time(fs, "from", "first day (YYYY-MM-DD or RFC 3339; default 7 days ago)")
	to := cli.Time(fs, "to", "last day, included (default today)")
	out := cli.Output(fs, "table", "json")
	return &ffcli.Command{
		Name:       "report",
		ShortUsage: "hookstream reconcile report [--from T] [--to T] [-o table|json]",
		ShortHelp:  "per topic and day: events at Dwolla, stored, by webhook or reconciliation, missing, recovered",
		FlagSet:    fs, Options: envOptions(),
		Exec: func(ctx context.Context, args []string) error {
			if len(args) > 0 {
				return cli.Usagef("report takes no arguments (got %q)", args[0])
			}
			t := *to
			if t.IsZero() {
				t = time.Now().UTC()
			}
			f := *from
			if f.IsZero() {
				f = t.Add(-6 * 24 * time.Hour)
			}
			db, err := cm.openDB(ctx)
			if err != nil {
				return err
			}
			defer db.Close()
			rep, err := reconcile.MakeReport(ctx, db, f, t)
			if err != nil {
				return err
			}
			if *out == "json" {
				return writeJSON(os.Stdout, rep)
			}
			printReport(os.Stdout, rep)
			return nil
		},
	}
}

func printRun(w io.Writer, r reconcile.Run) {
	fmt.Fprintf(w, "run %d %s: events created %s .. %s\n", r.ID, r.Status, r.Since.Format(time.RFC3339), r.Until.Format(time.RFC3339))
	fmt.Fprintf(w, "  compared %d at Dwolla: %d missing, %d recovered, %d in flight, %d dead-lettered, %d unrecovered; %d errors\n",
		r.Compared, r.Missing, r.Recovered, r.InFlight, r.DeadLettered, r.Unrecovered, r.Errors)
	hw := "none (no event in the window)"
	if !r.HighWater.IsZero() {
		hw = r.HighWater.Format(time.RFC3339)
	}
	fmt.Fprintf(w, "  %d pages, %d API calls, %.1f s; high-water %s\n", r.Pages, r.APICalls, r.DurationMS/1000, hw)
	if a := r.Audit; a != nil {
		if a.Error != "" {
			fmt.Fprintf(w, "  delivery audit failed: %s\n", a.Error)
		}
		for _, s := range a.Subscriptions {
			state := "active"
			if s.Paused {
				state = "PAUSED by Dwolla (400 consecutive failures): unpause it once the endpoint answers"
			}
			fmt.Fprintf(w, "  subscription %s (%s): %s; %d deliveries, %d failed", s.ID, s.URL, state, s.Webhooks, s.Failed)
			if len(s.ByStatus) > 0 {
				var parts []string
				for _, k := range sortedKeys(s.ByStatus) {
					label := k
					if k == "0" {
						label = "no answer"
					}
					parts = append(parts, fmt.Sprintf("%s: %d", label, s.ByStatus[k]))
				}
				fmt.Fprintf(w, " (%s)", strings.Join(parts, ", "))
			}
			if s.Retried+s.RetryErrors > 0 {
				fmt.Fprintf(w, "; %d sent again, %d refused", s.Retried, s.RetryErrors)
			}
			fmt.Fprintln(w)
			if s.Error != "" {
				fmt.Fprintf(w, "    error: %s\n", s.Error)
			}
		}
	}
	if rp := r.Repair; rp != nil {
		fmt.Fprintf(w, "  journeys: %d stuck instances checked, %d where Dwolla knows more\n", rp.Checked, rp.Discrepancies)
		for _, d := range rp.Items {
			fmt.Fprintf(w, "    %s %s: ours %s at %s, Dwolla %s: %s\n", d.Journey, d.Subject, d.OurStatus, d.OurStep, d.DwollaStatus, d.Note)
		}
		if rp.Error != "" {
			fmt.Fprintf(w, "    error: %s\n", rp.Error)
		}
	}
	if r.Error != "" {
		fmt.Fprintf(w, "  error: %s\n", r.Error)
	}
}

func sortedKeys(m map[string]int) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func printReport(w io.Writer, rep reconcile.Report) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "DAY\tTOPIC\tAT DWOLLA\tSTORED\tBY WEBHOOK\tBY RECONCILE\tMISSING\tRECOVERED\tUNRECOVERED\t")
	for _, r := range append(rep.Rows, rep.Total) {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t\n", r.Day, r.Topic, r.AtDwolla, r.Stored, r.ByWebhook, r.ByReconcile, r.Missing, r.Recovered, r.Unrecovered)
	}
	tw.Flush()
	if len(rep.Covered) == 0 {
		fmt.Fprintf(w, "no complete reconciliation covers %s .. %s: missing counts are 0 for want of looking\n", rep.From, rep.To)
		return
	}
	var spans []string
	for _, s := range rep.Covered {
		spans = append(spans, s.From.Format(time.RFC3339)+" .. "+s.To.Format(time.RFC3339))
	}
	fmt.Fprintf(w, "compared with Dwolla: %s\n", strings.Join(spans, ", "))
}
