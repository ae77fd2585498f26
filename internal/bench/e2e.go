package bench

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hookstream/hookstream/dwolla"
	"github.com/hookstream/hookstream/internal/scratch"
	"github.com/hookstream/hookstream/sim"
	"github.com/hookstream/hookstream/store"
	"github.com/hookstream/hookstream/stream"
	"github.com/hookstream/hookstream/windows"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
)

// E2EConfig configures the end-to-end benchmark (`hookstream bench e2e`).
type E2EConfig struct {
	RedisURL, DatabaseURL string
	Partitions            int
	// Binary is the hookstream executable started as `serve` (default: this
	// program). Ignored with Target.
	Binary string
	// Target is the webhook URL of a deployment that is already running
	// (then nothing is started; RedisURL, DatabaseURL, Namespace and Secret
	// must be the deployment's). Empty: start hookstream here.
	Target    string
	Namespace string // the deployment's --namespace, with Target
	Secret    string
	// Split runs the receiver and the processor as two processes (the
	// processor under `nice -n Nice`) instead of one `serve --roles all`.
	Split bool
	Nice  int
	// ServeArgs are added to every serve command line (e.g. --workers 3).
	ServeArgs []string
	// Rates are the offered rates measured one after the other, each for
	// Duration. The sustainable-rate search and the spike follow.
	Rates      []float64
	Duration   time.Duration
	Duplicates float64 // fraction of requests that resend an earlier webhook (Dwolla's retries)
	// Connections bounds the requests in flight (each on its own connection).
	Connections int
	// ProbeRate is probes per second, each timed from its ACK to its count
	// in the 1m window through the query layer.
	ProbeRate float64
	// Sustain searches the highest rate, from SustainFrom in steps of
	// SustainStep, sustained for SustainDuration with zero non-2xx and the
	// backlog flat.
	Sustain                  bool
	SustainFrom, SustainStep float64
	SustainDuration          time.Duration
	// Spike runs SpikeBase/s for SpikeEdge, then SpikeFactor times that for
	// SpikeDuration, then SpikeBase/s for SpikeEdge, then waits until the
	// backlog is drained (at most DrainLimit).
	Spike         bool
	SpikeBase     float64
	SpikeFactor   float64
	SpikeDuration time.Duration
	SpikeEdge     time.Duration // the base rate before and after the peak
	DrainLimit    time.Duration
	Keep          bool
	Out           io.Writer
}

func (c E2EConfig) withDefaults() (E2EConfig, error) {
	c.RedisURL = cmp.Or(c.RedisURL, defaultRedisURL)
	c.DatabaseURL = cmp.Or(c.DatabaseURL, defaultDatabaseURL)
	c.Partitions = cmp.Or(c.Partitions, defaultPartitions)
	c.Secret = cmp.Or(c.Secret, "bench-e2e-secret")
	c.Duration = cmp.Or(c.Duration, time.Minute)
	c.Connections = cmp.Or(c.Connections, 512)
	c.ProbeRate = cmp.Or(c.ProbeRate, 2)
	c.SustainStep = cmp.Or(c.SustainStep, 1000)
	c.SustainDuration = cmp.Or(c.SustainDuration, time.Minute)
	c.SpikeBase = cmp.Or(c.SpikeBase, 1000)
	c.SpikeFactor = cmp.Or(c.SpikeFactor, 10)
	c.SpikeDuration = cmp.Or(c.SpikeDuration, time.Minute)
	c.SpikeEdge = cmp.Or(c.SpikeEdge, 20*time.Second)
	c.DrainLimit = cmp.Or(c.DrainLimit, 2*time.Minute)
	c.Out = orDiscard(c.Out)
	errs := []error{notNegative("--partitions", c.Partitions), notNegative("--duration", c.Duration),
		notNegative("--connections", c.Connections), notNegative("--probe-rate", c.ProbeRate),
		notNegative("--sustain-from", c.SustainFrom), notNegative("--sustain-step", c.SustainStep),
		notNegative("--spike-base", c.SpikeBase), notNegative("--spike-duration", c.SpikeDuration), notNegative("--nice", c.Nice)}
	for _, r := range c.Rates {
		if r <= 0 {
			errs = append(errs, fmt.Errorf("--rates: %v is not a positive rate", r))
		}
	}
	if c.Duplicates < 0 || c.Duplicates >= 1 {
		errs = append(errs, fmt.Errorf("--duplicates %v: must be in [0, 1)", c.Duplicates))
	}
	if c.SpikeFactor < 1 {
		errs = append(errs, fmt.Errorf("--spike-factor %v: must be at least 1", c.SpikeFactor))
	}
	if c.Target != "" && c.Namespace == "" {
		errs = append(errs, errors.New("--target needs --namespace: the deployment's, to read its backlog"))
	}
	if len(c.Rates) == 0 && !c.Sustain && !c.Spike {
		errs = append(errs, errors.New("nothing to run: give --rates, --sustain or --spike"))
	}
	return c, errors.Join(errs...)
}

