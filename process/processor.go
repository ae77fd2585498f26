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

	"github.com/hookstream/hookstream/store"
	"github.com/hookstream/hookstream/stream"
	"github.com/jackc/pgx/v5"
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

	paused   atomic.Bool
	retrying atomic.Int32 // batches being retried after a transient failure
	stats    stats
	start  time.Time
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
	Paused     bool   `json:"paused"`
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
		// Rows PostgreSQL rejects say nothing about its health.
		IsSuccessful: func(err error) bool { return err == nil || store.IsDataError(err) },
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
		Breaker: p.cb.State().String(), Paused: p.paused.Load(),
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
	ctl := make(chan struct{})
	go func() { defer close(ctl); p.control(ctx) }()
	p.readControl(ctx)

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

// control follows the pause switch and publishes the heartbeat until ctx ends.
func (p *Processor) control(ctx context.Context) {
	t := time.NewTicker(p.opts.ControlEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
			p.rdb.Del(dctx, p.keys.Heartbeat(p.opts.Consumer))
			cancel()
			return
		case <-t.C:
			p.readControl(ctx)
			p.heartbeat(ctx)
		}
	}
}

func (p *Processor) readControl(ctx context.Context) {
	v, err := p.rdb.Get(ctx, p.keys.Control(p.opts.Group)).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return // keep the last known state while Redis is unreachable
	}
	now := v == PausedValue
	if was := p.paused.Swap(now); was != now {
		p.log.Warn("processing switch", "paused", now)
	}
	pausedGauge.Set(boolFloat(now))
}

// Heartbeat is what a running processor publishes for "hookstream status".
type Heartbeat struct {
	Consumer string    `json:"consumer"`
	Workers  int       `json:"workers"`
	Started  time.Time `json:"started"`
	Updated  time.Time `json:"updated"`
	Stats
}

