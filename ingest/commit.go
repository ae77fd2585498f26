package ingest

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/hookstream/hookstream/dwolla"
	"github.com/hookstream/hookstream/stream"
)

// redisDownNow counts this process's receivers that see Redis as down (one,
// outside tests and benchmarks).
var redisDownNow atomic.Int64

var (
	_ = metrics.NewGauge(`hookstream_ingest_redis_up`, func() float64 {
		if redisDownNow.Load() > 0 {
			return 0
		}
		return 1
	})
	batchSize    = metrics.NewHistogram(`hookstream_ingest_batch_size`)
	batchesTotal = metrics.NewCounter(`hookstream_ingest_batches_total`)
	redisUp      = metrics.NewCounter(`hookstream_ingest_redis_transitions_total{to="up"}`)
	redisDown    = metrics.NewCounter(`hookstream_ingest_redis_transitions_total{to="down"}`)
)

// errOverloaded is returned when the commit queue stayed full for EnqueueTimeout.
var errOverloaded = errors.New("ingest overloaded: commit queue full")

// errStopped is returned for requests that arrive after Stop began.
var errStopped = errors.New("ingest is shutting down")

// outcome is where one entry ended up.
type outcome uint8

const (
	outcomeStored outcome = iota
	outcomeDuplicate
	outcomeSpooled
	outcomeFailed
)

// pending is one request waiting for its group commit.
type pending struct {
	entry    stream.Entry
	received time.Time // kept in the entry only if it is spooled
	entryID  string
	outcome  outcome
	err      error
	done     chan struct{}
}

var pendingPool = sync.Pool{New: func() any { return &pending{done: make(chan struct{}, 1)} }}

// commit stores one entry: it queues it for the next group commit and waits
// for the outcome. Once queued, it waits for the committer even if ctx ends:
// the event will be stored either way, and only the committer knows whether
// it was new, a duplicate or spooled.
func (r *Receiver) commit(ctx context.Context, e stream.Entry, received time.Time) (outcome, string, error) {
	r.stopMu.RLock()
	if r.stopping {
		r.stopMu.RUnlock()
		return outcomeFailed, "", errStopped
	}
	r.inflight.Add(1)
	r.stopMu.RUnlock()
	defer r.inflight.Done()

	p := pendingPool.Get().(*pending)
	p.entry, p.received = e, received
	select {
	case r.queue <- p:
	default:
		t := time.NewTimer(r.opts.EnqueueTimeout)
		select {
		case r.queue <- p:
			t.Stop()
		case <-t.C:
			pendingPool.Put(p)
			return outcomeFailed, "", errOverloaded
		case <-ctx.Done():
			t.Stop()
			pendingPool.Put(p)
			return outcomeFailed, "", ctx.Err()
		}
	}
	<-p.done
	o, id, err := p.outcome, p.entryID, p.err
	*p = pending{done: p.done}
	pendingPool.Put(p)
	return o, id, err
}

// committer folds whatever requests are queued into one batch, commits it in
// one pipelined round trip, and repeats. Under light load a batch is a single
// request (no added latency); under heavy load batches grow to MaxBatch.
func (r *Receiver) committer() {
	defer r.committers.Done()
	batch := make([]*pending, 0, r.opts.MaxBatch)
	entries := make([]stream.Entry, 0, r.opts.MaxBatch)
	results := make([]stream.Result, r.opts.MaxBatch)
	for {
		select {
		case p := <-r.queue:
			batch = append(batch, p)
		case <-r.quit:
			return
		}
	fill:
		for len(batch) < r.opts.MaxBatch {
			select {
			case p := <-r.queue:
				batch = append(batch, p)
			default:
				break fill
			}
		}
		entries = entries[:0]
		for _, p := range batch {
			entries = append(entries, p.entry)
		}
		r.commitBatch(batch, entries, results[:len(batch)])
		for i, p := range batch {
			batch[i] = nil
			p.done <- struct{}{}
		}
		batch = batch[:0]
	}
}

