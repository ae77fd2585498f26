package anomaly

import (
	"math"
	"strconv"
)

func init() {
	Register("robust-z", func() Detector { return newRobustZ(robustWindow) })
}

// robustWindow is how many trailing points the robust z-score looks at: a
// day of 5m windows. Median and MAD ignore up to half of them being odd, so
// a spike does not move the baseline and a level shift becomes the new
// normal after half a window.
const robustWindow = 288

// robustMinHistory is how many points robust-z needs before it scores.
const robustMinHistory = 8

// estimate is a detector's belief about the next value before seeing it.
type estimate struct {
	ok       bool
	expected float64
	spread   float64 // a standard deviation; 0 when the history is flat
	from     string
}

// z is how many spreads v is from what was expected; ±Inf for any change
// after a flat line.
func (e estimate) z(v float64) float64 {
	d := v - e.expected
	switch {
	case d == 0:
		return 0
	case e.spread == 0:
		return math.Copysign(math.Inf(1), d)
	}
	return d / e.spread
}

// result turns an estimate and the value into what a detector says.
func (e estimate) result(v float64, nonNegative bool) Result {
	z := e.z(v)
	low, high := interval(e.expected, e.spread, nonNegative)
	r := Result{Score: tailScore(z), Expected: e.expected, Low: low, High: high}
	if math.Abs(z) > z95 {
		r.Reason = explain(v, e.expected, low, high, e.from)
	}
	return r
}

// robustZ scores a point by its distance from the median of a trailing
// window, in robust spreads (MAD scaled to a standard deviation).
type robustZ struct {
	win    window
	nonNeg bool
	n      int
	from   string
}

func newRobustZ(n int) *robustZ {
	return &robustZ{win: newWindow(n), nonNeg: true,
		from: "the median of the last " + strconv.Itoa(n) + " points"}
}

func (d *robustZ) estimate() estimate {
	if d.win.len() < robustMinHistory {
		return estimate{}
	}
	med := d.win.median()
	spread := madToSigma * d.win.mad(med)
	if spread == 0 {
		// Most recent values are equal: MAD says nothing of the rest.
		spread = meanAbsToSigma * d.win.meanAbs(med)
	}
	from := d.from
	if d.win.len() < cap(d.win.ring) {
		from = "the median of the " + strconv.Itoa(d.win.len()) + " points so far"
	}
	return estimate{ok: true, expected: med, spread: spread, from: from}
}

func (d *robustZ) update(v float64) {
	d.n++
	d.nonNeg = d.nonNeg && v >= 0
	d.win.add(v)
}

// step estimates p's value from the points before it, then learns p.
func (d *robustZ) step(p Point) (e estimate, first bool) {
	e, first = d.estimate(), d.n == 0
	d.update(p.Value)
	return e, first
}

func (d *robustZ) Score(p Point) Result {
	return scoreStep(p, d.step, func() string {
		return "warming up: " + strconv.Itoa(d.n-1) + " of " + strconv.Itoa(robustMinHistory) + " points needed"
	}, d.nonNeg)
}
