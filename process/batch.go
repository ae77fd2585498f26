package process

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/hookstream/hookstream/store"
	"github.com/hookstream/hookstream/stream"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/puddle/v2"
	"github.com/sony/gobreaker/v2"
)

// item is one entry being processed, with the event derived from it.
type item struct {
	msg stream.Message
	ev  store.Event
}

// failure classes of a batch transaction.
type failure int

const (
	// transient: about reaching PostgreSQL (connection lost, timeouts,
	// shutdown, serialization failures, deadlocks, resources). Retried
	// behind the breaker for as long as it takes; never dead-lettered.
	transient failure = iota
	// rejected: PostgreSQL refuses the rows themselves (SQLSTATE class 22
	// data exception, 23 integrity violation, 54000 a value too large for
	// an index). Retrying cannot help; the rows at fault are poison.
	rejected
	// unexplained: any other error (a missing table, a bug in a folding
	// step, a statement timeout). It could be the rows or the system; the
	// batch is split to tell: rows that fail while their neighbours
	// succeed are poison; when every row fails, the fault is not in the
	// rows and processing holds until it is fixed.
	unexplained
)

// foldError marks an error a folding step returned.
type foldError struct {
	fold string
	err  error
}

func (e *foldError) Error() string { return "fold " + e.fold + ": " + e.err.Error() }
func (e *foldError) Unwrap() error { return e.err }

func classify(err error) failure {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		// A folding step's own error (not PostgreSQL's, not a lost
		// connection or deadline) is a bug or bad data: unexplained.
		var fe *foldError
		if errors.As(err, &fe) && !unreachable(err) {
			return unexplained
		}
		return transient // network, context deadline, pool closed, breaker open
	}
	switch c := pgErr.Code; {
	case store.IsDataError(err) || c == "54000":
		return rejected
	case strings.HasPrefix(c, "08"), strings.HasPrefix(c, "53"), strings.HasPrefix(c, "57P"), strings.HasPrefix(c, "58"),
		c == "40001", c == "40P01", c == "55P03":
		return transient
	}
	return unexplained
}

// unreachable reports the errors pgx, pgconn and the pool give when
// PostgreSQL did not answer: a deadline or cancellation, a network error, a
// failed connect, a connection that is closed or busy (pgconn's lock errors,
// which are safe to retry), or a closed pool.
func unreachable(err error) bool {
	var netErr net.Error
	var connectErr *pgconn.ConnectError
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) || pgconn.Timeout(err) ||
		errors.As(err, &netErr) || errors.As(err, &connectErr) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, pgconn.ErrConnClosed) || pgconn.SafeToRetry(err) || errors.Is(err, puddle.ErrClosedPool)
}

// errSystemic is returned while every row of a batch fails the same way.
var errSystemic = errors.New("every event of the batch fails")

// handle stores one batch of entries and acknowledges them. It returns when
// every entry is either committed (stored, found duplicate or dead-lettered)
// and acknowledged, or left pending because ctx ended first.
func (p *Processor) handle(ctx context.Context, consumer string, msgs []stream.Message) error {
	defer p.keepHeld(ctx, consumer, msgs)()
	var (
		good, alone []item
		dead        []store.DeadLetter
		ack         = make([]stream.Message, 0, len(msgs))
		deleted     int
	)
	for _, m := range msgs {
		if m.Deleted() {
			deleted++
			ack = append(ack, m)
			continue
		}
		ev, err := Enrich(m)
		switch {
		case err != nil:
			dead = append(dead, p.deadLetter(m, err.Error()))
			ack = append(ack, m)
		case m.Deliveries > 2*int64(p.opts.MaxDeliveries):
			dead = append(dead, p.deadLetter(m, fmt.Sprintf(
				"delivered %d times, more than twice the limit of %d: it may be what stops the processors", m.Deliveries, p.opts.MaxDeliveries)))
			ack = append(ack, m)
		case m.Deliveries > int64(p.opts.MaxDeliveries):
			alone = append(alone, item{msg: m, ev: ev}) // tried on its own, after the rest
		default:
			good = append(good, item{msg: m, ev: ev})
		}
	}
	if deleted > 0 {
		deletedPending.Add(deleted)
		p.log.Warn("entries vanished from the stream while pending (trimmed or deleted outside hookstream); their events may be missing: reconcile to recover them",
			"consumer", consumer, "entries", deleted)
	}
	if err := p.storeAll(ctx, good, dead, nil); err != nil {
		return err
	}
	for _, it := range good {
		ack = append(ack, it.msg)
	}
	if err := p.ack(ctx, ack); err != nil {
		return err
	}
	// An entry delivered more than MaxDeliveries times is stored on its
	// own: if it was stored before and only its acknowledgement kept
	// failing, it is a duplicate now; if it fails again, it is judged like
	// any row that fails alone, and dead-lettered only if it is poison.
	for _, it := range alone {
		overDelivered := func(m stream.Message) string {
			return fmt.Sprintf("delivered %d times, more than the limit of %d; ", m.Deliveries, p.opts.MaxDeliveries)
		}
		if err := p.storeAll(ctx, []item{it}, nil, overDelivered); err != nil {
			return err
		}
		if err := p.ack(ctx, []stream.Message{it.msg}); err != nil {
			return err
		}
	}
	return nil
}

