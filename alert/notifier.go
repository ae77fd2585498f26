package alert

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/sony/gobreaker/v2"
)

// NotifierOptions configure a Notifier; zero values take the defaults.
type NotifierOptions struct {
	// Lease is how long a notifier holds a notification it is sending;
	// past it, another notifier (or this one after a restart) sends it
	// again. It must exceed Timeout. Default 30s.
	Lease time.Duration
	// Timeout bounds one HTTP request. Default 10s.
	Timeout time.Duration
	// Poll is how often each target's outbox is looked at when nothing
	// woke it. Default 1s.
	Poll time.Duration
	// BackoffBase and BackoffMax bound the wait between attempts: the
	// n-th retry waits a random time in [d/2, d], d = min(Max, Base·2^(n-1)).
	// Defaults 1s and 5m.
	BackoffBase, BackoffMax time.Duration
	// MaxAge is how long a notification is retried before it is given up.
	// Default 24h.
	MaxAge time.Duration
	// BreakerFailures consecutive failures of a target open its breaker
	// for BreakerOpen; then one probe decides. Defaults 5 and 30s.
	BreakerFailures uint32
	BreakerOpen     time.Duration
	// Client sends the requests; default an http.Client with Timeout.
	Client *http.Client
	Logger *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
}

func (o *NotifierOptions) defaults() {
	if o.Lease <= 0 {
		o.Lease = 30 * time.Second
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.Poll <= 0 {
		o.Poll = time.Second
	}
	if o.BackoffBase <= 0 {
		o.BackoffBase = time.Second
	}
	if o.BackoffMax <= 0 {
		o.BackoffMax = 5 * time.Minute
	}
	if o.MaxAge <= 0 {
		o.MaxAge = 24 * time.Hour
	}
	if o.BreakerFailures == 0 {
		o.BreakerFailures = 5
	}
	if o.BreakerOpen <= 0 {
		o.BreakerOpen = 30 * time.Second
	}
	if o.Client == nil {
		o.Client = &http.Client{Timeout: o.Timeout}
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Notifier sends the outbox's notifications: one worker per target, so a
// slow or dead target delays nothing but itself, each behind its own
// circuit breaker. Any number of notifiers may run against one database:
// leases keep each notification with one sender at a time.
type Notifier struct {
	db      DB
	targets []*Target
	opts    NotifierOptions
	wake    map[string]chan struct{}

	mu       sync.Mutex
	breakers map[string]*gobreaker.CircuitBreaker[outcome]
	// notBefore is, per target, until when it asked us to wait (429
	// Retry-After): Slack limits a webhook URL, not a message.
	notBefore map[string]time.Time
}

// NewNotifier sends the notifications of targets, reading the outbox on db.
func NewNotifier(db DB, targets []*Target, opts NotifierOptions) *Notifier {
	opts.defaults()
	n := &Notifier{db: db, targets: targets, opts: opts, wake: map[string]chan struct{}{},
		breakers: map[string]*gobreaker.CircuitBreaker[outcome]{}, notBefore: map[string]time.Time{}}
	for _, t := range targets {
		n.wake[t.Name] = make(chan struct{}, 1)
		name := t.Name
		n.breakers[t.Name] = gobreaker.NewCircuitBreaker[outcome](gobreaker.Settings{
			Name:        "alert target " + name,
			MaxRequests: 1,
			Timeout:     opts.BreakerOpen,
			ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= opts.BreakerFailures },
			OnStateChange: func(_ string, from, to gobreaker.State) {
				opts.Logger.Warn("alert target circuit breaker", "target", name, "from", from.String(), "to", to.String())
				metrics.GetOrCreateCounter(fmt.Sprintf(`hookstream_alert_breaker_transitions_total{target=%q,to=%q}`, name, to.String())).Inc()
			},
		})
		metrics.GetOrCreateGauge(fmt.Sprintf(`hookstream_alert_breaker_open{target=%q}`, name), func() float64 {
			if n.BreakerState(name) == gobreaker.StateOpen {
				return 1
			}
			return 0
		})
	}
	return n
}

// Wake makes every target's worker look at the outbox now (the evaluator
// calls it after it has written notifications).
func (n *Notifier) Wake() {
	for _, c := range n.wake {
		select {
		case c <- struct{}{}:
		default:
		}
	}
}

// BreakerState is the state of target's circuit breaker.
func (n *Notifier) BreakerState(target string) gobreaker.State {
	n.mu.Lock()
	cb := n.breakers[target]
	n.mu.Unlock()
	if cb == nil {
		return gobreaker.StateClosed
	}
	return cb.State()
}

// Run sends until ctx ends. A send in flight when ctx ends is finished (it
// is bounded by Timeout) and recorded, so the notification is neither lost
// nor sent again needlessly.
func (n *Notifier) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, t := range n.targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n.runTarget(ctx, t)
		}()
	}
	wg.Wait()
}

func (n *Notifier) runTarget(ctx context.Context, t *Target) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-n.wake[t.Name]:
		}
		wait := n.opts.Poll
		if sent, err := n.Drain(ctx, t); err != nil {
			if ctx.Err() != nil {
				return
			}
			n.opts.Logger.Warn("alert notifier", "target", t.Name, "err", err)
		} else if sent > 0 {
			wait = 0 // there may be more
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(wait)
	}
}

