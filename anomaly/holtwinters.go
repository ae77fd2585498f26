package anomaly

import (
	"math"
	"time"
)

func init() {
	Register("holt-winters", func() Detector { return newHoltWinters() })
}

// Holt-Winters smoothing constants (additive, error-correction form), one
// set for every series: the level follows within about ten points, the
// trend is damped so a gap or a short ramp cannot run it away, and each time
// of day forgets over about five days.
const (
	hwAlpha = 0.1
	hwBeta  = 0.01
	hwPhi   = 0.98
	hwGamma = 0.2
	// hwRate is how fast the residual spread follows (about 200 points).
	hwRate = 0.005
	// hwClip bounds, in spreads, the error the state learns from: an
	// outlier barely moves the level, a level shift is learnt over tens of
	// points.
	hwClip = 4
	// hwMinHistory is how many residuals make a prediction interval.
	hwMinHistory = 16
)

// holtWinters forecasts each point from a level, a damped trend and a
// time-of-day component (the period is a day, inferred from the step; no
// seasonality for steps above 12 hours), and scores the residual against
// the spread of past residuals.
type holtWinters struct {
	steps    steps
	width    time.Duration
	season   []float64
	seen     []bool
	level    float64
	trend    float64
	dev      float64 // mean absolute residual
	residues int
	nonNeg   bool
}

func newHoltWinters() *holtWinters { return &holtWinters{nonNeg: true} }

func (d *holtWinters) slot(t time.Time) int {
	if d.season == nil {
		return -1
	}
	ws := int64(d.width / time.Second)
	sec := t.Unix() % 86400
	if sec < 0 {
		sec += 86400
	}
	return int(sec / ws)
}

// forecast is the level, trend and season k steps after the last point.
func (d *holtWinters) forecast(t time.Time, k int) (level, season float64, i int) {
	k = min(k, 288)
	damp := 0.0
	f := 1.0
	for range k {
		f *= hwPhi
		damp += f
	}
	level = d.level + damp*d.trend
	if i = d.slot(t); i >= 0 && d.seen[i] {
		season = d.season[i]
	}
	return level, season, i
}

func (d *holtWinters) estimate(t time.Time, k int) estimate {
	level, season, _ := d.forecast(t, k)
	if d.residues < hwMinHistory {
		return estimate{expected: level + season}
	}
	return estimate{ok: true, expected: level + season, spread: meanAbsToSigma * d.dev,
		from: "Holt-Winters smoothing"}
}

func (d *holtWinters) update(p Point, k int) {
	v := p.Value
	d.nonNeg = d.nonNeg && v >= 0
	if d.steps.n == 1 {
		d.level = v
		if d.steps.step == 0 {
			return
		}
	}
	if d.width == 0 && d.steps.step != 0 {
		d.width = max(d.steps.step, minSlot)
		if d.width <= day/2 {
			n := int((day + d.width - 1) / d.width)
			d.season, d.seen = make([]float64, n), make([]bool, n)
		}
	}
	level, season, i := d.forecast(p.Time, k)
	if i >= 0 && !d.seen[i] {
		// The first visit of a time of day sets its offset from the level.
		d.seen[i] = true
		d.season[i] = v - level
		d.level = level
		return
	}
	e := v - (level + season)
	if d.residues >= hwMinHistory {
		c := hwClip * meanAbsToSigma * d.dev
		if c > 0 {
			e = max(-c, min(c, e))
		}
		d.dev += hwRate * (math.Abs(e) - d.dev)
	} else {
		d.dev += (math.Abs(e) - d.dev) / float64(d.residues+1)
	}
	d.residues++
	d.level = level + hwAlpha*e
	d.trend = hwPhi*d.trend + hwAlpha*hwBeta*e
	if i >= 0 {
		d.season[i] += hwGamma * (1 - hwAlpha) * e
	}
}

func (d *holtWinters) step(p Point) (e estimate, first bool) {
	k := d.steps.observe(p.Time)
	first = d.steps.n == 1
	e = d.estimate(p.Time, k)
	d.update(p, k)
	return e, first
}

func (d *holtWinters) Score(p Point) Result {
	return scoreStep(p, d.step, func() string { return "warming up: too few residuals for an interval" }, d.nonNeg)
}
