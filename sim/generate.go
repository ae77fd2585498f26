package sim

import (
	"cmp"
	"container/heap"
	"context"
	"maps"
	"slices"
	"strings"
	"time"
)

// DefaultHost is the API host of the _links hrefs unless Config.Host is set.
const DefaultHost = "https://api-sandbox.dwolla.com"

// defaultStart is fixed, not time.Now, so a zero Config is reproducible too.
var defaultStart = time.Date(2025, 6, 2, 14, 0, 0, 0, time.UTC)

// Config says which lifecycles to generate. The zero value is usable.
type Config struct {
	// Customers is how many customers Generate takes through their
	// lifecycles (default 100). For a Generator, which never runs out, it only
	// sets the pace: customer k starts in slot k of Span/Customers.
	Customers int
	// Seed makes generation reproducible: the same Config gives
	// byte-identical events (ids, bodies, times).
	Seed int64
	// Start is the created time of the first customer's first event,
	// truncated to the millisecond (default 2025-06-02T14:00:00Z).
	Start time.Time
	// Span spreads the customers' start times over [Start, Start+Span)
	// (default one second per customer).
	Span time.Duration
	// StepDelay is the mean gap between two steps of one lifecycle (default
	// one minute). Gaps are drawn from an exponential distribution, at least
	// 1 ms, so created times within a lifecycle strictly increase; slow
	// steps (document review, micro-deposits, late ACH returns) take a
	// multiple of it.
	StepDelay time.Duration
	// Host is the API host used in _links hrefs (default DefaultHost).
	Host string
	// Incidents are injected into the traffic (see Incident); none by
	// default.
	Incidents []Incident
}

func (c Config) withDefaults() Config {
	c.Customers = cmp.Or(c.Customers, 100)
	if c.Start.IsZero() {
		c.Start = defaultStart
	}
	c.Start = c.Start.UTC().Truncate(time.Millisecond)
	c.Span = cmp.Or(c.Span, time.Duration(max(c.Customers, 1))*time.Second)
	c.StepDelay = cmp.Or(c.StepDelay, time.Minute)
	c.Host = strings.TrimRight(cmp.Or(c.Host, DefaultHost), "/")
	return c
}

// Event is one webhook as Dwolla would send it.
type Event struct {
	ID         string // event id, a lower-case UUID
	Topic      string // e.g. customer_bank_transfer_completed
	CustomerID string // lower-case; the customer of _links.customer
	ResourceID string // lower-case, even when the body carries it in upper case
	// ResourceType is the collection of _links.resource ("customers",
	// "funding-sources", "transfers" or "mass-payments"), as
	// dwolla.Event.ResourceType reports it.
	ResourceType string
	Created      time.Time // UTC, whole milliseconds: exactly the body's created
	// Delay is how long after Created the webhook is delivered, beyond the
	// usual (a lag-surge incident); zero for most events.
	Delay time.Duration
	// Body is the exact JSON body: id, resourceId, topic, timestamp and
	// created (equal, RFC 3339 with milliseconds), correlationId on some
	// transfer events, and _links self, account, resource and customer.
	Body []byte
}

// Scenario is a finite set of generated lifecycles.
type Scenario struct {
	// Events holds every unique event, sorted by Created.
	Events []Event
	// Paths counts the lifecycle instances by the path they took, such as
	// "verification:created>verified" or "bank_transfer:created>completed>failed";
	// see Generator for the families. The counts sum to the number of
	// lifecycle instances.
	Paths map[string]int
}

// Lifecycles returns the number of lifecycle instances in the scenario.
func (s *Scenario) Lifecycles() int {
	n := 0
	for _, c := range s.Paths {
		n += c
	}
	return n
}

// Generate takes cfg.Customers customers through their lifecycles. It is the
// first cfg.Customers customers of NewGenerator(cfg), merged in Created order.
func Generate(cfg Config) *Scenario {
	g := NewGenerator(cfg)
	var events []Event
	for range g.cfg.Customers {
		events = append(events, g.Next()...)
	}
	slices.SortStableFunc(events, func(a, b Event) int { return a.Created.Compare(b.Created) })
	return &Scenario{Events: events, Paths: g.Paths()}
}

// Generator yields lifecycles customer by customer, without end, for
// continuous traffic. Customer k (from 0) starts at Start + k*slot plus a
// seeded jitter within its slot, where slot = Span/Customers, so traffic keeps
// the pace Config describes for as long as it runs. Each customer has its own
// random stream derived from (Seed, k), so customer k is the same whatever was
// generated before it.
//
// Lifecycle families and their steps (the Paths keys):
//
//	verification    created, verified, reverification_needed, kba_needed, kba_passed,
//	                kba_failed, document_needed, document_uploaded, document_approved,
//	                document_failed, suspended, deactivated, activated
//	funding_source  added, microdeposits_added, microdeposits_completed,
//	                microdeposits_failed, microdeposits_maxattempts, verified, removed
//	bank_transfer   created, completed, failed, cancelled, creation_failed
//	transfer        created, completed, failed, cancelled
//	mass_payment    created, completed, cancelled
//
// A Generator is not safe for concurrent use.
type Generator struct {
	cfg     Config
	windows []window // the incidents'
	slot    time.Duration
	next    int64 // index of the next customer
	account string
	paths   map[string]int
}

// NewGenerator returns a generator for cfg (see Config for the defaults).
func NewGenerator(cfg Config) *Generator {
	cfg = cfg.withDefaults()
	slot := cfg.Span / time.Duration(max(cfg.Customers, 1))
	g := &Generator{
		cfg:   cfg,
		slot:  max(slot, time.Microsecond), // never 0, so start times keep growing
		paths: make(map[string]int),
	}
	g.windows = cfg.windows()
	g.account = newUUID(newRand(cfg.Seed, accountStream))
	return g
}

