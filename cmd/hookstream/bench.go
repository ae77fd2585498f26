package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hookstream/hookstream/ingest"
	"github.com/hookstream/hookstream/internal/bench"
	"github.com/hookstream/hookstream/internal/testenv"
	"github.com/hookstream/hookstream/stream"
	"github.com/peterbourgon/ff/v3/ffcli"
	"github.com/redis/go-redis/v9"
)

func benchCommand() *ffcli.Command {
	return &ffcli.Command{
		Name:        "bench",
		ShortUsage:  "hookstream bench ingest|process|windows|memory [flags]",
		ShortHelp:   "measure hookstream: ingest against reference receivers in one run, Redis memory per event",
		Subcommands: []*ffcli.Command{benchIngestCommand(), benchProcessCommand(), benchWindowsCommand(), benchMemoryCommand(), benchReceiversCommand()},
		Exec:        func(context.Context, []string) error { return flag.ErrHelp },
	}
}

type benchIngestConfig struct {
	common
	target     string
	duration   time.Duration
	rounds     int
	conc       int
	rate       float64
	openDur    time.Duration
	openConns  int
	cpuProfile string
	committers int
	maxBatch   int
	keep       bool
	separate   bool
}

func benchIngestCommand() *ffcli.Command {
	fs := flag.NewFlagSet("hookstream bench ingest", flag.ContinueOnError)
	var c benchIngestConfig
	c.common.register(fs)
	fs.StringVar(&c.target, "target", "", "drive an already running receiver at this webhook URL instead of starting the three in-process ones (needs --bench-secret to be one of its secrets)")
	fs.DurationVar(&c.duration, "duration", 8*time.Second, "length of each closed-loop phase")
	fs.IntVar(&c.rounds, "rounds", 3, "closed-loop rounds; each round runs every receiver once, in rotating order, and the median is reported (0: open loop only)")
	fs.IntVar(&c.conc, "concurrency", 64, "concurrent requests in the closed-loop phases")
	fs.Float64Var(&c.rate, "rate", 5000, "requests per second of the open-loop phase")
	fs.DurationVar(&c.openDur, "open-duration", 20*time.Second, "length of the open-loop phase")
	fs.IntVar(&c.openConns, "open-connections", 64, "most requests in flight in the open-loop phase (each on its own connection); when all are busy, a request waits and the wait counts in its latency")
	fs.StringVar(&c.cpuProfile, "cpuprofile", "", "write CPU profiles of the first closed-loop round to FILE.<receiver>, one per receiver, to compare where each spends its time")
	fs.IntVar(&c.committers, "committers", 2, "hookstream receiver: pipelined round trips in flight")
	fs.IntVar(&c.maxBatch, "max-batch", 256, "hookstream receiver: most events per round trip")
	fs.BoolVar(&c.separate, "separate-process", false, "run the three receivers in a child process instead of this one, so they do not share a Go runtime with the load generator")
	fs.BoolVar(&c.keep, "keep", false, "keep the benchmark's Redis keys instead of deleting them")
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
			return runBenchIngest(ctx, &c, []byte(*secret))
		},
	}
}

type benchTarget struct {
	name  string
	url   string
	reset func() // empties the receiver's namespace before a phase
}

// redisCPU returns the CPU time the Redis server has used so far (INFO cpu),
// or 0 when it cannot be read.
func redisCPU(ctx context.Context, rdb redis.UniversalClient) time.Duration {
	info, err := rdb.Info(ctx, "cpu").Result()
	if err != nil {
		return 0
	}
	var total float64
	for _, line := range strings.Split(info, "\r\n") {
		k, v, ok := strings.Cut(line, ":")
		if ok && (k == "used_cpu_sys" || k == "used_cpu_user") {
			f, _ := strconv.ParseFloat(v, 64)
			total += f
		}
	}
	return time.Duration(total * float64(time.Second))
}

