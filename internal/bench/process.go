package bench

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/hookstream/hookstream/internal/scratch"
	"github.com/hookstream/hookstream/journeys"
	"github.com/hookstream/hookstream/process"
	"github.com/hookstream/hookstream/store"
	"github.com/hookstream/hookstream/stream"
	"github.com/hookstream/hookstream/windows"
	"github.com/jackc/pgx/v5/pgxpool"
)

// ProcessConfig configures Process; each field is the flag of `hookstream
// bench process` named in its comment. Zero values take the defaults in
// parentheses.
type ProcessConfig struct {
	// RedisURL (--redis-url, default redis://127.0.0.1:6379/0) and
	// DatabaseURL (--database-url, default the local postgres database) are
	// the servers; the benchmark works in a fresh namespace and schemas.
	RedisURL, DatabaseURL string
	// Partitions is the number of partition streams (--partitions, default 16).
	Partitions int
	// Events is the size of the pre-filled backlog (--events, default 1,000,000).
	Events int
	// NaiveEvents is how many entries the naive processor drains; its rate
	// is steady, and a full backlog would take many minutes
	// (--naive-events, default 50,000; at most Events).
	NaiveEvents int
	// BatchSize is the hookstream processor's entries per partition per
	// batch (--batch-size, default 500).
	BatchSize int
	// Workers is the hookstream processor's workers, and the connections
	// COPY uses at once (--workers, default 2).
	Workers int
	// CPUProfile, WindowsCPUProfile and JourneysCPUProfile, when set, receive
	// a CPU profile of the events-only drain, of the drain with window
	// folding and of the drain with journeys folding (--cpuprofile,
	// --cpuprofile-windows, --cpuprofile-journeys).
	CPUProfile, WindowsCPUProfile, JourneysCPUProfile string
	// Keep keeps the benchmark's Redis keys and PostgreSQL schemas (--keep).
	Keep bool
	// SkipWindows skips the drain with window folding (--no-windows).
	SkipWindows bool
	// SkipJourneys skips the drain with journeys folding and the funnel
	// query (--no-journeys).
	SkipJourneys bool
	// SkipFull skips the drain with every fold serve runs (windows and
	// journeys together).
	SkipFull bool
	// SeedInstances is the number of journey instances put in the table
	// before the journeys drain and queried by the funnel (--seed-instances;
	// the flag's default is 1,000,000, zero seeds none).
	SeedInstances int
	// Span is the event time the backlog's lifecycles start over; windows
	// cost more the sparser the events (--span; the flag's default is 1h,
	// zero is one second per ten events, sim's default).
	Span time.Duration
	// Out receives the report, phase by phase (nil: discarded).
	Out io.Writer
}

func (c ProcessConfig) withDefaults() (ProcessConfig, error) {
	c.RedisURL = cmp.Or(c.RedisURL, defaultRedisURL)
	c.DatabaseURL = cmp.Or(c.DatabaseURL, defaultDatabaseURL)
	c.Partitions = cmp.Or(c.Partitions, defaultPartitions)
	c.Events = cmp.Or(c.Events, 1_000_000)
	c.NaiveEvents = min(cmp.Or(c.NaiveEvents, 50_000), c.Events)
	c.BatchSize = cmp.Or(c.BatchSize, 500)
	c.Workers = cmp.Or(c.Workers, 2)
	c.Out = orDiscard(c.Out)
	return c, errors.Join(notNegative("--partitions", c.Partitions), notNegative("--events", c.Events),
		notNegative("--naive-events", c.NaiveEvents), notNegative("--batch-size", c.BatchSize),
		notNegative("--workers", c.Workers), notNegative("--seed-instances", c.SeedInstances),
		notNegative("--span", c.Span))
}

// Phase is one contender's measurement.
type Phase struct {
	Name   string // hookstream, journeys, windows, full, naive or copy
	Events int64
	Took   time.Duration
	// CPU time that this process, PostgreSQL and Redis spent in the phase.
	SelfCPU, PostgresCPU, RedisCPU time.Duration
}

