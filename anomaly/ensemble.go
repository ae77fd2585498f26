package anomaly

import (
	"math"
	"strconv"
)

func init() {
	Register("ensemble", func() Detector { return newEnsemble(defaultEnsemble) })
	Register(LiveDetector, func() Detector { return newEnsemble(liveEnsemble) })
	Register(CountsDetector, func() Detector { return newEnsemble(countsEnsemble) })
}

// LiveDetector is the detector of watched series unless their entry names
// another: the ensemble, with a warm-up and a hold counted in a few days'
// and a few windows' worth rather than NAB's 300 points. On NAB, where only
// the first detection in a labelled window counts and files are thousands
// of points long, a long hold wins; on a 15m or 1h series 300 points are
// days, and one false alarm would hide the incident that follows it.
const LiveDetector = "ensemble-live"

var liveEnsemble = func() ensembleConfig {
	c := defaultEnsemble
	c.warm, c.hold = 96, 12 // the hold outlasts the likelihood's short window, or an incident echoes
	return c
}()

// CountsDetector is LiveDetector for series of counts (of events, of
// failures): it scores them on the square-root scale (see
// ensembleConfig.counts), where a silent window after busy ones stands out.
const CountsDetector = "ensemble-counts"

var countsEnsemble = func() ensembleConfig {
	c := liveEnsemble
	c.counts = true
	return c
}()

// anscombe is the variance-stabilising transform of a count v, 2·sqrt(v +
// 3/8): Poisson noise has a spread of about 1 on this scale whatever the
// mean. (Mirrored for a negative v, which a count never is.)
func anscombe(v float64) float64 {
	if v < 0 {
		return -2 * math.Sqrt(-v+3.0/8)
	}
	return 2 * math.Sqrt(v+3.0/8)
}

// unAnscombe maps a value of the square-root scale back to a count, at
// least 0.
func unAnscombe(u float64) float64 {
	if u <= 2*math.Sqrt(3.0/8) {
		return 0
	}
	return u*u/4 - 3.0/8
}

// ensembleConfig is the ensemble's one configuration for every series.
type ensembleConfig struct {
	// zCap is the normalised error at which a point's raw surprise is
	// complete (raw = min(|z|, zCap)/zCap).
	zCap float64
	// combine picks the raw surprise from the components: "min" (every
	// model must be surprised), "median" or "max".
	combine string
	// short and long are the anomaly likelihood's windows, in points: how
	// unusual the mean surprise of the last short points is against the
	// distribution of such means over the last long points.
	short, long int
	// warm is how many points the likelihood needs before it scores.
	warm int
	// minSpread floors the spread of mean surprises, so a series that is
	// almost always perfectly predicted does not flag the smallest error.
	minSpread float64
	// alert is the score of a strong detection; after one, scores are
	// multiplied by quiet for the next hold points (flag early and once).
	alert, quiet float64
	hold         int
	// spatial scores 1 a value beyond the range seen so far by more than
	// this fraction of the range (0 disables it), and a second point in a
	// row beyond every level held for two points in a row by as much: a
	// level never held before (a series that has had a silent window now
	// and then has not had two in a row).
	spatial float64
	// spatialZ is the combined normalised error a value beyond the range
	// (both values of a pair) must also have to count as new: a drift
	// steadily leaves its range without surprising any model.
	spatialZ float64
	// counts scores the series on the square-root scale (anscombe), where
	// the spread of a count's noise is the same at every level. On the raw
	// scale the noise of counts is skewed and its spread set by the busy
	// windows: a window without events after a dozen a window is about two
	// spreads low, a little less than an ordinary burst is high; on this
	// scale it is three to four, and beyond every value seen. Expected
	// values, intervals and reasons stay on the raw scale.
	counts bool
}

var defaultEnsemble = ensembleConfig{
	zCap:      10,
	combine:   "median",
	short:     10,
	long:      2000,
	warm:      300,
	minSpread: 0.0173,
	alert:     0.5,
	quiet:     0.2,
	hold:      300,
	spatial:   0.05,
	spatialZ:  3,
}

