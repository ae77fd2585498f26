package nab

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hookstream/hookstream/anomaly"
)

// Report is how one detector scores on a NAB-layout folder.
type Report struct {
	Files    int             `json:"files"`
	Rows     int             `json:"rows"`
	Windows  int             `json:"windows"`
	Profiles []ProfileResult `json:"profiles"` // in the order of Profiles
}

// Profile is the result under the named profile.
func (r Report) Profile(name string) (ProfileResult, bool) {
	for _, p := range r.Profiles {
		if p.Profile == name {
			return p, true
		}
	}
	return ProfileResult{}, false
}

// ProfileResult is a detector's score under one profile: the threshold
// chosen for the whole corpus, the normalised score overall and per
// category, and each file's raw score at that threshold.
type ProfileResult struct {
	Profile    string      `json:"profile"`
	Threshold  float64     `json:"threshold"`
	Overall    Total       `json:"overall"`
	Categories []Total     `json:"categories"` // sorted by name
	Files      []FileScore `json:"files"`      // sorted by name
}

// Total sums files' raw scores and normalises the sum.
type Total struct {
	Name     string  `json:"name"`  // the category, or "overall"
	Score    Percent `json:"score"` // normalised: 0 flags nothing, 100 is perfect
	Raw      float64 `json:"raw"`
	Null     float64 `json:"null"`
	Perfect  float64 `json:"perfect"`
	Windows  int     `json:"windows"`
	Detected int     `json:"detected"` // windows with a detection
	FP       int     `json:"fp_rows"`  // flagged rows outside every window
}

// Evaluate runs a fresh detector over every labelled file of the NAB-layout
// folder dir, online, and scores it under each profile, choosing each
// profile's threshold over the whole folder as NAB does.
func Evaluate(dir string, detector func() anomaly.Detector) (Report, error) {
	c, err := ReadCorpus(dir)
	if err != nil {
		return Report{}, err
	}
	files, err := Run(c, detector)
	if err != nil {
		return Report{}, err
	}
	return Score(files)
}

// Run runs a fresh detector over every series of c, online, one point at a
// time, and returns each file's anomaly scores with its windows. A score
// outside [0, 1] is an error, as in NAB.
func Run(c Corpus, detector func() anomaly.Detector) ([]Scored, error) {
	out := make([]Scored, len(c.Series))
	errs := make([]error, len(c.Series))
	var wg sync.WaitGroup
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	for i, s := range c.Series {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			d := detector()
			sc := Scored{Name: s.Name, Windows: c.Windows[s.Name],
				Times: make([]time.Time, len(s.Points)), Scores: make([]float64, len(s.Points))}
			for j, p := range s.Points {
				v := d.Score(p).Score
				if !(v >= 0 && v <= 1) {
					errs[i] = fmt.Errorf("%s row %d: the detector scored %v, outside [0, 1]", s.Name, j+1, v)
					return
				}
				sc.Times[j], sc.Scores[j] = p.Time, AsPublished(v)
			}
			out[i] = sc
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Score scores files under every profile; each profile's threshold is the
// one that maximises its raw score over all the files together (NAB's
// optimizer), then every file is scored at it (NAB's scorer).
func Score(files []Scored) (Report, error) {
	var r Report
	for _, p := range Profiles {
		rows, err := fileRows(files, p)
		if err != nil {
			return Report{}, err
		}
		// One sweep over the corpus: window indices must be unique across it.
		var all []row
		windows := 0
		for i, fr := range rows {
			for _, x := range fr {
				if x.window >= 0 {
					x.window += windows
				}
				all = append(all, x)
			}
			windows += len(files[i].Windows)
		}
		b := best(sweep(all, windows, p))
		r.Profiles = append(r.Profiles, scoreAt(files, rows, p, b.Threshold))
	}
	r.Files = len(files)
	for _, f := range files {
		r.Rows += len(f.Times)
		r.Windows += len(f.Windows)
	}
	return r, nil
}

// ScoreAt scores files under p at a given threshold (for instance the one
// NAB published for a detector, to compare with NAB's result files).
func ScoreAt(files []Scored, p Profile, threshold float64) (ProfileResult, error) {
	rows, err := fileRows(files, p)
	if err != nil {
		return ProfileResult{}, err
	}
	return scoreAt(files, rows, p, threshold), nil
}

func fileRows(files []Scored, p Profile) ([][]row, error) {
	rows := make([][]row, len(files))
	for i, f := range files {
		fr, _, err := sweepRows(f, p, 0)
		if err != nil {
			return nil, err
		}
		rows[i] = fr
	}
	return rows, nil
}

func scoreAt(files []Scored, rows [][]row, p Profile, threshold float64) ProfileResult {
	res := ProfileResult{Profile: p.Name, Threshold: threshold, Overall: Total{Name: "overall"}}
	cats := map[string]*Total{}
	for i, f := range files {
		fs := scoreRows(f.Name, rows[i], len(f.Windows), p, threshold)
		res.Files = append(res.Files, fs)
		cat := Category(f.Name)
		if cats[cat] == nil {
			cats[cat] = &Total{Name: cat}
		}
		res.Overall.add(fs)
		cats[cat].add(fs)
	}
	slices.SortFunc(res.Files, func(a, b FileScore) int { return strings.Compare(a.Name, b.Name) })
	res.Overall.normalize()
	for _, name := range slices.Sorted(maps.Keys(cats)) {
		t := cats[name]
		t.normalize()
		res.Categories = append(res.Categories, *t)
	}
	return res
}

func (t *Total) add(fs FileScore) {
	t.Raw += fs.Score
	t.Null += fs.Null
	t.Perfect += fs.Perfect
	t.Windows += fs.Windows
	t.Detected += fs.Detected
	t.FP += fs.FP
}

func (t *Total) normalize() { t.Score = Percent(Normalize(t.Raw, t.Null, t.Perfect)) }

// Percent is a normalised NAB score. It is NaN, null in JSON, where there is
// no window to find (a category of files without anomalies).
type Percent float64

// MarshalJSON writes NaN as null.
func (p Percent) MarshalJSON() ([]byte, error) {
	if math.IsNaN(float64(p)) {
		return []byte("null"), nil
	}
	return json.Marshal(float64(p))
}

// AsPublished rounds an anomaly score to 12 significant digits, as the
// result files behind NAB's published scores hold them (NAB wrote them with
// Python 2, whose str() of a float keeps 12 digits). It matters where scores
// crowd near 1: NAB's windowed Gaussian has threshold 1.0, which its files
// reach from 1-5e-13 up, not only at an exact 1.
func AsPublished(score float64) float64 {
	r, err := strconv.ParseFloat(strconv.FormatFloat(score, 'g', 12, 64), 64)
	if err != nil {
		return score
	}
	return r
}
