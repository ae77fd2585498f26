package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/hookstream/hookstream/api"
	"github.com/hookstream/hookstream/ingest"
	"github.com/hookstream/hookstream/process"
	"github.com/hookstream/hookstream/store"
	"github.com/hookstream/hookstream/stream"
	"github.com/peterbourgon/ff/v3/ffcli"
)

// ingestConfig is everything the ingest role is configured with.
type ingestConfig struct {
	common
	httpAddr       string
	secrets        string
	spoolDir       string
	maxBody        int64
	seenTTL        time.Duration
	committers     int
	maxBatch       int
	queueSize      int
	enqueueTimeout time.Duration
	redisTimeout   time.Duration
	reusePort      bool
}

func (c *ingestConfig) register(fs *flag.FlagSet) {
	c.common.register(fs)
	fs.StringVar(&c.httpAddr, "http-addr", ":8080", "address the HTTP server listens on")
	fs.StringVar(&c.secrets, "webhook-secrets", "", "comma-separated webhook secrets; every one is accepted, so a secret can be rotated without downtime (required)")
	fs.StringVar(&c.spoolDir, "spool-dir", ".hookstream/spool", "local directory for the spool used while Redis is unreachable; put it on persistent disk")
	fs.Int64Var(&c.maxBody, "max-body", 256<<10, "largest webhook body accepted, in bytes (larger: 413)")
	fs.DurationVar(&c.seenTTL, "seen-ttl", 72*time.Hour, "how long an event id is remembered in Redis for dedup (Dwolla retries for 72h)")
	fs.IntVar(&c.committers, "committers", 2, "pipelined Redis round trips in flight at once (group commit)")
	fs.IntVar(&c.maxBatch, "max-batch", 256, "most events folded into one pipelined round trip")
	fs.IntVar(&c.queueSize, "queue-size", 8192, "requests that may wait for a commit; beyond it requests wait --enqueue-timeout, then get 503")
	fs.DurationVar(&c.enqueueTimeout, "enqueue-timeout", 2*time.Second, "bounded wait for room in a full commit queue before answering 503 + Retry-After")
	fs.DurationVar(&c.redisTimeout, "redis-timeout", 2*time.Second, "bound on one Redis round trip; past it events are spooled locally")
	fs.BoolVar(&c.reusePort, "reuse-port", false, "listen on --http-addr with SO_REUSEPORT, so two processes can share the port during a rolling restart (Linux, BSD, macOS)")
}

func (c *ingestConfig) secretList() [][]byte {
	var out [][]byte
	for _, s := range strings.Split(c.secrets, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, []byte(s))
		}
	}
	return out
}

// serveConfig is the configuration of every role.
type serveConfig struct {
	ingestConfig
	process   processConfig
	api       apiConfig
	alert     alertConfig
	reconcile reconcileConfig
}

func (c *serveConfig) register(fs *flag.FlagSet) {
	c.ingestConfig.register(fs)
	c.process.register(fs)
	c.api.register(fs)
	c.alert.register(fs)
	c.reconcile.register(fs)
}

// roleSet is the roles one process runs. apiIfConfigured: "all" asked for
// the API, which runs only when tokens (or --api-insecure) allow it.
type roleSet struct {
	ingest, process, api, apiIfConfigured, alert bool
	// reconcileIfConfigured: "all" asked for reconciliation, which runs
	// only when Dwolla credentials are configured.
	reconcile, reconcileIfConfigured bool
}

func parseRoles(s string) (roleSet, error) {
	var r roleSet
	for _, name := range strings.Split(s, ",") {
		switch strings.TrimSpace(name) {
		case "all":
			r.ingest, r.process, r.apiIfConfigured, r.alert, r.reconcileIfConfigured = true, true, true, true, true
		case "ingest":
			r.ingest = true
		case "process":
			r.process = true
		case "api":
			r.api = true
		case "alert":
			r.alert = true
		case "reconcile":
			r.reconcile = true
		default:
			return r, fmt.Errorf("unknown role %q; known roles: ingest, process, api, alert, reconcile, all", name)
		}
	}
	return r, nil
}

