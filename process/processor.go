// Package process is the process role: it reads the partition streams through
// a Redis consumer group and stores each batch in one PostgreSQL transaction
// (events with ON CONFLICT DO NOTHING, then folding of only the newly
// inserted ones), commits, then acknowledges. A crash anywhere redelivers the
// batch and changes nothing twice. Transient database failures are retried
// behind a circuit breaker that stops reading while it is open; entries that
// can never be stored go to the dead-letter stream and table.
package process

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hookstream/hookstream/internal/periodic"
	"github.com/hookstream/hookstream/store"
	"github.com/hookstream/hookstream/stream"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"github.com/sony/gobreaker/v2"
)

// PausedValue is what the control key holds while processing is paused.
const PausedValue = "paused"

// Processor runs the process role. Create it with New, run it with Run.
type Processor struct {
	rdb     redis.UniversalClient
	db      *pgxpool.Pool
	keys    stream.Keys
	group   *stream.Group
	opts    Options
	log     *slog.Logger
	cb      *gobreaker.CircuitBreaker[struct{}]
	cluster bool

	paused   atomic.Bool  // the pause switch as last read
	held     atomic.Int64 // entries read but held, not stored, because processing is paused
	reading  atomic.Int64 // reads from the streams in flight (a blocked XREADGROUP, a claim)
	retrying atomic.Int32 // batches being retried after a transient failure
	holding  atomic.Int32 // batches held because every event fails (errSystemic)
	stats    stats
	start    time.Time
}

type stats struct {
	stored, duplicates, dead, acked, batches, retries, claimed, trimmed, removed atomic.Int64
}

// Stats are a processor's counters since it started.
type Stats struct {
	Stored     int64  `json:"stored"`     // events inserted
	Duplicates int64  `json:"duplicates"` // entries whose event was already stored
	Dead       int64  `json:"dead"`       // entries dead-lettered
	Acked      int64  `json:"acked"`      // entries acknowledged
	Batches    int64  `json:"batches"`    // transactions committed
	Retries    int64  `json:"retries"`    // transient failures retried
	Claimed    int64  `json:"claimed"`    // entries taken over from idle consumers
	Trimmed    int64  `json:"trimmed"`    // entries trimmed from the streams
	Breaker    string `json:"breaker"`    // closed | half-open | open
	// Paused says the pause switch is set and no read is in flight: from
	// then on the processor reads nothing until resumed. (A read that was
	// already waiting when the switch was set may still return entries;
	// those are held, HeldPaused, and Paused is reported once it has.)
	Paused bool `json:"paused"`
	// HeldPaused is how many entries were read as the pause began and are
	// held, not stored, until processing resumes.
	HeldPaused int64 `json:"held_paused"`
	Holding    bool  `json:"holding"` // a batch is held: every event fails, and so does a canary
}

// New returns a processor over the partition streams of keys, storing into db.
func New(rdb redis.UniversalClient, db *pgxpool.Pool, keys stream.Keys, opts Options) (*Processor, error) {
	opts = opts.withDefaults()
	if err := opts.validate(); err != nil {
		return nil, err
	}
	p := &Processor{
		rdb: rdb, db: db, keys: keys, opts: opts, log: opts.Logger.With("role", "process"),
		group: stream.NewGroup(rdb, keys, opts.Group),
		start: time.Now(),
	}
	_, p.cluster = rdb.(*redis.ClusterClient)
	p.cb = gobreaker.NewCircuitBreaker[struct{}](gobreaker.Settings{
		Name:        "postgresql",
		MaxRequests: 1,
		Timeout:     opts.BreakerOpen,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= opts.BreakerFailures },
		// The breaker is about reaching PostgreSQL: rows it rejects, and
		// other errors it answers with, say it is up.
		IsSuccessful: func(err error) bool { return err == nil || classify(err) != transient },
		OnStateChange: func(_ string, from, to gobreaker.State) {
			breakerState.Set(float64(to))
			p.log.Warn("PostgreSQL circuit breaker", "from", from.String(), "to", to.String())
		},
	})
	return p, nil
}

// Stats returns the processor's counters and state.
func (p *Processor) Stats() Stats {
	return Stats{
		Stored: p.stats.stored.Load(), Duplicates: p.stats.duplicates.Load(), Dead: p.stats.dead.Load(),
		Acked: p.stats.acked.Load(), Batches: p.stats.batches.Load(), Retries: p.stats.retries.Load(),
		Claimed: p.stats.claimed.Load(), Trimmed: p.stats.trimmed.Load(),
		Breaker: p.cb.State().String(), Paused: p.paused.Load() && p.reading.Load() == 0, HeldPaused: p.held.Load(), Holding: p.holding.Load() > 0,
	}
}

// Run processes until ctx ends, then shuts down in order: stop reading,
// finish the batch in flight (commit, acknowledge; at most ShutdownWait),
// remove the heartbeat. The caller closes the clients afterwards.
func (p *Processor) Run(ctx context.Context) error {
	if err := p.ensureGroup(ctx); err != nil {
		return err
	}
	p.log.Info("processing", "group", p.opts.Group, "consumer", p.opts.Consumer, "workers", p.opts.Workers,
		"partitions", p.keys.Partitions, "batch", p.opts.BatchSize)
	// No worker reads before the switch is known: a processor started
	// while processing is paused must not store anything.
	if err := p.waitControl(ctx); err != nil {
		return err
	}
	ctl := make(chan struct{})
	go func() { defer close(ctl); p.control(ctx) }()

	var wg sync.WaitGroup
	for w := range p.opts.Workers {
		var parts []int
		for part := w; part < p.keys.Partitions; part += p.opts.Workers {
			parts = append(parts, part)
		}
		if len(parts) == 0 {
			continue
		}
		wk := &worker{p: p, name: fmt.Sprintf("%s-%d", p.opts.Consumer, w), parts: parts}
		wg.Add(1)
		go func() { defer wg.Done(); wk.run(ctx) }()
	}
	wg.Wait()
	<-ctl
	// The heartbeat goes last, once no batch is in flight.
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	if err := p.rdb.Del(dctx, p.keys.Heartbeat(p.opts.Consumer)).Err(); err != nil {
		p.log.Warn("cannot remove the heartbeat; status lists this processor until it expires", "key", p.keys.Heartbeat(p.opts.Consumer), "err", err)
	}
	cancel()
	p.log.Info("processing stopped", "stored", p.stats.stored.Load(), "duplicates", p.stats.duplicates.Load(), "dead", p.stats.dead.Load())
	return nil
}

