package main

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/hookstream/hookstream/internal/cli"
	"github.com/hookstream/hookstream/journeys"
	"github.com/hookstream/hookstream/process"
	"github.com/peterbourgon/ff/v3/ffcli"
)

// refoldCommand is "hookstream refold": recompute derived state from the
// stored events. name is "refold", or "replay", the old name kept working.
func refoldCommand(name string) *ffcli.Command {
	fs := flag.NewFlagSet("hookstream "+name, flag.ContinueOnError)
	var cm common
	cm.register(fs)
	var wf windowFlags
	wf.register(fs)
	var jf journeyFlags
	jf.register(fs)
	from := cli.Time(fs, "from", "range: start of the event-time range, RFC 3339 or a date")
	to := cli.Time(fs, "to", "range: end of the event-time range, exclusive (default now)")
	topics := fs.String("topic", "", "range: comma-separated topics to refold (default all)")
	only := fs.String("journey", "", "refold this whole journey from every stored event instead of a range")
	subject := fs.String("subject", "", "with --journey: only this subject's instance")
	help := "recompute windows and journeys from the stored events after a fix (idempotent)"
	if name != "refold" {
		help = "old name of 'refold'"
	}
	return &ffcli.Command{
		Name: name, ShortUsage: "hookstream " + name + " --from T [--to T] [--topic a,b] | --journey NAME [--subject ID]",
		FlagSet: fs, Options: envOptions(), ShortHelp: help,
		LongHelp: `Recomputes derived state from the events table: use it after deploying a fix
to a folding step, after a journey definition changed, or after events were
recovered late. It reads the events table, not the streams; to re-process
stream entries, use 'hookstream dlq requeue'. Running it twice changes
nothing.

--from T [--to T] [--topic a,b]
    every folding step (window aggregates, the journeys those events touch)
    discards what it derived from events created in [from, to) and derives
    it again, all in one transaction.

--journey NAME [--subject ID]
    recomputes every instance of one journey (or one subject's) from all of
    its stored events, in one transaction per journey; abandonment is judged
    again by the running processors.`,
		Exec: func(ctx context.Context, args []string) error {
			if len(args) > 0 {
				return cli.Usagef("%s takes no arguments (got %q); give a range with --from or a journey with --journey", name, args[0])
			}
			switch {
			case *only != "" && !from.IsZero():
				return cli.Usagef("give either a range (--from) or a journey (--journey), not both")
			case *subject != "" && *only == "":
				return cli.Usagef("--subject needs --journey")
			case *only == "" && from.IsZero():
				return cli.Usagef("say what to refold: --from T for a range, or --journey NAME")
			}
			wcfg, err := wf.config()
			if err != nil {
				return err
			}
			set, err := jf.load()
			if err != nil {
				return err
			}
			if *only != "" {
				return refoldJourney(ctx, &cm, set, *only, *subject)
			}
			end := *to
			if end.IsZero() {
				end = time.Now()
			}
			var tl []string
			for _, s := range strings.Split(*topics, ",") {
				if s = strings.TrimSpace(s); s != "" {
					tl = append(tl, s)
				}
			}
			db, err := cm.openDB(ctx)
			if err != nil {
				return err
			}
			defer db.Close()
			folds, err := process.NewFolds(wcfg, set, 0)
			if err != nil {
				return err
			}
			rep, err := process.Refold(ctx, db, folds, *from, end, tl)
			if err != nil {
				return err
			}
			fmt.Printf("%d stored events in range; refolded: %s; cannot refold: %s\n", rep.Events, list(rep.Refolded), list(rep.Skipped))
			return nil
		},
	}
}

// refoldJourney recomputes one journey (every one when name is "") from its
// stored events, one transaction per journey.
func refoldJourney(ctx context.Context, cm *common, set *journeys.Set, name, subject string) error {
	if set == nil {
		return cli.Usagef("--journey with --no-journeys: nothing to refold")
	}
	if _, ok := set.Get(name); name != "" && !ok {
		return cli.Usagef("no journey %q; known: %s", name, journeyNames(set))
	}
	db, err := cm.openDB(ctx)
	if err != nil {
		return err
	}
	defer db.Close()
	return journeys.NewFold(set, 0).RebuildEach(ctx, db, name, journeys.RebuildOptions{Subject: subject}, func(j string, n int, took time.Duration) {
		fmt.Printf("%s: %d instances refolded in %s\n", j, n, took.Round(time.Millisecond))
	})
}

// journeysCommand is "hookstream journeys rebuild", the old name of
// "hookstream refold --journey", and "hookstream journeys backtest" (the
// predictions' backtest, predict.go). One command with two verbs, so
// flags may come before the verb as they always could.
func journeysCommand() *ffcli.Command {
	fs := flag.NewFlagSet("hookstream journeys", flag.ContinueOnError)
	var cm common
	cm.register(fs)
	var jf journeyFlags
	jf.register(fs)
	name := fs.String("journey", "", "rebuild: only this journey (default: every one); backtest: the journey (required)")
	subject := fs.String("subject", "", "rebuild: only this subject's instance (needs --journey)")
	var bf backtestFlags
	bf.register(fs)
	return &ffcli.Command{
		Name: "journeys",
		ShortUsage: "hookstream journeys rebuild [--journey NAME] [--subject ID] | " +
			"hookstream journeys backtest --journey NAME [--at T] [--horizon 72h] [-o json|table]",
		ShortHelp: "rebuild: old name of 'refold --journey'; backtest: score the journey's completion predictions at a past cut-off",
		LongHelp: `rebuild
    'journeys rebuild' is 'hookstream refold --journey NAME' (every journey
    without --journey).

backtest
` + backtestHelp,
		FlagSet: fs, Options: envOptions(),
		Exec: func(ctx context.Context, args []string) error {
			if len(args) != 1 || (args[0] != "rebuild" && args[0] != "backtest") {
				return cli.Usagef("journeys has two verbs: rebuild (now also 'hookstream refold --journey NAME') and backtest")
			}
			set, err := jf.load()
			if err != nil {
				return err
			}
			if args[0] == "backtest" {
				if *subject != "" {
					return cli.Usagef("--subject is for rebuild; backtest scores every instance of the journey")
				}
				return bf.run(ctx, &cm, set, *name)
			}
			if *subject != "" && *name == "" {
				return cli.Usagef("--subject needs --journey")
			}
			return refoldJourney(ctx, &cm, set, *name, *subject)
		},
	}
}

func list(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}