// E2EPhase is one measured load phase.
type E2EPhase struct {
	Name    string
	Offered float64 // webhooks per second offered (the peak, for the spike)
	Load    Result  // every request: ACK latency from its scheduled time, non-2xx, errors
	// Stored is events stored (first deliveries) whose receipt fell in the
	// phase; LagP50/LagP99 their receipt-to-stored time, and LagP99By10s
	// that p99 per 10 s of receipt, to see whether it stays flat.
	Stored         int64
	LagP50, LagP99 time.Duration
	LagP99By10s    []time.Duration
	// Backlog is the group's backlog (undelivered + pending) sampled every
	// second; Slope its least-squares growth in entries per second; Flat
	// whether it grew by less than 1% of the offered rate.
	Backlog []int64
	Slope   float64
	Flat    bool
	// Visible is each probe's time from ACK to its count in the 1m window.
	Visible []time.Duration
	// Drained is how long after the load the backlog took to reach zero
	// (-1: not within the drain limit).
	Drained time.Duration
	// CPU time spent during the phase (load and drain), per process.
	CPU map[string]time.Duration
}

// E2EReport is what E2E measured.
type E2EReport struct {
	Phases []E2EPhase
	// Sustained is the highest rate of the search that held (0: none did
	// or no search ran).
	Sustained float64
}

// e2eRun is a running benchmark: the deployment under load and the
// connections to read its state.
type e2eRun struct {
	c      E2EConfig
	out    io.Writer
	url    string
	rdb    redis.UniversalClient
	db     *pgxpool.Pool
	keys   stream.Keys
	wcfg   windows.Config
	procs  map[string]*os.Process // role name -> process (local only)
	gen    *webhookGen
	probeN atomic.Int64
}

