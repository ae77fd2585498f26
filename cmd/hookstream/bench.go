package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/hookstream/hookstream/internal/bench"
	"github.com/hookstream/hookstream/internal/cli"
	"github.com/peterbourgon/ff/v3/ffcli"
)

func benchCommand() *ffcli.Command {
	return &ffcli.Command{
		Name:        "bench",
		ShortUsage:  "hookstream bench ingest|process|windows|memory|api|e2e [flags]",
		ShortHelp:   "measure hookstream: ingest against reference receivers in one run, Redis memory per event",
		Subcommands: []*ffcli.Command{benchIngestCommand(), benchProcessCommand(), benchWindowsCommand(), benchMemoryCommand(), benchAPICommand(), benchE2ECommand(), benchReceiversCommand()},
	}
}

func benchIngestCommand() *ffcli.Command {
	fs := flag.NewFlagSet("hookstream bench ingest", flag.ContinueOnError)
	var cm common
	cm.register(fs)
	c := bench.IngestConfig{Out: os.Stdout}
	fs.StringVar(&c.Target, "target", "", "drive an already running receiver at this webhook URL instead of starting the three in-process ones (needs --bench-secret to be one of its secrets)")
	fs.DurationVar(&c.Duration, "duration", 8*time.Second, "length of each closed-loop phase")
	fs.IntVar(&c.Rounds, "rounds", 3, "closed-loop rounds; each round runs every receiver once, in rotating order, and the median is reported (0: open loop only)")
	fs.IntVar(&c.Concurrency, "concurrency", 64, "concurrent requests in the closed-loop phases")
	fs.Float64Var(&c.Rate, "rate", 5000, "requests per second of the open-loop phase")
	fs.DurationVar(&c.OpenDuration, "open-duration", 20*time.Second, "length of the open-loop phase")
	fs.IntVar(&c.OpenConnections, "open-connections", 64, "most requests in flight in the open-loop phase (each on its own connection); when all are busy, a request waits and the wait counts in its latency")
	fs.StringVar(&c.CPUProfile, "cpuprofile", "", "write CPU profiles of the first closed-loop round to FILE.<receiver>, one per receiver, to compare where each spends its time")
	fs.IntVar(&c.Committers, "committers", 2, "hookstream receiver: pipelined round trips in flight")
	fs.IntVar(&c.MaxBatch, "max-batch", 256, "hookstream receiver: most events per round trip")
	fs.BoolVar(&c.SeparateProcess, "separate-process", false, "run the three receivers in a child process instead of this one, so they do not share a Go runtime with the load generator")
	fs.BoolVar(&c.Keep, "keep", false, "keep the benchmark's Redis keys instead of deleting them")
	secret := fs.String("bench-secret", "bench-secret", "secret the generated webhooks are signed with")
	return &ffcli.Command{
		Name:       "ingest",
		ShortUsage: "hookstream bench ingest [flags]",
		ShortHelp:  "receiver throughput and ACK latency versus a naive receiver and the HMAC-only ceiling",
		LongHelp: `Starts, in this process on loopback, three receivers that share Redis:

  hookstream   the real receiver: HMAC, parse, atomic dedup+XADD with group
               commit (pipelined round trips), spool fallback
  naive-xadd   net/http + the same HMAC and parse, then one XADD per request
               (no dedup, no spool)
  hmac-only    hookstream's own handler with storing switched off: the ceiling
               for HTTP + HMAC + parse on this machine

and drives each closed-loop (--concurrency workers) for --rounds rounds in
rotating order, reporting the median throughput and the ratios measured in
this one run. Then it offers --rate requests/s open-loop to hookstream and
naive-xadd and reports ACK latency percentiles measured from each request's
scheduled time, and non-2xx answers. Every event is unique and signed.

Its keys live under a fresh namespace bench-<random> that is deleted at the end.`,
		FlagSet: fs,
		Options: envOptions(),
		Exec: func(ctx context.Context, _ []string) error {
			c.RedisURL, c.Partitions, c.Secret = cm.redisURL, cm.partitions, []byte(*secret)
			_, err := bench.Ingest(ctx, c)
			return err
		},
	}
}

