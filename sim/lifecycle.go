package sim

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// The lifecycle rules follow reference/dwolla.md section 3.3. The
// probabilities are invented but keep the common paths common and every
// documented path present in a few thousand customers.

// Step gap multipliers of StepDelay for the slow steps.
const (
	gapQuick    = 0.02 // events of one API call (e.g. the two legs of a payment)
	gapStep     = 1    // an ordinary step
	gapReview   = 4    // a person reviews a document
	gapDeposits = 6    // micro-deposits take 1-2 business days
	gapLate     = 20   // an ACH return after settlement
)

// verificationTopics maps verification steps to topics; the other families
// derive their topics from a prefix (see topicFor).
var verificationTopics = map[string]string{
	"created":               "customer_created",
	"verified":              "customer_verified",
	"reverification_needed": "customer_reverification_needed",
	"kba_needed":            "customer_kba_verification_needed",
	"kba_passed":            "customer_kba_verification_passed",
	"kba_failed":            "customer_kba_verification_failed",
	"document_needed":       "customer_verification_document_needed",
	"document_uploaded":     "customer_verification_document_uploaded",
	"document_approved":     "customer_verification_document_approved",
	"document_failed":       "customer_verification_document_failed",
	"suspended":             "customer_suspended",
	"deactivated":           "customer_deactivated",
	"activated":             "customer_activated",
}

func topicFor(family, step string) string {
	switch family {
	case "verification":
		if t, ok := verificationTopics[step]; ok {
			return t
		}
	case "funding_source":
		if strings.HasPrefix(step, "microdeposits_") {
			return "customer_" + step
		}
		return "customer_funding_source_" + step
	case "bank_transfer", "transfer", "mass_payment":
		return "customer_" + family + "_" + step
	}
	panic(fmt.Sprintf("sim: no topic for step %q of %q", step, family))
}

// customer generates the events of one customer.
type customer struct {
	g      *Generator
	r      *rand.Rand
	id     string
	start  time.Time
	last   time.Time // latest event so far
	events []Event
}

func newCustomer(g *Generator, k int64) *customer {
	c := &customer{g: g, r: newRand(g.cfg.Seed, uint64(k)), start: g.customerStart(k)}
	c.id = newUUID(c.r)
	return c
}

// lifecycle is one instance of a family, such as one transfer.
type lifecycle struct {
	c             *customer
	family        string
	res           resource
	correlationID string
	steps         []string
	at            time.Time
}

func (c *customer) begin(family string, res resource, at time.Time) *lifecycle {
	return &lifecycle{c: c, family: family, res: res, at: at.Truncate(time.Millisecond)}
}

// step emits the lifecycle's next event, gap (in StepDelays, drawn) after the
// previous one; the first step happens at the lifecycle's start.
func (l *lifecycle) step(name string, gap float64) {
	if len(l.steps) > 0 {
		l.at = l.at.Add(l.c.gap(gap))
	}
	if g := l.c.g; len(g.windows) > 0 {
		l.at = g.postpone(VolumeDrop, l.at)
		if l.family == "verification" && name != "created" {
			l.at = g.postpone(VerificationStall, l.at)
		}
	}
	l.steps = append(l.steps, name)
	l.c.emit(l, topicFor(l.family, name))
}

// end records the path the lifecycle took.
func (l *lifecycle) end() {
	l.c.g.paths[l.family+":"+strings.Join(l.steps, ">")]++
}

func (l *lifecycle) last() string { return l.steps[len(l.steps)-1] }

// gap draws an exponential gap with mean mult*StepDelay, capped at eight
// times that, in whole milliseconds and at least one.
func (c *customer) gap(mult float64) time.Duration {
	mean := mult * float64(c.g.cfg.StepDelay)
	d := time.Duration(min(c.r.ExpFloat64(), 8) * mean).Truncate(time.Millisecond)
	return max(d, time.Millisecond)
}

