package nab

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"time"
)

// The scorer follows NAB v1.1's nab/sweeper.py line for line where it
// decides a number (probation, sigmoid, window entry and exit, the sort and
// the threshold walk), so scores match NAB's result files; the comments name
// the Python it mirrors.

// Profile weighs true positives, false positives and false negatives
// (NAB's config/profiles.json).
type Profile struct {
	Name       string
	TP, FP, FN float64
}

// NAB's three application profiles.
var (
	Standard    = Profile{Name: "standard", TP: 1, FP: 0.11, FN: 1}
	RewardLowFP = Profile{Name: "reward_low_FP_rate", TP: 1, FP: 0.22, FN: 1}
	RewardLowFN = Profile{Name: "reward_low_FN_rate", TP: 1, FP: 0.11, FN: 2}
)

// Profiles are NAB's profiles in the order NAB's README lists them.
var Profiles = []Profile{Standard, RewardLowFP, RewardLowFN}

// probationPercent of each file (at most probationPercent*5000 rows) is not
// scored: detectors are learning there.
const probationPercent = 0.15

// ProbationaryLength is how many leading rows of an n-row file are not
// scored: min(floor(0.15 n), 750) (sweeper._getProbationaryLength).
func ProbationaryLength(n int) int {
	return int(math.Min(math.Floor(probationPercent*float64(n)), probationPercent*5000))
}

// ScaledSigmoid weighs a detection by its position relative to a window:
// -1 is the window's first row (0.9866), 0 its right edge (0), positive
// positions are after the window, reaching -1 beyond 3 window widths.
func ScaledSigmoid(pos float64) float64 {
	if pos > 3.0 {
		return -1.0
	}
	return 2*sigmoid(-5*pos) - 1.0
}

func sigmoid(x float64) float64 { return 1 / (1 + math.Exp(-x)) }

// Scored is one file's anomaly scores with its labelled windows.
type Scored struct {
	Name    string // "category/file.csv"
	Times   []time.Time
	Scores  []float64
	Windows []Window
}

// Row kinds, besides a window's index (>= 0).
const (
	outside      = -1
	probationary = -2
)

// row is one row of the sweep (sweeper.AnomalyPoint): its anomaly score,
// what flagging it is worth, and the window it is in.
type row struct {
	score  float64
	weight float64
	window int // index into the sweep's windows, outside or probationary
}

// sweepRows weighs every row of s as if it were flagged
// (sweeper.calcSweepScore). Windows get indices base, base+1, ...; it
// returns the rows and the number of windows.
func sweepRows(s Scored, p Profile, base int) ([]row, int, error) {
	if len(s.Times) != len(s.Scores) {
		return nil, 0, fmt.Errorf("%s: %d timestamps but %d scores", s.Name, len(s.Times), len(s.Scores))
	}
	index := make(map[time.Time]int, len(s.Times))
	for i, t := range s.Times {
		if _, dup := index[t]; !dup {
			index[t] = i // NAB's timestamps.index: the first row with that time
		}
	}
	// NAB enters a window only on a row whose timestamp equals its start and
	// finds its end with timestamps.index (which fails when absent); a
	// window that is not on the file's rows, or out of order, would be
	// silently skipped or crash NAB. Refuse it instead.
	type span struct{ left, right int }
	spans := make([]span, len(s.Windows))
	for k, w := range s.Windows {
		l, okL := index[w.Start]
		r, okR := index[w.End]
		if !okL || !okR {
			return nil, 0, fmt.Errorf("%s: window %d [%s, %s] does not start and end on rows of the file", s.Name, k, w.Start.Format(timeLayout), w.End.Format(timeLayout))
		}
		if r < l || (k > 0 && l <= spans[k-1].right) {
			return nil, 0, fmt.Errorf("%s: window %d [%s, %s] is reversed, overlaps or precedes the one before", s.Name, k, w.Start.Format(timeLayout), w.End.Format(timeLayout))
		}
		spans[k] = span{l, r}
	}
	for i, v := range s.Scores {
		if !(v >= 0 && v <= 1) {
			return nil, 0, fmt.Errorf("%s: row %d has anomaly score %v, outside [0, 1]", s.Name, i+1, v)
		}
	}

	maxTP := ScaledSigmoid(-1.0)
	probation := ProbationaryLength(len(s.Times))
	rows := make([]row, len(s.Times))
	next, cur := 0, -1 // next window to enter; the window we are in
	var width float64  // the current window's width, in rows
	prevRight, prevWidth := -1, 0.0
	for i := range s.Times {
		if next < len(spans) && i == spans[next].left {
			cur, next = next, next+1
			width = float64(spans[cur].right - spans[cur].left + 1)
		}
		var weight float64
		if cur >= 0 {
			// Note NAB's "+ 1": the window's last row is at -1/width, not 0.
			pos := -float64(spans[cur].right-i+1) / width
			weight = ScaledSigmoid(pos) * p.TP / maxTP
		} else {
			unweighted := -1.0 // before any window: as far as can be
			if prevRight >= 0 {
				// A window of one row divides by zero: +Inf, so -1 (NAB
				// raises ZeroDivisionError there).
				unweighted = ScaledSigmoid(math.Abs(float64(prevRight-i)) / (prevWidth - 1))
			}
			weight = unweighted * p.FP
		}
		kind := outside
		if cur >= 0 {
			kind = base + cur
		}
		if i < probation {
			kind = probationary
		}
		rows[i] = row{score: s.Scores[i], weight: weight, window: kind}
		if cur >= 0 && i == spans[cur].right {
			prevRight, prevWidth = i, width
			cur = -1
		}
	}
	return rows, len(spans), nil
}

