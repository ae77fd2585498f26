package anomaly

import (
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"gonum.org/v1/gonum/stat/distuv"
)

// z95 is the half-width, in spreads, of the 95% intervals detectors report.
const z95 = 1.959964

// madToSigma and meanAbsToSigma turn a median absolute deviation and a mean
// absolute deviation into the standard deviation they imply for normal noise.
const (
	madToSigma     = 1.4826
	meanAbsToSigma = 1.2533
)

var unitNormal = distuv.UnitNormal

// tailScore maps a normalised error to a score in [0, 1]: the probability
// that normal noise would be less extreme (two-sided), so 1.96 spreads away
// scores 0.95.
func tailScore(z float64) float64 {
	if math.IsNaN(z) {
		return 0
	}
	return 1 - 2*unitNormal.Survival(math.Abs(z))
}

// steps infers a series' step from its timestamps: the smallest positive
// gap seen, so missing windows (gaps) never make the step look longer.
type steps struct {
	last time.Time
	step time.Duration
	n    int
}

// observe records t and returns how many steps it is after the previous
// point (1 for the next window, more after a gap, 0 for the first point or
// a point not after the previous one).
func (s *steps) observe(t time.Time) int {
	s.n++
	if s.n == 1 {
		s.last = t
		return 0
	}
	d := t.Sub(s.last)
	if d <= 0 {
		return 0
	}
	s.last = t
	if s.step == 0 || d < s.step {
		s.step = d
	}
	k := int((d + s.step/2) / s.step)
	return max(k, 1)
}

// notFinite is the result for a NaN or infinite value: not scored, and the
// detector's state is left as it was.
func notFinite(v float64) Result {
	what := "NaN"
	if math.IsInf(v, 0) {
		what = "infinite"
	}
	return Result{Score: 0, Expected: math.NaN(), Low: math.NaN(), High: math.NaN(),
		Reason: "value is " + what + ": not scored"}
}

// warmUp is the result while a detector has too little history to say
// anything.
func warmUp(reason string) Result {
	return Result{Score: 0, Expected: math.NaN(), Low: math.NaN(), High: math.NaN(), Reason: reason}
}

// scoreStep is the Score of every component detector: a value that is not
// a number is not scored; otherwise step estimates the value from the
// points before it and learns it, and the estimate is explained, or the
// detector says it is still warming up (warming, asked only then).
func scoreStep(p Point, step func(Point) (estimate, bool), warming func() string, nonNegative bool) Result {
	if !finite(p.Value) {
		return notFinite(p.Value)
	}
	e, first := step(p)
	if first {
		return warmUp("first point of the series")
	}
	if !e.ok {
		return warmUp(warming())
	}
	return e.result(p.Value, nonNegative && p.Value >= 0)
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// fmtNum writes a value for a person: at most four significant digits, no
// exponent for ordinary magnitudes.
func fmtNum(v float64) string {
	a := math.Abs(v)
	switch {
	case v == math.Trunc(v) && a < 1e15:
		return strconv.FormatFloat(v, 'f', -1, 64)
	case a >= 1e-3 && a < 1e15:
		s := strconv.FormatFloat(v, 'f', max(0, 3-int(math.Floor(math.Log10(a)))), 64)
		if strings.Contains(s, ".") {
			s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
		}
		return s
	default:
		return strconv.FormatFloat(v, 'g', 4, 64)
	}
}

// explain is the reason for a remarkable point: "= 37, expected 8 (4–13)
// from the weekday baseline".
func explain(v, expected, low, high float64, from string) string {
	var b strings.Builder
	b.WriteString("= ")
	b.WriteString(fmtNum(v))
	b.WriteString(", expected ")
	b.WriteString(fmtNum(expected))
	if finite(low) && finite(high) {
		b.WriteString(" (")
		b.WriteString(fmtNum(low))
		b.WriteString("–")
		b.WriteString(fmtNum(high))
		b.WriteString(")")
	}
	b.WriteString(" from ")
	b.WriteString(from)
	return b.String()
}

// interval is expected ± z95 spreads, not below zero for a series that has
// never been negative (counts, rates, latencies).
func interval(expected, spread float64, nonNegative bool) (low, high float64) {
	low, high = expected-z95*spread, expected+z95*spread
	if nonNegative && low < 0 {
		low = 0
	}
	return low, high
}

// window keeps the last n values both in arrival order and sorted, so the
// median and the MAD cost O(n) memory moves per point rather than a sort.
type window struct {
	ring   []float64
	sorted []float64
	head   int
}

func newWindow(n int) window {
	return window{ring: make([]float64, 0, n), sorted: make([]float64, 0, n)}
}

func (w *window) len() int { return len(w.sorted) }

func (w *window) add(x float64) {
	if len(w.ring) < cap(w.ring) {
		w.ring = append(w.ring, x)
	} else {
		old := w.ring[w.head]
		w.ring[w.head] = x
		w.head = (w.head + 1) % len(w.ring)
		i, _ := slices.BinarySearch(w.sorted, old)
		w.sorted = slices.Delete(w.sorted, i, i+1)
	}
	i, _ := slices.BinarySearch(w.sorted, x)
	w.sorted = slices.Insert(w.sorted, i, x)
}

func (w *window) median() float64 {
	s := w.sorted
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// mad is the median absolute deviation from med, found by walking outward
// from med in the sorted values (the deviations come out in order).
func (w *window) mad(med float64) float64 {
	s := w.sorted
	n := len(s)
	r, _ := slices.BinarySearch(s, med)
	l := r - 1
	next := func() float64 {
		if l >= 0 && (r >= n || med-s[l] <= s[r]-med) {
			l--
			return med - s[l+1]
		}
		r++
		return s[r-1] - med
	}
	var prev, cur float64
	for i := 0; i <= n/2; i++ {
		prev, cur = cur, next()
	}
	if n%2 == 1 {
		return cur
	}
	return (prev + cur) / 2
}

// meanAbs is the mean absolute deviation from med: a spread for series
// whose MAD is zero because most values are equal (sparse counts).
func (w *window) meanAbs(med float64) float64 {
	var sum float64
	for _, x := range w.sorted {
		sum += math.Abs(x - med)
	}
	return sum / float64(len(w.sorted))
}
