package sim

import (
	"bytes"
	"cmp"
	"container/heap"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hookstream/hookstream/dwolla"
)

// UserAgent is the User-Agent Dwolla's sender uses.
const UserAgent = "dwolla-webhooks/1.1"

// retryGaps is Dwolla's retry schedule: the gap before each of the 8 retries,
// 72 h in total (reference/dwolla.md section 1).
var retryGaps = [...]time.Duration{
	15 * time.Minute, 45 * time.Minute, 2 * time.Hour, 3 * time.Hour,
	6 * time.Hour, 12 * time.Hour, 24 * time.Hour, 24 * time.Hour,
}

// MaxRetries is how often a failed delivery is retried before giving up.
const MaxRetries = len(retryGaps)

// SendConfig says where and how to deliver events.
type SendConfig struct {
	// URL is the receiver, e.g. http://127.0.0.1:8080/webhooks/dwolla.
	URL string
	// Secret signs X-Request-Signature-SHA-256 (required).
	Secret []byte
	// Rate is the target number of first deliveries per second, open loop:
	// event i is due at i/Rate whether or not earlier ones were answered
	// (Concurrency still bounds requests in flight). Duplicates, reordered
	// deliveries and retries come on top at their own times. 0 sends as fast
	// as Concurrency allows.
	Rate float64
	// Concurrency bounds requests in flight (default 10, Dwolla's burst size).
	Concurrency int
	// Duplicates is the fraction of events delivered a second time, at a
	// random moment up to ReorderDelay after the first delivery.
	Duplicates float64
	// Reorder is the fraction of events whose delivery is delayed by up to
	// ReorderDelay, so they arrive after later events.
	Reorder float64
	// ReorderDelay is the longest extra delay of a reordered event and of a
	// duplicate (default 1s).
	ReorderDelay time.Duration
	// TimeScale divides Dwolla's retry gaps (15m, 45m, 2h, 3h, 6h, 12h, 24h,
	// 24h): 3600 turns 15m into 0.25s. Default 1, Dwolla's real schedule.
	TimeScale float64
	// Drop is the fraction of events never delivered (0..1): the receiver
	// never sees them, though Dwolla has them (the fake API lists them in
	// /events, and in the webhooks with one failed attempt, see
	// AttemptRecorder). Which events are dropped depends only on the event
	// id and Seed (Dropped), so every run drops the same ones.
	Drop float64
	// Seed makes the choice of duplicated, reordered and dropped events,
	// and the delays, reproducible.
	Seed int64
	// Attempts, when set, is told of every delivery attempt and every
	// dropped event, as the sender saw them (the fake API's webhook list).
	Attempts AttemptRecorder
	// Client sends the requests. Nil means a client with keep-alive and
	// Dwolla's 10 s timeout. Redirects are never followed, not even by a
	// given client: Dwolla counts a 3xx as a failure.
	Client *http.Client
	// Logger receives a warning for every delivery given up (nil =
	// slog.Default()).
	Logger *slog.Logger
}

func (c SendConfig) withDefaults() (SendConfig, error) {
	c.Concurrency = cmp.Or(c.Concurrency, 10)
	c.ReorderDelay = cmp.Or(c.ReorderDelay, time.Second)
	c.TimeScale = cmp.Or(c.TimeScale, 1)
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	u, err := url.Parse(c.URL)
	switch {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return c, fmt.Errorf("sim: receiver URL %q must be an absolute http:// or https:// URL", c.URL)
	case len(c.Secret) == 0:
		return c, errors.New("sim: no signing secret: set the receiver's webhook secret")
	case c.Rate < 0 || c.Concurrency < 0 || c.ReorderDelay < 0 || c.TimeScale < 0:
		return c, errors.New("sim: rate, concurrency, reorder delay and time scale must not be negative")
	case c.Duplicates < 0 || c.Duplicates > 1 || c.Reorder < 0 || c.Reorder > 1 || c.Drop < 0 || c.Drop > 1:
		return c, fmt.Errorf("sim: duplicates (%g), reorder (%g) and drop (%g) are fractions and must be within [0, 1]", c.Duplicates, c.Reorder, c.Drop)
	}
	return c, nil
}

