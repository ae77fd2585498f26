package bench

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"time"

	"github.com/hookstream/hookstream/dwolla"
	"github.com/hookstream/hookstream/ingest"
	"github.com/hookstream/hookstream/internal/scratch"
	"github.com/hookstream/hookstream/process"
	"github.com/hookstream/hookstream/store"
	"github.com/hookstream/hookstream/stream"
	"github.com/hookstream/hookstream/windows"
	"github.com/jackc/pgx/v5/pgxpool"
)

// WindowsConfig configures Windows; each field is the flag of `hookstream
// bench windows` named in its comment. Zero values take the defaults in
// parentheses.
type WindowsConfig struct {
	// RedisURL (--redis-url, default redis://127.0.0.1:6379/0) and
	// DatabaseURL (--database-url, default the local postgres database) are
	// the servers; the benchmark works in a fresh namespace and schema.
	RedisURL, DatabaseURL string
	// Partitions is the number of partition streams (--partitions, default 16).
	Partitions int
	// Probes is the number of probe events per phase (--probes, default 300).
	Probes int
	// ProbeRate is probes per second (--probe-rate, default 10).
	ProbeRate float64
	// Background is webhooks per second of background traffic in the
	// loaded phase (--background, default 2000).
	Background float64
	// Keep keeps the benchmark's Redis keys and PostgreSQL schema (--keep).
	Keep bool
	// Out receives the report, phase by phase (nil: discarded).
	Out io.Writer
}

func (c WindowsConfig) withDefaults() (WindowsConfig, error) {
	c.RedisURL = cmp.Or(c.RedisURL, defaultRedisURL)
	c.DatabaseURL = cmp.Or(c.DatabaseURL, defaultDatabaseURL)
	c.Partitions = cmp.Or(c.Partitions, defaultPartitions)
	c.Probes = cmp.Or(c.Probes, 300)
	c.ProbeRate = cmp.Or(c.ProbeRate, 10)
	c.Background = cmp.Or(c.Background, 2000)
	c.Out = orDiscard(c.Out)
	return c, errors.Join(notNegative("--partitions", c.Partitions), notNegative("--probes", c.Probes),
		notNegative("--probe-rate", c.ProbeRate), notNegative("--background", c.Background))
}

// WindowsReport is what Windows measured: each probe's time from its ACK to
// its count in the 1m window, sorted, on an idle pipeline and under load.
type WindowsReport struct {
	Idle, Loaded []time.Duration
	// Background is the load of the loaded phase.
	Background Result
	// Stored and Batches are the processor's totals at the end.
	Stored, Batches int64
}