func benchReceiversCommand() *ffcli.Command {
	fs := flag.NewFlagSet("hookstream bench receivers", flag.ContinueOnError)
	var cm common
	cm.register(fs)
	var c bench.ReceiversConfig
	fs.IntVar(&c.NaivePoolSize, "concurrency", 64, "naive receiver's connection pool size")
	fs.IntVar(&c.Committers, "committers", 2, "hookstream receiver: pipelined round trips in flight")
	fs.IntVar(&c.MaxBatch, "max-batch", 256, "hookstream receiver: most events per round trip")
	secret := fs.String("bench-secret", "bench-secret", "secret the webhooks are signed with")
	fs.StringVar(&c.Prefix, "prefix", "", "namespace prefix of the receivers' keys (required)")
	return &ffcli.Command{
		Name:       "receivers",
		ShortUsage: "hookstream bench receivers --prefix P [flags]",
		ShortHelp:  "run the three benchmark receivers (used by bench ingest --separate-process)",
		LongHelp: `Starts the hookstream, naive-xadd and hmac-only receivers on loopback, prints
their URLs as one JSON object on stdout, and runs until stdin is closed.`,
		FlagSet: fs,
		Options: envOptions(),
		Exec: func(ctx context.Context, _ []string) error {
			if c.Prefix == "" {
				return cli.Usagef("--prefix is required")
			}
			c.RedisURL, c.Partitions, c.Secret = cm.redisURL, cm.partitions, []byte(*secret)
			return bench.ServeReceivers(ctx, c, os.Stdout, os.Stdin)
		},
	}
}

func benchProcessCommand() *ffcli.Command {
	fs := flag.NewFlagSet("hookstream bench process", flag.ContinueOnError)
	var cm common
	cm.register(fs)
	c := bench.ProcessConfig{Out: os.Stdout}
	fs.IntVar(&c.Events, "events", 1_000_000, "size of the pre-filled backlog")
	fs.IntVar(&c.NaiveEvents, "naive-events", 50_000, "entries the naive processor drains (its rate is steady; a full million would take many minutes)")
	fs.IntVar(&c.BatchSize, "batch-size", 500, "hookstream processor: entries per partition per batch")
	fs.IntVar(&c.Workers, "workers", 2, "hookstream processor: workers")
	fs.StringVar(&c.CPUProfile, "cpuprofile", "", "write a CPU profile of the events-only hookstream drain to this file")
	fs.StringVar(&c.WindowsCPUProfile, "cpuprofile-windows", "", "write a CPU profile of the drain with window folding to this file")
	fs.StringVar(&c.JourneysCPUProfile, "cpuprofile-journeys", "", "write a CPU profile of the drain with journeys folding to this file")
	fs.BoolVar(&c.Keep, "keep", false, "keep the benchmark's Redis keys and PostgreSQL schemas")
	fs.BoolVar(&c.SkipWindows, "no-windows", false, "skip the drain with window folding")
	fs.BoolVar(&c.SkipJourneys, "no-journeys", false, "skip the drain with journeys folding and the funnel query")
	fs.BoolVar(&c.SkipFull, "no-full", false, "skip the drain with every fold serve runs (windows and journeys together)")
	fs.IntVar(&c.SeedInstances, "seed-instances", 1_000_000, "journey instances put in the table before the journeys drain (and queried by the funnel)")
	fs.DurationVar(&c.Span, "span", time.Hour, "event time the backlog's lifecycles start over (1h: a backlog of an hour's traffic); windows cost more the sparser the events")
	return &ffcli.Command{
		Name:       "process",
		ShortUsage: "hookstream bench process [flags]",
		ShortHelp:  "drain a pre-filled backlog into PostgreSQL: hookstream vs a naive processor vs COPY",
		LongHelp: `Pre-fills the partition streams of a fresh namespace with --events unique
simulated events, then, in the same run, measures:

  hookstream  the process role draining the whole backlog (batched
              XREADGROUP, one transaction per batch, INSERT ... SELECT FROM
              unnest ... ON CONFLICT DO NOTHING, pipelined XACK), events only
  windows     the same, folding the window aggregates too (all sizes and
              dimensions, both clocks)
  full        the same, folding windows and journeys together, as serve
              does (the full pipeline)
  naive       one INSERT and one XACK per event (--naive-events of them)
  copy        PostgreSQL COPY of the same rows, already parsed and in
              memory, into the same table over --workers connections at
              once: the machine's limit for the rows

Each writes into its own fresh schema with the real migrations (same
indexes). It prints events per second, the ratios, and the CPU seconds that
this process, PostgreSQL and Redis spent in each phase. The streams use
about 1 KB of Redis memory per event.`,
		FlagSet: fs,
		Options: envOptions(),
		Exec: func(ctx context.Context, _ []string) error {
			c.RedisURL, c.DatabaseURL, c.Partitions = cm.redisURL, cm.dbURL, cm.partitions
			_, err := bench.Process(ctx, c)
			return err
		},
	}
}

