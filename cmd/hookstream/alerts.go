package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"os/user"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hookstream/hookstream/alert"
	"github.com/hookstream/hookstream/internal/cli"
	"github.com/hookstream/hookstream/stream"
	"github.com/peterbourgon/ff/v3/ffcli"
)

// alertConfig is everything the alert role is configured with.
type alertConfig struct {
	rules      string
	interval   time.Duration
	consoleURL string
	grafanaURL string
	lease      time.Duration
}

func (c *alertConfig) register(fs *flag.FlagSet) {
	fs.StringVar(&c.rules, "alert-rules", "", "alert rules and targets (YAML; see docs/alerts.md); default: the built-in rules, with no targets")
	fs.DurationVar(&c.interval, "alert-interval", 15*time.Second, "how often the alert rules are evaluated")
	fs.StringVar(&c.consoleURL, "console-url", "", "hookstream's API as people reach it (http://host:8081): notifications link to its console's view of the alert; empty: no link")
	fs.StringVar(&c.grafanaURL, "grafana-url", "", "a Grafana dashboard linked from notifications; empty: no link")
	fs.DurationVar(&c.lease, "alert-lease", 30*time.Second, "how long a notifier holds a notification it is sending; past it another notifier sends it again (more than 10s, the request timeout)")
}

// serveAlert runs the alert role until ctx ends.
func serveAlert(ctx context.Context, cfg *serveConfig) error {
	log := slog.Default()
	wcfg, err := cfg.process.windows.config()
	if err != nil {
		return err
	}
	rules, err := alert.LoadRules(cfg.alert.rules, wcfg)
	if err != nil {
		return err
	}
	if cfg.alert.lease <= 10*time.Second {
		return fmt.Errorf("--alert-lease %s: must exceed the 10s request timeout, or a slow target gets each notification twice", cfg.alert.lease)
	}
	rdb, pool, done, err := roleConns(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer done()
	if len(rules.Targets) == 0 {
		log.Warn("alerts are evaluated but sent nowhere: the rules name no targets; see docs/alerts.md (--alert-rules)")
	}
	role := alert.NewRole(pool, rdb, stream.NewKeys(cfg.namespace, cfg.partitions), rules, wcfg, alert.RoleOptions{
		Evaluator: alert.EvaluatorOptions{Interval: cfg.alert.interval, ConsoleURL: strings.TrimRight(cfg.alert.consoleURL, "/"),
			GrafanaURL: cfg.alert.grafanaURL, Logger: log},
		Notifier: alert.NotifierOptions{Lease: cfg.alert.lease, Logger: log},
	})
	log.Info("alerts running", "rules", len(rules.Rules), "targets", len(rules.Targets), "interval", cfg.alert.interval)
	return role.Run(ctx)
}

func alertsCommand() *ffcli.Command {
	fs := flag.NewFlagSet("hookstream alerts", flag.ContinueOnError)
	var (
		cm common
		ac alertConfig
		wf windowFlags
	)
	cm.register(fs)
	wf.register(fs)
	fs.StringVar(&ac.rules, "alert-rules", "", "alert rules and targets (YAML); default: the built-in rules")
	state := cli.Choice(fs, "state", "list: firing (pending too), resolved or all", "firing", "resolved", "all")
	limit := fs.Int("limit", 100, "list: most alerts shown")
	out := cli.Output(fs, "table", "json")
	var matchers stringList
	fs.Var(&matchers, "match", "silence: a label matcher (name=value, name!=value, name=~regexp, name!~regexp; the rule is alertname); repeat for more")
	forDur := fs.Duration("for", 2*time.Hour, "silence: how long it lasts")
	comment := fs.String("comment", "", "silence: why (required)")
	by := fs.String("by", "", "ack and silence: who (default the login name)")
	all := fs.Bool("all", false, "silences: expired ones too (last 30 days)")
	target := fs.String("target", "", "test: the target to send a sample notification to")
	return &ffcli.Command{
		Name:       "alerts",
		ShortUsage: "hookstream alerts list|show ID|ack ID|silence --match k=v --comment TEXT|silences|unsilence ID|test --target NAME|check [flags]",
		ShortHelp:  "see, acknowledge and silence alerts; test targets; check a rules file",
		LongHelp: `Alerts come from the rules the alert role (serve --roles alert, part of
all) evaluates; docs/alerts.md describes the rules file.

  list                  alerts (--state firing|resolved|all, --limit, -o)
  show ID               one alert (its fingerprint) with its history and the
                        notifications that carried it, with every attempt
  ack ID                acknowledge a firing alert: no repeat notifications
                        until it resolves (--by)
  silence               mute the notifications of matching alerts:
                        --match k=v... --for 2h --comment TEXT [--by]
  silences              the silences (--all: expired ones too)
  unsilence ID          expire a silence now
  test --target NAME    send a sample notification to a target of the rules
                        file (--alert-rules) and say how it answered
  check                 validate the rules file (--alert-rules) and list it

Examples:
  hookstream alerts list --state all
  hookstream alerts silence --match alertname=transfer-failures-high --for 2h --comment "Dwolla incident INC-42"
  hookstream alerts test --alert-rules rules.yaml --target oncall`,
		FlagSet: fs, Options: envOptions(),
		Exec: func(ctx context.Context, args []string) error {
			if len(args) == 0 {
				return cli.Usagef("alerts needs a verb: list, show, ack, silence, silences, unsilence, test or check")
			}
			verb, rest := args[0], args[1:]
			needID := verb == "show" || verb == "ack" || verb == "unsilence"
			switch {
			case needID && len(rest) != 1:
				return cli.Usagef("%s takes one id: hookstream alerts %s ID", verb, verb)
			case !needID && len(rest) > 0:
				return cli.Usagef("%s takes no arguments (got %q)", verb, rest[0])
			}
			who := *by
			if who == "" {
				who = loginName()
			}
			now := time.Now().UTC()
			switch verb {
			case "check", "test":
				wcfg, err := wf.config()
				if err != nil {
					return err
				}
				rules, err := alert.LoadRules(ac.rules, wcfg)
				if err != nil {
					return err
				}
				if verb == "check" {
					return printRules(os.Stdout, rules)
				}
				if *target == "" {
					return cli.Usagef("test needs --target NAME")
				}
				t, err := rules.Target(*target)
				if err != nil {
					return err
				}
				res, err := alert.SendTest(ctx, t, &http.Client{Timeout: 10 * time.Second}, now)
				if err != nil {
					return err
				}
				if *out == "json" {
					return writeJSON(os.Stdout, res)
				}
				if !res.Delivered {
					return fmt.Errorf("target %s: the test notification %s was not delivered: %s", t.Name, res.ID, res.Error)
				}
				fmt.Printf("target %s answered %d in %.0f ms: test notification %s delivered\n", t.Name, res.Status, res.DurationMS, res.ID)
				return nil
			case "list", "show", "ack", "silence", "silences", "unsilence":
			default:
				return cli.Usagef("unknown alerts verb %q; use list, show, ack, silence, silences, unsilence, test or check", verb)
			}
			var sil *alert.Silence
			if verb == "silence" {
				if len(matchers) == 0 {
					return cli.Usagef("silence needs at least one --match, for example --match alertname=transfer-failures-high")
				}
				sil = &alert.Silence{StartsAt: now, EndsAt: now.Add(*forDur), CreatedBy: who, Comment: *comment}
				for _, m := range matchers {
					mt, err := alert.ParseMatcher(m)
					if err != nil {
						return cli.Usagef("--match: %v", err)
					}
					sil.Matchers = append(sil.Matchers, mt)
				}
				if err := sil.Validate(); err != nil {
					return cli.Usagef("%v (--match, --for, --comment, --by)", err)
				}
			}
			db, err := cm.openDB(ctx)
			if err != nil {
				return err
			}
			defer db.Close()
			w := os.Stdout
			switch verb {
			case "list":
				as, err := alert.List(ctx, db, *state, *limit, now)
				if err != nil {
					return err
				}
				if *out == "json" {
					return writeJSON(w, map[string]any{"alerts": as})
				}
				printAlerts(w, as, now)
			case "show":
				d, err := alert.Get(ctx, db, rest[0], now)
				if err != nil {
					return notFoundHint(err, "hookstream alerts list --state all")
				}
				if *out == "json" {
					return writeJSON(w, d)
				}
				printAlert(w, d)
			case "ack":
				v, err := alert.Acknowledge(ctx, db, rest[0], who, now)
				if err != nil {
					return notFoundHint(err, "hookstream alerts list")
				}
				if *out == "json" {
					return writeJSON(w, v)
				}
				fmt.Fprintf(w, "alert %s (%s) acknowledged by %s: no repeat notifications until it resolves\n", v.Fingerprint, v.Rule, v.AckedBy)
			case "silence":
				if err := alert.CreateSilence(ctx, db, sil, now); err != nil {
					return err
				}
				if *out == "json" {
					return writeJSON(w, sil)
				}
				fmt.Fprintf(w, "silence %s until %s: %s\n", sil.ID, sil.EndsAt.Format(time.RFC3339), matcherText(sil.Matchers))
			case "silences":
				ss, err := alert.ListSilences(ctx, db, *all, now)
				if err != nil {
					return err
				}
				if *out == "json" {
					return writeJSON(w, map[string]any{"silences": ss})
				}
				printSilences(w, ss)
			case "unsilence":
				s, err := alert.ExpireSilence(ctx, db, rest[0], now)
				if err != nil {
					return notFoundHint(err, "hookstream alerts silences --all")
				}
				if *out == "json" {
					return writeJSON(w, s)
				}
				fmt.Fprintf(w, "silence %s expired at %s\n", s.ID, s.EndsAt.Format(time.RFC3339))
			}
			return nil
		},
	}
}

// notFoundHint adds where to find ids to a not-found error.
func notFoundHint(err error, list string) error {
	if errors.Is(err, alert.ErrNotFound) {
		return fmt.Errorf("%w; %s lists them", err, list)
	}
	return err
}

func loginName() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	if s := os.Getenv("USER"); s != "" {
		return s
	}
	return "cli"
}

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, " ") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