func serveCommand() *ffcli.Command {
	fs := flag.NewFlagSet("hookstream serve", flag.ContinueOnError)
	var cfg serveConfig
	cfg.register(fs)
	roles := fs.String("roles", "all", "comma-separated roles to run in this process: ingest, process, api, alert, reconcile (all = every role; the API only when tokens are configured, reconcile only with Dwolla credentials)")
	return &ffcli.Command{
		Name:       "serve",
		ShortUsage: "hookstream serve [--roles ingest,process,api,alert,reconcile|all] [flags]",
		ShortHelp:  "run hookstream roles: the webhook receiver (ingest), the processor (process), the API (api), alerting (alert) and reconciliation with Dwolla (reconcile)",
		LongHelp: `Runs the named roles until SIGINT/SIGTERM, then shuts each down in order.

ingest: the webhook receiver. Shutdown: stop accepting requests, wait for
every accepted event to be committed (Redis or spool), stop the committers,
close connections. It serves:
  POST /webhooks/dwolla   the Dwolla webhook endpoint
  GET  /healthz           liveness
  GET  /readyz            readiness (Redis, PostgreSQL, spool) as JSON
  GET  /metrics           Prometheus metrics (of every role in the process)

process: reads the partition streams through the consumer group "process"
and stores each batch in one PostgreSQL transaction, then acknowledges it.
Run as many as you like; they share the work. Shutdown: stop reading, finish
the batch in flight (commit, acknowledge; at most --shutdown-wait), close.
Without the ingest role it serves GET /healthz and GET /metrics on
--http-addr.

api: the JSON API, its live feed (Server-Sent Events) and the console page,
on --api-addr (default 127.0.0.1:8081), apart from the webhook port. Every
request needs a bearer token from HOOKSTREAM_API_TOKENS (name:scope:secret;
scope read or admin); without tokens --roles api refuses to start unless
--api-insecure (loopback only), and --roles all runs without the API and
says so in its log. docs/api.md lists the routes. Shutdown: disconnect live
clients (they resume with Last-Event-ID), finish the requests in flight.

alert: evaluates the alert rules (--alert-rules; docs/alerts.md) every
--alert-interval and sends notifications to their targets (Slack, signed
webhooks) from a durable outbox in PostgreSQL. Run it in several processes:
one evaluates at a time, and another takes over within a second of the
next evaluation when it dies; all of them send. Shutdown: finish and record
the notification being sent.

reconcile: every --reconcile-every, compares Dwolla's events API with the
events table and recovers what is missing (docs/reconcile.md); needs
HOOKSTREAM_DWOLLA_KEY and HOOKSTREAM_DWOLLA_SECRET (--roles all runs without
it, and says so, when they are not set). One process runs at a time.

Examples:
  HOOKSTREAM_WEBHOOK_SECRETS=s3cret hookstream serve --roles ingest --http-addr :8080
  hookstream serve --roles process --http-addr :9090 --workers 2
  HOOKSTREAM_API_TOKENS=grafana:read:$(openssl rand -hex 24) hookstream serve --roles api --api-addr 10.0.0.5:8081 --http-addr :9091`,
		FlagSet: fs,
		Options: envOptions(),
		Exec: func(ctx context.Context, _ []string) error {
			r, err := parseRoles(*roles)
			if err != nil {
				return err
			}
			return serveRoles(ctx, &cfg, r, nil, nil, nil)
		},
	}
}

