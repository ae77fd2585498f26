package anomaly

import (
	"math"
	"strconv"
	"time"
)

func init() {
	Register("seasonal", func() Detector { return newSeasonal() })
}

const (
	day  = 24 * time.Hour
	week = 7 * day
	// minSlot is the narrowest slot of the day the seasonal baseline keeps:
	// a 1m series shares a slot with its neighbours in the same 5 minutes,
	// so a week of 1m history costs 2,016 slots, not 10,080.
	minSlot = 5 * time.Minute
	// slotSamples is how many samples of a slot make a baseline: three
	// days for the daily baseline, three weeks for the weekday one.
	slotSamples = 3
	// slotRate is how fast a slot forgets (per sample once it has enough):
	// about the last five days or weeks count.
	slotRate = 0.2
	// slotClip bounds, in spreads, how far one sample moves a slot, so an
	// anomaly barely becomes tomorrow's baseline.
	slotClip = 3
)

var weekdayBaseline = [7]string{"the Sunday baseline", "the Monday baseline", "the Tuesday baseline",
	"the Wednesday baseline", "the Thursday baseline", "the Friday baseline", "the Saturday baseline"}

// slot is a robust running centre and spread of one time of day (or of
// week): an exponentially weighted mean and mean absolute deviation whose
// updates are clipped at a few spreads.
type slot struct {
	centre, dev float64
	n           int32 // samples
	periods     int32 // distinct days (or weeks) sampled
	last        int32 // the last day (or week) sampled
}

// add takes a sample of period p (a day or week number); perPeriod is how
// many samples a period gives the slot (5 for a 1m series in 5m slots).
func (s *slot) add(v float64, p int32, perPeriod float64) {
	s.n++
	if s.n == 1 || p != s.last {
		s.periods++
		s.last = p
	}
	if s.n == 1 {
		s.centre = v
		return
	}
	rate := max(1/float64(s.n), slotRate/perPeriod)
	e := v - s.centre
	if s.periods > slotSamples && s.dev > 0 {
		c := slotClip * s.dev
		e = max(-c, min(c, e))
	}
	s.centre += rate * e
	s.dev += rate * (math.Abs(e) - s.dev)
}

// seasonal compares a point with the same time of week (or, with less than
// three weeks of history, of day) in past days, and with its recent values
// while it has less than three days.
type seasonal struct {
	steps  steps
	width  time.Duration // slot width, fixed at the first step seen
	daily  []slot
	weekly []slot
	recent *robustZ
	nonNeg bool
	// dev is the mean absolute deviation of values from their slot's
	// centre across all slots: a few samples say little about one slot's
	// spread, so each slot's is shrunk towards it.
	dev  float64
	devN int
}

// spread is a slot's spread shrunk towards the series-wide one, as if the
// series-wide one were three more samples.
func (d *seasonal) spread(s slot) float64 {
	if d.devN == 0 {
		return meanAbsToSigma * s.dev
	}
	w := float64(s.periods)
	// A new value differs from a centre learnt from w samples by the
	// noise and the centre's own error: sqrt(1 + 1/w) of the noise.
	return meanAbsToSigma * (w*s.dev + slotSamples*d.dev) / (w + slotSamples) * math.Sqrt(1+1/w)
}

func newSeasonal() *seasonal {
	return &seasonal{recent: newRobustZ(robustWindow), nonNeg: true}
}

// slots sizes the baseline once the step is known; series slower than a
// day have no time of day, and keep only the recent baseline.
func (d *seasonal) slots() {
	if d.width != 0 || d.steps.step == 0 {
		return
	}
	d.width = max(d.steps.step, minSlot)
	if d.width > day/2 {
		return
	}
	d.daily = make([]slot, int((day+d.width-1)/d.width))
	d.weekly = make([]slot, int((week+d.width-1)/d.width))
}

func (d *seasonal) index(t time.Time) (daily, weekly int) {
	sec := t.Unix()
	// The Unix epoch is a Thursday; shifting by 3 days starts weeks on Monday.
	w := (sec + 3*86400) % (7 * 86400)
	if w < 0 {
		w += 7 * 86400
	}
	ws := int64(d.width / time.Second)
	return int((w % 86400) / ws), int(w / ws)
}

func (d *seasonal) estimate(t time.Time) estimate {
	if d.daily != nil {
		di, wi := d.index(t)
		if s := d.weekly[wi]; s.periods >= slotSamples {
			return estimate{ok: true, expected: s.centre, spread: d.spread(s),
				from: weekdayBaseline[t.UTC().Weekday()]}
		}
		if s := d.daily[di]; s.periods >= 1 {
			return estimate{ok: true, expected: s.centre, spread: d.spread(s),
				from: "the daily baseline"}
		}
	}
	e := d.recent.estimate()
	if e.ok {
		e.from += " (less than " + strconv.Itoa(slotSamples) + " days of history)"
	}
	return e
}

func (d *seasonal) update(p Point) {
	d.nonNeg = d.nonNeg && p.Value >= 0
	d.recent.update(p.Value)
	if d.daily == nil {
		return
	}
	di, wi := d.index(p.Time)
	if s := d.daily[di]; s.periods >= 1 {
		e := math.Abs(p.Value - s.centre)
		if d.devN >= slotSamples*10 {
			e = math.Min(e, slotClip*d.dev)
		}
		d.devN++
		d.dev += (e - d.dev) / float64(min(d.devN, 1000))
	}
	sec := p.Time.Unix() + 3*86400
	per := float64(d.width) / float64(d.steps.step)
	d.daily[di].add(p.Value, int32(sec/86400), per)
	d.weekly[wi].add(p.Value, int32(sec/(7*86400)), per)
}

func (d *seasonal) step(p Point) (e estimate, first bool) {
	first = d.steps.n == 0
	d.steps.observe(p.Time)
	d.slots()
	e = d.estimate(p.Time)
	d.update(p)
	return e, first
}

func (d *seasonal) Score(p Point) Result {
	return scoreStep(p, d.step, func() string { return "warming up: too little history for a baseline" }, d.nonNeg)
}
