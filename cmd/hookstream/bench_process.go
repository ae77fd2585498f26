package main

import (
	"context"
	"flag"
	"fmt"
	"github.com/VictoriaMetrics/metrics"
	"os"
	"runtime/pprof"
	"slices"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/hookstream/hookstream/dwolla"
	"github.com/hookstream/hookstream/internal/bench"
	"github.com/hookstream/hookstream/internal/testenv"
	"github.com/hookstream/hookstream/journey"
	"github.com/hookstream/hookstream/migrations"
	"github.com/hookstream/hookstream/process"
	"github.com/hookstream/hookstream/query"
	"github.com/hookstream/hookstream/sim"
	"github.com/hookstream/hookstream/store"
	"github.com/hookstream/hookstream/stream"
	"github.com/hookstream/hookstream/windows"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/peterbourgon/ff/v3/ffcli"
	"github.com/redis/go-redis/v9"
)

type benchProcessConfig struct {
	common
	events          int
	naiveEvents     int
	batchSize       int
	workers         int
	cpuProfile      string
	winProfile      string
	journeysProfile string
	keep            bool
	noWindows       bool
	noJourneys      bool
	seedInstances   int
	span            time.Duration
}

func benchProcessCommand() *ffcli.Command {
	fs := flag.NewFlagSet("hookstream bench process", flag.ContinueOnError)
	var c benchProcessConfig
	c.common.register(fs)
	fs.IntVar(&c.events, "events", 1_000_000, "size of the pre-filled backlog")
	fs.IntVar(&c.naiveEvents, "naive-events", 50_000, "entries the naive processor drains (its rate is steady; a full million would take many minutes)")
	fs.IntVar(&c.batchSize, "batch-size", 500, "hookstream processor: entries per partition per batch")
	fs.IntVar(&c.workers, "workers", 2, "hookstream processor: workers")
	fs.StringVar(&c.cpuProfile, "cpuprofile", "", "write a CPU profile of the events-only hookstream drain to this file")
	fs.StringVar(&c.winProfile, "cpuprofile-windows", "", "write a CPU profile of the drain with window folding to this file")
	fs.StringVar(&c.journeysProfile, "cpuprofile-journeys", "", "write a CPU profile of the drain with journeys folding to this file")
	fs.BoolVar(&c.keep, "keep", false, "keep the benchmark's Redis keys and PostgreSQL schemas")
	fs.BoolVar(&c.noWindows, "no-windows", false, "skip the drain with window folding")
	fs.BoolVar(&c.noJourneys, "no-journeys", false, "skip the drain with journeys folding and the funnel query")
	fs.IntVar(&c.seedInstances, "seed-instances", 1_000_000, "journey instances put in the table before the journeys drain (and queried by the funnel)")
	fs.DurationVar(&c.span, "span", time.Hour, "event time the backlog's lifecycles start over (1h: a backlog of an hour's traffic); windows cost more the sparser the events")
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
		Exec:    func(ctx context.Context, _ []string) error { return runBenchProcess(ctx, &c) },
	}
}

// phase is one contender's measurement.
type phase struct {
	name     string
	events   int64
	took     time.Duration
	self, pg time.Duration // CPU of this process, of PostgreSQL
	redis    time.Duration
}

func (p phase) rate() float64 { return float64(p.events) / p.took.Seconds() }

