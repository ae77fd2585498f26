package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hookstream/hookstream/internal/cli"
	"github.com/hookstream/hookstream/process"
	"github.com/hookstream/hookstream/store"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/peterbourgon/ff/v3/ffcli"
)

// The operations subcommands: pause, resume, status, dlq. They talk
// to Redis and PostgreSQL directly and print to stdout.

func roleArg(args []string, verb string) error {
	if len(args) != 1 || args[0] != "process" {
		return cli.Usagef("%s takes one argument, process (only processing can be %sd; receivers always accept)", verb, verb)
	}
	return nil
}

func pauseCommand(pause bool) *ffcli.Command {
	verb := map[bool]string{true: "pause", false: "resume"}[pause]
	fs := flag.NewFlagSet("hookstream "+verb, flag.ContinueOnError)
	var cm common
	cm.register(fs)
	help := map[bool]string{
		true: `Pauses processing: every running processor of the namespace stops reading
within seconds (after finishing its batch in flight), while the receivers keep
accepting webhooks and queueing them in the streams. This is the rollback
plan: pause, deploy the fix, 'hookstream resume process', and the backlog
drains. The switch is a Redis key, so it also holds for processors started
while paused.`,
		false: `Resumes processing paused with 'hookstream pause process'; the processors
drain the backlog the receivers queued meanwhile.`,
	}[pause]
	return &ffcli.Command{
		Name: verb, ShortUsage: "hookstream " + verb + " process", FlagSet: fs, Options: envOptions(),
		ShortHelp: verb + " processing (receivers keep accepting)", LongHelp: help,
		Exec: func(ctx context.Context, args []string) error {
			if err := roleArg(args, verb); err != nil {
				return err
			}
			env, done, err := cm.connect(ctx, false)
			if err != nil {
				return err
			}
			defer done()
			if err := process.SetPaused(ctx, env.rdb, env.keys, process.DefaultGroup, pause); err != nil {
				return err
			}
			if pause {
				fmt.Println("processing paused; receivers keep accepting. Resume with: hookstream resume process")
			} else {
				fmt.Println("processing resumed; the backlog drains now")
			}
			return nil
		},
	}
}

func statusCommand() *ffcli.Command {
	fs := flag.NewFlagSet("hookstream status", flag.ContinueOnError)
	var cm common
	cm.register(fs)
	var wf windowFlags
	wf.register(fs)
	out := cli.Output(fs, "table", "json")
	return &ffcli.Command{
		Name: "status", ShortUsage: "hookstream status [-o table|json]", FlagSet: fs, Options: envOptions(),
		ShortHelp: "show the pipeline: per partition length, pending, lag, oldest pending age; DLQ; processors",
		LongHelp: `Shows, per partition stream and the "process" group: length, entries pending
(delivered, not acknowledged), lag (not yet delivered), the age of the oldest
pending entry and the consumers; then the dead-letter queue depth (open dead
letters), whether processing is paused, every running processor with its
circuit breaker state and counters (from the heartbeats processors publish
every second), the event-time watermark (judged with the same --watermark-*
flags the processors run with), how far windows are closed, and journey
instances by status. A part that cannot be read (PostgreSQL down, say) is
reported as such; the rest is still shown. The same figures are on /metrics
(see docs/metrics.md).`,
		Exec: func(ctx context.Context, _ []string) error {
			wcfg, err := wf.config()
			if err != nil {
				return err
			}
			// PostgreSQL is optional here: status matters most when it is down.
			env, done, err := cm.connect(ctx, false)
			if err != nil {
				return err
			}
			defer done()
			// PostgreSQL gets its own bound, so a server that accepts but
			// never answers cannot use up the time the Redis reads need.
			dctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			db, dbErr := cm.openDB(dctx)
			cancel()
			dctx, cancel = context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			if db != nil {
				defer db.Close()
			}
			st, err := process.ReadStatus(dctx, env.rdb, db, env.keys, process.DefaultGroup, wcfg)
			if err != nil {
				return err
			}
			if dbErr != nil {
				st.Errors["postgresql"] = dbErr.Error()
			}
			if *out == "json" {
				return writeJSON(os.Stdout, st)
			}
			printStatus(os.Stdout, st)
			return nil
		},
	}
}