// Next returns all events of the next customer (its verification, funding
// sources, transfers and mass payments), sorted by Created.
func (g *Generator) Next() []Event {
	k := g.next
	g.next++
	c := newCustomer(g, k)
	if _, ok := g.during(VolumeDrop, c.start); ok {
		return nil // nobody starts during a volume drop
	}
	c.live()
	slices.SortStableFunc(c.events, func(a, b Event) int { return a.Created.Compare(b.Created) })
	return c.events
}

// Paths returns a copy of the path counts of every lifecycle generated so far.
func (g *Generator) Paths() map[string]int { return maps.Clone(g.paths) }

// Customers reports how many customers Next has returned.
func (g *Generator) Customers() int64 { return g.next }

// customerStart is when customer k's first event happens. It uses its own
// random stream so it can be computed without generating the customer.
func (g *Generator) customerStart(k int64) time.Time {
	off := time.Duration(k) * g.slot
	if k > 0 {
		off += time.Duration(newRand(g.cfg.Seed, startStream(k)).Int64N(int64(g.slot)))
	}
	return g.cfg.Start.Add(off).Truncate(time.Millisecond)
}

// Ordered yields a Generator's events one at a time in Created order across
// customers, for traffic that is replayed as it happens (see the continuous
// mode of `hookstream sim`). It holds only the customers whose lifecycles are
// still under way. It is not safe for concurrent use.
type Ordered struct {
	g       *Generator
	pending eventHeap
	seq     int
	// For NextDue: the next event in Created order, and the events whose
	// delivery is delayed (a lag surge), by when they are due.
	ahead   *Event
	delayed dueHeap
}

// NewOrdered returns an Ordered over NewGenerator(cfg).
func NewOrdered(cfg Config) *Ordered { return &Ordered{g: NewGenerator(cfg)} }

// Next returns the event with the smallest Created time not yet returned.
func (o *Ordered) Next() Event {
	// A customer's events are never earlier than its start, and starts grow
	// with k: once the next customer starts after the earliest pending event,
	// no customer yet to come can produce an earlier one.
	for o.pending.Len() == 0 || !o.g.customerStart(o.g.next).After(o.pending.items[0].ev.Created) {
		for _, ev := range o.g.Next() {
			heap.Push(&o.pending, orderedEvent{ev: ev, seq: o.seq})
			o.seq++
		}
	}
	return heap.Pop(&o.pending).(orderedEvent).ev
}

// NextDue returns the next event once it is due, so event time tracks the
// wall clock as in production, or ctx's error. An event is due at its
// created time, or that much later when its delivery is delayed (Delay, a
// lag-surge incident): then later events may come first.
func (o *Ordered) NextDue(ctx context.Context) (Event, error) {
	for {
		if o.ahead == nil {
			ev := o.Next()
			o.ahead = &ev
		}
		if o.ahead.Delay > 0 {
			heap.Push(&o.delayed, orderedEvent{ev: *o.ahead, seq: o.seq})
			o.seq++
			o.ahead = nil
			continue
		}
		next, delayed := o.ahead.Created, false
		if o.delayed.Len() > 0 {
			if due := o.delayed.items[0].due(); due.Before(next) {
				next, delayed = due, true
			}
		}
		if wait := time.Until(next); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return Event{}, ctx.Err()
			}
		}
		if delayed {
			return heap.Pop(&o.delayed).(orderedEvent).ev, nil
		}
		ev := *o.ahead
		o.ahead = nil
		return ev, nil
	}
}

// FeedDue sends every event to in when its created time comes, until ctx
// ends, then closes in: the real-time traffic of "hookstream dev".
func (o *Ordered) FeedDue(ctx context.Context, in chan<- Event) {
	defer close(in)
	for {
		ev, err := o.NextDue(ctx)
		if err != nil {
			return
		}
		select {
		case in <- ev:
		case <-ctx.Done():
			return
		}
	}
}

// Paths returns the path counts of every lifecycle generated so far,
// including those whose later events Next has not returned yet.
func (o *Ordered) Paths() map[string]int { return o.g.Paths() }

type orderedEvent struct {
	ev  Event
	seq int // generation order breaks ties, so the order is deterministic
}

func (e orderedEvent) due() time.Time { return e.ev.Created.Add(e.ev.Delay) }

// dueHeap orders delayed events by when they are due.
type dueHeap struct{ eventHeap }

func (h *dueHeap) Less(i, j int) bool {
	a, b := h.items[i], h.items[j]
	if c := a.due().Compare(b.due()); c != 0 {
		return c < 0
	}
	return a.seq < b.seq
}

type eventHeap struct{ items []orderedEvent }

func (h *eventHeap) Len() int { return len(h.items) }
func (h *eventHeap) Less(i, j int) bool {
	a, b := h.items[i], h.items[j]
	if c := a.ev.Created.Compare(b.ev.Created); c != 0 {
		return c < 0
	}
	return a.seq < b.seq
}
func (h *eventHeap) Swap(i, j int) { h.items[i], h.items[j] = h.items[j], h.items[i] }
func (h *eventHeap) Push(x any)    { h.items = append(h.items, x.(orderedEvent)) }
func (h *eventHeap) Pop() any {
	n := len(h.items) - 1
	x := h.items[n]
	h.items[n] = orderedEvent{}
	h.items = h.items[:n]
	return x
}