func runBenchProcess(ctx context.Context, c *benchProcessConfig) error {
	rdb, err := redisClient(c.redisURL, 30*time.Second, 16)
	if err != nil {
		return err
	}
	defer rdb.Close()
	if err := rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis at %s: %w", c.redisURL, err)
	}
	ns := testenv.Name("hsbench")
	keys := stream.NewKeys(ns, c.partitions)
	if !c.keep {
		defer stream.DeleteKeys(context.Background(), rdb, keys.Pattern())
	}
	admin, err := store.Open(ctx, c.dbURL)
	if err != nil {
		return err
	}
	defer admin.Close()
	var schemas []string
	schema := func(name string) (*pgxpool.Pool, error) {
		s := ns + "_" + name
		schemas = append(schemas, s)
		return benchSchema(ctx, admin, c.dbURL, s)
	}
	defer func() {
		if c.keep {
			return
		}
		for _, s := range schemas {
			admin.Exec(context.Background(), "DROP SCHEMA "+s+" CASCADE")
		}
	}()

	fmt.Printf("pre-filling %d events, lifecycles starting over %s of event time, into %d partition streams (namespace %s)...\n", c.events, c.span, keys.Partitions, ns)
	t0 := time.Now()
	if err := prefill(ctx, rdb, keys, c.events, c.span); err != nil {
		return err
	}
	fmt.Printf("pre-filled in %s\n", time.Since(t0).Round(time.Millisecond))

	profiles := map[string]string{"hookstream": c.cpuProfile, "windows": c.winProfile, "journeys": c.journeysProfile}
	measure := func(name string, run func() (int64, error)) (phase, error) {
		ph := phase{name: name}
		if path := profiles[name]; path != "" {
			f, err := os.Create(path)
			if err != nil {
				return ph, err
			}
			defer f.Close()
			if err := pprof.StartCPUProfile(f); err != nil {
				return ph, err
			}
			defer pprof.StopCPUProfile()
		}
		self0, pg0, r0 := selfCPU(), bench.ProcessCPU("postgres"), redisCPU(ctx, rdb)
		start := time.Now()
		n, err := run()
		ph.took = time.Since(start)
		ph.events = n
		ph.self, ph.pg, ph.redis = selfCPU()-self0, bench.ProcessCPU("postgres")-pg0, redisCPU(ctx, rdb)-r0
		if err != nil {
			return ph, fmt.Errorf("%s: %w", name, err)
		}
		fmt.Printf("  %-10s %9d events in %8s  %8.0f events/s\n", name, n, ph.took.Round(time.Millisecond), ph.rate())
		return ph, nil
	}
	var phases []phase

	drain := func(name, group string, folders []process.Folder, prepare ...func(*pgxpool.Pool) error) (phase, error) {
		pool, err := schema(name)
		if err != nil {
			return phase{}, err
		}
		defer pool.Close()
		for _, p := range prepare {
			if err := p(pool); err != nil {
				return phase{}, err
			}
		}
		return measure(name, func() (int64, error) {
			proc, err := process.New(rdb, pool, keys, process.Options{
				Group: group, Workers: c.workers, BatchSize: c.batchSize, Block: 100 * time.Millisecond,
				ConsumerIdle: 24 * time.Hour, Retention: 365 * 24 * time.Hour, Folders: folders,
			})
			if err != nil {
				return 0, err
			}
			pctx, cancel := context.WithCancel(ctx)
			done := make(chan error, 1)
			go func() { done <- proc.Run(pctx) }()
			defer func() { cancel(); <-done }()
			for proc.Stats().Acked < int64(c.events) {
				select {
				case <-ctx.Done():
					return proc.Stats().Stored, ctx.Err()
				case err := <-done:
					return proc.Stats().Stored, fmt.Errorf("processor stopped: %v", err)
				case <-time.After(5 * time.Millisecond):
				}
			}
			return proc.Stats().Stored, nil
		})
	}

	// hookstream, events only
	ph, err := drain("hookstream", "bench-hookstream", nil)
	if err != nil {
		return err
	}
	phases = append(phases, ph)

	// hookstream with journeys folding, into a table that already holds
	// --seed-instances instances; then the funnel query over them.
	var funnelTimes []time.Duration
	if !c.noJourneys {
		set := journey.Default()
		ph, err := drain("journeys", "bench-journeys", []process.Folder{journey.NewFolder(set, journey.DefaultCacheMB)}, func(pool *pgxpool.Pool) error {
			t0 := time.Now()
			n, err := seedJourneys(ctx, pool, c.seedInstances)
			if err != nil {
				return err
			}
			fmt.Printf("  seeded %d bank_transfer instances in %s\n", n, time.Since(t0).Round(time.Millisecond))
			return nil
		})
		if err != nil {
			return err
		}
		phases = append(phases, ph)
		counter := func(name string) uint64 { return metrics.GetOrCreateCounter(name).Get() }
		fmt.Printf("  instance cache: %d hits, %d misses (%d instances read from PostgreSQL, the rest new), emptied %d times; %d writes retried after a conflict\n",
			counter(`hookstream_journeys_cache_hits_total`), counter(`hookstream_journeys_cache_misses_total`),
			counter(`hookstream_journeys_rows_read_total`), counter(`hookstream_journeys_cache_resets_total`),
			counter(`hookstream_journeys_write_conflicts_total`))
		pool, err := store.Open(ctx, testenv.WithSearchPath(c.dbURL, ns+"_journeys"))
		if err != nil {
			return err
		}
		var total int64
		pool.QueryRow(ctx, `SELECT count(*) FROM journey_instances`).Scan(&total)
		d, _ := set.Get("bank_transfer")
		to := time.Now().UTC()
		for range 7 {
			t0 := time.Now()
			f, err := query.QueryFunnel(ctx, pool, d, to.Add(-60*24*time.Hour), to)
			if err != nil {
				pool.Close()
				return err
			}
			funnelTimes = append(funnelTimes, time.Since(t0))
			if len(funnelTimes) == 1 {
				fmt.Printf("  funnel of bank_transfer over %d of the table's %d instances (cohort: 60 days)\n", f.Entered, total)
			}
		}
		pool.Close()
	}

	// hookstream with window folding
	if !c.noWindows {
		folder, err := windows.NewFolder(windows.Config{})
		if err != nil {
			return err
		}
		ph, err := drain("windows", "bench-windows", []process.Folder{folder})
		if err != nil {
			return err
		}
		phases = append(phases, ph)
	}

	// naive
	naivePool, err := schema("naive")
	if err != nil {
		return err
	}
	defer naivePool.Close()
	ph, err = measure("naive", func() (int64, error) {
		return bench.NaiveProcess(ctx, rdb, naivePool, keys, "bench-naive", int64(min(c.naiveEvents, c.events)))
	})
	if err != nil {
		return err
	}
	phases = append(phases, ph)

	// COPY of the same rows, parsed beforehand.
	fmt.Printf("reading the backlog back for COPY...\n")
	rows, err := readBacklog(ctx, rdb, keys)
	if err != nil {
		return err
	}
	copyPool, err := schema("copy")
	if err != nil {
		return err
	}
	defer copyPool.Close()
	ph, err = measure("copy", func() (int64, error) { return copyRows(ctx, copyPool, rows, c.workers) })
	if err != nil {
		return err
	}
	phases = append(phases, ph)

	hs := phases[0]
	fmt.Println()
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "contender\tevents\tseconds\tevents/s\thookstream is\tCPU s: bench process\tPostgreSQL\tRedis\tCPU µs/event (all)\t")
	for _, p := range phases {
		fmt.Fprintf(tw, "%s\t%d\t%.2f\t%.0f\t%.2fx\t%.1f\t%.1f\t%.1f\t%.1f\t\n", p.name, p.events, p.took.Seconds(), p.rate(),
			hs.rate()/p.rate(), p.self.Seconds(), p.pg.Seconds(), p.redis.Seconds(),
			float64((p.self+p.pg+p.redis).Microseconds())/float64(max(p.events, 1)))
	}
	tw.Flush()
	byName := map[string]phase{}
	for _, p := range phases {
		byName[p.name] = p
	}
	fmt.Printf("\nhookstream / naive = %.2fx (aim >= 5x); hookstream / copy = %.2fx (aim >= 0.4x)\n",
		hs.rate()/byName["naive"].rate(), hs.rate()/byName["copy"].rate())
	if w, ok := byName["windows"]; ok {
		fmt.Printf("with windows folding: %.2fx the events-only drain rate (aim >= 0.8x)\n", w.rate()/hs.rate())
	}
	if j, ok := byName["journeys"]; ok {
		fmt.Printf("with journeys folding: %.2fx the events-only drain rate (aim >= 0.7x)\n", j.rate()/hs.rate())
		slices.Sort(funnelTimes)
		fmt.Printf("funnel query: min %s, median %s, max %s over %d runs (aim < 200ms)\n", funnelTimes[0].Round(time.Millisecond),
			funnelTimes[len(funnelTimes)/2].Round(time.Millisecond), funnelTimes[len(funnelTimes)-1].Round(time.Millisecond), len(funnelTimes))
	}
	return nil
}

