package nab

import (
	"math"
	"testing"
	"time"

	"github.com/hookstream/hookstream/anomaly"
)

func TestPairwiseSumIsNumpys(t *testing.T) {
	// Up to 7 values: a plain loop. 8..128: eight accumulators. Above: halves.
	f := func(n int) {
		t.Helper()
		a := make([]float64, n)
		naive := 0.0
		for i := range a {
			a[i] = 0.1 * float64(i%7+1)
			naive += a[i]
		}
		if got := pairwiseSum(a); math.Abs(got-naive) > 1e-9*math.Max(1, naive) {
			t.Errorf("n=%d: %v, naive %v", n, got, naive)
		}
	}
	for _, n := range []int{0, 1, 7, 8, 9, 127, 128, 129, 6400} {
		f(n)
	}
	// numpy.sum([0.1]*10) is 1.0 (pairwise, eight accumulators); a plain
	// loop gives 0.9999999999999999.
	ten := []float64{0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1}
	if got := pairwiseSum(ten); got != 1.0 {
		t.Errorf("pairwiseSum of ten 0.1 = %v, numpy says 1.0", got)
	}
}

func TestWindowedGaussian(t *testing.T) {
	d := NewWindowedGaussian()
	t0 := time.Date(2014, 4, 10, 0, 0, 0, 0, time.UTC)
	at := func(i int, v float64) anomaly.Point {
		return anomaly.Point{Time: t0.Add(time.Duration(i) * 5 * time.Minute), Value: v}
	}
	if r := d.Score(at(0, 10)); r.Score != 0 || !math.IsNaN(r.Expected) {
		t.Errorf("first point: %+v, want score 0 and no expectation", r)
	}
	// One value in the window: deviation 0, replaced by 1e-6; any other
	// value is certain.
	if r := d.Score(at(1, 11)); r.Score != 1 || r.Expected != 10 {
		t.Errorf("second point: %+v, want score 1 expecting 10", r)
	}
	// Window {10, 11}: mean 10.5, deviation 0.5. 10.5 is the mean: 0.5.
	if r := d.Score(at(2, 10.5)); r.Score != 0.5 {
		t.Errorf("at the mean: %v, want 0.5", r.Score)
	}
	// Symmetric: 1.2 population deviations above or below the mean of
	// {10, 11, 9, 11, 9} (10, σ = √0.8) both score Φ(1.2).
	d2 := NewWindowedGaussian()
	for i, v := range []float64{10, 11, 9, 11, 9} {
		d2.Score(at(i, v))
	}
	up := *d2.(*WindowedGaussian)
	up.window = append([]float64(nil), up.window...)
	hi := up.Score(at(9, 10+1.2*0.894427190999916)).Score
	lo := d2.Score(at(9, 10-1.2*0.894427190999916)).Score
	if math.Abs(hi-lo) > 1e-12 || math.Abs(hi-0.884930329778292) > 1e-9 {
		t.Errorf("±1.2σ score %v and %v, want Φ(1.2) = 0.88493 both", hi, lo)
	}
}

// After 6,400 values the window slides by 100 at a time: the mean does not
// move until 100 new values have come.
func TestWindowedGaussianSlidesByHundred(t *testing.T) {
	d := NewWindowedGaussian().(*WindowedGaussian)
	t0 := time.Date(2014, 4, 10, 0, 0, 0, 0, time.UTC)
	for i := range gaussianWindow {
		d.Score(anomaly.Point{Time: t0.Add(time.Duration(i) * time.Minute), Value: float64(i % 2)})
	}
	if d.mean != 0.5 || len(d.window) != gaussianWindow {
		t.Fatalf("after 6400 values: mean %v, window %d", d.mean, len(d.window))
	}
	for i := range gaussianStep - 1 {
		d.Score(anomaly.Point{Value: 100})
		if d.mean != 0.5 {
			t.Fatalf("after %d more values the mean moved to %v before the step of 100", i+1, d.mean)
		}
	}
	d.Score(anomaly.Point{Value: 100})
	if want := (3150.0 + 100*100) / 6400; math.Abs(d.mean-want) > 1e-9 || len(d.window) != gaussianWindow {
		t.Errorf("after the step: mean %v (want %v), window %d", d.mean, want, len(d.window))
	}
}

func TestBaseline(t *testing.T) {
	if _, ok := Baseline("windowed-gaussian"); !ok {
		t.Error("windowed-gaussian is not a baseline")
	}
	if names := BaselineNames(); len(names) != 1 || names[0] != "windowed-gaussian" {
		t.Errorf("BaselineNames() = %v", names)
	}
}
