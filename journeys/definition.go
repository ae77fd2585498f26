package journeys

import (
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/hookstream/hookstream/dwolla"
	"gopkg.in/yaml.v3"
)

// Subject is what one instance of a journey follows.
type Subject string

const (
	SubjectCustomer    Subject = "customer"    // the event's _links.customer
	SubjectResource    Subject = "resource"    // the event's resource (a transfer, a funding source, ...)
	SubjectCorrelation Subject = "correlation" // the event's correlationId
)

// Conflict rules: what an instance that reached both a success and a
// failure step is.
const (
	FailureWins = "failure_wins"
	SuccessWins = "success_wins"
	LatestWins  = "latest_wins" // the outcome reached last (by event time) stands; a tie is a failure
)

// Step is one step of a journey.
type Step struct {
	Name         string        `yaml:"name"`
	Topics       []string      `yaml:"topics"`
	Optional     bool          `yaml:"optional"`
	AbandonAfter time.Duration `yaml:"-"`
	RawAbandon   string        `yaml:"abandon_after"`
}

// Definition is one journey.
type Definition struct {
	Name        string   `yaml:"name"`
	Description string   `yaml:"description"`
	Subject     Subject  `yaml:"subject"`
	Steps       []Step   `yaml:"steps"`
	Success     []string `yaml:"success"`
	Failure     []string `yaml:"failure"`
	Conflict    string   `yaml:"conflict"`

	index map[string]int // step name -> position
	topic map[string][]int
}

// Set is a validated set of definitions.
type Set struct {
	Journeys []*Definition `yaml:"journeys"`
	byTopic  map[string][]*Definition
	byName   map[string]*Definition
}

//go:embed default.yaml
var defaultYAML []byte

// Default is hookstream's shipped set for Dwolla.
func Default() *Set {
	s, _, err := Parse(defaultYAML)
	if err != nil {
		panic("journey: the default definitions are invalid: " + err.Error())
	}
	return s
}

// Load reads definitions from a file ("" for the defaults).
func Load(path string) (*Set, []string, error) {
	if path == "" {
		return Default(), nil, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("read journey definitions: %w", err)
	}
	s, warnings, err := Parse(b)
	if err != nil {
		return nil, warnings, fmt.Errorf("%s: %w", path, err)
	}
	return s, warnings, nil
}

