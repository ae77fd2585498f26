package process

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/hookstream/hookstream/store"
	"github.com/jackc/pgx/v5"
)

// Fold is a folding step: it derives state from newly stored events (window
// aggregates, journey instances). Fold runs inside the batch's transaction
// and sees only the events this transaction inserted, so a redelivered batch
// folds nothing twice. An error rolls the whole batch back. Workers fold
// concurrently, each in its own transaction, so Fold must be safe for
// concurrent use.
type Fold interface {
	Name() string
	Fold(ctx context.Context, tx pgx.Tx, events []store.Event) error
}

// TxWatcher is an optional interface of a Fold that is told how each
// transaction it folded into ended: committed, or rolled back (or ended with
// the outcome unknown, which it must treat as rolled back). A fold that
// caches what it wrote learns here when that became the committed state. It
// is also told (tx nil, not committed) when a transaction could not begin.
type TxWatcher interface {
	Fold
	TxEnded(tx pgx.Tx, committed bool)
}

// Refolder is an optional interface of a Fold that can refold: recompute
// its state for a range of event time from the stored events ("hookstream
// refold"). It discards what it derived from events created in [from, to)
// (of topics, if any are given) and folds them again, in tx, so running it
// twice changes nothing.
type Refolder interface {
	Fold
	Refold(ctx context.Context, tx pgx.Tx, from, to time.Time, topics []string) error
}

// DefaultGroup is the consumer group the processors of a namespace share.
const DefaultGroup = "process"

// Options configure a Processor. Zero values take the defaults below.
type Options struct {
	Group    string // consumer group name (default DefaultGroup)
	Consumer string // this process's consumer name (default host-pid); workers add "-<n>"
	Workers  int    // concurrent batches, each over its share of the partitions (default 2)

	BatchSize int           // most entries read per partition per batch (default 500)
	Block     time.Duration // how long a read waits for new entries (default 1s)

	MaxDeliveries int           // an entry delivered more often than this is dead-lettered (default 5)
	ClaimIdle     time.Duration // take over entries another consumer has held this long (default 30s)
	ClaimEvery    time.Duration // how often to look for them (default ClaimIdle/2)

	Retention    time.Duration // trim acknowledged entries older than this (default 24h)
	TrimEvery    time.Duration // how often to trim (default 1m)
	ConsumerIdle time.Duration // remove consumers with nothing pending idle this long (default 1h)

	TxTimeout       time.Duration // bound on one batch transaction attempt; must be below ClaimIdle (default ClaimIdle*2/3)
	RetryBase       time.Duration // first retry delay after a transient failure (default 100ms)
	RetryMax        time.Duration // longest retry delay (default 10s)
	BreakerFailures uint32        // consecutive transient failures that open the breaker (default 5)
	BreakerOpen     time.Duration // how long it stays open before a half-open probe (default 5s)

	// AnnounceStored is how long the announcements of stored events (the
	// live feed's source) are kept: how far back a live client can resume
	// (default 2m; Redis holds about 420 bytes per event for it). Negative:
	// nothing is announced.
	AnnounceStored time.Duration

	ControlEvery time.Duration // how often pause/resume is checked and the heartbeat written (default 1s)
	ShutdownWait time.Duration // how long shutdown waits for the batch in flight (default 30s)

	// Folds run, in order, in every batch's transaction on the events it
	// inserted.
	Folds  []Fold
	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	o.Group = cmp.Or(o.Group, DefaultGroup)
	if o.Consumer == "" {
		host, _ := os.Hostname()
		o.Consumer = fmt.Sprintf("%s-%d", host, os.Getpid())
	}
	o.Workers = cmp.Or(o.Workers, 2)
	o.BatchSize = cmp.Or(o.BatchSize, 500)
	o.Block = cmp.Or(o.Block, time.Second)
	o.MaxDeliveries = cmp.Or(o.MaxDeliveries, 5)
	o.ClaimIdle = cmp.Or(o.ClaimIdle, 30*time.Second)
	o.ClaimEvery = cmp.Or(o.ClaimEvery, o.ClaimIdle/2)
	o.Retention = cmp.Or(o.Retention, 24*time.Hour)
	o.TrimEvery = cmp.Or(o.TrimEvery, time.Minute)
	o.ConsumerIdle = cmp.Or(o.ConsumerIdle, time.Hour)
	o.TxTimeout = cmp.Or(o.TxTimeout, o.ClaimIdle*2/3)
	o.RetryBase = cmp.Or(o.RetryBase, 100*time.Millisecond)
	o.RetryMax = cmp.Or(o.RetryMax, 10*time.Second)
	o.BreakerFailures = cmp.Or(o.BreakerFailures, 5)
	o.BreakerOpen = cmp.Or(o.BreakerOpen, 5*time.Second)
	o.AnnounceStored = cmp.Or(o.AnnounceStored, 2*time.Minute)
	o.ControlEvery = cmp.Or(o.ControlEvery, time.Second)
	o.ShutdownWait = cmp.Or(o.ShutdownWait, 30*time.Second)
	o.Logger = cmp.Or(o.Logger, slog.Default())
	return o
}

func (o Options) validate() error {
	for _, v := range []struct {
		name string
		neg  bool
	}{
		{"workers", o.Workers < 0}, {"batch size", o.BatchSize < 0}, {"max deliveries", o.MaxDeliveries < 0},
		{"claim idle time", o.ClaimIdle < 0}, {"claim interval", o.ClaimEvery < 0}, {"retention", o.Retention < 0},
		{"trim interval", o.TrimEvery < 0}, {"consumer idle time", o.ConsumerIdle < 0}, {"transaction timeout", o.TxTimeout < 0},
		{"retry delay", o.RetryBase < 0 || o.RetryMax < 0}, {"breaker open time", o.BreakerOpen < 0},
		{"control interval", o.ControlEvery < 0}, {"shutdown wait", o.ShutdownWait < 0},
	} {
		if v.neg {
			return fmt.Errorf("%s is negative; leave it zero for the default", v.name)
		}
	}
	if o.Block < time.Millisecond {
		return fmt.Errorf("read block %s is below Redis's 1 ms resolution (0 would block for ever)", o.Block)
	}
	if o.TxTimeout >= o.ClaimIdle {
		return fmt.Errorf("transaction timeout %s must be below the claim idle time %s, or held batches could be claimed", o.TxTimeout, o.ClaimIdle)
	}
	if o.ConsumerIdle <= o.Block*10 {
		return fmt.Errorf("consumer idle time %s must be far longer than the read block %s, or live consumers could be removed", o.ConsumerIdle, o.Block)
	}
	if o.ClaimIdle <= o.Block {
		return fmt.Errorf("claim idle time %s must be longer than the read block %s", o.ClaimIdle, o.Block)
	}
	return nil
}
