package alert

import (
	"errors"
	"fmt"
	"maps"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// MatchType is how a matcher compares a label's value.
type MatchType string

const (
	MatchEqual     MatchType = "="  // the value equals
	MatchNotEqual  MatchType = "!=" // the value differs
	MatchRegexp    MatchType = "=~" // the whole value matches the regular expression
	MatchNotRegexp MatchType = "!~" // the whole value does not match it
)

// AlertnameLabel is the label a silence matches an alert's rule name as.
const AlertnameLabel = "alertname"

// Matcher is one condition on a label, as in Alertmanager. A label an
// alert lacks counts as the empty string. Regular expressions are
// anchored at both ends: "team=~pay" matches the value pay, not payments.
type Matcher struct {
	Name  string    `json:"name"`
	Type  MatchType `json:"type"`
	Value string    `json:"value"`

	re *regexp.Regexp // compiled by NewMatcher and Silence.Validate
}

// NewMatcher is a checked matcher.
func NewMatcher(name string, t MatchType, value string) (*Matcher, error) {
	m := &Matcher{Name: name, Type: t, Value: value}
	if err := m.compile(); err != nil {
		return nil, err
	}
	return m, nil
}

// ParseMatcher reads a matcher written as name=value, name!=value,
// name=~regexp or name!~regexp. The value may be a double-quoted Go
// string ("a b"); spaces around the name and the operator are ignored.
func ParseMatcher(s string) (*Matcher, error) {
	s = strings.TrimSpace(s)
	i := strings.IndexAny(s, "=!")
	if i < 0 {
		return nil, fmt.Errorf("matcher %q: want name=value, name!=value, name=~regexp or name!~regexp", s)
	}
	name, rest := strings.TrimSpace(s[:i]), s[i:]
	var t MatchType
	for _, op := range []MatchType{MatchRegexp, MatchNotRegexp, MatchNotEqual, MatchEqual} {
		if strings.HasPrefix(rest, string(op)) {
			t = op
			break
		}
	}
	if t == "" {
		return nil, fmt.Errorf("matcher %q: want name=value, name!=value, name=~regexp or name!~regexp", s)
	}
	value := strings.TrimSpace(rest[len(t):])
	if strings.HasPrefix(value, `"`) {
		v, err := strconv.Unquote(value)
		if err != nil {
			return nil, fmt.Errorf("matcher %q: the quoted value is not a valid string", s)
		}
		value = v
	}
	return NewMatcher(name, t, value)
}

// compile checks the matcher and compiles its regular expression.
func (m *Matcher) compile() error {
	if !labelName.MatchString(m.Name) {
		return fmt.Errorf("matcher %s: %q is not a label name (letters, digits and _, not starting with a digit)", m, m.Name)
	}
	switch m.Type {
	case MatchEqual, MatchNotEqual:
		return nil
	case MatchRegexp, MatchNotRegexp:
		re, err := regexp.Compile("^(?:" + m.Value + ")$")
		if err != nil {
			return fmt.Errorf("matcher %s: not a regular expression: %w", m, err)
		}
		m.re = re
		return nil
	}
	return fmt.Errorf("matcher %s: type %q: use =, !=, =~ or !~", m, m.Type)
}

// String writes the matcher as ParseMatcher reads it.
func (m *Matcher) String() string { return m.Name + string(m.Type) + strconv.Quote(m.Value) }

// Matches says whether a label value (the empty string for a missing
// label) satisfies the matcher. A matcher that does not compile matches
// nothing.
func (m *Matcher) Matches(v string) bool {
	switch m.Type {
	case MatchEqual:
		return v == m.Value
	case MatchNotEqual:
		return v != m.Value
	case MatchRegexp, MatchNotRegexp:
		re := m.re
		if re == nil {
			var err error
			if re, err = regexp.Compile("^(?:" + m.Value + ")$"); err != nil {
				return false
			}
		}
		return re.MatchString(v) == (m.Type == MatchRegexp)
	}
	return false
}

// Silence mutes the notifications of the alerts every one of its matchers
// matches, from StartsAt (inclusive) to EndsAt (exclusive). An alert's rule
// name is matched as the label alertname (see AlertLabels).
type Silence struct {
	ID        string     `json:"id"`
	Matchers  []*Matcher `json:"matchers"`
	StartsAt  time.Time  `json:"starts_at"`
	EndsAt    time.Time  `json:"ends_at"`
	CreatedBy string     `json:"created_by"`
	Comment   string     `json:"comment"`
}

// Silence statuses, as Alertmanager names them.
const (
	SilencePending = "pending" // not started yet
	SilenceActive  = "active"
	SilenceExpired = "expired"
)

// Validate checks a silence and compiles its matchers: at least one
// matcher, and at least one that does not match the empty string (a
// silence all of whose matchers match an empty label would mute nearly
// everything); EndsAt after StartsAt; who created it and why.
func (s *Silence) Validate() error {
	if len(s.Matchers) == 0 {
		return errors.New("silence: no matchers; give at least one, for example alertname=transfer-failures-high")
	}
	specific := false
	for _, m := range s.Matchers {
		if m == nil {
			return errors.New("silence: an empty matcher")
		}
		if err := m.compile(); err != nil {
			return fmt.Errorf("silence: %w", err)
		}
		if !m.Matches("") {
			specific = true
		}
	}
	if !specific {
		return errors.New("silence: every matcher matches the empty string, so it would silence nearly every alert; add one that names a label value")
	}
	if s.StartsAt.IsZero() || s.EndsAt.IsZero() {
		return errors.New("silence: give when it starts and ends")
	}
	if !s.EndsAt.After(s.StartsAt) {
		return fmt.Errorf("silence: ends %s, not after it starts %s", s.EndsAt.Format(time.RFC3339), s.StartsAt.Format(time.RFC3339))
	}
	if strings.TrimSpace(s.CreatedBy) == "" {
		return errors.New("silence: say who creates it")
	}
	if strings.TrimSpace(s.Comment) == "" {
		return errors.New("silence: say why (a comment)")
	}
	return nil
}

// Status is the silence's status at now: pending before StartsAt, active
// from StartsAt until EndsAt, expired from EndsAt on.
func (s *Silence) Status(now time.Time) string {
	switch {
	case now.Before(s.StartsAt):
		return SilencePending
	case now.Before(s.EndsAt):
		return SilenceActive
	}
	return SilenceExpired
}

// Silenced says whether the silence mutes an alert with labels (which
// should include alertname, see AlertLabels) at now: it is active and
// every matcher matches. A silence without matchers silences nothing.
func (s *Silence) Silenced(labels map[string]string, now time.Time) bool {
	if len(s.Matchers) == 0 || s.Status(now) != SilenceActive {
		return false
	}
	for _, m := range s.Matchers {
		if m == nil || !m.Matches(labels[m.Name]) {
			return false
		}
	}
	return true
}

// AlertLabels is the label set silences match an alert of rule with
// labels against: labels plus alertname set to the rule name (which
// overrides a label of that name).
func AlertLabels(rule string, labels map[string]string) map[string]string {
	l := make(map[string]string, len(labels)+1)
	maps.Copy(l, labels)
	l[AlertnameLabel] = rule
	return l
}

// SilencedBy lists the ids of the silences among ss that mute the alert at
// now; none when it is not silenced.
func (a Alert) SilencedBy(ss []*Silence, now time.Time) []string {
	labels := AlertLabels(a.Rule, a.Labels)
	var ids []string
	for _, s := range ss {
		if s.Silenced(labels, now) {
			ids = append(ids, s.ID)
		}
	}
	return ids
}
