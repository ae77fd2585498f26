package main

import (
	"bytes"
	"context"
	"flag"
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
	"github.com/hookstream/hookstream/internal/bench"
	"github.com/hookstream/hookstream/internal/testenv"
	"github.com/hookstream/hookstream/process"
	"github.com/hookstream/hookstream/query"
	"github.com/hookstream/hookstream/store"
	"github.com/hookstream/hookstream/stream"
	"github.com/hookstream/hookstream/windows"
	"github.com/peterbourgon/ff/v3/ffcli"
)

type benchWindowsConfig struct {
	common
	probes     int
	probeRate  float64
	background float64
	keep       bool
}

func benchWindowsCommand() *ffcli.Command {
	fs := flag.NewFlagSet("hookstream bench windows", flag.ContinueOnError)
	var c benchWindowsConfig
	c.common.register(fs)
	fs.IntVar(&c.probes, "probes", 300, "probe events per phase")
	fs.Float64Var(&c.probeRate, "probe-rate", 10, "probes per second")
	fs.Float64Var(&c.background, "background", 2000, "webhooks per second of background traffic in the loaded phase")
	fs.BoolVar(&c.keep, "keep", false, "keep the benchmark's Redis keys and PostgreSQL schema")
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
		Exec:    func(ctx context.Context, _ []string) error { return runBenchWindows(ctx, &c) },
	}
}

func runBenchWindows(ctx context.Context, c *benchWindowsConfig) error {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	rdb, err := redisClient(c.redisURL, 5*time.Second, 16)
	if err != nil {
		return err
	}
	defer rdb.Close()
	ns := testenv.Name("hsbenchw")
	keys := stream.NewKeys(ns, c.partitions)
	if !c.keep {
		defer stream.DeleteKeys(context.Background(), rdb, keys.Pattern())
	}
	admin, err := store.Open(ctx, c.dbURL)
	if err != nil {
		return err
	}
	defer admin.Close()
	if !c.keep {
		defer admin.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+ns+" CASCADE")
	}
	db, err := benchSchema(ctx, admin, c.dbURL, ns)
	if err != nil {
		return err
	}
	defer db.Close()

	secret := []byte("bench-windows")
	spool, err := os.MkdirTemp("", "hookstream-bench-spool")
	if err != nil {
		return err
	}
	defer os.RemoveAll(spool)
	recv, err := ingest.New(rdb, keys, ingest.Options{Secrets: [][]byte{secret}, SpoolDir: spool, Logger: log})
	if err != nil {
		return err
	}
	if err := recv.Start(ctx); err != nil {
		return err
	}
	defer recv.Stop(context.Background())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: recv.Handler()}
	go srv.Serve(ln)
	defer srv.Close()
	url := "http://" + ln.Addr().String() + "/webhooks/dwolla"

	folder, err := windows.NewFolder(windows.Config{})
	if err != nil {
		return err
	}
	proc, err := process.New(rdb, db, keys, process.Options{Folders: []process.Folder{folder}, Logger: log})
	if err != nil {
		return err
	}
	pctx, stopProc := context.WithCancel(ctx)
	procDone := make(chan struct{})
	go func() { defer close(procDone); proc.Run(pctx) }()
	closer := &windows.Closer{DB: db, Partitions: keys.Partitions, Config: folder.Config(), Log: log}
	go closer.Run(pctx)
	defer func() { stopProc(); <-procDone }()

	client := bench.Client(4)
	fmt.Printf("ACK → visible in the 1m window through the query layer, %d probes at %.0f/s per phase\n", c.probes, c.probeRate)
	probe := func(phase string, seq int) ([]time.Duration, error) {
		var lat []time.Duration
		tick := time.NewTicker(time.Duration(float64(time.Second) / c.probeRate))
		defer tick.Stop()
		for i := range c.probes {
			<-tick.C
			topic := fmt.Sprintf("bench_probe_%s_%d", phase, i)
			now := time.Now().UTC()
			id := fmt.Sprintf("%08x-0000-4000-9000-%012x", seq, i)
			body := []byte(fmt.Sprintf(`{"id":%q,"topic":%q,"created":%q,"_links":{"resource":{"href":"https://api-sandbox.dwolla.com/customers/probe-%d"},"customer":{"href":"https://api-sandbox.dwolla.com/customers/probe-%d"}}}`,
				id, topic, now.Format("2006-01-02T15:04:05.000Z"), i, i))
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
			w := windows.Start(now, time.Minute)
			req2 := query.MetricsRequest{Window: time.Minute, Metric: query.Count, Filter: map[string][]string{"topic": {topic}}, From: w, To: w.Add(time.Minute)}
			for {
				res, err := query.QueryMetrics(ctx, db, folder.Config(), req2)
				if err != nil {
					return lat, err
				}
				if len(res.Points) > 0 && res.Points[0].Count > 0 {
					break
				}
				if time.Since(acked) > 30*time.Second {
					return lat, fmt.Errorf("probe %s not visible after 30s", id)
				}
				time.Sleep(2 * time.Millisecond)
			}
			lat = append(lat, time.Since(acked))
		}
		return lat, nil
	}
	report := func(name string, lat []time.Duration) {
		slices.Sort(lat)
		q := func(p float64) time.Duration { return lat[int(p*float64(len(lat)-1))].Round(100 * time.Microsecond) }
		fmt.Printf("  %-28s p50 %8s  p90 %8s  p99 %8s  max %8s\n", name, q(0.5), q(0.9), q(0.99), lat[len(lat)-1].Round(100*time.Microsecond))
	}
	lat, err := probe("idle", 1)
	if err != nil {
		return err
	}
	report("idle", lat)

	bctx, stopLoad := context.WithCancel(ctx)
	loadDone := make(chan bench.Result, 1)
	go func() {
		loadDone <- bench.OpenLoop(bctx, "background", url, bench.NewBodies(secret, ns), c.background, time.Hour, 64)
	}()
	time.Sleep(2 * time.Second)
	lat, err = probe("loaded", 2)
	stopLoad()
	bg := <-loadDone
	if err != nil {
		return err
	}
	report(fmt.Sprintf("under %.0f webhooks/s", c.background), lat)
	fmt.Printf("  background: %s\n", bg)
	st := proc.Stats()
	fmt.Printf("  processor: %d stored in %d batches\n", st.Stored, st.Batches)
	return nil
}