// keepHeld refreshes the batch's idle time in Redis while it is being
// stored, so a slow transaction or an outage does not make other consumers
// claim it (each claim raises the delivery counts towards the dead-letter
// limit). The returned func stops it.
func (p *Processor) keepHeld(ctx context.Context, consumer string, msgs []stream.Message) func() {
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(max(p.opts.ClaimIdle/3, time.Millisecond))
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.opts.ClaimIdle/3)
				if err := p.group.Touch(tctx, consumer, msgs); err != nil {
					p.log.Warn("could not refresh a held batch; another consumer may claim it", "consumer", consumer, "err", err)
				}
				cancel()
			}
		}
	}()
	return func() { close(done); <-stopped }
}

// storeAll commits good and dead. When PostgreSQL rejects rows it splits the
// batch in halves until the rows at fault are alone and dead-letters exactly
// those, so a bad entry never holds back a valid one. Rows that fail alone in
// an unexplained way are suspects, judged by judge; when the fault is not in
// the rows, it holds the batch, retrying, until the cause is fixed (or ctx
// ends). why, if not nil, starts the reason of each dead letter.
func (p *Processor) storeAll(ctx context.Context, good []item, dead []store.DeadLetter, why func(stream.Message) string) error {
	for attempt := 0; ; attempt++ {
		s := splitter{p: p, why: why}
		err := s.store(ctx, good, dead)
		if err == nil && len(s.suspects) > 0 {
			err = s.judge(ctx)
		}
		if !errors.Is(err, errSystemic) {
			if attempt > 0 {
				p.holding.Add(-1)
			}
			return err
		}
		if attempt == 0 {
			p.holding.Add(1)
		}
		if attempt%10 == 0 {
			p.log.Error("processing holds: every event of a batch fails and so does a canary event, so the fault is not in the events (a migration not applied? a folding step?); it resumes once fixed",
				"entries", len(good), "err", err)
		}
		if !sleep(ctx, p.backoff(attempt)) {
			p.holding.Add(-1)
			return ctx.Err()
		}
		good = s.unstored(good)
	}
}

// splitter is one bisection of a batch.
type splitter struct {
	p        *Processor
	why      func(stream.Message) string // starts dead letters' reasons (nil: nothing)
	stored   int                         // rows committed
	done     map[string]bool             // refs of the entries committed
	suspects []suspect                   // rows that failed alone, unexplained
	canary   int                         // 0 not run, 1 stored fine, -1 failed
}

type suspect struct {
	item
	err error
}

func (s *splitter) deadLetter(m stream.Message, reason string) store.DeadLetter {
	if s.why != nil {
		reason = s.why(m) + reason
	}
	return s.p.deadLetter(m, reason)
}

// healthy reports whether the rows seem to fail for their own sake: other
// rows were stored, or a canary is. It only decides whether bisecting on is
// worth it; judge decides what is poison.
func (s *splitter) healthy(ctx context.Context) bool {
	if s.stored > 0 {
		return true
	}
	if s.canary == 0 {
		s.canary = -1
		if err := s.p.canary(ctx); err == nil {
			s.canary = 1
		} else {
			s.p.log.Warn("canary event fails too", "err", err)
		}
	}
	return s.canary == 1
}