func (c *customer) emit(l *lifecycle, topic string) {
	id := newUUID(c.r)
	var delay time.Duration
	if w, ok := c.g.during(LagSurge, l.at); ok {
		// Late by up to the incident's length (at most 10 minutes), at
		// least half of it.
		delay = time.Duration((0.5 + unit(id)/2) * float64(min(w.to.Sub(w.from), 10*time.Minute))).Truncate(time.Millisecond)
	}
	c.events = append(c.events, Event{
		Delay:        delay,
		ID:           id,
		Topic:        topic,
		CustomerID:   c.id,
		ResourceID:   l.res.id,
		ResourceType: l.res.collection,
		Created:      l.at,
		Body:         c.g.body(id, topic, l.at, l.res, c.id, l.correlationID),
	})
	if l.at.After(c.last) {
		c.last = l.at
	}
}

func (c *customer) chance(p float64) bool { return c.r.Float64() < p }

func (c *customer) newResource(collection, halType string) resource {
	return resource{id: newUUID(c.r), collection: collection, halType: halType}
}

// live plays the whole life of the customer.
func (c *customer) live() {
	v := c.begin("verification", resource{id: c.id, collection: "customers", halType: "customer"}, c.start)
	usable := c.verify(v)
	lateReturn := false
	if usable {
		if fundedAt, ok := c.fund(v.at); ok {
			lateReturn = c.transact(fundedAt)
		}
		// A late ACH return (R05, R07, R10...) may get the customer deactivated.
		p := 0.02
		if lateReturn {
			p = 0.4
		}
		if c.chance(p) {
			v.at = c.last
			v.step("deactivated", gapStep)
			if c.chance(0.6) {
				v.step("activated", gapReview)
			}
		}
	}
	v.end()
}

// verify plays a personal verified customer's verification and reports
// whether the customer may transact.
func (c *customer) verify(v *lifecycle) bool {
	v.step("created", 0)
	if c.chance(0.70) {
		v.step("verified", gapStep)
		return true
	}
	v.step("reverification_needed", gapStep)
	switch r := c.r.Float64(); {
	case r < 0.40:
		v.step("verified", gapStep)
		return true
	case r < 0.70:
		v.step("kba_needed", gapStep)
		if c.chance(0.7) {
			v.step("kba_passed", gapStep)
			v.step("verified", gapQuick)
			return true
		}
		v.step("kba_failed", gapStep)
		return c.documents(v)
	case r < 0.92:
		return c.documents(v)
	default:
		v.step("suspended", gapStep)
		return c.reactivate(v)
	}
}

// documents plays the document path: up to three uploads, each approved or
// failed; three failures get the customer suspended.
func (c *customer) documents(v *lifecycle) bool {
	v.step("document_needed", gapStep)
	for range 3 {
		v.step("document_uploaded", gapStep)
		if c.chance(0.75) {
			v.step("document_approved", gapReview)
			v.step("verified", gapQuick)
			return true
		}
		v.step("document_failed", gapReview)
	}
	v.step("suspended", gapStep)
	return c.reactivate(v)
}

// reactivate: Dwolla reviews some suspensions and lifts them.
func (c *customer) reactivate(v *lifecycle) bool {
	if c.chance(0.25) {
		v.step("activated", gapReview)
		return true
	}
	return false
}

// fund adds bank funding sources until one is verified (at most two tries)
// and returns when it was verified.
func (c *customer) fund(after time.Time) (time.Time, bool) {
	if !c.chance(0.9) {
		return time.Time{}, false
	}
	at := after
	for try := 0; try < 2; try++ {
		fs := c.begin("funding_source", c.newResource("funding-sources", "funding-source"), at.Add(c.gap(gapStep)))
		fs.step("added", 0)
		switch {
		case c.chance(0.40): // instant verification through an exchange (Plaid, open banking)
			fs.step("verified", gapQuick)
		case c.chance(0.06):
			fs.step("microdeposits_added", gapQuick)
			fs.step("microdeposits_failed", gapDeposits)
		default:
			fs.step("microdeposits_added", gapQuick)
			fs.step("microdeposits_completed", gapDeposits)
			if c.chance(0.08) { // three wrong amounts
				fs.step("microdeposits_maxattempts", gapStep)
			} else {
				fs.step("verified", gapStep)
			}
		}
		ok := fs.last() == "verified"
		if !ok && c.chance(0.8) {
			fs.step("removed", gapStep)
		}
		fs.end()
		if ok {
			return fs.at, true
		}
		if !c.chance(0.7) {
			break
		}
		at = fs.at
	}
	return time.Time{}, false
}