func benchWindowsCommand() *ffcli.Command {
	fs := flag.NewFlagSet("hookstream bench windows", flag.ContinueOnError)
	var cm common
	cm.register(fs)
	c := bench.WindowsConfig{Out: os.Stdout}
	fs.IntVar(&c.Probes, "probes", 300, "probe events per phase")
	fs.Float64Var(&c.ProbeRate, "probe-rate", 10, "probes per second")
	fs.Float64Var(&c.Background, "background", 2000, "webhooks per second of background traffic in the loaded phase")
	fs.BoolVar(&c.Keep, "keep", false, "keep the benchmark's Redis keys and PostgreSQL schema")
	return &ffcli.Command{
		Name:       "windows",
		ShortUsage: "hookstream bench windows [flags]",
		ShortHelp:  "latency from a webhook's ACK to its count in the 1m window, idle and under load",
		LongHelp: `Runs a receiver and a processor (with window folding) in this process on a
fresh namespace and schema. Each probe is a signed webhook with a topic of
its own, created now; once the receiver answers 200 the probe polls the
query layer (the one the CLI, API and Grafana use) every 2 ms until the
probe's 1m window, filtered to its topic, counts it. Prints p50, p90, p99
and max of ACK-to-visible, first on an idle pipeline, then under
--background webhooks per second.`,
		FlagSet: fs,
		Options: envOptions(),
		Exec: func(ctx context.Context, _ []string) error {
			c.RedisURL, c.DatabaseURL, c.Partitions = cm.redisURL, cm.dbURL, cm.partitions
			_, err := bench.Windows(ctx, c)
			return err
		},
	}
}

func benchMemoryCommand() *ffcli.Command {
	fs := flag.NewFlagSet("hookstream bench memory", flag.ContinueOnError)
	var cm common
	cm.register(fs)
	c := bench.MemoryConfig{Out: os.Stdout}
	fs.IntVar(&c.Events, "events", 1_000_000, "events to store")
	return &ffcli.Command{
		Name:       "memory",
		ShortUsage: "hookstream bench memory [--events N] [flags]",
		ShortHelp:  "Redis memory per event: the dedup (seen) keys and the stream entries",
		LongHelp: `Stores --events unique benchmark events (UUID-shaped ids, ~850-byte bodies)
through the real append script under a fresh namespace, reading Redis's
used_memory before, after, and after deleting the streams, so the seen keys and
the stream entries are measured apart. Everything it wrote is deleted at the
end. Run it against a Redis nothing else writes to (make bench-memory starts a
private one), or the figures include other clients' writes.`,
		FlagSet: fs,
		Options: envOptions(),
		Exec: func(ctx context.Context, _ []string) error {
			c.RedisURL, c.Partitions = cm.redisURL, cm.partitions
			_, err := bench.Memory(ctx, c)
			return err
		},
	}
}