// copyRows COPYs rows into the events table over conns connections at once
// (as many as the processor has workers, so both may use every core).
func copyRows(ctx context.Context, db *pgxpool.Pool, rows []store.Event, conns int) (int64, error) {
	cols := []string{"id", "topic", "family", "outcome", "terminal", "resource_type", "resource_id", "customer_id",
		"correlation_id", "created", "received_at", "source", "body"}
	type result struct {
		n   int64
		err error
	}
	res := make(chan result, conns)
	per := (len(rows) + conns - 1) / conns
	for i := range conns {
		part := rows[min(i*per, len(rows)):min((i+1)*per, len(rows))]
		go func() {
			n, err := db.CopyFrom(ctx, pgx.Identifier{"events"}, cols, pgx.CopyFromSlice(len(part), func(i int) ([]any, error) {
				e := &part[i]
				return []any{e.ID, e.Topic, nullable(e.Family), nullable(e.Outcome), e.Terminal, nullable(e.ResourceType),
					nullable(e.ResourceID), nullable(e.CustomerID), nullable(e.CorrelationID), e.Created, e.Received, e.Source, e.Body}, nil
			}))
			res <- result{n, err}
		}()
	}
	var total int64
	var first error
	for range conns {
		r := <-res
		total += r.n
		if r.err != nil && first == nil {
			first = r.err
		}
	}
	return total, first
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// prefill appends n unique simulated events to the partition streams in
// the order Dwolla would send them (by created time, lifecycles
// interleaved), pipelined, as the receiver stores them (fields id and
// body): a backlog as it builds up while processing is paused or behind.
func prefill(ctx context.Context, rdb redis.UniversalClient, keys stream.Keys, n int, span time.Duration) error {
	src := sim.NewOrdered(sim.Config{Customers: n/10 + 1, Seed: 42, Start: time.Now().Add(-span - 4*time.Hour), Span: span})
	pipe := rdb.Pipeline()
	for added := 0; added < n; {
		ev := src.Next()
		parsed, err := dwolla.ParseEvent(ev.Body)
		if err != nil {
			return err
		}
		en := stream.NewEntry(keys.Partition(parsed.PartitionKey()), parsed.ID, ev.Body, "")
		pipe.XAdd(ctx, &redis.XAddArgs{Stream: keys.Stream(en.Partition), Values: en.Fields})
		added++
		if pipe.Len() >= 2000 || added == n {
			if _, err := pipe.Exec(ctx); err != nil {
				return fmt.Errorf("pre-fill: %w", err)
			}
		}
	}
	return nil
}

// readBacklog reads every entry back and derives its row, as the processor does.
func readBacklog(ctx context.Context, rdb redis.UniversalClient, keys stream.Keys) ([]store.Event, error) {
	var out []store.Event
	for p := range keys.Partitions {
		start := "-"
		for {
			msgs, err := rdb.XRangeN(ctx, keys.Stream(p), start, "+", 10_000).Result()
			if err != nil {
				return nil, err
			}
			for _, m := range msgs {
				ev, err := process.Enrich(stream.Message{Partition: p, ID: m.ID, Values: m.Values})
				if err != nil {
					return nil, err
				}
				out = append(out, ev)
			}
			if len(msgs) < 10_000 {
				break
			}
			start = "(" + msgs[len(msgs)-1].ID
		}
	}
	return out, nil
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// seedJourneys fills journey_instances with n bank_transfer instances
// entered over the last 30 days (80% completed a day later, some failed,
// some after completing, 5% cancelled, the rest in flight) and computes
// their funnel aggregates.
func seedJourneys(ctx context.Context, db *pgxpool.Pool, n int) (int64, error) {
	tag, err := db.Exec(ctx, `
INSERT INTO journey_instances (journey, subject, step_at, step_event, status, current_step, entered_at, last_at, deadline, check_at, conflict, entry_topic)
SELECT 'bank_transfer', 'seed-' || g,
       ARRAY[t, CASE WHEN r < 0.8 THEN t + interval '1 day' END, NULL, CASE WHEN r >= 0.8 AND r < 0.85 THEN t + interval '2 hours' END,
             CASE WHEN r >= 0.85 AND r < 0.92 OR r < 0.008 THEN t + interval '3 days' END],
       ARRAY['c-' || g, CASE WHEN r < 0.8 THEN 'd-' || g END, NULL, CASE WHEN r >= 0.8 AND r < 0.85 THEN 'x-' || g END,
             CASE WHEN r >= 0.85 AND r < 0.92 OR r < 0.008 THEN 'f-' || g END],
       CASE WHEN r < 0.008 OR (r >= 0.85 AND r < 0.92) THEN 'failed' WHEN r < 0.8 THEN 'completed' WHEN r < 0.85 THEN 'failed' ELSE 'in_progress' END,
       CASE WHEN r < 0.008 OR (r >= 0.85 AND r < 0.92) THEN 'failed' WHEN r < 0.8 THEN 'completed' WHEN r < 0.85 THEN 'cancelled' ELSE 'created' END,
       t, t + interval '1 day', CASE WHEN r >= 0.92 THEN t + interval '168 hours' END, CASE WHEN r >= 0.92 THEN t + interval '168 hours' END, NULL,
       CASE WHEN r < 0.3 THEN 'bank_transfer_created' ELSE 'customer_bank_transfer_created' END
FROM (SELECT g, now() - random() * interval '30 days' AS t, random() AS r FROM generate_series(1, $1) g) s`, n)
	if err != nil {
		return 0, fmt.Errorf("seed journey instances: %w", err)
	}
	d, _ := journey.Default().Get("bank_transfer")
	if err := pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error { return journey.RebuildFunnel(ctx, tx, d) }); err != nil {
		return 0, err
	}
	// As a table that has been in use is: vacuumed and analyzed. Otherwise
	// autovacuum works through the million fresh rows during the drain.
	if _, err := db.Exec(ctx, `VACUUM ANALYZE journey_instances, journey_funnel`); err != nil {
		return 0, err
	}
	return tag.RowsAffected(), nil
}

// benchSchema creates schema through admin, applies the migrations in it and
// returns a pool whose search_path is it. The caller drops it.
func benchSchema(ctx context.Context, admin *pgxpool.Pool, dbURL, schema string) (*pgxpool.Pool, error) {
	if _, err := admin.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		return nil, fmt.Errorf("create benchmark schema %s: %w", schema, err)
	}
	pool, err := store.Open(ctx, testenv.WithSearchPath(dbURL, schema))
	if err != nil {
		return nil, err
	}
	if _, err := migrations.Up(ctx, pool); err != nil {
		pool.Close()
		return nil, err
	}
	return pool, nil
}