func matcherText(ms []*alert.Matcher) string {
	parts := make([]string, len(ms))
	for i, m := range ms {
		parts[i] = m.String()
	}
	return strings.Join(parts, ", ")
}

func labelText(l map[string]string) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(l)) {
		parts = append(parts, k+"="+l[k])
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ",")
}

func printAlerts(w io.Writer, as []alert.View, now time.Time) {
	if len(as) == 0 {
		fmt.Fprintln(w, "no alerts")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "FINGERPRINT\tRULE\tSEVERITY\tSTATE\tSINCE\tVALUE\tLABELS\tNOTE")
	for _, a := range as {
		since := a.FiringSince
		if a.State == alert.StateResolved {
			since = a.ResolvedAt
		} else if since.IsZero() {
			since = a.ActiveSince
		}
		note := ""
		if a.AckedBy != "" {
			note = "acked by " + a.AckedBy
		}
		if len(a.SilencedBy) > 0 {
			note = strings.TrimSpace(note + " silenced")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s ago\t%g\t%s\t%s\n", a.Fingerprint, a.Rule, a.Severity, a.State,
			age(now.Sub(since)), a.Value, labelText(a.Labels), note)
	}
	tw.Flush()
}

func printAlert(w io.Writer, d alert.Detail) {
	fmt.Fprintf(w, "%s  %s (%s)  %s\n", d.Fingerprint, d.Rule, d.Severity, d.State)
	if d.Summary != "" {
		fmt.Fprintf(w, "  %s\n", d.Summary)
	}
	fmt.Fprintf(w, "  labels: %s  value: %g", labelText(d.Labels), d.Value)
	if d.Op != "" {
		fmt.Fprintf(w, "  condition: %s %g", d.Op, d.Threshold)
	}
	if d.Expected != nil {
		fmt.Fprintf(w, "  expected: %g – %g", d.Expected.Low, d.Expected.High)
	}
	fmt.Fprintln(w)
	if d.AckedBy != "" {
		fmt.Fprintf(w, "  acknowledged by %s at %s\n", d.AckedBy, d.AckedAt.Format(time.RFC3339))
	}
	if len(d.SilencedBy) > 0 {
		fmt.Fprintf(w, "  silenced by %s\n", strings.Join(d.SilencedBy, ", "))
	}
	fmt.Fprintln(w, "history:")
	for _, h := range d.History {
		fmt.Fprintf(w, "  %s  %s -> %s  value %g  %s\n", h.At.Format(time.RFC3339), h.From, h.To, h.Value, h.Note)
	}
	fmt.Fprintln(w, "notifications:")
	for _, n := range d.Notifications {
		state := "pending"
		switch {
		case !n.DeliveredAt.IsZero():
			state = "delivered " + n.DeliveredAt.Format(time.RFC3339)
		case !n.GaveUpAt.IsZero():
			state = "given up " + n.GaveUpAt.Format(time.RFC3339)
		case !n.NextAttemptAt.IsZero():
			state = "next attempt " + n.NextAttemptAt.Format(time.RFC3339)
		}
		fmt.Fprintf(w, "  %s  %s to %s  %d attempts  %s\n", n.ID, n.Status, n.Target, n.Attempts, state)
		for _, a := range n.Log {
			fmt.Fprintf(w, "    #%d %s  status %d  %.0f ms  %s\n", a.Attempt, a.At.Format(time.RFC3339), a.Status, a.DurationMS, a.Error)
		}
	}
}