// E2E runs hookstream end to end: receivers, processors and every fold (the
// roles of `serve --roles all`: ingest, process with windows, journeys and
// anomaly scoring, alert) against open-loop webhook load, and reports per
// offered rate the ACK latency, the receipt-to-stored lag and whether it
// stays flat, ACK-to-visible in the 1m window, CPU per event by process,
// then the highest sustainable rate and a spike.
func E2E(ctx context.Context, c E2EConfig) (E2EReport, error) {
	var rep E2EReport
	c, err := c.withDefaults()
	if err != nil {
		return rep, err
	}
	r := &e2eRun{c: c, out: c.Out, procs: map[string]*os.Process{}}
	if r.rdb, err = stream.NewClient(c.RedisURL, 10*time.Second, 8); err != nil {
		return rep, err
	}
	defer r.rdb.Close()
	folder, err := windows.NewFold(windows.Config{})
	if err != nil {
		return rep, err
	}
	r.wcfg = folder.Config()

	if c.Target != "" {
		r.url = c.Target
		r.keys = stream.NewKeys(c.Namespace, c.Partitions)
		if r.db, err = store.Open(ctx, c.DatabaseURL); err != nil {
			return rep, err
		}
		defer r.db.Close()
	} else {
		stop, err := r.start(ctx)
		if stop != nil {
			defer stop()
		}
		if err != nil {
			return rep, err
		}
	}
	r.gen = newWebhookGen([]byte(c.Secret), c.Duplicates)

	fmt.Fprintf(r.out, "hookstream end to end: %s, %d partitions, %.0f%% duplicates, at most %d requests in flight\n",
		r.topology(), c.Partitions, 100*c.Duplicates, c.Connections)
	fmt.Fprintf(r.out, "ACK: from each request's scheduled time (open loop). lag: receipt to stored (events.stored_at - received_at).\n")
	fmt.Fprintf(r.out, "visible: a probe's ACK to its count in the 1m window through the query layer. CPU: per stored event.\n\n")
	for _, rate := range c.Rates {
		ph, err := r.phase(ctx, fmt.Sprintf("%.0f/s", rate), []segment{{rate, c.Duration}})
		if err != nil {
			return rep, err
		}
		rep.Phases = append(rep.Phases, ph)
	}
	if c.Sustain {
		from := c.SustainFrom
		if from == 0 {
			from = c.SustainStep
			for _, ph := range rep.Phases {
				if ph.Flat && ph.Load.Non2xx+ph.Load.Errors == 0 {
					from = max(from, ph.Offered+c.SustainStep)
				}
			}
		}
		fmt.Fprintf(r.out, "sustainable rate: from %.0f/s in steps of %.0f/s, %s each, until the backlog grows or a request fails\n", from, c.SustainStep, c.SustainDuration)
		for rate := from; ; rate += c.SustainStep {
			ph, err := r.phase(ctx, fmt.Sprintf("sustain %.0f/s", rate), []segment{{rate, c.SustainDuration}})
			if err != nil {
				return rep, err
			}
			rep.Phases = append(rep.Phases, ph)
			if !ph.Flat || ph.Load.Non2xx+ph.Load.Errors > 0 || ph.Drained < 0 {
				break
			}
			rep.Sustained = rate
		}
		if rep.Sustained > 0 {
			fmt.Fprintf(r.out, "highest rate sustained for %s with the backlog flat and every webhook 2xx: %.0f/s\n\n", c.SustainDuration, rep.Sustained)
		} else {
			fmt.Fprintf(r.out, "no rate of the search was sustained\n\n")
		}
	}
	if c.Spike {
		peak := c.SpikeBase * c.SpikeFactor
		ph, err := r.phase(ctx, fmt.Sprintf("spike %.0f→%.0f→%.0f/s", c.SpikeBase, peak, c.SpikeBase),
			[]segment{{c.SpikeBase, c.SpikeEdge}, {peak, c.SpikeDuration}, {c.SpikeBase, c.SpikeEdge}})
		if err != nil {
			return rep, err
		}
		rep.Phases = append(rep.Phases, ph)
	}
	return rep, nil
}

func (r *e2eRun) topology() string {
	switch {
	case r.c.Target != "":
		return "remote deployment at " + r.c.Target
	case r.c.Split:
		return fmt.Sprintf("two processes: serve --roles ingest, serve --roles process,alert under nice %d", r.c.Nice)
	default:
		return "one process: serve --roles all"
	}
}

