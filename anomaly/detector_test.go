package anomaly

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC) // a Monday

// series builds n points every step from value(i), with seeded noise.
func series(n int, step time.Duration, sd float64, value func(i int) float64) []Point {
	r := rand.New(rand.NewPCG(1, 2))
	ps := make([]Point, n)
	for i := range ps {
		ps[i] = Point{Time: t0.Add(time.Duration(i) * step), Value: value(i) + sd*r.NormFloat64()}
	}
	return ps
}

// daily is a daily cycle between 20 and 100 (peak mid-afternoon).
func daily(step time.Duration) func(i int) float64 {
	return func(i int) float64 {
		h := float64(time.Duration(i)*step%day) / float64(day)
		return 60 - 40*math.Cos(2*math.Pi*(h-0.1))
	}
}

func scoreAll(t testing.TB, name string, ps []Point) []Result {
	t.Helper()
	d, err := New(name)
	if err != nil {
		t.Fatal(err)
	}
	rs := make([]Result, len(ps))
	for i, p := range ps {
		rs[i] = d.Score(p)
		if s := rs[i].Score; math.IsNaN(s) || s < 0 || s > 1 {
			t.Fatalf("%s: point %d: score %v outside [0, 1]", name, i, s)
		}
	}
	return rs
}

// alarm is the score above which a detector is taken to flag a point in
// these tests: the ensemble's strong detection, and a 99.9% tail for the
// others.
func alarm(name string) float64 {
	if name == "ensemble" {
		return defaultEnsemble.alert
	}
	return 0.9999
}

// alarms counts the points in [from, to) that a detector flags.
func alarms(name string, rs []Result, from, to int) int {
	n := 0
	for _, r := range rs[from:to] {
		if r.Score >= alarm(name) {
			n++
		}
	}
	return n
}

func firstAlarm(name string, rs []Result, from int) int {
	for i := from; i < len(rs); i++ {
		if rs[i].Score >= alarm(name) {
			return i
		}
	}
	return -1
}

func allowed(name string, n int) int {
	return n / 300
}

var detectors = []string{"robust-z", "seasonal", "holt-winters", "ensemble"}

func TestRegistered(t *testing.T) {
	for _, n := range detectors {
		if _, err := New(n); err != nil {
			t.Error(err)
		}
	}
	if _, err := New(DefaultDetector); err != nil {
		t.Error(err)
	}
}

func TestFirstPoint(t *testing.T) {
	for _, name := range detectors {
		d, _ := New(name)
		r := d.Score(Point{Time: t0, Value: 42})
		if r.Score != 0 || !strings.Contains(r.Reason, "first point") {
			t.Errorf("%s: first point: %+v", name, r)
		}
	}
}

func TestNotFinite(t *testing.T) {
	ps := series(600, 5*time.Minute, 1, func(int) float64 { return 10 })
	for _, name := range detectors {
		want := scoreAll(t, name, ps)
		d, _ := New(name)
		for i, p := range ps {
			if i%50 == 7 {
				for _, v := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
					r := d.Score(Point{Time: p.Time, Value: v})
					if r.Score != 0 || !strings.Contains(r.Reason, "not scored") {
						t.Fatalf("%s: %v: %+v", name, v, r)
					}
				}
			}
			if got := d.Score(p); got.Score != want[i].Score {
				t.Fatalf("%s: point %d scored %v after NaN/Inf, %v without", name, i, got.Score, want[i].Score)
			}
		}
	}
}