// Threshold is the score of a corpus when every row whose anomaly score is
// at least Threshold is a detection (sweeper.ThresholdScore). TP, TN, FP and
// FN count scored rows, as NAB's result files do: a row in a window is a TP
// when flagged, an FN otherwise.
type Threshold struct {
	Threshold float64
	Score     float64
	TP, TN    int
	FP, FN    int
}

// sweep walks the rows from the highest anomaly score down and scores every
// distinct threshold (sweeper.calcScoreByThreshold). The first entry is
// 1.1: nothing flagged.
func sweep(rows []row, windows int, p Profile) []Threshold {
	scorable := make([]row, 0, len(rows))
	for _, r := range rows {
		if r.window != probationary {
			scorable = append(scorable, r)
		}
	}
	slices.SortStableFunc(scorable, func(a, b row) int { return cmp.Compare(b.score, a.score) })
	// Every window that has a scored row starts as a miss; a window wholly in
	// the probationary period does not count (sweeper._prepareScoreByThresholdParts).
	parts := make(map[int]float64, windows)
	var tp, tn, fp, fn int
	for _, r := range scorable {
		if r.window >= 0 {
			parts[r.window] = -p.FN
			fn++
		} else {
			tn++
		}
	}
	// NAB re-sums its parts at every threshold; a running sum gives the same
	// totals to the last bits, and a plateau (a window's later rows) leaves
	// it exactly unchanged, so ties still go to the highest threshold.
	fpSum, winSum := 0.0, -p.FN*float64(len(parts))
	var out []Threshold
	cur := 1.1
	for _, r := range scorable {
		if r.score != cur {
			out = append(out, Threshold{Threshold: cur, Score: fpSum + winSum, TP: tp, TN: tn, FP: fp, FN: fn})
			cur = r.score
		}
		if r.window >= 0 {
			tp++
			fn--
			if old := parts[r.window]; r.weight > old {
				parts[r.window] = r.weight
				winSum += r.weight - old
			}
		} else {
			fp++
			tn--
			fpSum += r.weight
		}
	}
	return append(out, Threshold{Threshold: cur, Score: fpSum + winSum, TP: tp, TN: tn, FP: fp, FN: fn})
}

// best is the threshold with the highest score; among equal scores, the
// highest threshold (optimizer.optimizeThreshold's stable sort).
func best(ts []Threshold) Threshold {
	b := ts[0]
	for _, t := range ts[1:] {
		if t.Score > b.Score {
			b = t
		}
	}
	return b
}

// FileScore is one file's raw NAB score at a threshold (a row of NAB's
// <detector>_<profile>_scores.csv), with what normalising it needs.
type FileScore struct {
	Name     string  `json:"file"`
	Score    float64 `json:"score"` // raw: TP credit + FP cost + FN cost
	TP       int     `json:"tp"`    // row counts, as NAB's result files
	TN       int     `json:"tn"`
	FP       int     `json:"fp"`
	FN       int     `json:"fn"`
	Windows  int     `json:"windows"`     // labelled windows
	Detected int     `json:"detected"`    // windows with a detection
	Null     float64 `json:"null"`        // raw score of flagging nothing
	Perfect  float64 `json:"perfect"`     // raw score of flagging every window's first row
	Rows     int     `json:"rows"`        // rows in the file
	Scorable int     `json:"scored_rows"` // rows after the probationary period
}

// ScoreFile scores one file at threshold: every row whose anomaly score is
// at least threshold is a detection (sweeper.scoreDataSet).
func ScoreFile(s Scored, p Profile, threshold float64) (FileScore, error) {
	rows, windows, err := sweepRows(s, p, 0)
	if err != nil {
		return FileScore{}, err
	}
	return scoreRows(s.Name, rows, windows, p, threshold), nil
}

func scoreRows(name string, rows []row, windows int, p Profile, threshold float64) FileScore {
	fs := FileScore{Name: name, Windows: windows, Rows: len(rows), Perfect: float64(windows) * p.TP}
	scored := make([]bool, windows) // the window has a row past probation
	credit := make([]float64, windows)
	for w := range credit {
		credit[w] = -p.FN
	}
	fpSum := 0.0
	for _, r := range rows {
		if r.window == probationary {
			continue
		}
		fs.Scorable++
		flagged := r.score >= threshold
		switch {
		case r.window >= 0:
			scored[r.window] = true
			if !flagged {
				fs.FN++
				break
			}
			fs.TP++
			// Only the best, that is the earliest, detection counts.
			credit[r.window] = math.Max(credit[r.window], r.weight)
		case flagged:
			fs.FP++
			fpSum += r.weight
		default:
			fs.TN++
		}
	}
	fs.Score = fpSum
	for w := range windows {
		if !scored[w] {
			continue
		}
		fs.Score += credit[w]
		fs.Null -= p.FN
		if credit[w] > -p.FN {
			fs.Detected++
		}
	}
	return fs
}

// Normalize maps a raw score to NAB's 0–100 scale: 100 (raw−null) /
// (perfect−null), where null flags nothing and perfect flags every window
// at its first row (runner.normalize). NaN when there is no window.
func Normalize(raw, null, perfect float64) float64 {
	if perfect == null {
		return math.NaN()
	}
	return 100 * (raw - null) / (perfect - null)
}