// start creates a fresh namespace and schema and starts hookstream on them.
func (r *e2eRun) start(ctx context.Context) (func(), error) {
	c := r.c
	var cleanups []func()
	stop := func() {
		for i := len(cleanups) - 1; i >= 0; i-- {
			cleanups[i]()
		}
	}
	ns := scratch.Name("hsbenche")
	r.keys = stream.NewKeys(ns, c.Partitions)
	if !c.Keep {
		cleanups = append(cleanups, func() { stream.DeleteKeys(context.Background(), r.rdb, r.keys.Pattern()) })
	}
	admin, err := store.Open(ctx, c.DatabaseURL)
	if err != nil {
		return stop, err
	}
	cleanups = append(cleanups, admin.Close)
	if !c.Keep {
		cleanups = append(cleanups, func() { admin.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+ns+" CASCADE") })
	}
	if r.db, err = newSchema(ctx, admin, c.DatabaseURL, ns); err != nil {
		return stop, err
	}
	cleanups = append(cleanups, r.db.Close)
	dir, err := os.MkdirTemp("", "hookstream-bench-e2e")
	if err != nil {
		return stop, err
	}
	cleanups = append(cleanups, func() { os.RemoveAll(dir) })
	bin := c.Binary
	if bin == "" {
		if bin, err = os.Executable(); err != nil {
			return stop, err
		}
	}
	base := []string{"serve", "--namespace", ns, "--partitions", strconv.Itoa(c.Partitions),
		"--redis-url", c.RedisURL, "--database-url", scratch.WithSearchPath(c.DatabaseURL, ns),
		"--webhook-secrets", c.Secret}
	type child struct {
		name, roles string
		nice        int
	}
	children := []child{{"hookstream", "all", 0}}
	if c.Split {
		children = []child{{"receiver", "ingest", 0}, {"processor", "process,alert", c.Nice}}
	}
	for _, ch := range children {
		port, err := freePort()
		if err != nil {
			return stop, err
		}
		addr := "127.0.0.1:" + strconv.Itoa(port)
		args := append(slices.Clone(base), "--roles", ch.roles, "--http-addr", addr,
			"--spool-dir", filepath.Join(dir, ch.name+"-spool"), "--consumer", ch.name)
		args = append(args, c.ServeArgs...)
		name := bin
		if ch.nice > 0 {
			args = append([]string{"-n", strconv.Itoa(ch.nice), bin}, args...)
			name = "nice"
		}
		cmd := exec.Command(name, args...)
		logf, err := os.Create(filepath.Join(dir, ch.name+".log"))
		if err != nil {
			return stop, err
		}
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			logf.Close()
			return stop, fmt.Errorf("start %s: %w", strings.Join(cmd.Args, " "), err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		cleanups = append(cleanups, func() {
			cmd.Process.Signal(os.Interrupt)
			select {
			case <-exited:
			case <-time.After(40 * time.Second):
				cmd.Process.Kill()
				<-exited
			}
			logf.Close()
		})
		r.procs[ch.name] = cmd.Process
		health := "http://" + addr + "/healthz"
		if strings.Contains(ch.roles, "ingest") || ch.roles == "all" {
			r.url = "http://" + addr + "/webhooks/dwolla"
			health = "http://" + addr + "/readyz"
		}
		if err := waitHTTP(ctx, health, exited, 30*time.Second); err != nil {
			logs, _ := os.ReadFile(logf.Name())
			return stop, fmt.Errorf("%s did not become ready: %w\n%s", ch.name, err, tail(logs, 2000))
		}
	}
	return stop, nil
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// waitHTTP polls url until it answers 200, the process exits or limit passes.
func waitHTTP(ctx context.Context, url string, exited <-chan error, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not 200 after %s (last: %v)", url, limit, err)
		}
		select {
		case err := <-exited:
			return fmt.Errorf("exited: %v", err)
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// segment is a stretch of constant offered load.
type segment struct {
	rate float64
	dur  time.Duration
}

// cpuReading is the CPU time used so far by each process of interest.
func (r *e2eRun) cpuReading(ctx context.Context) map[string]time.Duration {
	m := map[string]time.Duration{"load generator": selfCPU(), "redis": redisCPU(ctx, r.rdb), "postgresql": ProcessCPU("postgres")}
	for name, p := range r.procs {
		m[name] = pidCPU(p.Pid)
	}
	return m
}

// backlog is the group's undelivered plus pending entries.
func (r *e2eRun) backlog(ctx context.Context) (int64, error) {
	parts, err := stream.NewGroup(r.rdb, r.keys, "process").Status(ctx)
	if err != nil {
		return 0, err
	}
	var n int64
	for _, p := range parts {
		n += p.Pending + max(p.Lag, 0)
	}
	return n, nil
}

// phase offers the segments' load, probes window visibility meanwhile,
// samples the backlog every second, waits for the drain, then reads the lag
// of what was stored.
func (r *e2eRun) phase(ctx context.Context, name string, segs []segment) (E2EPhase, error) {
	ph := E2EPhase{Name: name, Drained: -1}
	for _, s := range segs {
		ph.Offered = max(ph.Offered, s.rate)
	}
	if err := r.waitDrained(ctx, r.c.DrainLimit); err != nil {
		return ph, fmt.Errorf("before %s: %w", name, err)
	}
	cpu0 := r.cpuReading(ctx)
	start := time.Now()
	lctx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	var wg sync.WaitGroup
	var probeErr error
	wg.Go(func() { ph.Visible, probeErr = r.probe(lctx) })
	var samples []int64
	var sampleErr error
	wg.Go(func() {
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-lctx.Done():
				return
			case <-tick.C:
				n, err := r.backlog(ctx)
				if err != nil {
					sampleErr = err
					return
				}
				samples = append(samples, n)
			}
		}
	})
	ph.Load = openLoopSegments(ctx, name, r.url, r.gen, segs, r.c.Connections)
	loadEnd := time.Now()
	stopLoad()
	wg.Wait()
	if probeErr != nil {
		return ph, fmt.Errorf("%s: probes: %w", name, probeErr)
	}
	if sampleErr != nil {
		return ph, fmt.Errorf("%s: backlog: %w", name, sampleErr)
	}
	ph.Backlog = samples
	ph.Slope = slope(samples)
	ph.Flat = ph.Slope < 0.01*ph.Offered
	if len(segs) > 1 {
		// A spike's backlog grows by design; what counts is the drain.
		ph.Flat = false
	}
	if err := r.waitDrained(ctx, r.c.DrainLimit); err == nil {
		ph.Drained = time.Since(loadEnd)
	}
	cpu1 := r.cpuReading(ctx)
	ph.CPU = map[string]time.Duration{}
	for k, v := range cpu1 {
		ph.CPU[k] = v - cpu0[k]
	}
	if err := r.lag(ctx, start, loadEnd, &ph); err != nil {
		return ph, err
	}
	r.print(ph)
	return ph, nil
}

