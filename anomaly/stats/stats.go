// Package stats holds the tests hookstream uses to say whether two periods
// really differ: two proportions (conversions, failure ratios), two
// Poisson rates (event counts), and the Holm correction for asking many
// such questions at once. Pure functions, no I/O.
package stats

import (
	"math"
	"sort"
)

// Wilson is the 95% Wilson score interval of x successes in n trials
// (all zero when n is 0): unlike p ± 1.96·se it stays inside [0, 1] and
// is honest for small n and for rates near 0 or 1.
func Wilson(x, n int64) (rate, low, high float64) {
	if n <= 0 {
		return 0, 0, 0
	}
	const z = 1.959963984540054
	p, fn := float64(x)/float64(n), float64(n)
	den := 1 + z*z/fn
	mid := (p + z*z/(2*fn)) / den
	half := z * math.Sqrt(p*(1-p)/fn+z*z/(4*fn*fn)) / den
	return p, math.Max(0, mid-half), math.Min(1, mid+half)
}

// normalSF is the upper tail of the standard normal: P(Z > z).
func normalSF(z float64) float64 { return 0.5 * math.Erfc(z/math.Sqrt2) }

// Proportions compares x1 of n1 with x2 of n2.
type Proportions struct {
	Diff float64 `json:"diff"` // x2/n2 − x1/n1
	Z    float64 `json:"z"`    // pooled two-proportion z statistic
	P    float64 `json:"p"`    // two-sided p-value; 1 when either n is 0
}

// TwoProportions is the pooled two-proportion z-test of x1/n1 against
// x2/n2: the p-value is the probability of a difference at least this
// large if both periods had the same underlying proportion. (The normal
// approximation is poor for tiny counts; Wilson intervals beside it show
// how much the data says.)
func TwoProportions(x1, n1, x2, n2 int64) Proportions {
	if n1 <= 0 || n2 <= 0 {
		return Proportions{P: 1}
	}
	p1, p2 := float64(x1)/float64(n1), float64(x2)/float64(n2)
	pool := float64(x1+x2) / float64(n1+n2)
	se := math.Sqrt(pool * (1 - pool) * (1/float64(n1) + 1/float64(n2)))
	r := Proportions{Diff: p2 - p1, P: 1}
	if se == 0 {
		return r // both all-or-nothing the same way: no evidence of a difference
	}
	r.Z = r.Diff / se
	r.P = math.Min(1, 2*normalSF(math.Abs(r.Z)))
	return r
}

// Rates compares c1 events over exposure t1 with c2 over t2 (exposure in
// any unit, such as hours).
type Rates struct {
	Rate1 float64 `json:"rate_a"`
	Rate2 float64 `json:"rate_b"`
	Ratio float64 `json:"ratio"` // rate_b / rate_a (+Inf when rate_a is 0 and rate_b is not)
	P     float64 `json:"p"`     // two-sided exact p-value
}

// PoissonRates is the exact conditional test of two Poisson rates: given
// c1+c2 events, c2 follows a binomial with p = t2/(t1+t2) when the rates
// are equal; the two-sided p-value sums the probabilities of every split
// no more likely than the one seen.
func PoissonRates(c1 int64, t1 float64, c2 int64, t2 float64) Rates {
	r := Rates{P: 1}
	if t1 <= 0 || t2 <= 0 {
		return r
	}
	r.Rate1, r.Rate2 = float64(c1)/t1, float64(c2)/t2
	switch {
	case r.Rate1 > 0:
		r.Ratio = r.Rate2 / r.Rate1
	case r.Rate2 > 0:
		r.Ratio = math.Inf(1)
	}
	n := c1 + c2
	if n == 0 {
		return r
	}
	r.P = binomialTwoSided(c2, n, t2/(t1+t2))
	return r
}

// binomialTwoSided is the two-sided exact binomial p-value of k successes
// in n with success probability p (the "minimum likelihood" method R's
// binom.test uses).
func binomialTwoSided(k, n int64, p float64) float64 {
	logPMF := func(i int64) float64 {
		a, _ := math.Lgamma(float64(n + 1))
		b, _ := math.Lgamma(float64(i + 1))
		c, _ := math.Lgamma(float64(n - i + 1))
		return a - b - c + float64(i)*math.Log(p) + float64(n-i)*math.Log1p(-p)
	}
	if p <= 0 || p >= 1 {
		if (p <= 0 && k == 0) || (p >= 1 && k == n) {
			return 1
		}
		return 0
	}
	observed := logPMF(k)
	const rel = 1 + 1e-7 // R's tolerance for ties in likelihood
	sum := 0.0
	for i := int64(0); i <= n; i++ {
		if l := logPMF(i); l <= observed+math.Log(rel) {
			sum += math.Exp(l)
		}
	}
	return math.Min(1, sum)
}

// Holm adjusts p-values for asking len(ps) questions at once (Holm's
// step-down method: it keeps the chance of any false "significant" at the
// level asked, without assuming the questions independent). The adjusted
// p-values come back in the order given.
func Holm(ps []float64) []float64 {
	m := len(ps)
	idx := make([]int, m)
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return ps[idx[a]] < ps[idx[b]] })
	out := make([]float64, m)
	running := 0.0
	for rank, i := range idx {
		adj := math.Min(1, float64(m-rank)*ps[i])
		running = math.Max(running, adj) // adjusted p-values never decrease
		out[i] = running
	}
	return out
}