func (r *Receiver) commitBatch(batch []*pending, entries []stream.Entry, results []stream.Result) {
	batchSize.Update(float64(len(batch)))
	batchesTotal.Inc()
	if r.redisUp.Load() {
		ctx, cancel := context.WithTimeout(context.Background(), r.opts.RedisTimeout)
		err := r.producer.AppendBatch(ctx, entries, results)
		cancel()
		if err == nil {
			var failed []int
			for i := range batch {
				switch res := results[i]; {
				case res.Err != nil:
					failed = append(failed, i)
				case res.Duplicate:
					batch[i].outcome, batch[i].entryID = outcomeDuplicate, res.EntryID
				default:
					batch[i].outcome, batch[i].entryID = outcomeStored, res.EntryID
				}
			}
			if len(failed) == 0 {
				return
			}
			// Redis answered but refused some entries (for example OOM):
			// keep those in the spool rather than fail the request.
			r.opts.Logger.Warn("redis refused entries; spooling them", "entries", len(failed), "err", results[failed[0]].Err)
			sub := make([]*pending, len(failed))
			subEntries := make([]stream.Entry, len(failed))
			for j, i := range failed {
				sub[j], subEntries[j] = batch[i], entries[i]
			}
			r.spoolBatch(sub, subEntries)
			return
		}
		r.markDown(err)
	}
	r.spoolBatch(batch, entries)
}

func (r *Receiver) spoolBatch(batch []*pending, entries []stream.Entry) {
	// A spooled event reaches the stream late, so its entry id no longer
	// tells when it was received: record that explicitly.
	for i, p := range batch {
		entries[i] = entries[i].WithReceived(p.received)
	}
	err := r.spool.Append(entries)
	for _, p := range batch {
		if err != nil {
			p.outcome, p.err = outcomeFailed, err
		} else {
			p.outcome = outcomeSpooled
		}
	}
	if err != nil {
		r.opts.Logger.Error("cannot spool events while redis is down; answering 503 so Dwolla retries", "err", err)
	}
}

func (r *Receiver) markDown(err error) {
	if r.redisUp.CompareAndSwap(true, false) {
		redisDown.Inc()
		redisDownNow.Add(1)
		r.opts.Logger.Error("redis unreachable; spooling events to local disk until it is back", "err", err, "spool_dir", r.opts.SpoolDir)
	}
}

// drainer probes Redis while it is down and replays the spool once it is up.
func (r *Receiver) drainer() {
	defer r.drainDone.Done()
	t := time.NewTicker(r.opts.ProbeInterval)
	defer t.Stop()
	for {
		select {
		case <-r.quit:
			return
		case <-t.C:
		}
		if !r.redisUp.Load() {
			ctx, cancel := context.WithTimeout(context.Background(), r.opts.RedisTimeout)
			err := r.producer.Load(ctx) // a PING that also re-caches the script
			cancel()
			if err != nil {
				continue
			}
			r.redisUp.Store(true)
			redisUp.Inc()
			redisDownNow.Add(-1)
			r.opts.Logger.Info("redis reachable again", "spooled", r.spool.Depth())
		}
		if r.spool.Depth() > 0 {
			r.drainOnce()
		}
	}
}

// repartition recomputes spooled entries' partitions from their bodies, so
// a spool written before the partition count changed drains into the right
// streams instead of failing forever.
func (r *Receiver) repartition(entries []stream.Entry) {
	for i := range entries {
		e := &entries[i]
		for j := 0; j+1 < len(e.Fields); j += 2 {
			if e.Fields[j] != stream.FieldBody {
				continue
			}
			if ev, err := dwolla.ParseEvent([]byte(e.Fields[j+1])); err == nil {
				e.Partition = r.keys.Partition(ev.PartitionKey())
			}
			break
		}
	}
}

func (r *Receiver) drainOnce() {
	results := make([]stream.Result, r.opts.MaxBatch)
	n, err := r.spool.Drain(r.opts.MaxBatch, func(chunk []stream.Entry) error {
		// A long spool does not hold shutdown up: what is left drains at
		// the next start (the append script makes replays harmless).
		select {
		case <-r.quit:
			return errStopped
		default:
		}
		r.repartition(chunk)
		ctx, cancel := context.WithTimeout(context.Background(), r.opts.RedisTimeout)
		defer cancel()
		res := results[:len(chunk)]
		if err := r.producer.AppendBatch(ctx, chunk, res); err != nil {
			r.markDown(err)
			return err
		}
		for _, x := range res {
			if x.Err != nil {
				return x.Err
			}
		}
		for _, x := range res {
			if x.Duplicate {
				spoolDrainDup.Inc()
			} else {
				spoolDrainStored.Inc()
			}
		}
		return nil
	})
	if errors.Is(err, errStopped) {
		r.opts.Logger.Info("spool drain stopped for shutdown; the rest drains at the next start", "drained", n, "remaining", r.spool.Depth(), "spool_dir", r.opts.SpoolDir)
		return
	}
	if err != nil {
		r.opts.Logger.Warn("spool drain paused; will retry", "drained", n, "remaining", r.spool.Depth(), "err", err)
		return
	}
	if n > 0 {
		r.opts.Logger.Info("spool drained into redis", "entries", n)
	}
}