// ensureGroup creates the group, waiting for Redis if it is not up yet.
func (p *Processor) ensureGroup(ctx context.Context) error {
	for attempt := 0; ; attempt++ {
		err := p.group.Ensure(ctx)
		if err == nil {
			return nil
		}
		if attempt%10 == 0 {
			p.log.Warn("waiting for Redis to create the consumer group", "err", err)
		}
		if !sleep(ctx, p.backoff(min(attempt, 6))) {
			return ctx.Err()
		}
	}
}

// waitControl reads the pause switch, waiting for Redis if it cannot.
func (p *Processor) waitControl(ctx context.Context) error {
	for attempt := 0; ; attempt++ {
		_, err := p.readControl(ctx)
		if err == nil {
			return nil
		}
		if attempt%10 == 0 {
			p.log.Warn("waiting for Redis to read the pause switch", "key", p.keys.Control(p.opts.Group), "err", err)
		}
		if !sleep(ctx, p.backoff(min(attempt, 6))) {
			return ctx.Err()
		}
	}
}

// control follows the pause switch and publishes the heartbeat until ctx
// ends. The switch it polls only stops the workers from reading; every batch
// also reads it afresh before it is stored (worker.admit). While Redis
// cannot be read, the last known state holds.
func (p *Processor) control(ctx context.Context) {
	periodic.Run(ctx, p.opts.ControlEvery, p.log, "read the pause switch and publish the heartbeat", func(ctx context.Context) error {
		_, err := p.readControl(ctx)
		return errors.Join(err, p.heartbeat(ctx))
	})
}

// readControl reads the pause switch and records it. An error leaves the last
// known state.
func (p *Processor) readControl(ctx context.Context) (paused bool, err error) {
	now, err := IsPaused(ctx, p.rdb, p.keys, p.opts.Group)
	if err != nil {
		return p.paused.Load(), err
	}
	if was := p.paused.Swap(now); was != now {
		p.log.Warn("processing switch", "paused", now)
	}
	pausedGauge.Set(boolFloat(now))
	return now, nil
}

// pollEvery is how often an idle or held worker looks at the switch again.
func (p *Processor) pollEvery() time.Duration { return min(250*time.Millisecond, p.opts.ControlEvery) }

// Heartbeat is what a running processor publishes for "hookstream status".
type Heartbeat struct {
	Consumer string    `json:"consumer"`
	Workers  int       `json:"workers"`
	Started  time.Time `json:"started"`
	Updated  time.Time `json:"updated"`
	Stats
}

func (p *Processor) heartbeat(ctx context.Context) error {
	hb := Heartbeat{Consumer: p.opts.Consumer, Workers: p.opts.Workers, Started: p.start, Updated: time.Now().UTC(), Stats: p.Stats()}
	key := p.keys.Heartbeat(p.opts.Consumer)
	if err := p.rdb.Set(ctx, key, mustJSON(hb), max(5*p.opts.ControlEvery, 5*time.Second)).Err(); err != nil {
		return fmt.Errorf("publish the heartbeat %s: %w", key, err)
	}
	return nil
}

// backoff is the delay before retry attempt n (0-based): exponential from
// RetryBase, capped at RetryMax, with full jitter in its upper half.
func (p *Processor) backoff(n int) time.Duration {
	d := p.opts.RetryBase << min(n, 20)
	if d <= 0 || d > p.opts.RetryMax {
		d = p.opts.RetryMax
	}
	return d/2 + rand.N(d/2+1)
}

// sleep waits d or until ctx ends; it reports whether the full d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// ack acknowledges committed entries. A failure is retried briefly; if Redis
// stays away the entries remain pending, are delivered again later and find
// their events already stored, so nothing is lost or doubled.
func (p *Processor) ack(ctx context.Context, msgs []stream.Message) error {
	var err error
	for attempt := range 5 {
		if err = p.group.Ack(ctx, msgs); err == nil {
			p.stats.acked.Add(int64(len(msgs)))
			return nil
		}
		if !sleep(ctx, p.backoff(attempt)) {
			break
		}
	}
	p.log.Warn("acknowledge failed; the entries stay pending and will be redelivered", "entries", len(msgs), "err", err)
	return err
}

func (p *Processor) deadLetter(m stream.Message, reason string) store.DeadLetter {
	d := store.DeadLetter{
		Stream: p.keys.Stream(m.Partition), EntryID: m.ID, Reason: reason, Deliveries: m.Deliveries,
		Fields: map[string]string{},
	}
	for k, v := range m.Values {
		s, _ := v.(string)
		if k == stream.FieldBody {
			d.Body = []byte(s)
			continue
		}
		d.Fields[k] = s
	}
	d.EventID, _ = m.Values[stream.FieldID].(string)
	return d
}