func runBenchIngest(ctx context.Context, c *benchIngestConfig, secret []byte) error {
	fmt.Printf("machine: %s/%s, %d CPUs, GOMAXPROCS %d, %s\n", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.Version())
	ns := testenv.Name("bench-")
	bodies := bench.NewBodies(secret, ns+"-")
	var targets []benchTarget
	cpuOf := func() time.Duration { return 0 }
	if c.target != "" {
		targets = []benchTarget{{name: "target", url: c.target}}
	} else {
		rdb, err := redisClient(c.redisURL, 2*time.Second, 4)
		if err != nil {
			return err
		}
		defer rdb.Close()
		if err := rdb.Ping(ctx).Err(); err != nil {
			return fmt.Errorf("redis at %s: %w; set HOOKSTREAM_REDIS_URL or run `make bench`, which starts one", c.redisURL, err)
		}
		if !c.keep {
			defer func() {
				for _, suffix := range []string{"hs", "naive"} {
					stream.DeleteKeys(context.Background(), rdb, ns+"-"+suffix+":*")
				}
			}()
		}
		var urls map[string]string
		var stop func()
		if c.separate {
			urls, stop, err = spawnBenchReceivers(c, secret, ns)
		} else {
			urls, stop, err = startBenchReceivers(ctx, c, secret, ns)
		}
		if err != nil {
			return err
		}
		defer stop()
		// Each phase starts from an empty namespace, so Redis's memory and its
		// AOF rewrites stay the same size for every phase and receiver.
		reset := func(suffix string) func() {
			return func() { stream.DeleteKeys(context.Background(), rdb, ns+"-"+suffix+":*") }
		}
		targets = []benchTarget{{"hookstream", urls["hookstream"], reset("hs")}, {"naive-xadd", urls["naive-xadd"], reset("naive")}, {"hmac-only", urls["hmac-only"], nil}}
		cpuOf = func() time.Duration { return redisCPU(ctx, rdb) }
		if c.separate {
			fmt.Println("receivers run in a separate process (requests per round trip are not shown)")
		}
	}
	// phase runs one load phase and adds Redis's CPU time per request.
	phase := func(t benchTarget, run func() bench.Result) bench.Result {
		if t.reset != nil {
			t.reset()
		}
		before := cpuOf()
		busy0, total0 := bench.MachineCPU()
		counters0 := ingest.ReadCounters()
		res := run()
		if d := ingest.ReadCounters().Sub(counters0); d.Batches > 0 {
			res.MeanBatch = d.MeanBatch()
		}
		if used := cpuOf() - before; used > 0 && res.Requests > 0 {
			res.RedisCPUPerRequest = used / time.Duration(res.Requests)
		}
		if busy1, total1 := bench.MachineCPU(); total1 > total0 {
			res.MachineBusy = float64(busy1-busy0) / float64(total1-total0)
		}
		return res
	}

	// Warm up connections, pools and the CPU governor.
	for _, t := range targets {
		bench.ClosedLoop(ctx, t.name, t.url, bodies, c.conc, time.Second)
	}
	fmt.Printf("\nclosed loop: %d concurrent requests, %s per phase, %d rounds\n", c.conc, c.duration, c.rounds)
	tput := map[string][]float64{}
	for round := range c.rounds {
		for i := range targets {
			t := targets[(i+round)%len(targets)]
			stopProfile, err := startProfile(c.cpuProfile, t.name, round)
			if err != nil {
				return err
			}
			res := phase(t, func() bench.Result { return bench.ClosedLoop(ctx, t.name, t.url, bodies, c.conc, c.duration) })
			stopProfile()
			fmt.Printf("round %d  %s\n", round+1, res)
			tput[t.name] = append(tput[t.name], res.Throughput())
			if ctx.Err() != nil {
				return ctx.Err()
			}
		}
	}
	median := func(v []float64) float64 {
		s := slices.Clone(v)
		slices.Sort(s)
		return s[len(s)/2]
	}
	if c.rounds > 0 {
		fmt.Println("\nmedian throughput (2xx/s):")
		for _, t := range targets {
			fmt.Printf("  %-12s %9.0f\n", t.name, median(tput[t.name]))
		}
	}
	if c.rounds > 0 && len(targets) == 3 {
		hs, nv, vo := median(tput["hookstream"]), median(tput["naive-xadd"]), median(tput["hmac-only"])
		fmt.Printf("ratios of the medians: hookstream/naive-xadd = %.2fx (goal >= 1.10), hookstream/hmac-only = %.2fx (goal >= 0.70)\n", hs/nv, hs/vo)
		// The machine's speed drifts between rounds; the three receivers of
		// one round ran within seconds of each other, so per-round ratios
		// are less disturbed by that drift.
		var rn, rv []float64
		for i := range tput["hookstream"] {
			rn = append(rn, tput["hookstream"][i]/tput["naive-xadd"][i])
			rv = append(rv, tput["hookstream"][i]/tput["hmac-only"][i])
		}
		fmt.Printf("per-round ratios:      hookstream/naive-xadd %s (median %.2fx), hookstream/hmac-only %s (median %.2fx)\n",
			fmtRatios(rn), median(rn), fmtRatios(rv), median(rv))
	}

	fmt.Printf("\nopen loop: %.0f requests/s for %s, latency from scheduled send time\n", c.rate, c.openDur)
	for _, t := range targets {
		res := phase(t, func() bench.Result { return bench.OpenLoop(ctx, t.name, t.url, bodies, c.rate, c.openDur, c.openConns) })
		fmt.Printf("  %s\n", res)
	}
	return nil
}

