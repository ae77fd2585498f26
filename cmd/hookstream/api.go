package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/hookstream/hookstream/alert"
	"github.com/hookstream/hookstream/anomaly"
	"github.com/hookstream/hookstream/api"
	"github.com/hookstream/hookstream/store"
	"github.com/hookstream/hookstream/stream"
)

// apiConfig is what the api role is configured with (the windows and the
// journeys are the processors': see processConfig).
type apiConfig struct {
	addr       string
	tokens     string
	insecure   bool
	maxClients int
}

func (c *apiConfig) register(fs *flag.FlagSet) {
	fs.StringVar(&c.addr, "api-addr", "127.0.0.1:8081", "address the API, its live feed and the console listen on (keep it internal; the webhook port is --http-addr)")
	fs.StringVar(&c.tokens, "api-tokens", "", "API tokens, comma-separated name:scope:secret (scope read or admin; secret in clear, 16+ characters, or sha256:<hex>); prefer the environment variable")
	fs.BoolVar(&c.insecure, "api-insecure", false, "serve the API without tokens (every request is admin); refused unless --api-addr is loopback")
	fs.IntVar(&c.maxClients, "api-max-live-clients", 1000, "live feed clients at once; more get 503")
}

// version is the build's module version and VCS revision.
func version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "dev"
	}
	v := bi.Main.Version
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			v += "+" + s.Value[:12]
		}
	}
	return v
}

// devToken makes an admin token for dev, printed for the user.
func devToken() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// serveAPI runs the api role until ctx ends. ready, if non-nil, receives
// its listening address.
func serveAPI(ctx context.Context, cfg *serveConfig, tokens []api.Token, ready chan<- string) error {
	log := slog.Default()
	wcfg, err := cfg.process.windows.config()
	if err != nil {
		return err
	}
	set, err := cfg.process.journeys.load()
	if err != nil {
		return err
	}
	var watch *anomaly.Watch
	if !cfg.process.noAnomalies && !cfg.process.noWindows {
		if watch, err = anomaly.LoadWatch(cfg.process.anomalySeries, wcfg); err != nil {
			return err
		}
	}
	// The API reads the alert rules for their targets (POST /api/v1/alerts/test).
	rules, err := alert.LoadRules(cfg.alert.rules, wcfg)
	if err != nil {
		return err
	}
	rdb, err := stream.NewClient(cfg.redisURL, 5*time.Second, 16)
	if err != nil {
		return err
	}
	defer rdb.Close()
	// PostgreSQL is connected to when first used: the API starts, and
	// answers what Redis can (status, the live feed), while it is down.
	pool, err := store.OpenLazy(ctx, cfg.dbURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	role, err := api.NewRole(rdb, pool, cfg.api.addr, api.Config{
		Keys: stream.NewKeys(cfg.namespace, cfg.partitions), Windows: wcfg, Journeys: set, Watch: watch, Alerts: rules,
		Tokens: tokens, Insecure: cfg.api.insecure, Version: version(),
		Live: api.LiveOptions{MaxClients: cfg.api.maxClients}, Logger: log,
	})
	if err != nil {
		return err
	}
	if ready != nil {
		ready <- role.Addr()
	}
	return role.Run(ctx)
}
