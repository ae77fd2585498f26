package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"
	"github.com/redis/go-redis/v9"

	"github.com/hookstream/hookstream/sim"
	"github.com/hookstream/hookstream/store"
	"github.com/hookstream/hookstream/stream"
)

// simConfig holds the flags of `hookstream sim`.
type simConfig struct {
	common
	url           string
	secrets       string
	customers     int
	seed          int64
	start         string
	span          time.Duration
	stepDelay     time.Duration
	rate          float64
	concurrency   int
	duplicates    float64
	reorder       float64
	reorderDelay  time.Duration
	timeScale     float64
	truth         string
	verify        string
	verifyTimeout time.Duration
	continuous    bool
}

func (c *simConfig) register(fs *flag.FlagSet) {
	c.common.register(fs)
	fs.StringVar(&c.url, "url", "http://127.0.0.1:8080/webhooks/dwolla", "receiver to deliver the webhooks to")
	fs.StringVar(&c.secrets, "webhook-secrets", "dev-secret", "comma-separated webhook secrets; the FIRST one signs (the same setting the receiver reads)")
	fs.IntVar(&c.customers, "customers", 200, "customers to take through their lifecycles (about 12 events each)")
	fs.Int64Var(&c.seed, "seed", 1, "random seed: the same seed gives the same ids, topics, paths and time offsets")
	fs.StringVar(&c.start, "start", "", "created time of the first event, RFC 3339 (default now); set it too for byte-identical bodies")
	fs.DurationVar(&c.span, "span", 0, "customers' start times are spread over this much event time (0 = one second per customer); ignored with --continuous and a --rate")
	fs.DurationVar(&c.stepDelay, "step-delay", time.Minute, "mean event-time gap between two steps of one lifecycle")
	fs.Float64Var(&c.rate, "rate", 1000, "target first deliveries per second, open loop (0 = as fast as --concurrency allows)")
	fs.IntVar(&c.concurrency, "concurrency", 10, "most requests in flight (Dwolla sends bursts of 10)")
	fs.Float64Var(&c.duplicates, "duplicates", 0, "fraction of events delivered a second time, later (0..1)")
	fs.Float64Var(&c.reorder, "reorder", 0, "fraction of events delivered late, after events created after them (0..1)")
	fs.DurationVar(&c.reorderDelay, "reorder-delay", time.Second, "longest extra delay of a reordered or duplicate delivery")
	fs.Float64Var(&c.timeScale, "time-scale", 3600, "divides Dwolla's retry gaps (15m 45m 2h 3h 6h 12h 24h 24h); 3600 makes 15m 0.25s, 1 is Dwolla's real 72h schedule")
	fs.StringVar(&c.truth, "truth", "", "write the ground truth to this file (one JSON line per unique event) and the lifecycle paths to FILE.paths.json")
	fs.StringVar(&c.verify, "verify", "none", "after sending, compare the ground truth with: none, streams (Redis) or events (PostgreSQL table)")
	fs.DurationVar(&c.verifyTimeout, "verify-timeout", 30*time.Second, "how long --verify waits for the store to match before it reports a mismatch")
	fs.BoolVar(&c.continuous, "continuous", false, "generate and send without end, each event when its created time comes, until Ctrl-C")
}

