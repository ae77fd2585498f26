package nab

import (
	"math"
	"testing"
	"time"
)

// series makes an n-row file at 5-minute steps with zero scores and the
// given windows (row ranges, both ends included).
func series(n int, windows ...[2]int) Scored {
	t0 := time.Date(2014, 4, 10, 0, 0, 0, 0, time.UTC)
	s := Scored{Name: "test/file.csv", Times: make([]time.Time, n), Scores: make([]float64, n)}
	for i := range s.Times {
		s.Times[i] = t0.Add(time.Duration(i) * 5 * time.Minute)
	}
	for _, w := range windows {
		s.Windows = append(s.Windows, Window{Start: s.Times[w[0]], End: s.Times[w[1]]})
	}
	return s
}

func flag(s Scored, rows ...int) Scored {
	s.Scores = append([]float64(nil), s.Scores...)
	for _, r := range rows {
		s.Scores[r] = 1
	}
	return s
}

func TestProbationaryLength(t *testing.T) {
	f := func(n, want int) {
		t.Helper()
		if got := ProbationaryLength(n); got != want {
			t.Errorf("ProbationaryLength(%d) = %d, want %d", n, got, want)
		}
	}
	f(1000, 150)
	f(4032, 604) // floor(604.8)
	f(4999, 749)
	f(5000, 750)
	f(22695, 750) // capped
}

func TestScaledSigmoid(t *testing.T) {
	f := func(pos, want float64) {
		t.Helper()
		if got := ScaledSigmoid(pos); math.Abs(got-want) > 1e-5 {
			t.Errorf("ScaledSigmoid(%v) = %v, want %v", pos, got, want)
		}
	}
	f(-1, 0.98661) // a window's left edge
	f(-0.5, 0.84828)
	f(0, 0) // its right edge
	f(1, -0.98661)
	f(3.01, -1)
}

// The hand-made cases: a 2,000-row file (probation 300 rows), one window of
// 100 rows at 1000–1099 unless said otherwise, the standard profile.
func TestScoreFile(t *testing.T) {
	w := [2]int{1000, 1099}
	fpAfter := func(rowsAfter int) float64 { // the cost of a detection rowsAfter past the window
		return 0.11 * ScaledSigmoid(float64(rowsAfter)/99)
	}
	tests := []struct {
		name      string
		s         Scored
		p         Profile
		want      float64
		tp, fp    int
		detected  int
		null      float64
		tolerance float64
	}{
		{name: "nothing flagged, no window", s: series(2000), p: Standard, want: 0},
		{name: "missed window costs the FN weight", s: series(2000, w), p: Standard, want: -1, null: -1},
		{name: "missed window, reward low FN", s: series(2000, w), p: RewardLowFN, want: -2, null: -2},
		{name: "detection at the window's start is +1", s: flag(series(2000, w), 1000), p: Standard, want: 1, tp: 1, detected: 1, null: -1},
		{
			name: "detection at the window's end is about 0", s: flag(series(2000, w), 1099), p: Standard,
			// NAB's position is -(right-i+1)/width: -0.01 on the last row.
			want: ScaledSigmoid(-0.01) / ScaledSigmoid(-1), tp: 1, detected: 1, null: -1,
		},
		{name: "halfway is 0.86", s: flag(series(2000, w), 1050), p: Standard, want: ScaledSigmoid(-0.5) / ScaledSigmoid(-1), tp: 1, detected: 1, null: -1},
		{name: "only the first detection in a window counts", s: flag(series(2000, w), 1000, 1001, 1050, 1099), p: Standard, want: 1, tp: 4, detected: 1, null: -1},
		{name: "a late then an early detection: the early one counts", s: flag(series(2000, w), 1099, 1010), p: Standard, want: ScaledSigmoid(-0.9) / ScaledSigmoid(-1), tp: 2, detected: 1, null: -1},
		{name: "FP before any window costs the full FP weight", s: flag(series(2000, w), 500), p: Standard, want: -1 - 0.11, fp: 1, null: -1},
		{name: "FP without windows costs the full FP weight", s: flag(series(2000), 500), p: Standard, want: -0.11, fp: 1},
		{name: "FP far after a window costs the full FP weight", s: flag(series(2000, w), 1500), p: Standard, want: -1 - 0.11, fp: 1, null: -1},
		{name: "FP right after a window costs little", s: flag(series(2000, w), 1100), p: Standard, want: -1 + fpAfter(1), fp: 1, null: -1},
		{name: "FP one window-width after", s: flag(series(2000, w), 1198), p: Standard, want: -1 + fpAfter(99), fp: 1, null: -1},
		{name: "FP, reward low FP", s: flag(series(2000, w), 500), p: RewardLowFP, want: -1 - 0.22, fp: 1, null: -1},
		{name: "two FPs cost twice", s: flag(series(2000), 400, 500), p: Standard, want: -0.22, fp: 2},
		{name: "probationary detections are ignored", s: flag(series(2000, w), 10, 299), p: Standard, want: -1, null: -1},
		{name: "a window inside the probation does not count", s: flag(series(2000, [2]int{100, 199}), 150), p: Standard, want: 0, null: 0},
		{
			name: "a window straddling the probation counts from row 300", s: flag(series(2000, [2]int{250, 349}), 250, 310), p: Standard,
			want: ScaledSigmoid(-40.0/100) / ScaledSigmoid(-1), tp: 1, detected: 1, null: -1,
		},
		{
			name: "FP after the second of two windows is measured from it", s: flag(series(2000, [2]int{400, 409}, w), 1102), p: Standard,
			want: -2 + fpAfter(3), fp: 1, null: -2,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ScoreFile(tc.s, tc.p, 0.5)
			if err != nil {
				t.Fatal(err)
			}
			if math.Abs(got.Score-tc.want) > 1e-12 {
				t.Errorf("score %v, want %v", got.Score, tc.want)
			}
			if got.TP != tc.tp || got.FP != tc.fp || got.Detected != tc.detected {
				t.Errorf("tp %d fp %d detected %d, want %d %d %d", got.TP, got.FP, got.Detected, tc.tp, tc.fp, tc.detected)
			}
			if got.Null != tc.null {
				t.Errorf("null %v, want %v", got.Null, tc.null)
			}
			if got.TP+got.TN+got.FP+got.FN != 2000-300 {
				t.Errorf("counts %d+%d+%d+%d do not add up to the 1700 scored rows", got.TP, got.TN, got.FP, got.FN)
			}
		})
	}
}