func TestSyntheticSeries(t *testing.T) {
	const n = 2000
	const at = 1500
	step5 := 5 * time.Minute
	cases := []struct {
		name string
		ps   []Point
		// detect: the detectors that must flag a point within
		// [at, at+within); quiet: the ones that must flag none in
		// [quietFrom, quietTo) (after warm-up, or after adapting).
		detect             []string
		at, within         int
		quiet              []string
		quietFrom, quietTo int
	}{
		{
			name:   "spike",
			ps:     series(n, step5, 1, func(i int) float64 { return 50 + 30*b2f(i == at) }),
			detect: detectors, at: at, within: 1,
			quiet: detectors, quietFrom: 400, quietTo: at,
		},
		{
			name:   "step up, then the new level is normal",
			ps:     series(n, step5, 1, func(i int) float64 { return 50 + 15*b2f(i >= at) }),
			detect: []string{"robust-z", "holt-winters", "ensemble"}, at: at, within: 3,
			quiet: []string{"robust-z", "holt-winters", "ensemble"}, quietFrom: at + 200, quietTo: n,
		},
		{
			name:   "step down",
			ps:     series(n, step5, 1, func(i int) float64 { return 50 - 15*b2f(i >= at) }),
			detect: []string{"robust-z", "holt-winters", "ensemble"}, at: at, within: 3,
		},
		{
			name:  "slow drift is not an anomaly",
			ps:    series(n, step5, 1, func(i int) float64 { return 50 + 0.01*float64(i) }),
			quiet: []string{"holt-winters", "ensemble"}, quietFrom: 400, quietTo: n,
		},
		{
			name: "daily cycle at 5m with a dip at the daily peak",
			// The ensemble's likelihood needs the errors of a week in which
			// its models have learnt the cycle.
			ps: series(12*288, step5, 2, func(i int) float64 {
				return daily(step5)(i) - 35*b2f(i == 11*288+150)
			}),
			detect: []string{"seasonal", "holt-winters", "ensemble"}, at: 11*288 + 150, within: 1,
			quiet: []string{"seasonal", "holt-winters", "ensemble"}, quietFrom: 3 * 288, quietTo: 11*288 + 150,
		},
		{
			name:  "flat line",
			ps:    series(n, step5, 0, func(int) float64 { return 7 }),
			quiet: detectors, quietFrom: 0, quietTo: n,
		},
		{
			name:   "flat line, then a change",
			ps:     series(n, step5, 0, func(i int) float64 { return 7 + b2f(i == at) }),
			detect: detectors, at: at, within: 1,
		},
	}
	for _, c := range cases {
		for _, name := range c.detect {
			rs := scoreAll(t, name, c.ps)
			if f := firstAlarm(name, rs, c.at); f < 0 || f >= c.at+c.within {
				t.Errorf("%s: %s: first alarm at %d, want in [%d, %d)", c.name, name, f, c.at, c.at+c.within)
			} else if rs[f].Reason == "" {
				t.Errorf("%s: %s: alarm without a reason", c.name, name)
			}
		}
		for _, name := range c.quiet {
			rs := scoreAll(t, name, c.ps)
			// One false alarm in 300 normal points is allowed for
			// the components (their scores are plain tail probabilities).
			if k := alarms(name, rs, c.quietFrom, c.quietTo); k > allowed(name, c.quietTo-c.quietFrom) {
				t.Errorf("%s: %s: %d alarms in [%d, %d), want at most the allowed (first at %d: %+v)", c.name, name, k,
					c.quietFrom, c.quietTo, firstAlarm(name, rs, c.quietFrom), rs[firstAlarm(name, rs, c.quietFrom)])
			}
		}
	}
}

// TestSeasonalSteps: the seasonal baseline infers the period from the
// timestamps at 1m, 5m, 15m and 1h, and names the baseline it used.
func TestSeasonalSteps(t *testing.T) {
	for _, step := range []time.Duration{time.Minute, 5 * time.Minute, 15 * time.Minute, time.Hour} {
		perDay := int(day / step)
		dip := 4*perDay + perDay/2 // the afternoon peak of day 5
		ps := series(5*perDay, step, 2, func(i int) float64 {
			return daily(step)(i) - 40*b2f(i == dip)
		})
		rs := scoreAll(t, "seasonal", ps)
		if rs[dip].Score < 0.9999 || !strings.Contains(rs[dip].Reason, "daily baseline") {
			t.Errorf("step %v: dip scored %+v", step, rs[dip])
		}
		if k := alarms("seasonal", rs, 3*perDay, dip); k > allowed("seasonal", dip-3*perDay) {
			t.Errorf("step %v: %d alarms on a normal day", step, k)
		}
	}
}

// TestSeasonalFewDays: with less than three days the seasonal detector
// falls back to the recent values and says so.
func TestSeasonalFewDays(t *testing.T) {
	ps := series(100, 5*time.Minute, 1, func(i int) float64 { return 20 + 30*b2f(i == 90) })
	rs := scoreAll(t, "seasonal", ps)
	if rs[90].Score < 0.999 || !strings.Contains(rs[90].Reason, "days of history") {
		t.Errorf("spike on day 1: %+v", rs[90])
	}
}