// startProfile profiles the first round's phase of one receiver into
// base.<name>; it does nothing for later rounds or without a base name.
func startProfile(base, name string, round int) (stop func(), err error) {
	if base == "" || round != 0 {
		return func() {}, nil
	}
	f, err := os.Create(base + "." + name)
	if err != nil {
		return nil, fmt.Errorf("create CPU profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

func fmtRatios(v []float64) string {
	parts := make([]string, len(v))
	for i, x := range v {
		parts[i] = fmt.Sprintf("%.2f", x)
	}
	return strings.Join(parts, " ")
}

// startBenchReceivers starts the three receivers of the benchmark in this
// process on loopback and returns their webhook URLs by name.
func startBenchReceivers(ctx context.Context, c *benchIngestConfig, secret []byte, ns string) (map[string]string, func(), error) {
	var stops []func()
	stop := func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}
	rdb, err := redisClient(c.redisURL, 2*time.Second, c.committers+4)
	if err != nil {
		return nil, nil, err
	}
	stops = append(stops, func() { rdb.Close() })
	naiveOpt, err := redis.ParseURL(c.redisURL)
	if err != nil {
		stop()
		return nil, nil, err
	}
	naiveOpt.PoolSize = c.conc // one connection per concurrent request: its best case
	naiveRdb := redis.NewClient(naiveOpt)
	stops = append(stops, func() { naiveRdb.Close() })
	spool, err := os.MkdirTemp("", "hookstream-bench-spool-")
	if err != nil {
		stop()
		return nil, nil, err
	}
	stops = append(stops, func() { os.RemoveAll(spool) })
	urls := map[string]string{}
	serve := func(name string, h http.Handler) error {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
		go srv.Serve(ln)
		stops = append(stops, func() { srv.Close() })
		urls[name] = "http://" + ln.Addr().String() + "/webhooks/dwolla"
		return nil
	}
	receiver := func(suffix string, verifyOnly bool) (http.Handler, error) {
		r, err := ingest.New(rdb, stream.NewKeys(ns+"-"+suffix, c.partitions), ingest.Options{
			Secrets: [][]byte{secret}, SpoolDir: spool + "/" + suffix, Committers: c.committers,
			MaxBatch: c.maxBatch, VerifyOnly: verifyOnly,
		})
		if err != nil {
			return nil, err
		}
		if err := r.Start(ctx); err != nil {
			return nil, err
		}
		stops = append(stops, func() { r.Stop(context.Background()) })
		return r.Handler(), nil
	}
	hs, err := receiver("hs", false)
	if err == nil {
		err = serve("hookstream", hs)
	}
	if err == nil {
		err = serve("naive-xadd", bench.NaiveReceiver(naiveRdb, stream.NewKeys(ns+"-naive", c.partitions), [][]byte{secret}, 256<<10))
	}
	var vo http.Handler
	if err == nil {
		vo, err = receiver("verify", true)
	}
	if err == nil {
		err = serve("hmac-only", vo)
	}
	if err != nil {
		stop()
		return nil, nil, fmt.Errorf("start benchmark receivers: %w", err)
	}
	return urls, stop, nil
}

// spawnBenchReceivers runs the three receivers in a child process
// (`hookstream bench receivers`), so the load generator and the receivers do
// not share a Go runtime, and returns their URLs.
func spawnBenchReceivers(c *benchIngestConfig, secret []byte, ns string) (map[string]string, func(), error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, nil, err
	}
	cmd := exec.Command(exe, "bench", "receivers",
		"--redis-url", c.redisURL, "--partitions", strconv.Itoa(c.partitions), "--committers", strconv.Itoa(c.committers),
		"--max-batch", strconv.Itoa(c.maxBatch), "--concurrency", strconv.Itoa(c.conc), "--bench-secret", string(secret), "--prefix", ns)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, nil, fmt.Errorf("start benchmark receivers process: %w", err)
	}
	stop := func() { stdin.Close(); cmd.Wait() }
	var urls map[string]string
	if err := json.NewDecoder(stdout).Decode(&urls); err != nil {
		cmd.Process.Kill()
		stop()
		return nil, nil, fmt.Errorf("read benchmark receivers' URLs: %w", err)
	}
	return urls, stop, nil
}

func benchReceiversCommand() *ffcli.Command {
	fs := flag.NewFlagSet("hookstream bench receivers", flag.ContinueOnError)
	var c benchIngestConfig
	c.common.register(fs)
	fs.IntVar(&c.conc, "concurrency", 64, "naive receiver's connection pool size")
	fs.IntVar(&c.committers, "committers", 2, "hookstream receiver: pipelined round trips in flight")
	fs.IntVar(&c.maxBatch, "max-batch", 256, "hookstream receiver: most events per round trip")
	secret := fs.String("bench-secret", "bench-secret", "secret the webhooks are signed with")
	prefix := fs.String("prefix", "", "namespace prefix of the receivers' keys (required)")
	return &ffcli.Command{
		Name:       "receivers",
		ShortUsage: "hookstream bench receivers --prefix P [flags]",
		ShortHelp:  "run the three benchmark receivers (used by bench ingest --separate-process)",
		LongHelp: `Starts the hookstream, naive-xadd and hmac-only receivers on loopback, prints
their URLs as one JSON object on stdout, and runs until stdin is closed.`,
		FlagSet: fs,
		Options: envOptions(),
		Exec: func(ctx context.Context, _ []string) error {
			if *prefix == "" {
				return fmt.Errorf("--prefix is required: %w", flag.ErrHelp)
			}
			urls, stop, err := startBenchReceivers(ctx, &c, []byte(*secret), *prefix)
			if err != nil {
				return err
			}
			defer stop()
			if err := json.NewEncoder(os.Stdout).Encode(urls); err != nil {
				return err
			}
			io.Copy(io.Discard, os.Stdin) // until the parent closes it
			return nil
		},
	}
}