var nameRE = regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}$`)

// Parse reads and validates definitions. Errors say every problem found, by
// journey and step; warnings (topics hookstream does not know, which Dwolla
// may have added) do not stop it.
func Parse(b []byte) (*Set, []string, error) {
	var s Set
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(&s); err != nil && !errors.Is(err, io.EOF) {
		return nil, nil, fmt.Errorf("not valid journey YAML: %w", err)
	}
	var problems, warnings []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	if len(s.Journeys) == 0 {
		bad("no journeys defined (want a top-level 'journeys:' list)")
	}
	s.byTopic, s.byName = map[string][]*Definition{}, map[string]*Definition{}
	s.Journeys = slices.DeleteFunc(s.Journeys, func(d *Definition) bool {
		if d == nil {
			bad("an empty journey entry")
		}
		return d == nil
	})
	for i, d := range s.Journeys {
		where := fmt.Sprintf("journey %d (%q)", i+1, d.Name)
		if !nameRE.MatchString(d.Name) {
			bad("%s: name must be lower-case letters, digits and _", where)
		}
		if _, dup := s.byName[d.Name]; dup {
			bad("%s: duplicate name", where)
		}
		s.byName[d.Name] = d
		switch d.Subject {
		case SubjectCustomer, SubjectResource, SubjectCorrelation:
		default:
			bad("%s: subject %q: use customer, resource or correlation", where, d.Subject)
		}
		switch d.Conflict {
		case "":
			d.Conflict = FailureWins
		case FailureWins, SuccessWins, LatestWins:
		default:
			bad("%s: conflict %q: use failure_wins, success_wins or latest_wins", where, d.Conflict)
		}
		if len(d.Steps) == 0 {
			bad("%s: no steps", where)
		}
		d.index, d.topic = map[string]int{}, map[string][]int{}
		for j := range d.Steps {
			st := &d.Steps[j]
			sw := fmt.Sprintf("%s, step %q", where, st.Name)
			if !nameRE.MatchString(st.Name) {
				bad("%s: name must be lower-case letters, digits and _", sw)
			}
			if _, dup := d.index[st.Name]; dup {
				bad("%s: duplicate step name", sw)
			}
			d.index[st.Name] = j
			if len(st.Topics) == 0 {
				bad("%s: no topics reach it (unreachable step)", sw)
			}
			for _, t := range st.Topics {
				if strings.TrimSpace(t) == "" {
					bad("%s: an empty topic", sw)
					continue
				}
				if _, known := dwolla.LookupTopic(t); !known {
					warnings = append(warnings, fmt.Sprintf("%s: topic %q is not in hookstream's catalogue (accepted: Dwolla adds topics)", sw, t))
				}
				d.topic[t] = append(d.topic[t], j)
			}
			if st.RawAbandon != "" {
				dur, err := time.ParseDuration(st.RawAbandon)
				switch {
				case err != nil:
					bad("%s: abandon_after %q: %v (for example 72h)", sw, st.RawAbandon, err)
				case dur <= 0:
					bad("%s: abandon_after %q must be positive", sw, st.RawAbandon)
				}
				st.AbandonAfter = dur
			}
		}
		for _, list := range [][]string{d.Success, d.Failure} {
			for _, n := range list {
				if _, ok := d.index[n]; !ok {
					bad("%s: outcome step %q is not one of its steps", where, n)
				}
			}
		}
		for _, n := range d.Success {
			if slices.Contains(d.Failure, n) {
				bad("%s: step %q is both a success and a failure", where, n)
			}
		}
		if len(d.Success) == 0 && len(d.Failure) == 0 {
			bad("%s: no success or failure step: it could never end", where)
		}
		for t, idx := range d.topic {
			var succ, fail bool
			for _, j := range idx {
				succ = succ || slices.Contains(d.Success, d.Steps[j].Name)
				fail = fail || slices.Contains(d.Failure, d.Steps[j].Name)
			}
			if succ && fail {
				warnings = append(warnings, fmt.Sprintf("%s: topic %q reaches both a success and a failure step: every such event is a conflict", where, t))
			}
		}
		for t := range d.topic {
			s.byTopic[t] = append(s.byTopic[t], d)
		}
	}
	if len(problems) > 0 {
		return nil, warnings, errors.New("invalid journey definitions:\n  " + strings.Join(problems, "\n  "))
	}
	return &s, warnings, nil
}

// ForTopic returns the journeys that topic advances.
func (s *Set) ForTopic(topic string) []*Definition { return s.byTopic[topic] }

// Get returns the journey named name.
func (s *Set) Get(name string) (*Definition, bool) {
	d, ok := s.byName[name]
	return d, ok
}

// StepsFor returns the positions of the steps topic reaches.
func (d *Definition) StepsFor(topic string) []int { return d.topic[topic] }

// Index is the position of step name, or -1.
func (d *Definition) Index(name string) int {
	if i, ok := d.index[name]; ok {
		return i
	}
	return -1
}

// Previous is the step a funnel measures step i from: the nearest earlier
// step that is required and not an outcome (-1 for none). Optional steps
// and sibling outcomes (completed, cancelled, failed) are not stages every
// instance passes through, so they are skipped.
func (d *Definition) Previous(i int) int {
	for j := i - 1; j >= 0; j-- {
		if !d.Steps[j].Optional && !d.IsSuccess(j) && !d.IsFailure(j) {
			return j
		}
	}
	return -1
}

// IsSuccess and IsFailure say whether the step at position i is an outcome.
func (d *Definition) IsSuccess(i int) bool { return slices.Contains(d.Success, d.Steps[i].Name) }
func (d *Definition) IsFailure(i int) bool { return slices.Contains(d.Failure, d.Steps[i].Name) }