func TestWeekdayBaseline(t *testing.T) {
	step := time.Hour
	ps := series(29*24, step, 1, func(i int) float64 {
		wd := (i / 24) % 7
		return 10 + 40*b2f(wd < 5) // weekdays busy, weekends quiet
	})
	// A busy fourth Saturday (day 0 is a Monday, day 26 a Saturday).
	ps[26*24+12].Value = 50
	rs := scoreAll(t, "seasonal", ps)
	r := rs[26*24+12]
	if r.Score < 0.999 || !strings.Contains(r.Reason, "Saturday baseline") {
		t.Errorf("busy Saturday: %+v", r)
	}
	if r := rs[28*24+12]; r.Score > 0.99 {
		t.Errorf("ordinary Monday: %+v", r)
	}
}

// TestGaps: missing windows do not change the step or break the baseline.
func TestGaps(t *testing.T) {
	step := 5 * time.Minute
	full := series(5*288, step, 2, daily(step))
	var ps []Point
	for i, p := range full {
		if (i/36)%5 == 2 { // three-hour holes
			continue
		}
		ps = append(ps, p)
	}
	for _, name := range detectors {
		rs := scoreAll(t, name, ps)
		if name == "robust-z" {
			continue // blind to the time of day; the cycle looks odd
		}
		if k := alarms(name, rs, len(ps)/2, len(ps)); k > allowed(name, len(ps)/2) {
			t.Errorf("%s: %d alarms on a normal cycle with gaps", name, k)
		}
	}
	d := newSeasonal()
	for _, p := range ps {
		d.Score(p)
	}
	if d.steps.step != step {
		t.Errorf("step inferred %v, want %v", d.steps.step, step)
	}
}

func TestReason(t *testing.T) {
	ps := series(6*288, 5*time.Minute, 1, func(int) float64 { return 8 })
	ps = append(ps, Point{Time: ps[len(ps)-1].Time.Add(5 * time.Minute), Value: 37})
	rs := scoreAll(t, "seasonal", ps)
	got := rs[len(rs)-1].Reason
	if !strings.HasPrefix(got, "= 37, expected 8") || !strings.Contains(got, "from the daily baseline") {
		t.Errorf("reason %q", got)
	}
	for _, c := range []struct {
		v    float64
		want string
	}{{37, "37"}, {12.5, "12.5"}, {0.123456, "0.1235"}, {1234.5678, "1235"}, {-3.25, "-3.25"}, {1e-7, "1e-07"}} {
		if got := fmtNum(c.v); got != c.want {
			t.Errorf("fmtNum(%v) = %q, want %q", c.v, got, c.want)
		}
	}
}

// TestOnline: a point's score depends only on the points before it, so
// scoring a prefix gives the prefix's scores, and scoring twice gives the
// same scores (determinism).
func TestOnline(t *testing.T) {
	ps := series(3000, 5*time.Minute, 3, func(i int) float64 {
		return daily(5*time.Minute)(i) + 25*b2f(i > 2000) + 60*b2f(i%700 == 650)
	})
	for _, name := range Names() {
		full := scoreAll(t, name, ps)
		again := scoreAll(t, name, ps)
		for _, k := range []int{1, 2, 299, 1000, 2001, 2999} {
			prefix := scoreAll(t, name, ps[:k])
			for i := range prefix {
				if prefix[i] != full[i] && !(sameResult(prefix[i], full[i])) {
					t.Fatalf("%s: point %d scored %+v in a prefix of %d, %+v in the full series", name, i, prefix[i], k, full[i])
				}
			}
		}
		for i := range full {
			if !sameResult(full[i], again[i]) {
				t.Fatalf("%s: point %d scored %+v, then %+v", name, i, full[i], again[i])
			}
		}
	}
}

func sameResult(a, b Result) bool {
	eq := func(x, y float64) bool { return x == y || (math.IsNaN(x) && math.IsNaN(y)) }
	return eq(a.Score, b.Score) && eq(a.Expected, b.Expected) && eq(a.Low, b.Low) && eq(a.High, b.High) && a.Reason == b.Reason
}

func TestWindowMedianMAD(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	w := newWindow(31)
	var all []float64
	for i := range 500 {
		x := math.Round(r.NormFloat64() * 5)
		w.add(x)
		all = append(all, x)
		last := all[max(0, len(all)-31):]
		med := naiveMedian(last)
		devs := make([]float64, len(last))
		for j, v := range last {
			devs[j] = math.Abs(v - med)
		}
		if got := w.median(); got != med {
			t.Fatalf("step %d: median %v, want %v", i, got, med)
		}
		if got, want := w.mad(med), naiveMedian(devs); got != want {
			t.Fatalf("step %d: MAD %v, want %v", i, got, want)
		}
	}
}

func naiveMedian(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[j] < s[i] {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