// Rate is events per second.
func (p Phase) Rate() float64 { return float64(p.Events) / p.Took.Seconds() }

// ProcessReport is what Process measured.
type ProcessReport struct {
	// Phases in the order run; the first is hookstream's events-only drain.
	Phases []Phase
	// Funnel holds the times of the funnel query over the seeded and
	// drained journey instances, sorted (none with SkipJourneys).
	Funnel []time.Duration
}

// Phase returns the phase of that name.
func (r ProcessReport) Phase(name string) (Phase, bool) {
	i := slices.IndexFunc(r.Phases, func(p Phase) bool { return p.Name == name })
	if i < 0 {
		return Phase{}, false
	}
	return r.Phases[i], true
}

// Process measures draining a backlog into PostgreSQL. It pre-fills the
// partition streams of a fresh namespace with c.Events unique simulated
// events, then, in the same run, measures:
//
//	hookstream  the process role draining the whole backlog, events only
//	journeys    the same, folding journeys into a table of c.SeedInstances
//	            instances, then the funnel query over them
//	windows     the same, folding the window aggregates too
//	naive       one INSERT and one XACK per event (c.NaiveEvents of them)
//	copy        PostgreSQL COPY of the same rows, already parsed and in
//	            memory, over c.Workers connections at once: the machine's
//	            limit for the rows
//
// Each writes into its own fresh schema with the real migrations. It
// reports events per second, the ratios, and the CPU time that this
// process, PostgreSQL and Redis spent in each phase.
func Process(ctx context.Context, c ProcessConfig) (ProcessReport, error) {
	var rep ProcessReport
	c, err := c.withDefaults()
	if err != nil {
		return rep, err
	}
	out := c.Out
	rdb, err := stream.NewClient(c.RedisURL, 30*time.Second, 16)
	if err != nil {
		return rep, err
	}
	defer rdb.Close()
	if err := rdb.Ping(ctx).Err(); err != nil {
		return rep, fmt.Errorf("redis at %s: %w", c.RedisURL, err)
	}
	ns := scratch.Name("hsbench")
	keys := stream.NewKeys(ns, c.Partitions)
	if !c.Keep {
		defer stream.DeleteKeys(context.Background(), rdb, keys.Pattern())
	}
	admin, err := store.Open(ctx, c.DatabaseURL)
	if err != nil {
		return rep, err
	}
	defer admin.Close()
	var schemas []string
	schema := func(name string) (*pgxpool.Pool, error) {
		s := ns + "_" + name
		schemas = append(schemas, s)
		return newSchema(ctx, admin, c.DatabaseURL, s)
	}
	defer func() {
		if c.Keep {
			return
		}
		for _, s := range schemas {
			admin.Exec(context.Background(), "DROP SCHEMA "+s+" CASCADE")
		}
	}()

	fmt.Fprintf(out, "pre-filling %d events, lifecycles starting over %s of event time, into %d partition streams (namespace %s)...\n", c.Events, c.Span, keys.Partitions, ns)
	t0 := time.Now()
	if err := prefill(ctx, rdb, keys, c.Events, c.Span); err != nil {
		return rep, err
	}
	fmt.Fprintf(out, "pre-filled in %s\n", time.Since(t0).Round(time.Millisecond))

	profiles := map[string]string{"hookstream": c.CPUProfile, "windows": c.WindowsCPUProfile, "journeys": c.JourneysCPUProfile}
	measure := func(name string, run func() (int64, error)) error {
		if path := profiles[name]; path != "" {
			stop, err := startCPUProfile(path)
			if err != nil {
				return err
			}
			defer stop()
		}
		ph := Phase{Name: name}
		self0, pg0, r0 := selfCPU(), ProcessCPU("postgres"), redisCPU(ctx, rdb)
		start := time.Now()
		n, err := run()
		ph.Took = time.Since(start)
		ph.Events = n
		ph.SelfCPU, ph.PostgresCPU, ph.RedisCPU = selfCPU()-self0, ProcessCPU("postgres")-pg0, redisCPU(ctx, rdb)-r0
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		fmt.Fprintf(out, "  %-10s %9d events in %8s  %8.0f events/s\n", name, n, ph.Took.Round(time.Millisecond), ph.Rate())
		rep.Phases = append(rep.Phases, ph)
		return nil
	}

	drain := func(name, group string, folds []process.Fold, prepare ...func(*pgxpool.Pool) error) error {
		pool, err := schema(name)
		if err != nil {
			return err
		}
		defer pool.Close()
		for _, p := range prepare {
			if err := p(pool); err != nil {
				return err
			}
		}
		return measure(name, func() (int64, error) {
			proc, err := process.New(rdb, pool, keys, process.Options{
				Group: group, Workers: c.Workers, BatchSize: c.BatchSize, Block: 100 * time.Millisecond,
				ConsumerIdle: 24 * time.Hour, Retention: 365 * 24 * time.Hour, Folds: folds,
			})
			if err != nil {
				return 0, err
			}
			pctx, cancel := context.WithCancel(ctx)
			done := make(chan error, 1)
			go func() { done <- proc.Run(pctx) }()
			defer func() { cancel(); <-done }()
			for proc.Stats().Acked < int64(c.Events) {
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
	if err := drain("hookstream", "bench-hookstream", nil); err != nil {
		return rep, err
	}

	// hookstream with journeys folding, into a table that already holds
	// SeedInstances instances; then the funnel query over them.
	if !c.SkipJourneys {
		set := journeys.Default()
		err := drain("journeys", "bench-journeys", []process.Fold{journeys.NewFold(set, journeys.DefaultCacheMB)}, func(pool *pgxpool.Pool) error {
			t0 := time.Now()
			n, err := seedJourneys(ctx, pool, c.SeedInstances)
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "  seeded %d bank_transfer instances in %s\n", n, time.Since(t0).Round(time.Millisecond))
			return nil
		})
		if err != nil {
			return rep, err
		}
		counter := func(name string) uint64 { return metrics.GetOrCreateCounter(name).Get() }
		fmt.Fprintf(out, "  instance cache: %d hits, %d misses (%d instances read from PostgreSQL, the rest new), emptied %d times; %d writes retried after a conflict\n",
			counter(`hookstream_journeys_cache_hits_total`), counter(`hookstream_journeys_cache_misses_total`),
			counter(`hookstream_journeys_rows_read_total`), counter(`hookstream_journeys_cache_resets_total`),
			counter(`hookstream_journeys_write_conflicts_total`))
		if rep.Funnel, err = funnelTimes(ctx, out, scratch.WithSearchPath(c.DatabaseURL, ns+"_journeys"), set); err != nil {
			return rep, err
		}
	}

	// hookstream with window folding
	if !c.SkipWindows {
		folder, err := windows.NewFold(windows.Config{})
		if err != nil {
			return rep, err
		}
		if err := drain("windows", "bench-windows", []process.Fold{folder}); err != nil {
			return rep, err
		}
	}

	// the full pipeline as serve runs it: windows and journeys folded in
	// the same batch (process.NewFolds)
	if !c.SkipFull {
		folds, err := process.NewFolds(windows.Config{}, journeys.Default(), journeys.DefaultCacheMB)
		if err != nil {
			return rep, err
		}
		if err := drain("full", "bench-full", folds); err != nil {
			return rep, err
		}
	}

	// naive
	naivePool, err := schema("naive")
	if err != nil {
		return rep, err
	}
	defer naivePool.Close()
	err = measure("naive", func() (int64, error) {
		return NaiveProcess(ctx, rdb, naivePool, keys, "bench-naive", int64(c.NaiveEvents))
	})
	if err != nil {
		return rep, err
	}

	// COPY of the same rows, parsed beforehand.
	fmt.Fprintf(out, "reading the backlog back for COPY...\n")
	rows, err := readBacklog(ctx, rdb, keys)
	if err != nil {
		return rep, err
	}
	copyPool, err := schema("copy")
	if err != nil {
		return rep, err
	}
	defer copyPool.Close()
	if err := measure("copy", func() (int64, error) { return copyRows(ctx, copyPool, rows, c.Workers) }); err != nil {
		return rep, err
	}
	rep.writeSummary(out)
	return rep, nil
}

// funnelTimes runs the bank_transfer funnel query seven times over the
// journeys schema at dbURL and returns its times, sorted.
func funnelTimes(ctx context.Context, out io.Writer, dbURL string, set *journeys.Set) ([]time.Duration, error) {
	pool, err := store.Open(ctx, dbURL)
	if err != nil {
		return nil, err
	}
	defer pool.Close()
	var total int64
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM journey_instances`).Scan(&total); err != nil {
		return nil, fmt.Errorf("count journey instances: %w", err)
	}
	d, _ := set.Get("bank_transfer")
	to := time.Now().UTC()
	var times []time.Duration
	for range 7 {
		t0 := time.Now()
		f, err := journeys.Funnel(ctx, pool, d, to.Add(-60*24*time.Hour), to)
		if err != nil {
			return nil, err
		}
		times = append(times, time.Since(t0))
		if len(times) == 1 {
			fmt.Fprintf(out, "  funnel of bank_transfer over %d of the table's %d instances (cohort: 60 days)\n", f.Entered, total)
		}
	}
	slices.Sort(times)
	return times, nil
}

// writeSummary writes the table of phases and the ratios to their aims.
func (r ProcessReport) writeSummary(out io.Writer) {
	hs := r.Phases[0]
	fmt.Fprintln(out)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "contender\tevents\tseconds\tevents/s\thookstream is\tCPU s: bench process\tPostgreSQL\tRedis\tCPU µs/event (all)\t")
	for _, p := range r.Phases {
		fmt.Fprintf(tw, "%s\t%d\t%.2f\t%.0f\t%.2fx\t%.1f\t%.1f\t%.1f\t%.1f\t\n", p.Name, p.Events, p.Took.Seconds(), p.Rate(),
			hs.Rate()/p.Rate(), p.SelfCPU.Seconds(), p.PostgresCPU.Seconds(), p.RedisCPU.Seconds(),
			float64((p.SelfCPU+p.PostgresCPU+p.RedisCPU).Microseconds())/float64(max(p.Events, 1)))
	}
	tw.Flush()
	naive, _ := r.Phase("naive")
	cp, _ := r.Phase("copy")
	fmt.Fprintf(out, "\nhookstream / naive = %.2fx (aim >= 5x); hookstream / copy = %.2fx (aim >= 0.4x)\n",
		hs.Rate()/naive.Rate(), hs.Rate()/cp.Rate())
	if w, ok := r.Phase("windows"); ok {
		fmt.Fprintf(out, "with windows folding: %.2fx the events-only drain rate (aim >= 0.8x)\n", w.Rate()/hs.Rate())
	}
	if f, ok := r.Phase("full"); ok {
		fmt.Fprintf(out, "full pipeline (events, windows, journeys): %.2fx copy (aim >= 0.25x), %.2fx the events-only drain rate\n", f.Rate()/cp.Rate(), f.Rate()/hs.Rate())
	}
	if j, ok := r.Phase("journeys"); ok {
		fmt.Fprintf(out, "with journeys folding: %.2fx the events-only drain rate (aim >= 0.7x)\n", j.Rate()/hs.Rate())
		t := r.Funnel
		fmt.Fprintf(out, "funnel query: min %s, median %s, max %s over %d runs (aim < 200ms)\n", t[0].Round(time.Millisecond),
			t[len(t)/2].Round(time.Millisecond), t[len(t)-1].Round(time.Millisecond), len(t))
	}
}