// ensemble runs robust-z, seasonal and Holt-Winters side by side and turns
// their prediction errors into an anomaly likelihood, as Numenta's
// detectors do: the score is how unusual the recent mean surprise is for
// this series, not how large one error is, so a noisy series is quiet and a
// change on a calm one stands out.
type ensemble struct {
	cfg  ensembleConfig
	rz   *robustZ
	seas *seasonal
	hw   *holtWinters

	// mae is each component's running mean absolute error, to pick the one
	// that predicts this series best for Expected and the interval.
	mae  [3]float64
	maeN [3]int

	lik      likelihood
	n        int
	holdLeft int
	lo, hi   float64
	// held is the range of levels held for two points in a row: the
	// lowest larger and the highest smaller value of two consecutive
	// points; prev and prevSurprise are the last point's.
	heldLo, heldHi     float64
	prev, prevSurprise float64
	nonNeg             bool
}

func newEnsemble(cfg ensembleConfig) *ensemble {
	return &ensemble{cfg: cfg, rz: newRobustZ(robustWindow), seas: newSeasonal(),
		hw: newHoltWinters(), lik: newLikelihood(cfg), nonNeg: true, lo: math.Inf(1), hi: math.Inf(-1),
		heldLo: math.Inf(1), heldHi: math.Inf(-1)}
}

func (d *ensemble) Score(p Point) Result {
	raw := p.Value
	if !finite(raw) {
		return notFinite(raw)
	}
	d.nonNeg = d.nonNeg && raw >= 0
	v := raw // on the scale the models work on
	if d.cfg.counts {
		v = anscombe(raw)
		p.Value = v
	}
	var es [3]estimate
	es[0], _ = d.rz.step(p)
	es[1], _ = d.seas.step(p)
	es[2], _ = d.hw.step(p)
	first := d.n == 0
	d.n++

	// Raw surprise: the components' normalised errors, combined.
	var zs [3]float64
	nz := 0
	best := -1
	for i, e := range es {
		if !e.ok {
			continue
		}
		zs[nz] = math.Min(math.Abs(e.z(v)), d.cfg.zCap)
		nz++
		err := math.Abs(v - e.expected)
		if d.maeN[i] == 0 {
			d.mae[i] = err
		}
		d.maeN[i]++
		if best < 0 || d.mae[i] < d.mae[best] {
			best = i
		}
		d.mae[i] += (err - d.mae[i]) / float64(min(d.maeN[i], 100))
	}
	surprise := 0.0
	if nz > 0 {
		surprise = combine(zs[:nz], d.cfg.combine) / d.cfg.zCap
	}
	// Novelty: beyond every value seen, or with the point before beyond
	// every level held for two points.
	novel := d.cfg.spatial > 0 && d.n > d.cfg.warm && d.hi > d.lo && surprise*d.cfg.zCap >= d.cfg.spatialZ
	margin := d.cfg.spatial * (d.hi - d.lo)
	spatial := novel && (v > d.hi+margin || v < d.lo-margin)
	held := ""
	if d.n > 1 {
		lo, hi := math.Min(d.prev, v), math.Max(d.prev, v)
		if novel && !spatial && d.prevSurprise*d.cfg.zCap >= d.cfg.spatialZ && !math.IsInf(d.heldLo, 1) {
			switch {
			case lo > d.heldHi+margin:
				spatial, held = true, "higher"
			case hi < d.heldLo-margin:
				spatial, held = true, "lower"
			}
		}
		d.heldLo, d.heldHi = math.Min(d.heldLo, hi), math.Max(d.heldHi, lo)
	}
	d.prev, d.prevSurprise = v, surprise
	d.lo, d.hi = math.Min(d.lo, v), math.Max(d.hi, v)

	// Anomaly likelihood of the recent mean surprise.
	score, lik := d.lik.add(surprise, d.n > d.cfg.warm)
	if spatial {
		score = 1
	}

	// Flag early and once.
	pre, ago := score, 0
	if d.holdLeft > 0 {
		d.holdLeft--
		ago = d.cfg.hold - d.holdLeft
		score *= d.cfg.quiet
	} else if score >= d.cfg.alert {
		d.holdLeft = d.cfg.hold
	}

	r := Result{Score: score, Expected: math.NaN(), Low: math.NaN(), High: math.NaN()}
	if best >= 0 {
		e := es[best]
		r.Expected = e.expected
		r.Low, r.High = interval(e.expected, e.spread, d.nonNeg)
		if d.cfg.counts {
			r.Expected, r.Low, r.High = unAnscombe(r.Expected), unAnscombe(r.Low), unAnscombe(r.High)
		}
	}
	switch {
	case first:
		r.Reason = "first point of the series"
	case best < 0 || d.n <= d.cfg.warm:
		r.Reason = "warming up: " + strconv.Itoa(d.n-1) + " of " + strconv.Itoa(d.cfg.warm) + " points needed"
	case pre >= reasonLevel:
		r.Reason = explain(raw, r.Expected, r.Low, r.High, es[best].from)
		switch {
		case held != "":
			r.Reason += "; with the point before, " + held + " than any two points in a row before"
		case spatial:
			r.Reason += "; beyond every value seen before"
		default:
			r.Reason += "; errors this large are unusual for this series (likelihood " + fmtLikelihood(lik) + ")"
		}
		if ago > 0 {
			r.Reason += "; score lowered: reported " + strconv.Itoa(ago) + " points ago"
		}
	}
	return r
}

