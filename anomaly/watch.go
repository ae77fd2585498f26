package anomaly

import (
	"bytes"
	"cmp"
	_ "embed"
	"fmt"
	"os"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/hookstream/hookstream/windows"
)

// Watched series: which window metrics are scored as their windows close.

// SeriesConfig is one watched series (or, with GroupBy, one per value).
type SeriesConfig struct {
	Name string `yaml:"name" json:"name"`
	// Source is where the values come from: windows (the default, window
	// metrics) or journeys (abandoned: journey instances abandoned per
	// window, by the watermark that abandoned them).
	Source     string  `yaml:"source" json:"source,omitempty"`
	Metric     string  `yaml:"metric" json:"metric"`
	Window     string  `yaml:"window" json:"window"`
	Basis      string  `yaml:"basis" json:"basis,omitempty"`
	Filter     string  `yaml:"filter" json:"filter,omitempty"`
	GroupBy    string  `yaml:"group_by" json:"group_by,omitempty"`
	Detector   string  `yaml:"detector" json:"detector,omitempty"`
	MinHistory int     `yaml:"min_history" json:"min_history"`
	Threshold  float64 `yaml:"threshold" json:"threshold"`

	size  time.Duration
	query windows.MetricQuery
}

// Watch is a validated set of watched series.
type Watch struct {
	Series []*SeriesConfig `yaml:"series"`
}

//go:embed watch.yaml
var defaultWatch []byte

// DefaultWatch is the built-in set (anomaly/watch.yaml).
func DefaultWatch(wcfg windows.Config) (*Watch, error) { return ParseWatch(defaultWatch, wcfg) }

// LoadWatch reads a watch file ("" for the built-in set), validated against
// the windows configuration the processors run with.
func LoadWatch(path string, wcfg windows.Config) (*Watch, error) {
	if path == "" {
		return DefaultWatch(wcfg)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read the anomaly series file: %w; check HOOKSTREAM_ANOMALY_SERIES", err)
	}
	w, err := ParseWatch(b, wcfg)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return w, nil
}

// ParseWatch parses and validates a watch file's contents.
func ParseWatch(b []byte, wcfg windows.Config) (*Watch, error) {
	var w Watch
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&w); err != nil {
		return nil, fmt.Errorf("anomaly series: %w", err)
	}
	if len(w.Series) == 0 {
		return nil, fmt.Errorf("anomaly series: none listed under series:")
	}
	seen := map[string]bool{}
	for i, s := range w.Series {
		if s == nil {
			return nil, fmt.Errorf("anomaly series %d: an empty entry (a lone '-' or ~ under series:)", i+1)
		}
		where := fmt.Sprintf("anomaly series %d (%s)", i+1, s.Name)
		if s.Name == "" {
			return nil, fmt.Errorf("anomaly series %d: no name", i+1)
		}
		if seen[s.Name] {
			return nil, fmt.Errorf("%s: the name is used twice", where)
		}
		seen[s.Name] = true
		s.Detector = cmp.Or(s.Detector, LiveDetector)
		if _, err := New(s.Detector); err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		if s.MinHistory == 0 {
			s.MinHistory = 48
		}
		if s.Threshold == 0 {
			s.Threshold = 0.9
		}
		if s.MinHistory < 0 || s.Threshold < 0 || s.Threshold > 1 {
			return nil, fmt.Errorf("%s: min_history must be positive and threshold in (0, 1]", where)
		}
		var err error
		if s.size, err = time.ParseDuration(s.Window); err != nil {
			return nil, fmt.Errorf("%s: window %q is not a duration such as 5m", where, s.Window)
		}
		switch s.Source {
		case "", SourceWindows:
			s.Source = ""
		case SourceJourneys:
			if err := s.journeySeries(wcfg); err != nil {
				return nil, fmt.Errorf("%s: %w", where, err)
			}
			continue
		default:
			return nil, fmt.Errorf("%s: source %q: use windows (window metrics, the default) or journeys", where, s.Source)
		}
		q := windows.MetricQuery{Window: s.size, Basis: windows.Basis(s.Basis), Metric: windows.Metric(s.Metric), GroupBy: s.GroupBy}
		if q.Filter, err = windows.ParseFilter(s.Filter); err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		// Validate with a range of one window: it checks everything else.
		probe := q
		probe.From, probe.To = time.Unix(0, 0), time.Unix(0, 0).Add(s.size)
		if err := probe.Validate(wcfg); err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		q.Basis, q.Filter, q.GroupBy = probe.Basis, probe.Filter, probe.GroupBy
		s.query = q
	}
	return &w, nil
}

// undefined says that a window has no value for sc's metric: a ratio or a
// lag of a window without events is not zero, it is nothing, and is
// neither scored nor fed to the detector. (Counts of an empty window are
// zero, and scored: a silence is news.)
func (s *SeriesConfig) undefined(p windows.Point) bool {
	if p.Count > 0 || s.Source == SourceJourneys {
		return false
	}
	switch windows.Metric(s.Metric) {
	case windows.MetricCount, windows.MetricSuccesses, windows.MetricFailures, windows.MetricTerminal, windows.MetricLate, windows.MetricDistinct:
		return false
	}
	return true
}

// instanceName is the name of one series of s: s's name, and with group_by
// the value (volume/family=transfer).
func (s *SeriesConfig) instanceName(group string) string {
	if s.GroupBy == "" {
		return s.Name
	}
	return s.Name + "/" + s.GroupBy + "=" + group
}