func printStatus(w io.Writer, r process.Status) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "partition\tlength\tpending\tlag\toldest pending\tconsumers\t")
	for _, p := range r.Partitions {
		fmt.Fprintf(tw, "%d\t%d\t%d\t%d\t%s\t%d\t\n", p.Partition, p.Length, p.Pending, p.Lag, age(p.OldestAge), p.Consumers)
	}
	fmt.Fprintf(tw, "total\t%d\t%d\t%d\t%s\t\t\n", r.Total.Length, r.Total.Pending, r.Total.Lag, age(r.Total.OldestAge))
	tw.Flush()
	state := "running"
	if r.Paused {
		state = "PAUSED (hookstream resume process)"
	}
	dlq := fmt.Sprintf("%d open (hookstream dlq list)", r.DLQOpen)
	if r.DLQOpen < 0 {
		dlq = "unavailable (see below)"
	}
	fmt.Fprintf(w, "\nprocessing: %s\ndead letters: %s; DLQ stream %d entries\n", state, dlq, r.DLQStream)
	if !r.Watermark.IsZero() {
		fmt.Fprintf(w, "event-time watermark: %s (%s behind now)\n", r.Watermark.Format(time.RFC3339), time.Since(r.Watermark).Round(time.Second))
	}
	if u, ok := r.ClosedUntil["event/1m0s"]; ok {
		fmt.Fprintf(w, "windows: 1m event-time windows closed up to %s\n", u.Format(time.RFC3339))
	}
	if len(r.JourneyCount) > 0 {
		fmt.Fprintf(w, "journeys: %d in progress, %d completed, %d failed, %d abandoned\n", r.JourneyCount["in_progress"],
			r.JourneyCount["completed"], r.JourneyCount["failed"], r.JourneyCount["abandoned"])
	}
	if len(r.Processors) == 0 {
		fmt.Fprintln(w, "processors: none running")
	} else {
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "\nprocessor\tbreaker\tpaused\theld while paused\tholding\tstored\tduplicates\tdead\tretries\tclaimed\tup")
		for _, h := range r.Processors {
			fmt.Fprintf(tw, "%s\t%s\t%v\t%d\t%v\t%d\t%d\t%d\t%d\t%d\t%s\n", h.Consumer, h.Breaker, h.Paused, h.HeldPaused, h.Holding, h.Stored, h.Duplicates, h.Dead,
				h.Retries, h.Claimed, h.Updated.Sub(h.Started).Round(time.Second))
		}
		tw.Flush()
	}
	printConsumers(w, r.Consumers)
	if len(r.Errors) > 0 {
		fmt.Fprintln(w, "\nnot shown, could not be read:")
		for _, part := range slices.Sorted(maps.Keys(r.Errors)) {
			fmt.Fprintf(w, "  %s: %s\n", part, r.Errors[part])
		}
	}
}

