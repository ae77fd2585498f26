package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/hookstream/hookstream/ingest"
	"github.com/hookstream/hookstream/migrations"
	"github.com/hookstream/hookstream/process"
	"github.com/hookstream/hookstream/sim"
	"github.com/hookstream/hookstream/store"
	"github.com/hookstream/hookstream/stream"
	"github.com/peterbourgon/ff/v3/ffcli"
)

func devCommand() *ffcli.Command {
	fs := flag.NewFlagSet("hookstream dev", flag.ContinueOnError)
	var cfg serveConfig
	cfg.register(fs)
	// Local defaults: loopback only, a known secret the simulator signs with.
	setDefault(fs, "http-addr", "127.0.0.1:8080")
	setDefault(fs, "webhook-secrets", "dev-secret")
	perSec := fs.Float64("customers-per-second", 10, "simulated customers starting their lifecycles each second")
	stepDelay := fs.Duration("step-delay", 3*time.Second, "mean gap between two steps of a simulated lifecycle")
	dups := fs.Float64("duplicates", 0.2, "fraction of simulated events delivered twice")
	reorder := fs.Float64("reorder", 0.2, "fraction of simulated events delivered late, after later ones")
	drop := fs.Float64("drop", 0.01, "fraction of simulated events never delivered: only the fake Dwolla API has them, for the reconcile role to recover")
	setDefault(fs, "reconcile-every", "1m")
	return &ffcli.Command{
		Name:       "dev",
		ShortUsage: "hookstream dev [flags]",
		ShortHelp:  "run everything locally with simulated Dwolla traffic (what `make dev` runs)",
		LongHelp: `Applies the migrations, runs every role in this process and feeds it simulated
Dwolla traffic (realistic lifecycles, signed, with duplicates and reordering),
printing the URLs it serves and a status line every 5 seconds. A fake Dwolla
API (the simulator's, on a free loopback port) has every simulated event,
--drop of them are never delivered, and the reconcile role recovers them
every --reconcile-every. Ctrl-C stops it in order. 'make dev' first finds or starts Redis and PostgreSQL and sets
HOOKSTREAM_REDIS_URL and HOOKSTREAM_DATABASE_URL.`,
		FlagSet: fs,
		Options: envOptions(),
		Exec: func(ctx context.Context, _ []string) error {
			return runDev(ctx, &cfg, *perSec, *stepDelay, *dups, *reorder, *drop)
		},
	}
}

func setDefault(fs *flag.FlagSet, name, value string) {
	f := fs.Lookup(name)
	f.Value.Set(value)
	f.DefValue = value
}