// Windows measures the latency from a webhook's ACK to its count in the 1m
// window. It runs a receiver and a processor (with window folding) in this
// process on a fresh namespace and schema. Each probe is a signed webhook
// with a topic of its own, created now; once the receiver answers 200 the
// probe polls the query layer (the one the CLI, API and Grafana use) every
// 2 ms until the probe's 1m window, filtered to its topic, counts it. It
// reports p50, p90, p99 and max of ACK-to-visible, first on an idle
// pipeline, then under c.Background webhooks per second.
func Windows(ctx context.Context, c WindowsConfig) (WindowsReport, error) {
	var rep WindowsReport
	c, err := c.withDefaults()
	if err != nil {
		return rep, err
	}
	out := c.Out
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	rdb, err := stream.NewClient(c.RedisURL, 5*time.Second, 16)
	if err != nil {
		return rep, err
	}
	defer rdb.Close()
	ns := scratch.Name("hsbenchw")
	keys := stream.NewKeys(ns, c.Partitions)
	if !c.Keep {
		defer stream.DeleteKeys(context.Background(), rdb, keys.Pattern())
	}
	admin, err := store.Open(ctx, c.DatabaseURL)
	if err != nil {
		return rep, err
	}
	defer admin.Close()
	if !c.Keep {
		defer admin.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+ns+" CASCADE")
	}
	db, err := newSchema(ctx, admin, c.DatabaseURL, ns)
	if err != nil {
		return rep, err
	}
	defer db.Close()

	secret := []byte("bench-windows")
	spool, err := os.MkdirTemp("", "hookstream-bench-spool")
	if err != nil {
		return rep, err
	}
	defer os.RemoveAll(spool)
	recv, err := ingest.New(rdb, keys, ingest.Options{Secrets: [][]byte{secret}, SpoolDir: spool, Logger: log})
	if err != nil {
		return rep, err
	}
	if err := recv.Start(ctx); err != nil {
		return rep, err
	}
	defer recv.Stop(context.Background())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return rep, err
	}
	srv := &http.Server{Handler: recv.Handler()}
	go srv.Serve(ln)
	defer srv.Close()
	url := "http://" + ln.Addr().String() + "/webhooks/dwolla"

	folder, err := windows.NewFold(windows.Config{})
	if err != nil {
		return rep, err
	}
	proc, err := process.New(rdb, db, keys, process.Options{Folds: []process.Fold{folder}, Logger: log})
	if err != nil {
		return rep, err
	}
	pctx, stopProc := context.WithCancel(ctx)
	procDone := make(chan struct{})
	go func() { defer close(procDone); proc.Run(pctx) }()
	closer := &windows.Closer{DB: db, Partitions: keys.Partitions, Config: folder.Config(), Log: log}
	go closer.Run(pctx)
	defer func() { stopProc(); <-procDone }()

	client := Client(4)
	fmt.Fprintf(out, "ACK → visible in the 1m window through the query layer, %d probes at %.0f/s per phase\n", c.Probes, c.ProbeRate)
	probe := func(phase string, seq int) ([]time.Duration, error) {
		var lat []time.Duration
		tick := time.NewTicker(time.Duration(float64(time.Second) / c.ProbeRate))
		defer tick.Stop()
		for i := range c.Probes {
			<-tick.C
			topic := fmt.Sprintf("bench_probe_%s_%d", phase, i)
			now := time.Now().UTC()
			id := fmt.Sprintf("%08x-0000-4000-9000-%012x", seq, i)
			body := probeBody(id, topic, now, int64(i))
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
			req.Header.Set(dwolla.SignatureHeader, dwolla.Sign(secret, body))
			resp, err := client.Do(req)
			if err != nil {
				return lat, err
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return lat, fmt.Errorf("probe answered %d", resp.StatusCode)
			}
			acked := time.Now()
			d, err := waitCounted(ctx, db, folder.Config(), topic, now, acked, 2*time.Millisecond, 30*time.Second)
			if err != nil {
				return lat, err
			}
			lat = append(lat, d)
		}
		slices.Sort(lat)
		return lat, nil
	}
	report := func(name string, lat []time.Duration) {
		q := func(p float64) time.Duration { return lat[int(p*float64(len(lat)-1))].Round(100 * time.Microsecond) }
		fmt.Fprintf(out, "  %-28s p50 %8s  p90 %8s  p99 %8s  max %8s\n", name, q(0.5), q(0.9), q(0.99), lat[len(lat)-1].Round(100*time.Microsecond))
	}
	if rep.Idle, err = probe("idle", 1); err != nil {
		return rep, err
	}
	report("idle", rep.Idle)

	bctx, stopLoad := context.WithCancel(ctx)
	loadDone := make(chan Result, 1)
	go func() {
		loadDone <- OpenLoop(bctx, "background", url, NewBodies(secret, ns), c.Background, time.Hour, 64)
	}()
	time.Sleep(2 * time.Second) // let the background load reach its rate
	rep.Loaded, err = probe("loaded", 2)
	stopLoad()
	rep.Background = <-loadDone
	if err != nil {
		return rep, err
	}
	report(fmt.Sprintf("under %.0f webhooks/s", c.Background), rep.Loaded)
	fmt.Fprintf(out, "  background: %s\n", rep.Background)
	st := proc.Stats()
	rep.Stored, rep.Batches = st.Stored, st.Batches
	fmt.Fprintf(out, "  processor: %d stored in %d batches\n", st.Stored, st.Batches)
	return rep, nil
}

// probeBody is a minimal signed-to-be webhook whose topic is its own, so its
// count in a window is its alone.
func probeBody(id, topic string, created time.Time, i int64) []byte {
	return fmt.Appendf(nil, `{"id":%q,"topic":%q,"created":%q,"_links":{"resource":{"href":"https://api-sandbox.dwolla.com/customers/probe-%d"},"customer":{"href":"https://api-sandbox.dwolla.com/customers/probe-%d"}}}`,
		id, topic, created.UTC().Format("2006-01-02T15:04:05.000Z"), i, i)
}

// waitCounted polls the query layer every poll until the 1m window of
// created, filtered to topic, counts the probe, and returns the time since
// acked; an error past limit.
func waitCounted(ctx context.Context, db *pgxpool.Pool, cfg windows.Config, topic string, created, acked time.Time, poll, limit time.Duration) (time.Duration, error) {
	w := windows.Start(created, time.Minute)
	q := windows.MetricQuery{Window: time.Minute, Metric: windows.MetricCount, Filter: map[string][]string{"topic": {topic}}, From: w, To: w.Add(time.Minute)}
	for {
		res, err := windows.QueryMetrics(ctx, db, cfg, q)
		if err != nil {
			return 0, err
		}
		if len(res.Points) > 0 && res.Points[0].Count > 0 {
			return time.Since(acked), nil
		}
		if time.Since(acked) > limit {
			return 0, fmt.Errorf("probe %s not visible after %s", topic, limit)
		}
		time.Sleep(poll) // the polling interval is part of what is measured
	}
}