func simCommand() *ffcli.Command {
	fs := flag.NewFlagSet("hookstream sim", flag.ContinueOnError)
	var c simConfig
	c.register(fs)
	return &ffcli.Command{
		Name:       "sim",
		ShortUsage: "hookstream sim [flags]",
		ShortHelp:  "send simulated, signed Dwolla webhooks and check that hookstream stored each once",
		LongHelp: `sim stands in for Dwolla. It plays realistic lifecycles for --customers
customers (verification with its retry/KBA/document/suspended paths, funding
sources with micro-deposits, bank transfers that complete, fail, are cancelled
or fail after completing, customer transfer legs, mass payments), signs every
body with the first of --webhook-secrets, and POSTs it to --url at --rate with
at most --concurrency requests in flight. --duplicates and --reorder deliver a
fraction of events twice or late, as Dwolla may. Any non-2xx answer (3xx
included) or network error is retried on Dwolla's schedule of 8 retries over
72h, compressed by --time-scale.

--seed makes the traffic reproducible; --truth writes what was generated, and
--verify compares it with the Redis streams or the events table, polling up
to --verify-timeout, then prints missing / duplicated / unexpected counts and
exits non-zero on any difference. Verify against a fresh --namespace: events
of earlier runs count as unexpected.

With --continuous it generates without end and delivers each event when its
created time comes, printing progress every 5 seconds until Ctrl-C. New
customers start at a pace that yields --rate events per second once the first
lifecycles have run their course (a warm-up of some 20 --step-delay).

Examples:
  # 500 customers with 20% duplicate and 20% late deliveries, then check the streams
  hookstream sim --customers 500 --duplicates 0.2 --reorder 0.2 --verify streams

  # reproducible run with its ground truth on disk
  hookstream sim --seed 7 --start 2025-06-02T14:00:00Z --truth /tmp/truth.jsonl

  # steady live traffic for dashboards
  hookstream sim --continuous --rate 50 --step-delay 5s`,
		FlagSet: fs,
		Options: envOptions(),
		Exec: func(ctx context.Context, args []string) error {
			if len(args) > 0 {
				return fmt.Errorf("sim takes no arguments, got %q; see hookstream sim --help", args)
			}
			return runSim(ctx, &c)
		},
	}
}

func runSim(ctx context.Context, c *simConfig) error {
	switch c.verify {
	case "none", "streams", "events":
	default:
		return fmt.Errorf("--verify %q: want none, streams or events", c.verify)
	}
	if c.continuous && c.verify != "none" {
		return errors.New("--verify needs a run that ends; drop --continuous or --verify")
	}
	secret := firstSecret(c.secrets)
	if secret == nil {
		return errors.New("--webhook-secrets is empty; set the receiver's secret (HOOKSTREAM_WEBHOOK_SECRETS)")
	}
	start := time.Now().UTC()
	if c.start != "" {
		t, err := time.Parse(time.RFC3339Nano, c.start)
		if err != nil {
			return fmt.Errorf("--start %q is not an RFC 3339 time such as 2025-06-02T14:00:00Z: %w", c.start, err)
		}
		start = t
	}
	gen := sim.Config{Customers: c.customers, Seed: c.seed, Start: start, Span: c.span, StepDelay: c.stepDelay}
	send := sim.SendConfig{
		URL: c.url, Secret: secret, Rate: c.rate, Concurrency: c.concurrency,
		Duplicates: c.duplicates, Reorder: c.reorder, ReorderDelay: c.reorderDelay,
		TimeScale: c.timeScale, Seed: c.seed,
	}
	if c.continuous {
		return runSimContinuous(ctx, c, gen, send)
	}
	return runSimOnce(ctx, c, gen, send)
}

// firstSecret returns the first non-empty secret of a comma-separated list.
func firstSecret(list string) []byte {
	for s := range strings.SplitSeq(list, ",") {
		if s = strings.TrimSpace(s); s != "" {
			return []byte(s)
		}
	}
	return nil
}

// runSimOnce generates a finite scenario, sends it and optionally verifies it.
func runSimOnce(ctx context.Context, c *simConfig, gen sim.Config, send sim.SendConfig) error {
	began := time.Now()
	sc := sim.Generate(gen)
	fmt.Printf("hookstream sim: %d events from %d customers (%d lifecycles, seed %d), created from %s\n",
		len(sc.Events), c.customers, sc.Lifecycles(), c.seed, sc.Events[0].Created.Format(time.RFC3339))
	if c.truth != "" {
		if err := writeSimTruth(c.truth, sc); err != nil {
			return err
		}
	}
	sender, err := sim.NewSender(send)
	if err != nil {
		return err
	}
	in := make(chan sim.Event)
	go func() {
		defer close(in)
		for _, ev := range sc.Events {
			select {
			case in <- ev:
			case <-ctx.Done():
				return
			}
		}
	}()
	stopProgress := simProgress(sender, nil)
	runErr := sender.Run(ctx, in)
	stopProgress()
	stats := sender.Stats()
	printSimSummary(time.Since(began), int64(len(sc.Events)), sc.Lifecycles(), c, stats)
	if runErr != nil {
		return runErr
	}

	var verifyErr error
	if c.verify != "none" {
		truth := make([]string, len(sc.Events))
		for i := range sc.Events {
			truth[i] = sc.Events[i].ID
		}
		verifyErr = verifySim(ctx, c, truth)
	}
	if stats.GaveUp > 0 {
		return errors.Join(verifyErr, fmt.Errorf("%d deliveries were given up after %d retries; is the receiver at %s up and using the same secret?",
			stats.GaveUp, sim.MaxRetries, c.url))
	}
	return verifyErr
}