func TestScoreFileRefusesWindowsOffTheRows(t *testing.T) {
	s := series(100, [2]int{50, 60})
	s.Windows[0].Start = s.Windows[0].Start.Add(time.Minute)
	if _, err := ScoreFile(s, Standard, 0.5); err == nil {
		t.Error("a window that does not start on a row was accepted")
	}
	s = series(100, [2]int{50, 60}, [2]int{55, 70})
	if _, err := ScoreFile(s, Standard, 0.5); err == nil {
		t.Error("overlapping windows were accepted")
	}
	s = series(100)
	s.Scores[3] = math.NaN()
	if _, err := ScoreFile(s, Standard, 0.5); err == nil {
		t.Error("a NaN score was accepted")
	}
}

// Normalisation: flagging nothing is 0, flagging every window at its first
// row is 100, under every profile, whatever the threshold sweep picks.
func TestScoreNormalises(t *testing.T) {
	a := series(2000, [2]int{1000, 1099})
	b := series(3000, [2]int{800, 899}, [2]int{2000, 2099})
	b.Name = "other/file.csv"
	none, err := Score([]Scored{a, b})
	if err != nil {
		t.Fatal(err)
	}
	perfect, err := Score([]Scored{flag(a, 1000), flag(b, 800, 2000)})
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range Profiles {
		if got := none.Profiles[i].Overall.Score; got != 0 {
			t.Errorf("%s: flagging nothing scores %v, want 0", p.Name, got)
		}
		if got := none.Profiles[i].Threshold; got != 1.1 {
			t.Errorf("%s: flagging nothing chose threshold %v, want 1.1 (nothing flagged)", p.Name, got)
		}
		if got := perfect.Profiles[i].Overall.Score; math.Abs(float64(got)-100) > 1e-12 {
			t.Errorf("%s: flagging every window's start scores %v, want 100", p.Name, got)
		}
		for _, c := range perfect.Profiles[i].Categories {
			if math.Abs(float64(c.Score)-100) > 1e-12 {
				t.Errorf("%s: category %s scores %v, want 100", p.Name, c.Name, c.Score)
			}
		}
	}
	if none.Windows != 3 || none.Files != 2 || none.Rows != 5000 {
		t.Errorf("report counts %d windows %d files %d rows, want 3, 2, 5000", none.Windows, none.Files, none.Rows)
	}
}

// The sweep picks one threshold for the whole corpus: the one with the best
// total, the highest among equals.
func TestScorePicksTheBestThreshold(t *testing.T) {
	a := series(2000, [2]int{1000, 1099})
	a.Scores[1000] = 0.8 // a window's start
	a.Scores[500] = 0.9  // an FP ranked above it: worth flagging both (1 - 0.11 > -1)
	a.Scores[600] = 0.7  // an FP below: not worth it
	a.Scores[1050] = 0.7 // a later detection in the window: adds nothing
	r, err := Score([]Scored{a})
	if err != nil {
		t.Fatal(err)
	}
	std, _ := r.Profile(Standard.Name)
	if std.Threshold != 0.8 {
		t.Errorf("threshold %v, want 0.8", std.Threshold)
	}
	if want := 1 - 0.11; math.Abs(std.Overall.Raw-want) > 1e-12 {
		t.Errorf("raw %v, want %v", std.Overall.Raw, want)
	}
	// Under reward low FN, missing costs 2: the same threshold; the
	// normalised score is 100 (1-0.11+2)/(1+2).
	fn, _ := r.Profile(RewardLowFN.Name)
	if want := 100 * (1 - 0.11 + 2) / 3; math.Abs(float64(fn.Overall.Score)-want) > 1e-9 {
		t.Errorf("reward low FN %v, want %v", fn.Overall.Score, want)
	}
}
