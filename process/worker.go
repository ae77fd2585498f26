package process

import (
	"context"
	"time"

	"github.com/hookstream/hookstream/stream"
	"github.com/sony/gobreaker/v2"
)

// worker is one consumer of the group over a fixed share of the partitions.
// It reads, stores and acknowledges one batch at a time, and between batches
// takes over entries of dead consumers, trims the streams and removes
// consumers that are gone.
type worker struct {
	p     *Processor
	name  string
	parts []int

	nextClaim, nextTrim time.Time
	errors              int
}

// idle reports whether the worker should read nothing now: processing is
// paused, or PostgreSQL's breaker is open.
func (w *worker) idle() bool {
	return w.p.paused.Load() || w.p.cb.State() == gobreaker.StateOpen
}

func (w *worker) run(ctx context.Context) {
	p := w.p
	now := time.Now()
	w.nextClaim, w.nextTrim = now, now.Add(p.opts.TrimEvery/2)
	ownDone := false
	for ctx.Err() == nil {
		if w.idle() {
			sleep(ctx, p.pollEvery())
			continue
		}
		// Entries this consumer name was given before a restart come first.
		if !ownDone {
			ownDone = w.drainOwnPending(ctx)
			continue
		}
		// Claims wait while PostgreSQL is failing: a claimed entry could not
		// be stored anyway, and every claim raises its delivery count
		// towards the dead-letter limit.
		if time.Now().After(w.nextClaim) && p.cb.State() == gobreaker.StateClosed && p.retrying.Load() == 0 {
			w.claim(ctx)
			w.nextClaim = time.Now().Add(p.opts.ClaimEvery)
		}
		if time.Now().After(w.nextTrim) {
			w.maintain(ctx)
			w.nextTrim = time.Now().Add(p.opts.TrimEvery)
		}
		if ctx.Err() != nil || w.idle() {
			continue
		}
		// The read is not cut short by shutdown: entries it returns are
		// already delivered to this consumer, so they are finished below.
		// While it is in flight the processor does not report itself paused.
		w.p.reading.Add(1)
		msgs, err := w.read(context.WithoutCancel(ctx))
		w.p.reading.Add(-1)
		if err != nil {
			w.failed(ctx, "read", err)
			continue
		}
		w.errors = 0
		if len(msgs) > 0 {
			w.handle(ctx, msgs)
		}
	}
}

// handle stores a batch, once processing is not paused (admit). Once ctx
// ends the batch still gets ShutdownWait to commit and be acknowledged.
func (w *worker) handle(ctx context.Context, msgs []stream.Message) {
	if !w.admit(ctx, msgs) {
		return
	}
	hctx, cancel := w.p.finishContext(ctx)
	defer cancel()
	if err := w.p.handle(hctx, w.name, msgs); err != nil {
		w.p.log.Warn("batch left pending; it will be delivered again", "consumer", w.name, "entries", len(msgs), "err", err)
	}
}

// admit reads the pause switch afresh before a batch is stored and holds the
// batch for as long as processing is paused; it reports whether to store it
// (false: ctx ended while it was held).
//
// The switch the workers poll (every ControlEvery) only stops them reading.
// This check is what makes a pause exact: a batch read after the switch was
// set (a read already waiting when it was set, a worker whose processor has
// not polled it yet, a processor just started, a claim) is never stored
// while paused, because its read came before this check, and the check sees
// the switch. The held batch stays pending for this consumer, touched so
// that nobody claims it, and is stored on resume; if ctx ends first it stays
// pending, for this consumer's restart or a claim.
func (w *worker) admit(ctx context.Context, msgs []stream.Message) bool {
	p := w.p
	// Not cut short by shutdown: a batch read before it is still finished.
	paused, err := p.readControl(context.WithoutCancel(ctx))
	if err == nil && !paused {
		return true
	}
	p.held.Add(int64(len(msgs)))
	defer p.held.Add(-int64(len(msgs)))
	defer p.keepHeld(ctx, w.name, msgs)()
	if err != nil {
		p.log.Warn("cannot read the pause switch; holding the batch until it can be read", "consumer", w.name, "entries", len(msgs), "err", err)
	} else {
		p.log.Info("processing is paused; holding the batch read as the pause began until it resumes", "consumer", w.name, "entries", len(msgs))
	}
	for {
		if !sleep(ctx, p.pollEvery()) {
			p.log.Info("stopping while paused; the held batch stays pending", "consumer", w.name, "entries", len(msgs))
			return false
		}
		if paused, err = p.readControl(ctx); err == nil && !paused {
			p.log.Info("processing resumed; storing the held batch", "consumer", w.name, "entries", len(msgs))
			return true
		}
	}
}

// finishContext lives until ctx ends plus ShutdownWait.
func (p *Processor) finishContext(ctx context.Context) (context.Context, context.CancelFunc) {
	hctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, func() {
		t := time.NewTimer(p.opts.ShutdownWait)
		defer t.Stop()
		select {
		case <-hctx.Done():
		case <-t.C:
			cancel()
		}
	})
	return hctx, func() { stop(); cancel() }
}