// runSimContinuous generates and sends until ctx ends. With a rate, each event
// is handed to the sender when its created time comes, and customers are
// spaced so that this happens at about the rate.
func runSimContinuous(ctx context.Context, c *simConfig, gen sim.Config, send sim.SendConfig) error {
	if c.rate > 0 {
		// Pace customers by the mean number of events one customer produces.
		const sample = 500
		perCustomer := float64(len(sim.Generate(sim.Config{Customers: sample, Seed: c.seed}).Events)) / sample
		gen.Customers = 1
		gen.Span = time.Duration(perCustomer / c.rate * float64(time.Second))
		send.Rate = 0 // the created times pace the traffic
	}
	src := sim.NewOrdered(gen)
	sender, err := sim.NewSender(send)
	if err != nil {
		return err
	}

	var (
		truth     *bufio.Writer
		truthFile *os.File
	)
	if c.truth != "" {
		if truthFile, err = os.Create(c.truth); err != nil {
			return fmt.Errorf("create ground truth file: %w; check that its directory exists and is writable", err)
		}
		defer truthFile.Close()
		truth = bufio.NewWriterSize(truthFile, 256<<10)
	}

	var (
		mu        sync.Mutex
		generated int64
		truthErr  error
	)
	in := make(chan sim.Event, 1024)
	fed := make(chan struct{})
	go func() {
		defer close(fed)
		defer close(in)
		var tw *sim.TruthWriter
		if truth != nil {
			tw = sim.NewTruthWriter(truth)
		}
		for {
			var ev sim.Event
			if c.rate > 0 {
				var err error
				if ev, err = src.NextDue(ctx); err != nil {
					return
				}
			} else {
				ev = src.Next()
			}
			select {
			case in <- ev:
			case <-ctx.Done():
				return
			}
			mu.Lock()
			generated++
			if tw != nil && truthErr == nil {
				truthErr = tw.Write([]sim.Event{ev})
			}
			mu.Unlock()
		}
	}()
	fmt.Printf("hookstream sim: sending continuously to %s at about %g events/s (seed %d); Ctrl-C stops\n", c.url, c.rate, c.seed)
	began := time.Now()
	stopProgress := simProgress(sender, func() int64 { mu.Lock(); defer mu.Unlock(); return generated })
	runErr := sender.Run(ctx, in)
	stopProgress()
	<-fed

	printSimSummary(time.Since(began), generated, 0, c, sender.Stats())
	if truth != nil {
		if truthErr == nil {
			truthErr = truth.Flush()
		}
		if truthErr != nil {
			return fmt.Errorf("write ground truth to %s: %w", c.truth, truthErr)
		}
		if err := writeSimPaths(c.truth+".paths.json", src.Paths()); err != nil {
			return err
		}
	}
	if runErr != nil && !errors.Is(runErr, context.Canceled) {
		return runErr
	}
	return nil
}

func writeSimTruth(path string, sc *sim.Scenario) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("create ground truth file: %w; check that its directory exists and is writable", err)
	}
	if err := sim.WriteTruth(f, sc); err != nil {
		f.Close()
		return fmt.Errorf("write ground truth to %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write ground truth to %s: %w", path, err)
	}
	return writeSimPaths(path+".paths.json", sc.Paths)
}

func writeSimPaths(path string, paths map[string]int) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("create lifecycle paths file: %w", err)
	}
	if err := sim.WritePaths(f, paths); err != nil {
		f.Close()
		return fmt.Errorf("write lifecycle paths to %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write lifecycle paths to %s: %w", path, err)
	}
	return nil
}