func (p *Processor) heartbeat(ctx context.Context) {
	hb := Heartbeat{Consumer: p.opts.Consumer, Workers: p.opts.Workers, Started: p.start, Updated: time.Now().UTC(), Stats: p.Stats()}
	p.rdb.Set(ctx, p.keys.Heartbeat(p.opts.Consumer), mustJSON(hb), max(5*p.opts.ControlEvery, 5*time.Second))
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

// item is one entry being processed, with the event derived from it.
type item struct {
	msg stream.Message
	ev  store.Event
}

// handle stores one batch of entries and acknowledges them. It returns when
// every entry is either committed (stored, found duplicate or dead-lettered)
// and acknowledged, or left pending because ctx ended first.
func (p *Processor) handle(ctx context.Context, msgs []stream.Message) error {
	var (
		good []item
		dead []store.DeadLetter
		ack  = make([]stream.Message, 0, len(msgs))
	)
	for _, m := range msgs {
		if m.Deleted() {
			ack = append(ack, m) // trimmed while pending: nothing left to store
			continue
		}
		if m.Deliveries > int64(p.opts.MaxDeliveries) {
			dead = append(dead, p.deadLetter(m, fmt.Sprintf("delivered %d times, more than the limit of %d", m.Deliveries, p.opts.MaxDeliveries)))
			ack = append(ack, m)
			continue
		}
		ev, err := Enrich(m)
		if err != nil {
			dead = append(dead, p.deadLetter(m, err.Error()))
			ack = append(ack, m)
			continue
		}
		good = append(good, item{msg: m, ev: ev})
	}
	if err := p.storeAll(ctx, good, dead); err != nil {
		return err
	}
	for _, it := range good {
		ack = append(ack, it.msg)
	}
	return p.ack(ctx, ack)
}

// storeAll commits good and dead. When PostgreSQL rejects the data itself it
// splits the batch in halves until the rows at fault are alone, and
// dead-letters exactly those, so a bad entry never holds back a valid one.
func (p *Processor) storeAll(ctx context.Context, good []item, dead []store.DeadLetter) error {
	err := p.storeRetrying(ctx, good, dead)
	if err == nil || !store.IsDataError(err) {
		return err
	}
	if len(good) == 0 {
		return fmt.Errorf("PostgreSQL rejects dead letters themselves: %w", err)
	}
	if len(good) == 1 {
		it := good[0]
		dl := p.deadLetter(it.msg, "rejected by PostgreSQL: "+err.Error())
		return p.storeAll(ctx, nil, append(dead, dl))
	}
	h := len(good) / 2
	if err := p.storeAll(ctx, good[:h], dead); err != nil {
		return err
	}
	return p.storeAll(ctx, good[h:], nil)
}

// storeRetrying runs one transaction through the breaker, retrying transient
// failures with backoff for as long as it takes (or until ctx ends). The
// batch stays in hand meanwhile, so the worker reads nothing new: the
// backlog waits in Redis, and nothing is dead-lettered for an outage.
func (p *Processor) storeRetrying(ctx context.Context, good []item, dead []store.DeadLetter) error {
	for attempt := 0; ; attempt++ {
		if attempt == 1 {
			p.retrying.Add(1)
			defer p.retrying.Add(-1)
		}
		_, err := p.cb.Execute(func() (struct{}, error) { return struct{}{}, p.storeTx(ctx, good, dead) })
		if err == nil || store.IsDataError(err) {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		wait := p.backoff(attempt)
		if errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests) {
			wait = min(wait, p.opts.BreakerOpen/4+time.Millisecond)
		} else {
			p.stats.retries.Add(1)
			retriesTotal.Inc()
			if attempt%10 == 0 {
				p.log.Warn("storing a batch failed; retrying", "entries", len(good)+len(dead), "attempt", attempt+1, "err", err)
			}
		}
		if !sleep(ctx, wait) {
			return ctx.Err()
		}
	}
}

// storeTx is one batch's transaction: insert the events, fold the new ones,
// record dead letters, commit.
func (p *Processor) storeTx(ctx context.Context, good []item, dead []store.DeadLetter) error {
	var inserted []bool
	var deadIDs []int64
	err := pgx.BeginFunc(ctx, p.db, func(tx pgx.Tx) error {
		var err error
		if len(good) > 0 {
			evs := make([]store.Event, len(good))
			for i := range good {
				evs[i] = good[i].ev
			}
			if inserted, err = store.InsertEvents(ctx, tx, evs); err != nil {
				return err
			}
			fresh := evs[:0:0]
			for i, ok := range inserted {
				if ok {
					fresh = append(fresh, evs[i])
				}
			}
			if len(fresh) > 0 {
				for _, f := range p.opts.Folders {
					if err := f.Fold(ctx, tx, fresh); err != nil {
						return fmt.Errorf("fold %s: %w", f.Name(), err)
					}
				}
			}
		}
		deadIDs, err = store.InsertDeadLetters(ctx, tx, dead)
		return err
	})
	if err != nil {
		return err
	}
	var nNew int64
	for _, ok := range inserted {
		if ok {
			nNew++
		}
	}
	p.stats.batches.Add(1)
	p.stats.stored.Add(nNew)
	p.stats.duplicates.Add(int64(len(good)) - nNew)
	p.stats.dead.Add(int64(len(dead)))
	batchesTotal.Inc()
	batchSize.Update(float64(len(good) + len(dead)))
	storedTotal.Add(int(nNew))
	duplicateTotal.Add(len(good) - int(nNew))
	deadTotal.Add(len(dead))
	if len(dead) > 0 {
		p.publishDead(ctx, dead, deadIDs)
	}
	return nil
}

// publishDead announces committed dead letters on the DLQ stream (for the
// live feed and alerts; the table is the record, so this is best effort).
func (p *Processor) publishDead(ctx context.Context, dead []store.DeadLetter, ids []int64) {
	_, err := p.rdb.Pipelined(ctx, func(pipe redis.Pipeliner) error {
		for _, d := range dead {
			pipe.XAdd(ctx, &redis.XAddArgs{
				Stream: p.keys.DLQ(), MaxLen: 100_000, Approx: true,
				Values: []string{"stream", d.Stream, "entry", d.EntryID, "event_id", d.EventID, "reason", d.Reason},
			})
		}
		return nil
	})
	for _, d := range dead {
		p.log.Warn("dead-lettered", "stream", d.Stream, "entry", d.EntryID, "event", d.EventID, "deliveries", d.Deliveries, "reason", d.Reason)
	}
	if err != nil {
		p.log.Warn("announce dead letters on the DLQ stream", "err", err, "recorded", len(ids))
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
