package ingest

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/hookstream/hookstream/stream"
)

// Options configure a Receiver. Zero fields take the documented defaults.
type Options struct {
	// Secrets are the webhook secrets accepted; several allow rotation. Required.
	Secrets [][]byte
	// MaxBody caps a request body; larger ones get 413. Default 256 KiB.
	MaxBody int64
	// SeenTTL is how long an event id is remembered in Redis for dedup.
	// Default 72h, Dwolla's retry span; beyond it the events table's primary
	// key is the exact dedup.
	SeenTTL time.Duration
	// SpoolDir holds the local spool used while Redis is unreachable. Required.
	SpoolDir string
	// QueueSize bounds requests waiting for a commit. Default 8192.
	QueueSize int
	// MaxBatch bounds the entries in one pipelined round trip. Default 256.
	MaxBatch int
	// Committers is how many pipelined round trips may be in flight at once.
	// Default 2: one in flight while the next batch forms. More committers
	// make smaller batches, and Redis's cost per event grows as batches shrink
	// (docs/benchmarks.md); more help only when Redis is far away.
	Committers int
	// EnqueueTimeout is how long a request waits for room in a full queue
	// before it is answered 503. Default 2s.
	EnqueueTimeout time.Duration
	// RetryAfter is the Retry-After a 503 carries. Default 5s.
	RetryAfter time.Duration
	// RedisTimeout bounds one pipelined round trip; past it the batch is
	// spooled and Redis is treated as down until a probe succeeds. Default 2s.
	RedisTimeout time.Duration
	// ProbeInterval is how often a down Redis is probed and the spool drained.
	// Default 500ms.
	ProbeInterval time.Duration
	// ReusePort makes the role's listener set SO_REUSEPORT (Listen), so
	// several receivers can share one port for rolling restarts.
	ReusePort bool
	// Source says where the events came from; entries record it unless it is the default, stream.SourceWebhook.
	Source string
	// DB, if set, is pinged for the readiness report (it never makes ingest unready).
	DB Pinger
	// VerifyOnly answers 200 after the signature check and parse, storing
	// nothing. It exists only so `hookstream bench ingest` can measure the
	// HTTP+HMAC ceiling with exactly this handler; never use it in production.
	VerifyOnly bool
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	o.MaxBody = cmp.Or(o.MaxBody, 256<<10)
	o.SeenTTL = cmp.Or(o.SeenTTL, 72*time.Hour)
	o.QueueSize = cmp.Or(o.QueueSize, 8192)
	o.MaxBatch = cmp.Or(o.MaxBatch, 256)
	o.Committers = cmp.Or(o.Committers, 2)
	o.EnqueueTimeout = cmp.Or(o.EnqueueTimeout, 2*time.Second)
	o.RetryAfter = cmp.Or(o.RetryAfter, 5*time.Second)
	o.RedisTimeout = cmp.Or(o.RedisTimeout, 2*time.Second)
	o.ProbeInterval = cmp.Or(o.ProbeInterval, 500*time.Millisecond)
	o.Source = cmp.Or(o.Source, stream.SourceWebhook)
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

func (o Options) validate() error {
	var errs []error
	n := 0
	for _, s := range o.Secrets {
		if len(s) > 0 {
			n++
		}
	}
	if n == 0 {
		errs = append(errs, errors.New("no webhook secret configured; set HOOKSTREAM_WEBHOOK_SECRETS to the secret of your Dwolla webhook subscription"))
	}
	if o.SpoolDir == "" {
		errs = append(errs, errors.New("no spool directory; set HOOKSTREAM_SPOOL_DIR to a local directory on persistent disk"))
	}
	if o.MaxBody < 1024 {
		errs = append(errs, fmt.Errorf("max body %d bytes is too small for a Dwolla event; use at least 1024", o.MaxBody))
	}
	if o.SeenTTL < time.Second {
		errs = append(errs, fmt.Errorf("seen TTL %s is below one second", o.SeenTTL))
	}
	return errors.Join(errs...)
}