func benchAPICommand() *ffcli.Command {
	fs := flag.NewFlagSet("hookstream bench api", flag.ContinueOnError)
	var cm common
	cm.register(fs)
	c := bench.APIConfig{Out: os.Stdout}
	fs.StringVar(&c.Schema, "schema", "hsbench_api", "PostgreSQL schema of the seeded events: reused when it holds a complete seed of the same size, else dropped and seeded again (a schema of that name the benchmark did not make is refused)")
	fs.BoolVar(&c.Keep, "keep", false, "keep the seeded schema, so the next run reuses it instead of seeding again")
	fs.BoolVar(&c.Reseed, "reseed", false, "seed again even when --schema holds a complete seed")
	fs.IntVar(&c.Events, "events", 10_000_000, "stored events to seed")
	fs.DurationVar(&c.Span, "span", 7*24*time.Hour, "event time the seeded events spread over, ending at the seed's start")
	fs.IntVar(&c.Topics, "topics", 50, "topics of the seeded events (Zipf-distributed)")
	fs.IntVar(&c.Customers, "customers", 200_000, "customers the customer_* events belong to")
	fs.IntVar(&c.Requests, "requests", 500, "measured requests per query kind, each through the API and directly")
	fs.IntVar(&c.Warmup, "warmup", 20, "unmeasured requests per query kind first, whose answers are checked against the direct calls'")
	fs.StringVar(&c.CPUProfile, "cpuprofile", "", "write a CPU profile of the metric queries (API and direct) to this file")
	fs.BoolVar(&c.SkipQueries, "no-queries", false, "skip the query phase")
	fs.BoolVar(&c.SkipLive, "no-live", false, "skip the live feed phase")
	fs.IntVar(&c.LiveClients, "live-clients", 100, "SSE clients of the live feed")
	fs.Float64Var(&c.LiveRate, "live-rate", 5000, "events per second announced to the live feed")
	fs.DurationVar(&c.LiveDuration, "live-duration", 30*time.Second, "how long events are announced")
	fs.DurationVar(&c.LiveBatchEvery, "live-batch-every", 10*time.Millisecond, "one announcement entry (a processor's committed batch) this often")
	return &ffcli.Command{
		Name:       "api",
		ShortUsage: "hookstream bench api [flags]",
		ShortHelp:  "JSON API and live feed over 10M stored events: query latency, cost over the query code, SSE delivery",
		LongHelp: `Seeds --schema with --events stored events (uuid ids, ~500-byte bodies,
--topics topics, --customers customers, spread over --span ending now) by COPY
over two connections, the indexes built afterwards from the migrations' own
definitions, then ANALYZE, then the window aggregates of the last 25 hours by
the real refold (hookstream refold), an hour per transaction. Seeding 10M
events took 5 minutes on a 2-core machine (COPY 1m42s, indexes 1m07s, refold
of 1.5M events 2m06s) and takes 10 GB of disk; with --keep the schema stays
and later runs reuse it at once.

Then it serves the real API (api.New, bearer token) on loopback and measures,
one request at a time, interleaved with calling the same query code directly
(windows.QueryMetrics, store.ListEvents) with the same parameters:

  GET /api/v1/metrics  1m count grouped by topic over 24 h     (p99 ≤ 50 ms)
  GET /api/v1/events   newest page, topic=, customer=, deep
                       pages by cursor, topic= and deep         (p99 ≤ 20 ms)

with the API's cost over the direct call (≤ 1.3x). Then --live-clients SSE
clients read GET /api/v1/live while --live-rate events/s are announced on the
namespace's stored-events stream, a batch every --live-batch-every as the
processors do; each event carries its announce time, and the clients measure
delivery latency (p99 ≤ 250 ms) and count what they got (all of it).

The live feed's Redis keys are under a fresh namespace, deleted at the end.`,
		FlagSet: fs,
		Options: envOptions(),
		Exec: func(ctx context.Context, _ []string) error {
			c.RedisURL, c.DatabaseURL, c.Partitions = cm.redisURL, cm.dbURL, cm.partitions
			_, err := bench.API(ctx, c)
			return err
		},
	}
}

