package bench

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"time"

	"github.com/hookstream/hookstream/ingest"
	"github.com/hookstream/hookstream/internal/scratch"
	"github.com/hookstream/hookstream/stream"
)

// IngestConfig configures Ingest; each field is the flag of `hookstream bench
// ingest` named in its comment. Zero values take the defaults in parentheses.
type IngestConfig struct {
	// RedisURL is the Redis the in-process receivers store into
	// (--redis-url, default redis://127.0.0.1:6379/0).
	RedisURL string
	// Partitions is the number of partition streams of the receivers'
	// namespaces (--partitions, default 16).
	Partitions int
	// Target, when set, is the webhook URL of an already running receiver
	// to drive instead of the three in-process ones; Secret must be one of
	// its secrets (--target).
	Target string
	// Duration is the length of each closed-loop phase (--duration, default 8s).
	Duration time.Duration
	// Rounds is how many times the closed loop runs every receiver, in
	// rotating order; the median is reported. 0 runs the open loop only
	// (--rounds).
	Rounds int
	// Concurrency is the number of requests in flight in the closed-loop
	// phases, and the naive receiver's connection pool size (--concurrency,
	// default 64).
	Concurrency int
	// Rate is the requests per second of the open-loop phase (--rate,
	// default 5000).
	Rate float64
	// OpenDuration is the length of the open-loop phase (--open-duration,
	// default 20s).
	OpenDuration time.Duration
	// OpenConnections bounds the requests in flight in the open-loop phase,
	// each on its own connection; a request that finds all busy waits, and
	// the wait counts in its latency (--open-connections, default 64).
	OpenConnections int
	// CPUProfile, when set, receives CPU profiles of the first closed-loop
	// round in CPUProfile.<receiver>, one per receiver (--cpuprofile).
	CPUProfile string
	// Committers is the hookstream receiver's pipelined round trips in
	// flight (--committers, default 2).
	Committers int
	// MaxBatch is the hookstream receiver's most events per round trip
	// (--max-batch, default 256).
	MaxBatch int
	// SeparateProcess runs the three receivers in a child process, so they
	// do not share a Go runtime with the load generator (--separate-process).
	// The child is this executable run as `bench receivers`, so it works in
	// the hookstream binary only.
	SeparateProcess bool
	// Keep keeps the benchmark's Redis keys instead of deleting them (--keep).
	Keep bool
	// Secret signs the generated webhooks (--bench-secret, default
	// "bench-secret").
	Secret []byte
	// Out receives the report, phase by phase (nil: discarded).
	Out io.Writer
}

func (c IngestConfig) withDefaults() (IngestConfig, error) {
	c.RedisURL = cmp.Or(c.RedisURL, defaultRedisURL)
	c.Partitions = cmp.Or(c.Partitions, defaultPartitions)
	c.Duration = cmp.Or(c.Duration, 8*time.Second)
	c.Concurrency = cmp.Or(c.Concurrency, 64)
	c.Rate = cmp.Or(c.Rate, 5000)
	c.OpenDuration = cmp.Or(c.OpenDuration, 20*time.Second)
	c.OpenConnections = cmp.Or(c.OpenConnections, 64)
	c.Committers = cmp.Or(c.Committers, 2)
	c.MaxBatch = cmp.Or(c.MaxBatch, 256)
	if len(c.Secret) == 0 {
		c.Secret = []byte("bench-secret")
	}
	c.Out = orDiscard(c.Out)
	return c, errors.Join(
		notNegative("--rounds", c.Rounds), notNegative("--duration", c.Duration),
		notNegative("--concurrency", c.Concurrency), notNegative("--rate", c.Rate),
		notNegative("--open-duration", c.OpenDuration), notNegative("--open-connections", c.OpenConnections),
		notNegative("--committers", c.Committers), notNegative("--max-batch", c.MaxBatch),
		notNegative("--partitions", c.Partitions))
}

