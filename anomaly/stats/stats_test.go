package stats

import (
	"math"
	"math/big"
	"testing"
)

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol }

func TestTwoProportions(t *testing.T) {
	f := func(x1, n1, x2, n2 int64, wantZ float64) {
		t.Helper()
		r := TwoProportions(x1, n1, x2, n2)
		wantP := math.Erfc(math.Abs(wantZ) / math.Sqrt2)
		if !near(r.Z, wantZ, 1e-4) || !near(r.P, wantP, 1e-6) {
			t.Errorf("TwoProportions(%d/%d, %d/%d) = %+v, want z %.4f p %.6f", x1, n1, x2, n2, r, wantZ, wantP)
		}
	}
	// 700/1000 vs 640/1000: pooled 0.67, se = sqrt(0.67·0.33·(2/1000)) =
	// 0.0210286, z = −0.06/0.0210286 = −2.85326.
	f(700, 1000, 640, 1000, -2.85326)
	// 45/100 vs 60/100: pooled 0.525, se = sqrt(0.525·0.475·0.02) = 0.0706222,
	// z = 0.15/0.0706222 = 2.12398.
	f(45, 100, 60, 100, 2.12398)
	f(5, 10, 5, 10, 0)
	if r := TwoProportions(0, 0, 3, 10); r.P != 1 {
		t.Errorf("no data: %+v", r)
	}
	if r := TwoProportions(10, 10, 10, 10); r.P != 1 || r.Diff != 0 {
		t.Errorf("all and all: %+v", r)
	}
}

// binomialTail is P(X >= k) for X ~ Binomial(n, 1/2), exactly, in
// rationals: an independent check of the p-values with p = 1/2, where the
// two-sided p-value is twice the smaller tail.
func binomialTail(k, n int64) float64 {
	sum := new(big.Int)
	for i := k; i <= n; i++ {
		sum.Add(sum, new(big.Int).Binomial(n, i))
	}
	r := new(big.Rat).SetFrac(sum, new(big.Int).Lsh(big.NewInt(1), uint(n)))
	f, _ := r.Float64()
	return f
}

func TestPoissonRates(t *testing.T) {
	// Equal exposure: given 55 events, 35 or more in the second period.
	r := PoissonRates(20, 10, 35, 10)
	if want := 2 * binomialTail(35, 55); !near(r.P, want, 1e-9) || r.Ratio != 1.75 {
		t.Errorf("PoissonRates(20, 35) = %+v, want p %.9f", r, want)
	}
	r = PoissonRates(60, 5, 40, 5)
	if want := 2 * binomialTail(60, 100); !near(r.P, want, 1e-9) {
		t.Errorf("PoissonRates(60, 40) = %+v, want p %.9f", r, want)
	}
	if r := PoissonRates(12, 1, 12, 1); !near(r.P, 1, 1e-9) {
		t.Errorf("the same: %+v", r)
	}
	// Unequal exposure: 30 in 20 h against 10 in 10 h is the same rate
	// ratio as 15 against 10 in equal time, but the test conditions on
	// the split of 40 with p = 1/3; it must not call a lower rate
	// significant at these counts.
	if r := PoissonRates(30, 20, 10, 10); r.P < 0.2 || r.Ratio != 10.0/10/1.5 {
		t.Errorf("PoissonRates(30/20h, 10/10h) = %+v", r)
	}
	if r := PoissonRates(0, 1, 0, 1); r.P != 1 || r.Ratio != 0 {
		t.Errorf("nothing at all: %+v", r)
	}
	if r := PoissonRates(0, 1, 5, 1); !math.IsInf(r.Ratio, 1) || r.P > 0.07 {
		t.Errorf("from nothing to 5: %+v", r)
	}
}

func TestHolm(t *testing.T) {
	// Sorted 0.005 0.01 0.03 0.04 times 4 3 2 1 = 0.02 0.03 0.06 0.04,
	// then made non-decreasing: 0.02 0.03 0.06 0.06; back in given order.
	got := Holm([]float64{0.01, 0.04, 0.03, 0.005})
	want := []float64{0.03, 0.06, 0.06, 0.02}
	for i := range want {
		if !near(got[i], want[i], 1e-12) {
			t.Fatalf("Holm = %v, want %v", got, want)
		}
	}
	if len(Holm(nil)) != 0 {
		t.Fatal("Holm of nothing")
	}
}