// waitDrained waits until the backlog is zero, at most limit.
func (r *e2eRun) waitDrained(ctx context.Context, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		n, err := r.backlog(ctx)
		if err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("backlog of %d entries not drained within %s", n, limit)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// lag reads receipt-to-stored of the events received in [from, to).
func (r *e2eRun) lag(ctx context.Context, from, to time.Time, ph *E2EPhase) error {
	const q = `SELECT floor(extract(epoch FROM received_at - $1::timestamptz) / 10)::int AS bucket,
	       count(*),
	       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM stored_at - received_at)),
	       percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM stored_at - received_at))
	  FROM events WHERE received_at >= $1 AND received_at < $2 AND topic NOT LIKE 'bench_probe_%'
	 GROUP BY ROLLUP (1) ORDER BY 1 NULLS LAST`
	rows, err := r.db.Query(ctx, q, from, to)
	if err != nil {
		return fmt.Errorf("read the lag: %w", err)
	}
	defer rows.Close()
	sec := func(f float64) time.Duration { return time.Duration(f * float64(time.Second)) }
	for rows.Next() {
		var bucket *int32
		var n int64
		var p50, p99 float64
		if err := rows.Scan(&bucket, &n, &p50, &p99); err != nil {
			return err
		}
		if bucket == nil {
			ph.Stored, ph.LagP50, ph.LagP99 = n, sec(p50), sec(p99)
			continue
		}
		ph.LagP99By10s = append(ph.LagP99By10s, sec(p99))
	}
	return rows.Err()
}

// probe sends a probe webhook every 1/ProbeRate until ctx ends and times
// each from its ACK to its count in the 1m window.
func (r *e2eRun) probe(ctx context.Context) ([]time.Duration, error) {
	if r.c.ProbeRate == 0 {
		return nil, nil
	}
	client := Client(4)
	defer client.CloseIdleConnections()
	tick := time.NewTicker(time.Duration(float64(time.Second) / r.c.ProbeRate))
	defer tick.Stop()
	var lat []time.Duration
	var mu sync.Mutex
	var wg sync.WaitGroup
	var firstErr error
	defer wg.Wait()
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			slices.Sort(lat)
			return lat, firstErr
		case <-tick.C:
		}
		i := r.probeN.Add(1)
		now := time.Now().UTC()
		topic := fmt.Sprintf("bench_probe_%d", i)
		id := fmt.Sprintf("%08x-0000-4000-9000-%012x", rand.Uint32(), i)
		body := probeBody(id, topic, now, i)
		wg.Go(func() {
			d, err := r.visible(context.WithoutCancel(ctx), client, body, topic, now)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				firstErr = cmp.Or(firstErr, err)
				return
			}
			lat = append(lat, d)
		})
	}
}