// printConsumers shows each consumer of the group once: on how many
// partitions it is registered, what it holds pending (and where), and how
// long since it last read or claimed on any of them.
func printConsumers(w io.Writer, cs []process.ConsumerStatus) {
	if len(cs) == 0 {
		fmt.Fprintln(w, "consumers: none registered")
		return
	}
	type sum struct {
		parts   int
		pending int64
		idle    time.Duration
		where   []string
	}
	by := map[string]*sum{}
	for _, c := range cs {
		s := by[c.Consumer]
		if s == nil {
			s = &sum{idle: c.Idle}
			by[c.Consumer] = s
		}
		s.parts++
		s.pending += c.Pending
		s.idle = min(s.idle, c.Idle)
		if c.Pending > 0 {
			s.where = append(s.where, fmt.Sprintf("%d:%d", c.Partition, c.Pending))
		}
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "\nconsumer\tpartitions\tpending\tidle\tpending by partition")
	for _, name := range slices.Sorted(maps.Keys(by)) {
		s := by[name]
		where := strings.Join(s.where, " ")
		if where == "" {
			where = "-"
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\n", name, s.parts, s.pending, s.idle.Round(time.Millisecond), where)
	}
	tw.Flush()
}

func age(d time.Duration) string {
	if d <= 0 {
		return "-"
	}
	return d.Round(time.Millisecond).String()
}

func dlqCommand() *ffcli.Command {
	fs := flag.NewFlagSet("hookstream dlq", flag.ContinueOnError)
	var cm common
	cm.register(fs)
	state := cli.Choice(fs, "state", "list: open, replayed (requeued), discarded or all", "open", "replayed", "discarded", "all")
	limit := fs.Int("limit", 50, "list: most dead letters shown, newest first")
	out := cli.Output(fs, "table", "json")
	bodyFile := fs.String("body", "", "requeue: file with the repaired event body to store instead of the original (one id only)")
	all := fs.Bool("all", false, "requeue or discard: every open dead letter")
	return &ffcli.Command{
		Name:       "dlq",
		ShortUsage: "hookstream dlq list|show ID|requeue ID...|discard ID... [flags]",
		ShortHelp:  "inspect, requeue or discard dead letters",
		LongHelp: `Entries the processor could not store are dead letters: kept in the
dead_letters table with the reason, the delivery count and the original
entry (body byte for byte), and announced on the <namespace>:dlq stream.

  list                 dead letters, newest first (--state, --limit, -o)
  show ID              one dead letter in full, body included (-o json)
  requeue ID...        put them back on their partition stream; the processors
                       store them through the normal path. --body FILE requeues
                       one dead letter with a repaired body. Requeueing an event
                       that is already stored changes nothing. (Its old name,
                       replay, still works.)
  discard ID...        mark them discarded (kept for the record)

Flags go anywhere: hookstream dlq requeue 42 --body fixed.json`,
		FlagSet: fs, Options: envOptions(),
		Exec: func(ctx context.Context, args []string) error {
			if len(args) == 0 {
				return cli.Usagef("dlq needs a verb: list, show, requeue or discard")
			}
			verb, rest := args[0], args[1:]
			if verb == "replay" {
				verb = "requeue" // the old name
			}
			// Everything about the invocation is checked before connecting.
			var ids []int64
			var body []byte
			var err error
			switch verb {
			case "list":
				if len(rest) > 0 {
					return cli.Usagef("list takes no arguments (got %q); use --state and --limit", rest[0])
				}
			case "show":
				if len(rest) != 1 {
					return cli.Usagef("show takes one dead letter id: hookstream dlq show ID")
				}
				if ids, err = selectIDs(rest, false); err != nil {
					return err
				}
			case "requeue", "discard":
				if ids, err = selectIDs(rest, *all); err != nil {
					return err
				}
				if *bodyFile != "" {
					if verb != "requeue" || *all || len(ids) != 1 {
						return cli.Usagef("--body requeues exactly one dead letter: hookstream dlq requeue ID --body FILE")
					}
					if body, err = os.ReadFile(*bodyFile); err != nil {
						return fmt.Errorf("read --body: %w", err)
					}
				}
			default:
				return cli.Usagef("unknown dlq verb %q; use list, show, requeue or discard", verb)
			}
			env, done, err := cm.connect(ctx, true)
			if err != nil {
				return err
			}
			defer done()
			switch verb {
			case "list":
				st := *state
				if st == "all" {
					st = ""
				}
				dls, err := store.ListDeadLetters(ctx, env.db, st, *limit)
				if err != nil {
					return err
				}
				if *out == "json" {
					return writeJSON(os.Stdout, dls)
				}
				tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
				fmt.Fprintln(tw, "id\tdead at\tstate\tdeliveries\tevent\treason")
				for _, d := range dls {
					fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%s\t%s\n", d.ID, d.DeadAt.UTC().Format(time.RFC3339), d.State(), d.Deliveries, d.EventID, oneLine(d.Reason, 100))
				}
				return tw.Flush()
			case "show":
				d, err := store.GetDeadLetter(ctx, env.db, ids[0])
				if err != nil {
					return err
				}
				if *out == "json" {
					return writeJSON(os.Stdout, struct {
						store.DeadLetter
						State string `json:"state"`
						Body  string `json:"body"`
					}{d, d.State(), string(d.Body)})
				}
				fmt.Printf("id          %d\nstate       %s\nstream      %s\nentry       %s\nevent       %s\ndeliveries  %d\ndead at     %s\nreason      %s\nfields      %v\nbody\n%s\n",
					d.ID, d.State(), d.Stream, d.EntryID, d.EventID, d.Deliveries, d.DeadAt.UTC().Format(time.RFC3339), d.Reason, d.Fields, d.Body)
				return nil
			case "requeue", "discard":
				failed, total := 0, 0
				err = eachID(ctx, env.db, ids, *all, func(id int64) {
					total++
					if verb == "discard" {
						ok, err := store.MarkDeadLetter(ctx, env.db, id, "discarded")
						switch {
						case err != nil:
							failed++
							fmt.Fprintf(os.Stderr, "dead letter %d: %v\n", id, err)
						case !ok:
							failed++
							fmt.Fprintf(os.Stderr, "dead letter %d: not open (missing, replayed or discarded already)\n", id)
						default:
							fmt.Printf("dead letter %d discarded\n", id)
						}
						return
					}
					entry, err := process.RequeueDeadLetter(ctx, env.rdb, env.db, env.keys, id, body)
					if err != nil {
						failed++
						fmt.Fprintf(os.Stderr, "%v\n", err)
						return
					}
					fmt.Printf("dead letter %d requeued as stream entry %s\n", id, entry)
				})
				if err != nil {
					return err
				}
				if failed > 0 {
					return fmt.Errorf("%d of %d dead letters not %sed", failed, total, strings.TrimSuffix(verb, "e"))
				}
				return nil
			}
			return nil
		},
	}
}

func parseID(s string) (int64, error) {
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		return 0, cli.Usagef("dead letter id %q is not a positive number (see hookstream dlq list)", s)
	}
	return id, nil
}

// selectIDs parses the dead letter ids named, all of them before any is
// acted on; with all, there must be none (eachID reads them).
func selectIDs(args []string, all bool) ([]int64, error) {
	if all == (len(args) > 0) {
		return nil, cli.Usagef("name dead letter ids, or --all for every open one (not both)")
	}
	ids := make([]int64, len(args))
	for i, a := range args {
		id, err := parseID(a)
		if err != nil {
			return nil, err
		}
		ids[i] = id
	}
	return ids, nil
}

// eachID calls fn with each of ids or, with all, with every dead letter open
// when it starts, oldest first, read a page of ids at a time so that any
// number of them is handled in bounded memory.
func eachID(ctx context.Context, db *pgxpool.Pool, ids []int64, all bool, fn func(int64)) error {
	if !all {
		for _, id := range ids {
			fn(id)
		}
		return nil
	}
	return store.EachOpenDeadLetterID(ctx, db, 1000, func(page []int64) error {
		for _, id := range page {
			fn(id)
		}
		return ctx.Err()
	})
}

func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