// Drain sends what of target t's outbox is due now, one notification per
// group at a time, and reports how many attempts it made. It stops early
// when the target's breaker is open or the target asked to wait (429).
func (n *Notifier) Drain(ctx context.Context, t *Target) (int, error) {
	now := n.opts.Now()
	n.mu.Lock()
	cb, wait := n.breakers[t.Name], n.notBefore[t.Name]
	n.mu.Unlock()
	if cb.State() == gobreaker.StateOpen || now.Before(wait) {
		return 0, nil
	}
	limit := 10
	if cb.State() == gobreaker.StateHalfOpen {
		limit = 1 // one probe decides
	}
	cs, err := claim(ctx, n.db, t.Name, now, n.opts.Lease, limit)
	if err != nil {
		return 0, err
	}
	for i, c := range cs {
		o, err := cb.Execute(func() (outcome, error) {
			o := n.send(ctx, t, c)
			if o.Delivered || o.GiveUp || o.Status == http.StatusTooManyRequests {
				// A target that answers (even "no" or "slow down") is up.
				return o, nil
			}
			return o, errors.New(o.Err)
		})
		if errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests) {
			// The breaker opened under this batch: hand the rest back
			// untried, due when the breaker lets a probe through.
			for _, c := range cs[i:] {
				o := outcome{Err: "not sent: the circuit breaker of target " + t.Name + " is open", RetryAt: now.Add(n.opts.BreakerOpen)}
				if err := release(ctx, n.db, c, o.RetryAt, o.Err); err != nil {
					return i, err
				}
			}
			return i, nil
		}
		at := n.opts.Now()
		if !o.Delivered && !o.GiveUp {
			if at.Sub(c.CreatedAt) >= n.opts.MaxAge {
				o.GiveUp = true
				o.Err += fmt.Sprintf(" (given up: undelivered for %s)", n.opts.MaxAge)
			} else if o.RetryAt.IsZero() {
				o.RetryAt = at.Add(n.backoff(c.Attempt))
			}
		}
		n.count(t.Name, o)
		// Record even when ctx ended: the attempt happened.
		if err := record(context.WithoutCancel(ctx), n.db, c, t.Name, at, o); err != nil {
			return i + 1, err
		}
		if o.Status == http.StatusTooManyRequests {
			// The target asked us to wait: everything else for it waits too.
			n.mu.Lock()
			n.notBefore[t.Name] = o.RetryAt
			n.mu.Unlock()
			for _, c := range cs[i+1:] {
				if err := release(ctx, n.db, c, o.RetryAt, "not sent: target "+t.Name+" asked to wait (429)"); err != nil {
					return i + 1, err
				}
			}
			return i + 1, nil
		}
	}
	return len(cs), nil
}

// backoff is the wait before retry attempt+1: full jitter over the upper
// half of an exponential step.
func (n *Notifier) backoff(attempt int) time.Duration {
	d := n.opts.BackoffMax
	if attempt < 30 {
		d = min(n.opts.BackoffMax, n.opts.BackoffBase<<(attempt-1))
	}
	return d/2 + rand.N(d/2+1)
}

// count updates the delivery metrics.
func (n *Notifier) count(target string, o outcome) {
	result := "retry"
	switch {
	case o.Delivered:
		result = "delivered"
	case o.GiveUp:
		result = "given_up"
	case o.Status == http.StatusTooManyRequests:
		result = "rate_limited"
	}
	metrics.GetOrCreateCounter(fmt.Sprintf(`hookstream_alert_notifications_total{target=%q,result=%q}`, target, result)).Inc()
	metrics.GetOrCreateHistogram(fmt.Sprintf(`hookstream_alert_delivery_seconds{target=%q}`, target)).Update(o.Took.Seconds())
}

// maxRetryAfter caps a target's Retry-After, so a bad header cannot park
// notifications for days.
const maxRetryAfter = time.Hour

// send makes one attempt at notification c.
func (n *Notifier) send(ctx context.Context, t *Target, c claimed) outcome {
	start := n.opts.Now()
	o := n.post(ctx, t, c)
	o.Took = n.opts.Now().Sub(start)
	return o
}

func (n *Notifier) post(ctx context.Context, t *Target, c claimed) outcome {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), n.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, t.URL, bytes.NewReader(c.Body))
	if err != nil {
		return outcome{GiveUp: true, Err: "bad target URL: " + err.Error()}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "hookstream-alerts")
	if t.Kind == TargetWebhook {
		secret, err := ParseSecret(t.Secret)
		if err != nil {
			return outcome{GiveUp: true, Err: "target secret: " + err.Error()}
		}
		signed, err := Sign(c.ID, n.opts.Now(), c.Body, secret)
		if err != nil {
			return outcome{GiveUp: true, Err: err.Error()}
		}
		signed.Set(req.Header)
	}
	resp, err := n.opts.Client.Do(req)
	if err != nil {
		// Do not echo the URL: a Slack webhook URL is a secret.
		var uerr interface{ Unwrap() error }
		if errors.As(err, &uerr) {
			err = uerr.Unwrap()
		}
		return outcome{Err: "no answer: " + err.Error()}
	}
	defer resp.Body.Close()
	text, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	o := outcome{Status: resp.StatusCode}
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		o.Delivered = true
	case resp.StatusCode == http.StatusTooManyRequests:
		wait := 30 * time.Second
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s >= 0 {
			wait = min(time.Duration(s)*time.Second, maxRetryAfter)
		} else if at, err := http.ParseTime(resp.Header.Get("Retry-After")); err == nil {
			wait = min(max(time.Until(at), 0), maxRetryAfter)
		}
		o.RetryAt = n.opts.Now().Add(wait)
		o.Err = fmt.Sprintf("429 rate limited: retry after %s", wait)
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusRequestTimeout:
		o.Err = fmt.Sprintf("%d %s", resp.StatusCode, bytes.TrimSpace(text))
	default:
		// 4xx: the request is wrong (Slack: invalid_payload, no_service);
		// sending it again cannot help.
		o.GiveUp = true
		o.Err = fmt.Sprintf("%d %s: the target refused the notification", resp.StatusCode, bytes.TrimSpace(text))
	}
	return o
}