func (r *e2eRun) visible(ctx context.Context, client *http.Client, body []byte, topic string, created time.Time) (time.Duration, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, r.url, bytes.NewReader(body))
	req.Header.Set(dwolla.SignatureHeader, dwolla.Sign([]byte(r.c.Secret), body))
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("probe answered %d", resp.StatusCode)
	}
	// 20 ms: coarse enough not to load PostgreSQL under the benchmark.
	return waitCounted(ctx, r.db, r.wcfg, topic, created, time.Now(), 20*time.Millisecond, 2*time.Minute)
}

// slope is the least-squares growth per sample of v, ignoring the first
// five samples (the load ramping up).
func slope(v []int64) float64 {
	if len(v) > 10 {
		v = v[5:]
	}
	n := float64(len(v))
	if n < 2 {
		return 0
	}
	var sx, sy, sxx, sxy float64
	for i, y := range v {
		x := float64(i)
		sx, sy, sxx, sxy = sx+x, sy+float64(y), sxx+x*x, sxy+x*float64(y)
	}
	return (n*sxy - sx*sy) / (n*sxx - sx*sx)
}

func (r *e2eRun) print(ph E2EPhase) {
	out := r.out
	l := ph.Load
	fmt.Fprintf(out, "%s\n", ph.Name)
	fmt.Fprintf(out, "  offered %.0f/s, answered 2xx %.0f/s; ACK p50 %s p99 %s max %s; non-2xx %d, errors %d\n",
		ph.Offered, l.Throughput(), ms(l.Quantile(.5)), ms(l.Quantile(.99)), ms(l.Quantile(1)), l.Non2xx, l.Errors)
	fmt.Fprintf(out, "  stored %d events; lag receipt→stored p50 %s p99 %s; p99 per 10 s: %s\n",
		ph.Stored, ms(ph.LagP50), ms(ph.LagP99), durList(ph.LagP99By10s))
	drained := "not within " + r.c.DrainLimit.String()
	if ph.Drained >= 0 {
		drained = "in " + ph.Drained.Round(100*time.Millisecond).String()
	}
	flat := "grows"
	if ph.Flat {
		flat = "flat"
	}
	if len(ph.Backlog) > 0 {
		fmt.Fprintf(out, "  backlog: max %d, end %d, slope %+.0f entries/s (%s); drained after the load %s\n",
			slices.Max(ph.Backlog), ph.Backlog[len(ph.Backlog)-1], ph.Slope, flat, drained)
	}
	if v := ph.Visible; len(v) > 0 {
		q := func(p float64) time.Duration { return v[int(p*float64(len(v)-1))] }
		fmt.Fprintf(out, "  ACK → visible in the 1m window (%d probes): p50 %s p99 %s max %s\n", len(v), ms(q(.5)), ms(q(.99)), ms(v[len(v)-1]))
	}
	if ph.Stored > 0 {
		names := make([]string, 0, len(ph.CPU))
		var total time.Duration
		for k, v := range ph.CPU {
			names = append(names, k)
			total += v
		}
		slices.Sort(names)
		var b strings.Builder
		for _, k := range names {
			fmt.Fprintf(&b, " %s %.0f µs,", k, perEvent(ph.CPU[k], ph.Stored))
		}
		cores := runtime.NumCPU()
		fmt.Fprintf(out, "  CPU per stored event:%s total %.0f µs (the machine's %d cores give %.0f µs per stored event at this rate)\n",
			b.String(), perEvent(total, ph.Stored), cores, perEvent(time.Duration(cores)*l.Duration, ph.Stored))
	}
	fmt.Fprintln(out)
}