// SendStats counts what a Sender did.
type SendStats struct {
	Sent       int64         // HTTP requests made: first tries, duplicates and retries
	Delivered  int64         // deliveries answered 2xx
	Duplicates int64         // second deliveries of an event (on purpose, like Dwolla's)
	Reordered  int64         // deliveries delayed so they arrive after later events
	Retries    int64         // requests that retried a failed delivery
	GaveUp     int64         // deliveries abandoned after MaxRetries retries
	Dropped    int64         // events never delivered on purpose (SendConfig.Drop)
	Non2xx     map[int]int64 // non-2xx answers by status code
	NetErrors  int64         // requests that got no answer (refused, reset, timeout)
}

// String summarises the stats on one line.
func (s SendStats) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d requests, %d delivered, %d duplicates, %d reordered, %d dropped, %d retries, %d gave up, %d network errors",
		s.Sent, s.Delivered, s.Duplicates, s.Reordered, s.Dropped, s.Retries, s.GaveUp, s.NetErrors)
	if len(s.Non2xx) > 0 {
		b.WriteString(", non-2xx:")
		for _, code := range slices.Sorted(maps.Keys(s.Non2xx)) {
			fmt.Fprintf(&b, " %d×%d", s.Non2xx[code], code)
		}
	}
	return b.String()
}

// Send delivers events (in slice order, paced by cfg.Rate) the way Dwolla
// does: POST with Content-Type: application/json, User-Agent
// dwolla-webhooks/1.1, X-Dwolla-Topic and X-Request-Signature-SHA-256. A
// non-2xx answer (3xx included: redirects are not followed) or a network error
// is retried on Dwolla's schedule, compressed by cfg.TimeScale, and given up
// after MaxRetries retries. Send returns when every delivery, duplicates and
// retries included, is done, or when ctx ends (then with ctx's error).
func Send(ctx context.Context, events []Event, cfg SendConfig) (SendStats, error) {
	s, err := NewSender(cfg)
	if err != nil {
		return SendStats{}, err
	}
	in := make(chan Event)
	feedCtx, stopFeed := context.WithCancel(ctx)
	defer stopFeed()
	go func() {
		defer close(in)
		for _, ev := range events {
			select {
			case in <- ev:
			case <-feedCtx.Done():
				return
			}
		}
	}()
	err = s.Run(ctx, in)
	return s.Stats(), err
}

// Sender delivers events from a channel, for traffic without end; Send is
// the one-shot form. Stats may be read while Run runs.
type Sender struct {
	cfg    SendConfig
	client *http.Client
	rng    *rand.Rand // used by Run's scheduling loop only

	sent, delivered, duplicates, reordered, dropped, retries, gaveUp, netErrors atomic.Int64

	mu     sync.Mutex
	non2xx map[int]int64
}

// NewSender checks cfg and fills in its defaults.
func NewSender(cfg SendConfig) (*Sender, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	var client http.Client
	if cfg.Client != nil {
		client = *cfg.Client
	} else {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConns = 0
		tr.MaxIdleConnsPerHost = cfg.Concurrency
		client = http.Client{Transport: tr, Timeout: 10 * time.Second}
	}
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &Sender{
		cfg:    cfg,
		client: &client,
		rng:    newRand(cfg.Seed, 0x73656e64), // "send"
		non2xx: make(map[int]int64),
	}, nil
}