// transact plays the customer's transfers and mass payments, starting after
// its funding source was verified. It reports whether a completed bank
// transfer failed later (an ACH return).
func (c *customer) transact(after time.Time) (lateReturn bool) {
	at := after
	n := pick(c.r, []float64{0.10, 0.30, 0.30, 0.20, 0.10})
	for range n {
		at = at.Add(c.gap(gapStep))
		if c.payment(at, c.chance(0.6)) {
			lateReturn = true
		}
	}
	if c.chance(0.15) {
		c.massPayment(after.Add(c.gap(2 * gapStep)))
	}
	return lateReturn
}

// payment plays one bank transfer; withLeg adds the customer transfer leg
// the same API call creates (a payment out of the customer's bank account,
// as opposed to a plain deposit or withdrawal).
func (c *customer) payment(at time.Time, withLeg bool) (lateReturn bool) {
	corr := ""
	if c.chance(0.5) {
		corr = fmt.Sprintf("order-%08x", c.r.Uint32())
	}
	bank := c.begin("bank_transfer", c.transferResource(), at)
	bank.correlationID = corr
	if c.chance(0.02) {
		bank.step("creation_failed", 0) // no created before it; nothing else follows
		bank.end()
		return false
	}
	bank.step("created", 0)
	var leg *lifecycle
	if withLeg {
		leg = c.begin("transfer", c.transferResource(), bank.at.Add(c.gap(gapQuick)))
		leg.correlationID = corr
		leg.step("created", 0)
	}
	outcome := "completed"
	switch r := c.r.Float64(); {
	case r < 0.07:
		outcome = "failed"
	case r < 0.12:
		outcome = "cancelled"
	}
	if _, ok := c.g.during(FailureSpike, bank.at); ok && outcome == "completed" && unit(bank.res.id) < 0.8 {
		outcome = "failed" // most transfers created in a failure spike fail
	}
	bank.step(outcome, gapStep)
	if leg != nil {
		// The leg settles with the bank transfer that funds it.
		leg.at = later(leg.at, bank.at)
		leg.step(outcome, gapQuick)
		leg.end()
	}
	if outcome == "completed" && c.chance(0.05) {
		bank.step("failed", gapLate)
		lateReturn = true
	}
	bank.end()
	return lateReturn
}

// massPayment plays a mass payment; a completed one pays one to three items,
// each a transfer of its own.
func (c *customer) massPayment(at time.Time) {
	mp := c.begin("mass_payment", c.newResource("mass-payments", "mass-payment"), at)
	mp.step("created", 0)
	if c.chance(0.1) {
		mp.step("cancelled", gapStep)
		mp.end()
		return
	}
	done := mp.at
	for range 1 + c.r.IntN(3) {
		item := c.begin("transfer", c.transferResource(), mp.at.Add(c.gap(gapQuick)))
		item.step("created", 0)
		_, spike := c.g.during(FailureSpike, item.at)
		if c.chance(0.95) && !(spike && unit(item.res.id) < 0.8) {
			item.step("completed", gapStep)
		} else {
			item.step("failed", gapStep)
		}
		item.end()
		done = later(done, item.at)
	}
	mp.at = done
	mp.step("completed", gapQuick)
	mp.end()
}

func (c *customer) transferResource() resource {
	res := c.newResource("transfers", "transfer")
	res.upper = c.chance(0.25)
	return res
}

// later returns the later of a and b.
func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// pick draws an index with the given weights (which sum to 1).
func pick(r *rand.Rand, weights []float64) int {
	x := r.Float64()
	for i, w := range weights {
		if x < w {
			return i
		}
		x -= w
	}
	return len(weights) - 1
}