func runDev(ctx context.Context, cfg *serveConfig, perSec float64, stepDelay time.Duration, dups, reorder, drop float64) error {
	pool, err := store.Open(ctx, cfg.dbURL)
	if err != nil {
		return err
	}
	if _, err := migrations.Up(ctx, pool); err != nil {
		pool.Close()
		return err
	}
	defer pool.Close()

	// The API gets a fresh admin token unless tokens are configured.
	token := ""
	if cfg.api.tokens == "" && !cfg.api.insecure {
		token = devToken()
		cfg.api.tokens = "dev:admin:" + token
	}
	// The fake Dwolla API the reconcile role compares with.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("listen for the fake Dwolla API: %w", err)
	}
	dwollaURL := "http://" + ln.Addr().String()
	fake, err := sim.NewAPI(sim.APIConfig{BaseURL: dwollaURL,
		Deliver: sim.SendConfig{URL: "http://" + cfg.httpAddr + "/webhooks/dwolla", Secret: cfg.secretList()[0]}})
	if err != nil {
		ln.Close()
		return err
	}
	fakeSrv := &http.Server{Handler: fake, ReadHeaderTimeout: 10 * time.Second}
	go fakeSrv.Serve(ln)
	defer fakeSrv.Close()
	cfg.reconcile.dwolla.api, cfg.reconcile.dwolla.key, cfg.reconcile.dwolla.secret = dwollaURL, sim.DefaultAPIKey, sim.DefaultAPISecret

	ready, apiReady := make(chan string, 1), make(chan string, 1)
	started := make(chan *process.Role, 1)
	errc := make(chan error, 1)
	go func() {
		errc <- serveRoles(ctx, cfg, roleSet{ingest: true, process: true, api: true, alert: true, reconcile: true}, ready, apiReady, started)
	}()
	var addr, apiAddr string
	var role *process.Role
	for addr == "" || apiAddr == "" || role == nil {
		select {
		case addr = <-ready:
		case apiAddr = <-apiReady:
		case role = <-started:
		case err := <-errc:
			return err
		}
	}
	tokenLine := "the tokens in HOOKSTREAM_API_TOKENS"
	switch {
	case token != "":
		tokenLine = token + "  (admin; curl -H 'Authorization: Bearer " + token + "' http://" + apiAddr + "/api/v1/status)"
	case cfg.api.insecure:
		tokenLine = "none needed (--api-insecure)"
	}
	rdb, err := stream.NewClient(cfg.redisURL, 5*time.Second, 4)
	if err != nil {
		return err
	}
	defer rdb.Close()
	group := stream.NewGroup(rdb, stream.NewKeys(cfg.namespace, cfg.partitions), process.DefaultGroup)
	base := "http://" + addr
	fmt.Printf("\nhookstream dev is running\n  webhooks  POST %s/webhooks/dwolla  (secret %q)\n  health    %s/healthz  %s/readyz\n  metrics   %s/metrics\n"+
		"  api       http://%s/api/v1  (live feed: /api/v1/live; routes: docs/api.md)\n  console   http://%s/\n  token     %s\n"+
		"  dwolla    %s  (fake API: %.0f%% of the events are never delivered; reconciliation every %s recovers them: bin/hookstream reconcile runs)\n"+
		"  redis     %s (namespace %q)\n  postgres  %s\n"+
		"  try       bin/hookstream status | bin/hookstream query metrics --window 1m --group-by family | bin/hookstream dlq list\n"+
		"            (from another shell in this folder, after: . .hookstream/env)\n"+
		"Ctrl-C stops everything.\n\n",
		base, cfg.secretList()[0], base, base, base, apiAddr, apiAddr, tokenLine, dwollaURL, drop*100, cfg.reconcile.every,
		cfg.redisURL, cfg.namespace, cfg.dbURL)

	sender, err := sim.NewSender(sim.SendConfig{
		URL: base + "/webhooks/dwolla", Secret: cfg.secretList()[0], Concurrency: 10,
		Duplicates: dups, Reorder: reorder, Drop: drop, ReorderDelay: 2 * time.Second, TimeScale: 3600, Seed: time.Now().UnixNano(),
		Attempts: fake,
	})
	if err != nil {
		return err
	}
	gen, in := make(chan sim.Event, 1024), make(chan sim.Event, 1024)
	go sim.NewOrdered(sim.Config{
		Customers: 1000, Span: time.Duration(float64(1000*time.Second) / perSec),
		Seed: time.Now().UnixNano(), Start: time.Now(), StepDelay: stepDelay, Host: dwollaURL,
	}).FeedDue(ctx, gen)
	go func() { // Dwolla has every event, delivered or not
		defer close(in)
		for ev := range gen {
			fake.Add(ev)
			select {
			case in <- ev:
			case <-ctx.Done():
				return
			}
		}
	}()
	go sender.Run(ctx, in)

	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	var last ingest.Counters
	var lastStored int64
	for {
		select {
		case err := <-errc:
			return err
		case <-t.C:
			c := ingest.ReadCounters()
			d := c.Sub(last)
			last = c
			ps := role.Processor().Stats()
			stored := ps.Stored - lastStored
			lastStored = ps.Stored
			lag, pending, dlq := "?", "?", "?" // "?": could not be read this time (logged)
			if st, err := group.Status(ctx); err != nil {
				slog.Warn("dev status line: read the stream backlog", "err", err)
			} else {
				var l, p int64
				for _, s := range st {
					l += max(s.Lag, 0)
					p += s.Pending
				}
				lag, pending = fmt.Sprint(l), fmt.Sprint(p)
			}
			if n, err := store.OpenDeadLetters(ctx, pool); err != nil {
				slog.Warn("dev status line: count open dead letters", "err", err)
			} else {
				dlq = fmt.Sprint(n)
			}
			fmt.Printf("%s  received/s %6.0f  duplicates/s %5.0f  stored/s %6.0f  lag %s  pending %s  dlq %s  spooled %d  drained %d  rejected %d  breaker %s%s\n",
				time.Now().Format("15:04:05"), float64(d.Received())/5, float64(d.Duplicates)/5, float64(stored)/5,
				lag, pending, dlq, c.Spooled, c.Drained, c.Rejected, ps.Breaker, map[bool]string{true: "  PAUSED"}[ps.Paused])
		}
	}
}