// Stats returns a snapshot of the counts so far.
func (s *Sender) Stats() SendStats {
	s.mu.Lock()
	non2xx := maps.Clone(s.non2xx)
	s.mu.Unlock()
	return SendStats{
		Sent:       s.sent.Load(),
		Delivered:  s.delivered.Load(),
		Duplicates: s.duplicates.Load(),
		Reordered:  s.reordered.Load(),
		Retries:    s.retries.Load(),
		GaveUp:     s.gaveUp.Load(),
		Dropped:    s.dropped.Load(),
		Non2xx:     non2xx,
		NetErrors:  s.netErrors.Load(),
	}
}

// delivery is one event on its way, first try or retry of it.
type delivery struct {
	ev      Event
	sig     string
	dup     bool // the second, deliberate delivery of the event
	attempt int  // 0 = first try
	due     time.Time
	seq     uint64 // FIFO among deliveries due at the same time
}

type outcome struct {
	d      *delivery
	status int   // 0 when err is set
	err    error // no answer
}

// Run delivers every event received from in until in is closed and every
// delivery (duplicates and retries included) is done, or until ctx ends. It
// may be called once.
//
// One goroutine schedules: it takes event i from in when it is due (at
// i/Rate, or as soon as a worker is free when Rate is 0), plans its
// deliveries, and hands due deliveries to Concurrency workers; failed ones
// come back and are rescheduled on the retry schedule.
func (s *Sender) Run(ctx context.Context, in <-chan Event) error {
	work := make(chan *delivery)
	outcomes := make(chan outcome, s.cfg.Concurrency)
	var wg sync.WaitGroup
	for range s.cfg.Concurrency {
		wg.Go(func() {
			for d := range work {
				status, err := s.post(ctx, d)
				select {
				case outcomes <- outcome{d: d, status: status, err: err}:
				case <-ctx.Done(): // Run has stopped reading
				}
			}
		})
	}
	defer func() {
		close(work)
		wg.Wait()
	}()

	var (
		queue    deliveryQueue
		seq      uint64
		taken    int // events taken from in
		inflight int
		inDone   bool
		start    = time.Now()
		timer    = time.NewTimer(time.Hour)
	)
	timer.Stop()
	push := func(d *delivery) {
		d.seq = seq
		seq++
		heap.Push(&queue, d)
	}
	for {
		now := time.Now()
		var (
			sendTo   chan<- *delivery
			next     *delivery
			takeFrom <-chan Event
			wake     time.Time
		)
		if queue.Len() > 0 {
			if top := queue.items[0]; !top.due.After(now) {
				sendTo, next = work, top
			} else {
				wake = top.due
			}
		}
		// Take the next event only when nothing due is waiting for a worker,
		// so a slow receiver backs up into in, not into memory.
		nominal := now
		if !inDone && next == nil {
			if s.cfg.Rate > 0 {
				nominal = start.Add(time.Duration(float64(taken) / s.cfg.Rate * float64(time.Second)))
			}
			if !nominal.After(now) {
				takeFrom = in
			} else if wake.IsZero() || nominal.Before(wake) {
				wake = nominal
			}
		}
		if inDone && queue.Len() == 0 && inflight == 0 {
			return nil
		}
		var timerC <-chan time.Time
		if next == nil && !wake.IsZero() {
			timer.Reset(wake.Sub(now))
			timerC = timer.C
		}
		select {
		case sendTo <- next:
			heap.Pop(&queue)
			inflight++
		case ev, ok := <-takeFrom:
			if !ok {
				inDone = true
				continue
			}
			taken++
			// Due now: when Rate is set, nominal has passed already.
			s.plan(ev, time.Now(), push)
		case o := <-outcomes:
			inflight--
			if d := s.settle(ctx, o); d != nil {
				push(d)
			}
		case <-timerC:
		case <-ctx.Done():
			return fmt.Errorf("sim: sending stopped with %d deliveries scheduled and %d in flight: %w",
				queue.Len(), inflight, ctx.Err())
		}
		timer.Stop()
	}
}

