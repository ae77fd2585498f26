package anomaly

import (
	"fmt"
	"slices"
	"sort"
	"time"
)

// Point is one value of a series at a time (a window's start).
type Point struct {
	Time  time.Time
	Value float64
}

// Result is what a detector says of one point.
type Result struct {
	// Score is how anomalous the point is, in [0, 1]: 0 normal, 1 certainly
	// abnormal. One threshold applies to every series.
	Score float64
	// Expected is the value the detector expected, and [Low, High] the
	// interval it expected the value in (NaN when it cannot say yet, such
	// as during warm-up).
	Expected, Low, High float64
	// Reason says in words why the score is what it is ("= 37, expected 8
	// (4–13) from the weekday baseline"); empty for an unremarkable point.
	Reason string
}

// Detector scores a series one point at a time, in time order. It keeps
// whatever state it needs; Score must depend only on the points given so
// far (online).
type Detector interface {
	// Score takes the next point and scores it.
	Score(p Point) Result
}

// Factory makes a fresh detector for one series.
type Factory func() Detector

var registry = map[string]Factory{}

// DefaultDetector is the name of the detector hookstream uses unless told
// otherwise.
var DefaultDetector = "ensemble"

// Register makes a detector available by name (for the CLI's --detector and
// the evaluation). Detectors register themselves in init.
func Register(name string, f Factory) {
	if _, dup := registry[name]; dup {
		panic("anomaly: detector " + name + " registered twice")
	}
	registry[name] = f
}

// New makes the detector called name.
func New(name string) (Detector, error) {
	f, ok := registry[name]
	if !ok {
		return nil, fmt.Errorf("no detector %q; known: %v", name, Names())
	}
	return f(), nil
}

// Names lists the registered detectors, sorted.
func Names() []string {
	names := make([]string, 0, len(registry))
	for n := range registry {
		names = append(names, n)
	}
	sort.Strings(names)
	return slices.Clip(names)
}