// IngestReport is what Ingest measured.
type IngestReport struct {
	// ClosedLoop holds every closed-loop phase in the order run; Name is
	// the receiver.
	ClosedLoop []Result
	// OpenLoop holds the open-loop phase of each receiver.
	OpenLoop []Result
}

// ingestTarget is one receiver the benchmark drives.
type ingestTarget struct {
	name  string
	url   string
	reset func() // empties the receiver's namespace before a phase
}

// Ingest measures receivers' throughput and ACK latency. Unless c.Target is
// set, it starts three receivers that share Redis (see Receivers): the real
// one, a naive one and hookstream's handler with storing switched off, the
// ceiling for HTTP + HMAC + parse. It drives each closed-loop for c.Rounds
// rounds in rotating order and reports the median throughput and the ratios
// measured in this one run; then it offers c.Rate requests/s open-loop and
// reports latency percentiles measured from each request's scheduled time.
// Every event is unique and signed. Its keys live under a fresh namespace
// bench-<random>, deleted at the end unless c.Keep.
func Ingest(ctx context.Context, c IngestConfig) (IngestReport, error) {
	var rep IngestReport
	c, err := c.withDefaults()
	if err != nil {
		return rep, err
	}
	out := c.Out
	fmt.Fprintf(out, "machine: %s/%s, %d CPUs, GOMAXPROCS %d, %s\n", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.Version())
	ns := scratch.Name("bench-")
	bodies := NewBodies(c.Secret, ns+"-")
	var targets []ingestTarget
	cpuOf := func() time.Duration { return 0 }
	if c.Target != "" {
		targets = []ingestTarget{{name: "target", url: c.Target}}
	} else {
		rdb, err := stream.NewClient(c.RedisURL, 2*time.Second, 4)
		if err != nil {
			return rep, err
		}
		defer rdb.Close()
		if err := rdb.Ping(ctx).Err(); err != nil {
			return rep, fmt.Errorf("redis at %s: %w; set HOOKSTREAM_REDIS_URL or run `make bench`, which starts one", c.RedisURL, err)
		}
		if !c.Keep {
			defer func() {
				for _, suffix := range []string{"hs", "naive"} {
					stream.DeleteKeys(context.Background(), rdb, ns+"-"+suffix+":*")
				}
			}()
		}
		rc := ReceiversConfig{
			RedisURL: c.RedisURL, Partitions: c.Partitions, Prefix: ns, Secret: c.Secret,
			Committers: c.Committers, MaxBatch: c.MaxBatch, NaivePoolSize: c.Concurrency,
		}
		var urls map[string]string
		var stop func()
		if c.SeparateProcess {
			urls, stop, err = spawnReceivers(rc)
		} else {
			urls, stop, err = startReceivers(ctx, rc)
		}
		if err != nil {
			return rep, err
		}
		defer stop()
		// Each phase starts from an empty namespace, so Redis's memory and its
		// AOF rewrites stay the same size for every phase and receiver.
		reset := func(suffix string) func() {
			return func() { stream.DeleteKeys(context.Background(), rdb, ns+"-"+suffix+":*") }
		}
		targets = []ingestTarget{{"hookstream", urls["hookstream"], reset("hs")}, {"naive-xadd", urls["naive-xadd"], reset("naive")}, {"hmac-only", urls["hmac-only"], nil}}
		cpuOf = func() time.Duration { return redisCPU(ctx, rdb) }
		if c.SeparateProcess {
			fmt.Fprintln(out, "receivers run in a separate process (requests per round trip are not shown)")
		}
	}
	// phase runs one load phase and adds Redis's CPU time per request.
	phase := func(t ingestTarget, run func() Result) Result {
		if t.reset != nil {
			t.reset()
		}
		before := cpuOf()
		busy0, total0 := MachineCPU()
		counters0 := ingest.ReadCounters()
		res := run()
		if d := ingest.ReadCounters().Sub(counters0); d.Batches > 0 {
			res.MeanBatch = d.MeanBatch()
		}
		if used := cpuOf() - before; used > 0 && res.Requests > 0 {
			res.RedisCPUPerRequest = used / time.Duration(res.Requests)
		}
		if busy1, total1 := MachineCPU(); total1 > total0 {
			res.MachineBusy = float64(busy1-busy0) / float64(total1-total0)
		}
		return res
	}

	// Warm up connections, pools and the CPU governor.
	for _, t := range targets {
		ClosedLoop(ctx, t.name, t.url, bodies, c.Concurrency, time.Second)
	}
	fmt.Fprintf(out, "\nclosed loop: %d concurrent requests, %s per phase, %d rounds\n", c.Concurrency, c.Duration, c.Rounds)
	tput := map[string][]float64{}
	for round := range c.Rounds {
		for i := range targets {
			t := targets[(i+round)%len(targets)]
			stopProfile, err := startProfile(c.CPUProfile, t.name, round)
			if err != nil {
				return rep, err
			}
			res := phase(t, func() Result { return ClosedLoop(ctx, t.name, t.url, bodies, c.Concurrency, c.Duration) })
			stopProfile()
			fmt.Fprintf(out, "round %d  %s\n", round+1, res)
			rep.ClosedLoop = append(rep.ClosedLoop, res)
			tput[t.name] = append(tput[t.name], res.Throughput())
			if ctx.Err() != nil {
				return rep, ctx.Err()
			}
		}
	}
	if c.Rounds > 0 {
		fmt.Fprintln(out, "\nmedian throughput (2xx/s):")
		for _, t := range targets {
			fmt.Fprintf(out, "  %-12s %9.0f\n", t.name, median(tput[t.name]))
		}
	}
	if c.Rounds > 0 && len(targets) == 3 {
		hs, nv, vo := median(tput["hookstream"]), median(tput["naive-xadd"]), median(tput["hmac-only"])
		fmt.Fprintf(out, "ratios of the medians: hookstream/naive-xadd = %.2fx (goal >= 1.10), hookstream/hmac-only = %.2fx (goal >= 0.70)\n", hs/nv, hs/vo)
		// The machine's speed drifts between rounds; the three receivers of
		// one round ran within seconds of each other, so per-round ratios
		// are less disturbed by that drift.
		var rn, rv []float64
		for i := range tput["hookstream"] {
			rn = append(rn, tput["hookstream"][i]/tput["naive-xadd"][i])
			rv = append(rv, tput["hookstream"][i]/tput["hmac-only"][i])
		}
		fmt.Fprintf(out, "per-round ratios:      hookstream/naive-xadd %s (median %.2fx), hookstream/hmac-only %s (median %.2fx)\n",
			fmtRatios(rn), median(rn), fmtRatios(rv), median(rv))
	}

	fmt.Fprintf(out, "\nopen loop: %.0f requests/s for %s, latency from scheduled send time\n", c.Rate, c.OpenDuration)
	for _, t := range targets {
		res := phase(t, func() Result { return OpenLoop(ctx, t.name, t.url, bodies, c.Rate, c.OpenDuration, c.OpenConnections) })
		fmt.Fprintf(out, "  %s\n", res)
		rep.OpenLoop = append(rep.OpenLoop, res)
	}
	return rep, nil
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

func fmtRatios(v []float64) string {
	parts := make([]string, len(v))
	for i, x := range v {
		parts[i] = fmt.Sprintf("%.2f", x)
	}
	return strings.Join(parts, " ")
}

// startProfile profiles the first round's phase of one receiver into
// base.<name>; it does nothing for later rounds or without a base name.
func startProfile(base, name string, round int) (stop func(), err error) {
	if base == "" || round != 0 {
		return func() {}, nil
	}
	return startCPUProfile(base + "." + name)
}

// startCPUProfile profiles this process into path until stop is called.
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("create CPU profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}