// plan schedules the deliveries of one event: the first, possibly delayed
// (reordered), and possibly a duplicate later still.
func (s *Sender) plan(ev Event, due time.Time, push func(*delivery)) {
	d := &delivery{ev: ev, sig: dwolla.Sign(s.cfg.Secret, ev.Body), due: due}
	if s.cfg.Drop > 0 && Dropped(ev.ID, s.cfg.Seed, s.cfg.Drop) {
		s.dropped.Add(1)
		if s.cfg.Attempts != nil {
			at := time.Now().UTC()
			s.cfg.Attempts.RecordAttempt(ev, SentAttempt{
				URL: s.cfg.URL, Signature: d.sig, Sent: at, Answered: at,
				StatusCode: http.StatusServiceUnavailable, Body: []byte(DroppedBody), Dropped: true,
			})
		}
		return
	}
	if s.cfg.Reorder > 0 && s.rng.Float64() < s.cfg.Reorder {
		d.due = d.due.Add(s.delay())
		s.reordered.Add(1)
	}
	push(d)
	if s.cfg.Duplicates > 0 && s.rng.Float64() < s.cfg.Duplicates {
		dup := *d
		dup.dup = true
		dup.due = d.due.Add(s.delay())
		s.duplicates.Add(1)
		push(&dup)
	}
}

// delay draws a delay in (0, ReorderDelay].
func (s *Sender) delay() time.Duration {
	return 1 + time.Duration(s.rng.Int64N(int64(s.cfg.ReorderDelay)+1))
}

// settle counts an outcome and returns the retry to schedule, if any.
func (s *Sender) settle(ctx context.Context, o outcome) *delivery {
	d := o.d
	switch {
	case o.err == nil && o.status >= 200 && o.status < 300:
		s.delivered.Add(1)
		return nil
	case ctx.Err() != nil:
		return nil // stopping: neither a failure of the receiver nor worth a retry
	case o.err != nil:
		s.netErrors.Add(1)
	default:
		s.mu.Lock()
		s.non2xx[o.status]++
		s.mu.Unlock()
	}
	if d.attempt >= MaxRetries {
		s.gaveUp.Add(1)
		s.cfg.Logger.Warn("sim: gave up delivering event",
			"event_id", d.ev.ID, "topic", d.ev.Topic, "duplicate", d.dup,
			"attempts", d.attempt+1, "last_status", o.status, "last_error", errString(o.err))
		return nil
	}
	s.cfg.Logger.Debug("sim: delivery failed, will retry",
		"event_id", d.ev.ID, "attempt", d.attempt+1, "status", o.status, "error", errString(o.err))
	gap := time.Duration(float64(retryGaps[d.attempt]) / s.cfg.TimeScale)
	d.attempt++
	d.due = time.Now().Add(gap)
	return d
}

// post makes one HTTP request and returns the status, or the error when no
// answer came.
func (s *Sender) post(ctx context.Context, d *delivery) (int, error) {
	s.sent.Add(1)
	if d.attempt > 0 {
		s.retries.Add(1)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.cfg.URL, bytes.NewReader(d.ev.Body))
	if err != nil {
		return 0, fmt.Errorf("build request: %w", err)
	}
	// Set directly, not with Header.Set, to send the names exactly as Dwolla does.
	req.Header["Content-Type"] = []string{"application/json"}
	req.Header["User-Agent"] = []string{UserAgent}
	req.Header[dwolla.TopicHeader] = []string{d.ev.Topic}
	req.Header[dwolla.SignatureHeader] = []string{d.sig}
	sent := time.Now().UTC()
	resp, err := s.client.Do(req)
	if err != nil {
		if s.cfg.Attempts != nil {
			s.cfg.Attempts.RecordAttempt(d.ev, SentAttempt{URL: s.cfg.URL, Signature: d.sig, Sent: sent, Answered: time.Now().UTC(), Err: err})
		}
		return 0, err
	}
	var body []byte
	if s.cfg.Attempts != nil {
		body, _ = io.ReadAll(io.LimitReader(resp.Body, maxRecordedBody))
	}
	// Drain (a bounded amount) so the connection is reused.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	if s.cfg.Attempts != nil {
		s.cfg.Attempts.RecordAttempt(d.ev, SentAttempt{
			URL: s.cfg.URL, Signature: d.sig, Sent: sent, Answered: time.Now().UTC(),
			StatusCode: resp.StatusCode, Header: resp.Header, Body: body,
		})
	}
	return resp.StatusCode, nil
}