func (w *worker) read(ctx context.Context) ([]stream.Message, error) {
	p := w.p
	if !p.cluster {
		return p.group.Read(ctx, w.name, w.parts, int64(p.opts.BatchSize), p.opts.Block)
	}
	// On Redis Cluster the partitions live in different hash slots, so one
	// read cannot span them: read each without blocking, then pause when all
	// were empty.
	var out []stream.Message
	for _, part := range w.parts {
		msgs, err := p.group.Read(ctx, w.name, []int{part}, int64(p.opts.BatchSize), -1)
		if err != nil {
			return out, err
		}
		out = append(out, msgs...)
	}
	if len(out) == 0 {
		sleep(ctx, min(p.opts.Block, 100*time.Millisecond))
	}
	return out, nil
}

// drainOwnPending processes one batch of the entries delivered to this
// consumer name before a restart; it reports whether none are left.
func (w *worker) drainOwnPending(ctx context.Context) bool {
	p := w.p
	var msgs []stream.Message
	var err error
	p.reading.Add(1)
	if p.cluster {
		for _, part := range w.parts {
			m, e := p.group.ReadOwnPending(ctx, w.name, []int{part}, int64(p.opts.BatchSize))
			msgs, err = append(msgs, m...), e
			if e != nil {
				break
			}
		}
	} else {
		msgs, err = p.group.ReadOwnPending(ctx, w.name, w.parts, int64(p.opts.BatchSize))
	}
	p.reading.Add(-1)
	if err != nil {
		w.failed(ctx, "read own pending entries", err)
		return w.errors > 3 // give up; the claim step picks them up later
	}
	if len(msgs) == 0 {
		return true
	}
	p.log.Info("resuming entries delivered before a restart", "consumer", w.name, "entries", len(msgs))
	w.handle(ctx, msgs)
	return false
}

// claim takes over entries other consumers have held for ClaimIdle and
// processes them like any batch.
func (w *worker) claim(ctx context.Context) {
	p := w.p
	for _, part := range w.parts {
		for ctx.Err() == nil && !w.idle() {
			p.reading.Add(1)
			msgs, deleted, err := p.group.Claim(ctx, w.name, part, p.opts.ClaimIdle, int64(p.opts.BatchSize))
			p.reading.Add(-1)
			if len(deleted) > 0 {
				deletedPending.Add(len(deleted))
				p.log.Warn("pending entries vanished from the stream (trimmed or deleted outside hookstream); their events may be missing: reconcile to recover them",
					"stream", p.keys.Stream(part), "entries", len(deleted))
			}
			if len(msgs) > 0 {
				p.stats.claimed.Add(int64(len(msgs)))
				claimedTotal.Add(len(msgs))
				p.log.Info("took over entries from an idle consumer", "consumer", w.name, "stream", p.keys.Stream(part), "entries", len(msgs))
				w.handle(ctx, msgs)
			}
			if err != nil {
				w.failed(ctx, "claim idle entries", err)
				return
			}
			if len(msgs) == 0 {
				break
			}
		}
	}
}

// maintain trims acknowledged entries past the retention and removes
// consumers that have been gone a long time with nothing pending.
func (w *worker) maintain(ctx context.Context) {
	p := w.p
	cutoff := time.Now().Add(-p.opts.Retention)
	for _, part := range w.parts {
		n, err := p.group.Trim(ctx, part, cutoff)
		if err != nil {
			w.failed(ctx, "trim", err)
			return
		}
		if n > 0 {
			p.stats.trimmed.Add(n)
			trimmedTotal.Add(int(n))
		}
		gone, err := p.group.RemoveIdleConsumers(ctx, part, p.opts.ConsumerIdle, w.name)
		if err != nil {
			p.log.Warn("remove idle consumers", "stream", p.keys.Stream(part), "err", err)
		}
		if len(gone) > 0 {
			p.log.Info("removed idle consumers with nothing pending", "stream", p.keys.Stream(part), "consumers", gone)
		}
	}
}

// failed logs a Redis failure (the first, then every tenth) and backs off.
// When the group is gone (Redis restarted without persistence, or the
// stream was deleted) it creates it again: inserts are deduplicated, so
// starting over from the streams' first entries is safe.
func (w *worker) failed(ctx context.Context, what string, err error) {
	if stream.IsNoGroup(err) {
		w.p.log.Warn("the consumer group is gone; creating it again", "consumer", w.name, "err", err)
		if err := w.p.group.Ensure(ctx); err == nil {
			return
		}
	}
	if w.errors%10 == 0 {
		w.p.log.Warn("Redis "+what+" failed; retrying", "consumer", w.name, "err", err)
	}
	sleep(ctx, w.p.backoff(min(w.errors, 6)))
	w.errors++
}
