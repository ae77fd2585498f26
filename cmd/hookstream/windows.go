package main

import (
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/hookstream/hookstream/windows"
)

// windowFlags configure the window aggregates; every command that folds or
// reads them takes the same flags, so they agree.
type windowFlags struct {
	sizes, dims, lateness, retention string
	delay, idle                      time.Duration
}

func (w *windowFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&w.sizes, "window-sizes", "1m,5m,15m,1h", "tumbling window sizes kept, UTC-aligned; each must divide a day")
	fs.StringVar(&w.dims, "window-dims", "topic,family,resource_type", "dimensions each window is broken down by (besides the total); empty for none")
	fs.StringVar(&w.lateness, "window-lateness", "1m=1m,5m=2m,15m=5m,1h=10m", "allowed lateness per size: a window closes when the watermark passes its end plus this")
	fs.DurationVar(&w.delay, "watermark-delay", 30*time.Second, "bounded out-of-orderness: a partition's watermark is the largest event time it has seen minus this")
	fs.DurationVar(&w.idle, "watermark-idle", 30*time.Second, "a partition that sees nothing this long follows the wall clock, so it cannot hold windows open")
	fs.StringVar(&w.retention, "window-retention", "1m=7d,5m=30d,15m=90d,1h=730d", "how long windows of each size are kept before pruning")
}

func (w *windowFlags) config() (windows.Config, error) {
	var cfg windows.Config
	var err error
	if cfg.Sizes, err = windows.ParseSizes(w.sizes); err != nil {
		return cfg, fmt.Errorf("--window-sizes: %w", err)
	}
	cfg.Dims = []string{}
	for _, d := range strings.Split(w.dims, ",") {
		if d = strings.TrimSpace(d); d != "" {
			cfg.Dims = append(cfg.Dims, d)
		}
	}
	if cfg.Lateness, err = windows.ParseDurations(w.lateness); err != nil {
		return cfg, fmt.Errorf("--window-lateness: %w", err)
	}
	if cfg.Retention, err = windows.ParseDurations(w.retention); err != nil {
		return cfg, fmt.Errorf("--window-retention: %w", err)
	}
	cfg.Delay, cfg.Idle = w.delay, w.idle
	cfg = cfg.WithDefaults()
	return cfg, cfg.Validate()
}