// Deliver makes one signed delivery of ev now, outside Run's schedule and
// without retries (what POST /webhooks/{id}/retries asks of Dwolla), and
// returns the status, or the error when no answer came. It counts in Stats
// and is reported to SendConfig.Attempts like any other attempt.
func (s *Sender) Deliver(ctx context.Context, ev Event) (int, error) {
	d := &delivery{ev: ev, sig: dwolla.Sign(s.cfg.Secret, ev.Body)}
	status, err := s.post(ctx, d)
	switch {
	case err == nil && status >= 200 && status < 300:
		s.delivered.Add(1)
	case err != nil:
		s.netErrors.Add(1)
	default:
		s.mu.Lock()
		s.non2xx[status]++
		s.mu.Unlock()
	}
	return status, err
}

// maxRecordedBody bounds the response body kept for an AttemptRecorder.
const maxRecordedBody = 4 << 10

// DroppedBody is the response body recorded for a dropped event's attempt.
const DroppedBody = "dropped by hookstream sim (--drop): never sent to the receiver"

// AttemptRecorder is told of every delivery attempt a Sender makes, and of
// every event it drops, as the sender saw it. RecordAttempt is called from
// the sender's goroutines, concurrently, and must not block for long.
type AttemptRecorder interface {
	RecordAttempt(ev Event, a SentAttempt)
}

// SentAttempt is one delivery attempt of an event.
type SentAttempt struct {
	URL        string // where it was sent
	Signature  string // X-Request-Signature-SHA-256
	Sent       time.Time
	Answered   time.Time   // when the answer (or the error) came
	StatusCode int         // 0 when no answer came (Err)
	Err        error       // no answer: refused, reset, timeout
	Header     http.Header // the answer's headers
	Body       []byte      // the answer's body, at most 4 KiB
	// Dropped marks the attempt recorded for a dropped event (SendConfig.Drop):
	// nothing was sent; it is recorded as a 503 with DroppedBody, so a
	// delivery audit (any attempt with a status of 300 or more, none 2xx)
	// finds it.
	Dropped bool
}

// Dropped reports whether the event with this id is one of the fraction
// drop of events a sender with this seed never delivers. It hashes the id
// and the seed, so the choice is the same on every run and independent of
// the order of events.
func Dropped(id string, seed int64, drop float64) bool {
	if drop <= 0 {
		return false
	}
	h := fnv.New64a()
	h.Write([]byte(id))
	x := splitmix(h.Sum64() ^ splitmix(uint64(seed)^0x64726f70)) // "drop"
	return float64(x>>11)/(1<<53) < drop
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "timeout: " + err.Error()
	}
	return err.Error()
}

// deliveryQueue is a min-heap of deliveries by due time, then sequence.
type deliveryQueue struct{ items []*delivery }

func (q *deliveryQueue) Len() int { return len(q.items) }
func (q *deliveryQueue) Less(i, j int) bool {
	a, b := q.items[i], q.items[j]
	if c := a.due.Compare(b.due); c != 0 {
		return c < 0
	}
	return a.seq < b.seq
}
func (q *deliveryQueue) Swap(i, j int) { q.items[i], q.items[j] = q.items[j], q.items[i] }
func (q *deliveryQueue) Push(x any)    { q.items = append(q.items, x.(*delivery)) }
func (q *deliveryQueue) Pop() any {
	n := len(q.items) - 1
	d := q.items[n]
	q.items[n] = nil
	q.items = q.items[:n]
	return d
}