func printSilences(w io.Writer, ss []alert.SilenceView) {
	if len(ss) == 0 {
		fmt.Fprintln(w, "no silences")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATUS\tENDS\tMATCHERS\tBY\tCOMMENT")
	for _, s := range ss {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", s.ID, s.Status, s.EndsAt.Format(time.RFC3339), matcherText(s.Matchers), s.CreatedBy, oneLine(s.Comment, 60))
	}
	tw.Flush()
}

func printRules(w io.Writer, rs *alert.Rules) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "RULE\tKIND\tSEVERITY\tCONDITION\tFOR\tTARGETS")
	for _, r := range rs.Rules {
		cond := ""
		switch r.Kind {
		case alert.KindThreshold:
			cond = fmt.Sprintf("%s/%s %s %g", r.Metric, r.Window, r.Op, *r.Value)
		case alert.KindAnomaly:
			cond = "anomaly on " + r.Series
			if r.MinScore > 0 {
				cond += fmt.Sprintf(" score >= %g", r.MinScore)
			}
		case alert.KindOperational:
			cond = fmt.Sprintf("%s %s %g", r.Signal, r.Op, *r.Value)
		}
		var ts []string
		for _, t := range rs.TargetsOf(r) {
			ts = append(ts, t.Name)
		}
		targets := strings.Join(ts, ",")
		if targets == "" {
			targets = "(none)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Name, r.Kind, r.Severity, cond, r.ForDuration, targets)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "%d rules, %d targets; group_wait %s, group_interval %s, repeat_interval %s\n", len(rs.Rules), len(rs.Targets),
		rs.GroupWaitDuration, rs.GroupIntervalDuration, rs.RepeatIntervalDuration)
	return nil
}