// judge decides which suspects are poison. A failure counts against a row
// only when the system demonstrably works on both sides of it: after every
// suspect's first failure a canary event stores and folds fine, the suspect
// then fails alone again, and a canary stores fine after that. A dependency
// that goes down, recovers or is down for a while at any moment cannot make
// a good row look like that: it would have to be down at the first failure,
// up for the first canary, down again for the second attempt and up again
// for the last canary. Comparing a row's failure with other rows' successes
// at other moments (as the bisection sees them) is no evidence: the folding
// step may have recovered, or failed, in between.
//
// Suspects that store fine the second time are stored. If a canary fails,
// the fault is not in the rows: judge returns errSystemic and the batch is
// held.
func (s *splitter) judge(ctx context.Context) error {
	if err := s.p.canary(ctx); err != nil {
		return s.systemic(err)
	}
	var dls []store.DeadLetter
	var poison []suspect
	for _, sp := range s.suspects {
		err := s.p.storeRetrying(ctx, []item{sp.item}, nil, 1)
		switch {
		case err == nil:
			s.committed([]item{sp.item})
		case classify(err) == transient:
			return err // ctx ended while retrying
		case classify(err) == rejected:
			dls = append(dls, s.deadLetter(sp.msg, "rejected by PostgreSQL: "+err.Error()))
		default:
			poison = append(poison, suspect{sp.item, err})
		}
	}
	if len(poison) > 0 {
		if err := s.p.canary(ctx); err != nil {
			return s.systemic(err)
		}
		for _, sp := range poison {
			dls = append(dls, s.deadLetter(sp.msg, "fails alone, twice, while a canary event stores fine before and after: "+sp.err.Error()))
		}
	}
	if len(dls) == 0 {
		return nil
	}
	return s.store(ctx, nil, dls)
}

// systemic is the error that holds the batch: a canary failed with err.
func (s *splitter) systemic(err error) error {
	s.p.log.Warn("canary event fails too", "err", err)
	return fmt.Errorf("%w: a canary event fails too: %w", errSystemic, err)
}

// committed records rows this splitter stored.
func (s *splitter) committed(rows []item) {
	s.stored += len(rows)
	if s.done == nil {
		s.done = map[string]bool{}
	}
	for _, it := range rows {
		s.done[it.msg.Ref()] = true
	}
}

func (s *splitter) store(ctx context.Context, good []item, dead []store.DeadLetter) error {
	// An unexplained failure of the whole batch is retried a few times
	// before splitting; inside a split, once.
	tries := 1
	if s.stored == 0 && len(s.suspects) == 0 {
		tries = 3
	}
	err := s.p.storeRetrying(ctx, good, dead, tries)
	if err == nil {
		s.committed(good)
		return nil
	}
	kind := classify(err)
	switch {
	case kind == transient:
		return err // ctx ended while retrying
	case len(good) == 0:
		return fmt.Errorf("PostgreSQL rejects the dead letters themselves: %w", err)
	case len(good) == 1 && kind == rejected:
		return s.store(ctx, nil, append(dead, s.deadLetter(good[0].msg, "rejected by PostgreSQL: "+err.Error())))
	case len(good) == 1:
		s.suspects = append(s.suspects, suspect{good[0], err})
		// Many failures and no success: ask the canary before splitting on.
		if len(s.suspects) >= 8 && !s.healthy(ctx) {
			return fmt.Errorf("%w: %w", errSystemic, err)
		}
		if len(dead) > 0 {
			return s.store(ctx, nil, dead)
		}
		return nil
	}
	h := len(good) / 2
	if err := s.store(ctx, good[:h], dead); err != nil {
		return err
	}
	return s.store(ctx, good[h:], nil)
}

// unstored is good without the rows this splitter committed.
func (s *splitter) unstored(good []item) []item {
	out := good[:0:0]
	for _, it := range good {
		if !s.done[it.msg.Ref()] {
			out = append(out, it)
		}
	}
	return out
}

// errRollback ends the canary's transaction without committing.
var errRollback = errors.New("canary: roll back")

// canary runs a typical synthetic event through the insert and every
// folding step in a transaction that is rolled back: if it fails too, the
// system is at fault, not the events.
func (p *Processor) canary(ctx context.Context) error {
	now := time.Now().UTC().Truncate(time.Millisecond)
	ev := store.Event{
		ID: "hookstream-canary-" + fmt.Sprint(now.UnixNano()), Topic: "customer_created", Family: "customer",
		ResourceType: "customers", ResourceID: "hookstream-canary", CustomerID: "hookstream-canary",
		Created: now, Received: now, Source: "canary", Body: []byte(`{}`),
	}
	tctx, cancel := context.WithTimeout(ctx, p.opts.TxTimeout)
	defer cancel()
	var used pgx.Tx
	err := pgx.BeginFunc(tctx, p.db, func(tx pgx.Tx) error {
		used = tx
		if _, err := store.InsertEvents(tctx, tx, []store.Event{ev}); err != nil {
			return err
		}
		for _, f := range p.opts.Folds {
			if err := f.Fold(tctx, tx, []store.Event{ev}); err != nil {
				return &foldError{fold: f.Name(), err: err}
			}
		}
		return errRollback
	})
	p.txEnded(used, false)
	if errors.Is(err, errRollback) {
		return nil
	}
	return err
}