func perEvent(d time.Duration, n int64) float64 {
	return float64(d) / float64(time.Microsecond) / float64(n)
}

func durList(v []time.Duration) string {
	s := make([]string, len(v))
	for i, d := range v {
		s[i] = d.Round(time.Millisecond).String()
	}
	return strings.Join(s, " ")
}

// webhookGen makes realistic signed webhooks: the simulator's lifecycles
// (customers, funding sources, transfers; every topic), in their order, with
// created set to the moment each is sent so event time tracks the wall
// clock; a fraction are resent earlier webhooks, as Dwolla's retries are.
type webhookGen struct {
	secret []byte
	dup    float64
	mu     sync.Mutex
	src    *sim.Ordered
	recent [][]byte // ring of recent bodies, for duplicates
	sigs   []string
	next   int
}

func newWebhookGen(secret []byte, dup float64) *webhookGen {
	src := sim.NewOrdered(sim.Config{Customers: 1 << 30, Seed: rand.Int64(), Start: time.Now().UTC(), Span: (1 << 30) * 100 * time.Millisecond})
	return &webhookGen{secret: secret, dup: dup, src: src, recent: make([][]byte, 4096), sigs: make([]string, 4096)}
}

// Next returns the body and signature to send at at.
func (g *webhookGen) Next(at time.Time) ([]byte, string) {
	g.mu.Lock()
	if g.dup > 0 && g.next > len(g.recent) && rand.Float64() < g.dup {
		i := rand.IntN(len(g.recent))
		b, s := g.recent[i], g.sigs[i]
		g.mu.Unlock()
		return b, s
	}
	ev := g.src.Next()
	g.mu.Unlock()
	old := []byte(`"` + ev.Created.UTC().Format("2006-01-02T15:04:05.000Z") + `"`)
	now := []byte(`"` + at.UTC().Format("2006-01-02T15:04:05.000Z") + `"`)
	body := bytes.ReplaceAll(ev.Body, old, now)
	sig := dwolla.Sign(g.secret, body)
	g.mu.Lock()
	g.recent[g.next%len(g.recent)], g.sigs[g.next%len(g.sigs)] = body, sig
	g.next++
	g.mu.Unlock()
	return body, sig
}

// openLoopSegments offers each segment's rate for its duration, one request
// at each scheduled time whether or not earlier ones were answered, at most
// maxConc in flight; latency counts from the scheduled time (no coordinated
// omission).
func openLoopSegments(ctx context.Context, name, url string, gen *webhookGen, segs []segment, maxConc int) Result {
	client := Client(maxConc)
	defer client.CloseIdleConnections()
	var rec recorder
	sched := make(chan time.Time, maxConc)
	var wg sync.WaitGroup
	for range maxConc {
		wg.Go(func() {
			var lat []time.Duration
			for at := range sched {
				body, sig := gen.Next(at)
				rec.post(client, url, body, sig)
				lat = append(lat, time.Since(at))
			}
			rec.mu.Lock()
			rec.lat = append(rec.lat, lat...)
			rec.mu.Unlock()
		})
	}
	start := time.Now()
	segStart := start
	for _, s := range segs {
		interval := time.Duration(float64(time.Second) / s.rate)
		n := int(s.rate * s.dur.Seconds())
		for i := range n {
			at := segStart.Add(time.Duration(i) * interval)
			if w := time.Until(at); w > 0 {
				time.Sleep(w)
			}
			if ctx.Err() != nil {
				break
			}
			sched <- at
		}
		segStart = segStart.Add(s.dur)
	}
	close(sched)
	wg.Wait()
	return rec.result(name, time.Since(start))
}