// reasonLevel is the score (before flag-once lowering) from which the
// ensemble explains a point: a likelihood of 99.9%.
const reasonLevel = 0.3

func fmtLikelihood(l float64) string {
	return strconv.FormatFloat(math.Min(100*l, 99.9999), 'f', 4, 64) + "%"
}

// combine reduces the components' capped errors (at most three) to one.
func combine(zs []float64, how string) float64 {
	lo, hi, sum := zs[0], zs[0], 0.0
	for _, z := range zs {
		lo, hi, sum = math.Min(lo, z), math.Max(hi, z), sum+z
	}
	switch how {
	case "max":
		return hi
	case "median":
		if len(zs) == 3 {
			return sum - lo - hi
		}
		return sum / float64(len(zs))
	case "mean":
		return sum / float64(len(zs))
	}
	return lo
}

// likelihood turns a stream of raw surprises in [0, 1] into Numenta's
// anomaly likelihood: the normal tail probability of the mean of the last
// short surprises against the mean and spread of such means over the last
// long points, reported on a log scale (0.5 is a one-in-100,000 tail).
type likelihood struct {
	short, long int
	minSpread   float64
	raw         []float64
	rawHead     int
	rawSum      float64
	means       []float64
	meanHead    int
	sum, sq     float64
}

func newLikelihood(cfg ensembleConfig) likelihood {
	return likelihood{minSpread: cfg.minSpread, raw: make([]float64, 0, cfg.short),
		means: make([]float64, 0, cfg.long)}
}

// add takes the next raw surprise and returns the log-scaled score and the
// likelihood (0 until ready).
func (l *likelihood) add(raw float64, ready bool) (score, lik float64) {
	if len(l.raw) < cap(l.raw) {
		l.raw = append(l.raw, raw)
	} else {
		l.rawSum -= l.raw[l.rawHead]
		l.raw[l.rawHead] = raw
		l.rawHead = (l.rawHead + 1) % len(l.raw)
	}
	l.rawSum += raw
	m := l.rawSum / float64(len(l.raw))
	if ready && len(l.means) > 0 {
		k := float64(len(l.means))
		mu := l.sum / k
		sd := math.Sqrt(math.Max(l.sq/k-mu*mu, 0))
		sd = math.Max(sd, l.minSpread)
		q := unitNormal.Survival((m - mu) / sd)
		lik = 1 - q
		score = math.Log(q+1e-10) / math.Log(1e-10)
	}
	if len(l.means) < cap(l.means) {
		l.means = append(l.means, m)
	} else {
		old := l.means[l.meanHead]
		l.sum -= old
		l.sq -= old * old
		l.means[l.meanHead] = m
		l.meanHead = (l.meanHead + 1) % len(l.means)
		if l.meanHead == 0 {
			// Re-add from scratch once per lap so rounding cannot drift.
			l.sum, l.sq = 0, 0
			for _, x := range l.means {
				l.sum += x
				l.sq += x * x
			}
			l.sum -= m
			l.sq -= m * m
		}
	}
	l.sum += m
	l.sq += m * m
	return score, lik
}