// txEnded tells the folding steps that watch their transactions how tx
// ended (nil: it could not even begin, which they hear of too: PostgreSQL
// may have restarted).
func (p *Processor) txEnded(tx pgx.Tx, committed bool) {
	for _, f := range p.opts.Folds {
		if w, ok := f.(TxWatcher); ok {
			w.TxEnded(tx, committed)
		}
	}
}

// storeRetrying runs one transaction through the breaker, each attempt
// bounded by TxTimeout. Transient failures are retried with backoff for as
// long as it takes (or until ctx ends): the batch stays in hand meanwhile, so
// the worker reads nothing new, the backlog waits in Redis, and nothing is
// dead-lettered for an outage. Rejections return at once; unexplained
// failures after tries attempts.
func (p *Processor) storeRetrying(ctx context.Context, good []item, dead []store.DeadLetter, tries int) error {
	unexplainedSeen := 0
	for attempt := 0; ; attempt++ {
		if attempt == 1 {
			p.retrying.Add(1)
			defer p.retrying.Add(-1)
		}
		_, err := p.cb.Execute(func() (struct{}, error) {
			tctx, cancel := context.WithTimeout(ctx, p.opts.TxTimeout)
			defer cancel()
			return struct{}{}, p.storeTx(tctx, good, dead)
		})
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		switch classify(err) {
		case rejected:
			return err
		case unexplained:
			if unexplainedSeen++; unexplainedSeen >= tries {
				return err
			}
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
	var fresh []store.DeadLetter
	var newEvs []store.Event
	var used pgx.Tx // the transaction, once begun
	err := pgx.BeginFunc(ctx, p.db, func(tx pgx.Tx) error {
		used = tx
		var err error
		if len(good) > 0 {
			evs := make([]store.Event, len(good))
			for i := range good {
				evs[i] = good[i].ev
			}
			if inserted, err = store.InsertEvents(ctx, tx, evs); err != nil {
				return err
			}
			newEvs = evs[:0:0]
			for i, ok := range inserted {
				if ok {
					newEvs = append(newEvs, evs[i])
				}
			}
			if len(newEvs) > 0 {
				for _, f := range p.opts.Folds {
					if err := f.Fold(ctx, tx, newEvs); err != nil {
						return &foldError{fold: f.Name(), err: err}
					}
				}
			}
		}
		fresh, err = store.InsertDeadLetters(ctx, tx, dead)
		return err
	})
	p.txEnded(used, err == nil)
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
	p.stats.dead.Add(int64(len(fresh)))
	batchesTotal.Inc()
	batchSize.Update(float64(len(good) + len(dead)))
	storedTotal.Add(int(nNew))
	duplicateTotal.Add(len(good) - int(nNew))
	deadTotal.Add(len(fresh))
	if len(fresh) > 0 {
		p.publishDead(ctx, fresh)
	}
	p.publishStored(ctx, newEvs)
	return nil
}

// publishDead announces newly recorded dead letters on the DLQ stream (for
// the live feed and alerts; the table is the record, so this is best effort).
func (p *Processor) publishDead(ctx context.Context, dead []store.DeadLetter) {
	records := make([][]string, len(dead))
	for i, d := range dead {
		p.log.Warn("dead-lettered", "id", d.ID, "stream", d.Stream, "entry", d.EntryID, "event", d.EventID, "deliveries", d.Deliveries, "reason", d.Reason)
		records[i] = []string{"id", strconv.FormatInt(d.ID, 10), "stream", d.Stream, "entry", d.EntryID, "event_id", d.EventID, "reason", d.Reason}
	}
	if err := stream.Announce(ctx, p.rdb, p.keys.DLQ(), records); err != nil {
		p.log.Warn("dead letters are recorded but not announced on the DLQ stream; the dead_letters table has them (hookstream dlq list)", "err", err, "recorded", len(dead))
	}
}