func benchE2ECommand() *ffcli.Command {
	fs := flag.NewFlagSet("hookstream bench e2e", flag.ContinueOnError)
	var cm common
	cm.register(fs)
	c := bench.E2EConfig{Out: os.Stdout}
	rates := fs.String("rates", "5000,10000", "offered rates measured one after the other (webhooks/s, comma-separated; empty: none)")
	serveArgs := fs.String("serve-args", "", "more flags for every serve process, space-separated (e.g. \"--workers 3\")")
	fs.DurationVar(&c.Duration, "duration", time.Minute, "length of each rate's phase")
	fs.Float64Var(&c.Duplicates, "duplicates", 0.2, "fraction of requests that resend an earlier webhook, as Dwolla's retries do")
	fs.IntVar(&c.Connections, "connections", 512, "most requests in flight, each on its own connection; past it a request waits and the wait counts in its ACK time")
	fs.Float64Var(&c.ProbeRate, "probe-rate", 2, "probes per second timed from ACK to their count in the 1m window (0: none)")
	fs.BoolVar(&c.Split, "split", false, "run the receiver and the processor as two processes (serve --roles ingest; serve --roles process,alert under nice) instead of one serve --roles all")
	fs.IntVar(&c.Nice, "nice", 10, "with --split: the processor's niceness, so the receiver's ACKs come first when the cores are busy")
	fs.BoolVar(&c.Sustain, "sustain", false, "after the rates, search the highest rate sustained with the backlog flat and every webhook 2xx")
	fs.Float64Var(&c.SustainFrom, "sustain-from", 0, "first rate of the search (0: one step above the highest flat rate measured)")
	fs.Float64Var(&c.SustainStep, "sustain-step", 1000, "step of the search, webhooks/s")
	fs.DurationVar(&c.SustainDuration, "sustain-duration", time.Minute, "length of each step of the search")
	fs.BoolVar(&c.Spike, "spike", false, "end with a spike: --spike-base/s for --spike-edge, --spike-factor times that for --spike-duration, back to base for --spike-edge, then the drain")
	fs.Float64Var(&c.SpikeBase, "spike-base", 1000, "the spike's base rate, webhooks/s")
	fs.Float64Var(&c.SpikeFactor, "spike-factor", 10, "the spike's peak as a multiple of its base")
	fs.DurationVar(&c.SpikeDuration, "spike-duration", time.Minute, "how long the peak lasts")
	fs.DurationVar(&c.SpikeEdge, "spike-edge", 20*time.Second, "how long the base rate runs before and after the peak")
	fs.DurationVar(&c.DrainLimit, "drain-limit", 2*time.Minute, "how long the backlog may take to drain after a phase before the phase counts as not drained")
	fs.StringVar(&c.Target, "target", "", "webhook URL of a running deployment to load instead of starting hookstream here; --redis-url, --database-url (with the schema's search_path), --namespace, --partitions and --bench-secret must be the deployment's")
	fs.StringVar(&c.Secret, "bench-secret", "bench-e2e-secret", "secret the webhooks are signed with (with --target: one of the deployment's --webhook-secrets)")
	fs.BoolVar(&c.Keep, "keep", false, "keep the benchmark's Redis keys and PostgreSQL schema")
	return &ffcli.Command{
		Name:       "e2e",
		ShortUsage: "hookstream bench e2e [--rates 5000,10000] [--sustain] [--spike] [flags]",
		ShortHelp:  "the whole pipeline under open-loop webhook load: ACK latency, lag, window freshness, CPU per event, sustainable rate, spike",
		LongHelp: `Starts hookstream as a user runs it, serve --roles all (the receiver, the
processor folding windows, journeys and anomaly scores, and alerting), as a
child process on a fresh namespace and PostgreSQL schema (--split: two
processes), or loads a running deployment (--target). It offers simulated
Dwolla traffic (every topic, lifecycles in order, created = the time sent,
--duplicates of them resent) open loop, at each of --rates for --duration,
and reports per phase:

  ACK        p50, p99, max from each request's scheduled time; non-2xx
  lag        receipt to stored (events.stored_at - received_at), p50, p99,
             and p99 per 10 s of receipt
  backlog    the consumer group's undelivered + pending entries each
             second, its slope, "flat" when it grows by less than 1% of the
             offered rate; how long it took to drain after the load
  visible    probe webhooks' ACK to their count in the 1m window, read
             through the query layer the API and Grafana use
  CPU        per stored event: hookstream (each process), Redis,
             PostgreSQL (every postgres process on the machine) and the
             load generator itself, which shares the machine

--sustain then searches the highest rate sustained with the backlog flat and
every webhook answered 2xx; --spike ends with a 10x spike and its drain.`,
		FlagSet: fs,
		Options: envOptions(),
		Exec: func(ctx context.Context, _ []string) error {
			c.RedisURL, c.DatabaseURL, c.Partitions, c.Namespace = cm.redisURL, cm.dbURL, cm.partitions, cm.namespace
			if *serveArgs != "" {
				c.ServeArgs = strings.Fields(*serveArgs)
			}
			for _, f := range strings.Split(*rates, ",") {
				if f = strings.TrimSpace(f); f == "" {
					continue
				}
				r, err := strconv.ParseFloat(f, 64)
				if err != nil {
					return fmt.Errorf("--rates: %q is not a number of webhooks per second", f)
				}
				c.Rates = append(c.Rates, r)
			}
			_, err := bench.E2E(ctx, c)
			return err
		},
	}
}