// serveRoles runs the roles until ctx ends or one fails (which stops the
// others). ready, apiReady and started are passed to the roles (for dev).
func serveRoles(ctx context.Context, cfg *serveConfig, r roleSet, ready, apiReady chan<- string, started chan<- *process.Role) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Everything about the API's configuration is checked before any role starts.
	tokens, err := api.ParseTokens(cfg.api.tokens)
	if err != nil {
		return err
	}
	if r.apiIfConfigured && !r.api {
		if len(tokens) == 0 && !cfg.api.insecure {
			slog.Warn("the api role is not running: no API tokens are configured; set HOOKSTREAM_API_TOKENS (name:scope:secret) to serve the API on " + cfg.api.addr)
		} else {
			r.api = true
		}
	}
	if r.api && len(tokens) == 0 && !cfg.api.insecure {
		return api.ErrNoTokens
	}
	if r.reconcileIfConfigured && !r.reconcile {
		if cfg.reconcile.dwolla.configured() {
			r.reconcile = true
		} else {
			slog.Warn("the reconcile role is not running: no Dwolla API credentials; set HOOKSTREAM_DWOLLA_KEY and HOOKSTREAM_DWOLLA_SECRET to compare with Dwolla's events API")
		}
	}
	if r.reconcile {
		if _, err := cfg.reconcile.dwolla.client(slog.Default()); err != nil {
			return err
		}
	}
	errc := make(chan error, 5)
	n := 0
	if r.api {
		n++
		go func() { errc <- serveAPI(ctx, cfg, tokens, apiReady) }()
	}
	if r.ingest {
		n++
		go func() { errc <- serveIngest(ctx, &cfg.ingestConfig, ready) }()
	} else {
		n++
		go func() { errc <- serveMetrics(ctx, cfg.httpAddr, cfg.reusePort, ready) }()
	}
	if r.process {
		n++
		go func() { errc <- serveProcess(ctx, &cfg.common, &cfg.process, started) }()
	}
	if r.alert {
		n++
		go func() { errc <- serveAlert(ctx, cfg) }()
	}
	if r.reconcile {
		n++
		go func() { errc <- serveReconcile(ctx, cfg) }()
	}
	var first error
	for range n {
		if err := <-errc; err != nil && first == nil && !errors.Is(err, context.Canceled) {
			first = err
			cancel()
		}
	}
	return first
}

// serveMetrics serves /healthz and /metrics for a process without the
// ingest role.
func serveMetrics(ctx context.Context, addr string, reusePort bool, ready chan<- string) error {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok\n")) })
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, _ *http.Request) { metrics.WritePrometheus(w, true) })
	ln, err := ingest.Listen(addr, reusePort)
	if err != nil {
		return fmt.Errorf("listen on %s: %w; is another process using the port? set HOOKSTREAM_HTTP_ADDR", addr, err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	slog.Info("metrics listening", "addr", ln.Addr().String())
	if ready != nil {
		ready <- ln.Addr().String()
	}
	shut := make(chan error, 1)
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		shut <- srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	if err := <-shut; err != nil {
		return fmt.Errorf("stop the metrics server: %w", err)
	}
	return nil
}

// serveIngest runs the ingest role until ctx ends. ready, if non-nil,
// receives the listening address once the server accepts connections.
func serveIngest(ctx context.Context, cfg *ingestConfig, ready chan<- string) error {
	log := slog.Default()
	rdb, err := stream.NewClient(cfg.redisURL, cfg.redisTimeout, cfg.committers+4)
	if err != nil {
		return err
	}
	defer rdb.Close()
	opts := ingest.Options{
		Secrets: cfg.secretList(), MaxBody: cfg.maxBody, SeenTTL: cfg.seenTTL, SpoolDir: cfg.spoolDir,
		QueueSize: cfg.queueSize, MaxBatch: cfg.maxBatch, Committers: cfg.committers,
		EnqueueTimeout: cfg.enqueueTimeout, RedisTimeout: cfg.redisTimeout, ReusePort: cfg.reusePort, Logger: log,
	}
	if cfg.dbURL != "" {
		// PostgreSQL only feeds the readiness report here; ingest runs without it.
		pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		pool, err := store.Open(pctx, cfg.dbURL)
		cancel()
		if err != nil {
			log.Warn("PostgreSQL unreachable; ingest runs without it", "err", err)
		} else {
			defer pool.Close()
			opts.DB = pool
		}
	}
	role, err := ingest.NewRole(rdb, stream.NewKeys(cfg.namespace, cfg.partitions), cfg.httpAddr, opts)
	if err != nil {
		return err
	}
	if ready != nil {
		ready <- role.Addr()
	}
	return role.Run(ctx)
}