// simProgress prints a line every 5 seconds until the returned stop is called.
// generated, if set, reports how many events have been generated so far.
func simProgress(s *sim.Sender, generated func() int64) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		var last int64
		for {
			select {
			case <-done:
				return
			case <-t.C:
				st := s.Stats()
				gen := ""
				if generated != nil {
					gen = fmt.Sprintf("%d events  ", generated())
				}
				fmt.Printf("%s  %sdelivered %d (%.0f/s)  duplicates %d  reordered %d  retries %d  gave up %d  net errors %d  non-2xx %d\n",
					time.Now().Format("15:04:05"), gen, st.Delivered, float64(st.Delivered-last)/5,
					st.Duplicates, st.Reordered, st.Retries, st.GaveUp, st.NetErrors, sumCounts(st.Non2xx))
				last = st.Delivered
			}
		}
	})
	return func() {
		close(done)
		wg.Wait()
	}
}

func sumCounts(m map[int]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

func printSimSummary(took time.Duration, events int64, lifecycles int, c *simConfig, st sim.SendStats) {
	secs := max(took.Seconds(), 1e-9)
	fmt.Printf("hookstream sim: done in %s\n", took.Round(time.Millisecond))
	if lifecycles > 0 {
		fmt.Printf("  events      %d unique from %d customers, %d lifecycles (seed %d)\n", events, c.customers, lifecycles, c.seed)
	} else {
		fmt.Printf("  events      %d generated (seed %d)\n", events, c.seed)
	}
	fmt.Printf("  requests    %d (%.0f/s), %d answered 2xx\n", st.Sent, float64(st.Sent)/secs, st.Delivered)
	fmt.Printf("  injected    %d duplicate deliveries, %d reordered\n", st.Duplicates, st.Reordered)
	non2xx := "none"
	if len(st.Non2xx) > 0 {
		var parts []string
		for _, code := range slices.Sorted(maps.Keys(st.Non2xx)) {
			parts = append(parts, fmt.Sprintf("%d×%d", st.Non2xx[code], code))
		}
		non2xx = strings.Join(parts, " ")
	}
	fmt.Printf("  failures    %d retries, %d given up, %d network errors, non-2xx: %s\n", st.Retries, st.GaveUp, st.NetErrors, non2xx)
	if c.truth != "" {
		fmt.Printf("  truth       %s (paths in %s.paths.json)\n", c.truth, c.truth)
	}
}

// verifySim polls the chosen store until it matches truth or --verify-timeout
// passes, then prints the report.
func verifySim(ctx context.Context, c *simConfig, truth []string) error {
	var check func(context.Context) (sim.Report, error)
	switch c.verify {
	case "streams":
		opt, err := redis.ParseURL(c.redisURL)
		if err != nil {
			return fmt.Errorf("parse --redis-url %q: %w; expected redis://host:port/db", c.redisURL, err)
		}
		rdb := redis.NewClient(opt)
		defer rdb.Close()
		keys := stream.NewKeys(c.namespace, c.partitions)
		check = func(ctx context.Context) (sim.Report, error) { return sim.VerifyStreams(ctx, rdb, keys, truth) }
	case "events":
		pool, err := store.Open(ctx, c.dbURL)
		if err != nil {
			return err
		}
		defer pool.Close()
		check = func(ctx context.Context) (sim.Report, error) { return sim.VerifyEvents(ctx, pool, truth) }
	}

	deadline := time.Now().Add(c.verifyTimeout)
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		rep, err := check(ctx)
		if err == nil && rep.OK() {
			fmt.Printf("verify %s: %s\n", c.verify, rep)
			return nil
		}
		if time.Now().After(deadline) {
			if err != nil {
				return fmt.Errorf("verify %s: %w", c.verify, err)
			}
			fmt.Printf("verify %s: %s\n", c.verify, rep)
			return fmt.Errorf("verify %s: the store does not hold exactly the %d generated events (waited %s)", c.verify, rep.Expected, c.verifyTimeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}
