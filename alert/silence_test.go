package alert

import (
	"strings"
	"testing"
	"time"
)

func mustMatchers(t *testing.T, ss ...string) []*Matcher {
	t.Helper()
	var ms []*Matcher
	for _, s := range ss {
		m, err := ParseMatcher(s)
		if err != nil {
			t.Fatalf("ParseMatcher(%q): %v", s, err)
		}
		ms = append(ms, m)
	}
	return ms
}

func TestParseMatcher(t *testing.T) {
	tests := []struct {
		in   string
		want Matcher
	}{
		{"topic=orders", Matcher{Name: "topic", Type: MatchEqual, Value: "orders"}},
		{" topic != orders ", Matcher{Name: "topic", Type: MatchNotEqual, Value: "orders"}},
		{"topic=~ord.*", Matcher{Name: "topic", Type: MatchRegexp, Value: "ord.*"}},
		{"topic!~ord.*", Matcher{Name: "topic", Type: MatchNotRegexp, Value: "ord.*"}},
		{`team="pay ments"`, Matcher{Name: "team", Type: MatchEqual, Value: "pay ments"}},
		{"team=", Matcher{Name: "team", Type: MatchEqual, Value: ""}},
		{"expr=a=b", Matcher{Name: "expr", Type: MatchEqual, Value: "a=b"}},
	}
	for _, tc := range tests {
		m, err := ParseMatcher(tc.in)
		if err != nil {
			t.Errorf("ParseMatcher(%q): %v", tc.in, err)
			continue
		}
		if m.Name != tc.want.Name || m.Type != tc.want.Type || m.Value != tc.want.Value {
			t.Errorf("ParseMatcher(%q) = %s %s %q; want %+v", tc.in, m.Name, m.Type, m.Value, tc.want)
		}
		// String round-trips.
		back, err := ParseMatcher(m.String())
		if err != nil || back.Name != m.Name || back.Type != m.Type || back.Value != m.Value {
			t.Errorf("round trip of %q via %q: %v %+v", tc.in, m.String(), err, back)
		}
	}
	for _, bad := range []string{"topic", "", "=orders", "1topic=x", "topic!x", "topic=~(", `team="open`, "to pic=x"} {
		if _, err := ParseMatcher(bad); err == nil {
			t.Errorf("ParseMatcher(%q): no error", bad)
		}
	}
	if _, err := NewMatcher("topic", "~", "x"); err == nil {
		t.Error("NewMatcher with an unknown type: no error")
	}
}

func TestMatcherMatches(t *testing.T) {
	tests := []struct {
		matcher string
		value   string
		want    bool
	}{
		{"topic=orders", "orders", true},
		{"topic=orders", "orders2", false},
		{"topic=orders", "", false},
		{"topic!=orders", "orders", false},
		{"topic!=orders", "refunds", true},
		{"topic!=orders", "", true},
		{"topic=~ord.*", "orders", true},
		{"topic=~ord", "orders", false},  // anchored at the end
		{"topic=~ders", "orders", false}, // anchored at the start
		{"topic=~a|b", "ab", false},      // the anchors enclose the alternation
		{"topic=~a|b", "b", true},
		{"topic=~.*", "", true},
		{"topic!~ord.*", "orders", false},
		{"topic!~ord", "orders", true},
		{"topic!~ord.*", "", true},
	}
	for _, tc := range tests {
		m := mustMatchers(t, tc.matcher)[0]
		if got := m.Matches(tc.value); got != tc.want {
			t.Errorf("%s matches %q = %v; want %v", tc.matcher, tc.value, got, tc.want)
		}
		// A matcher read from storage (its regexp not compiled) agrees.
		raw := &Matcher{Name: m.Name, Type: m.Type, Value: m.Value}
		if got := raw.Matches(tc.value); got != tc.want {
			t.Errorf("uncompiled %s matches %q = %v; want %v", tc.matcher, tc.value, got, tc.want)
		}
	}
}

func silence(t *testing.T, matchers ...string) *Silence {
	return &Silence{
		ID:        "s1",
		Matchers:  mustMatchers(t, matchers...),
		StartsAt:  base,
		EndsAt:    base.Add(2 * time.Hour),
		CreatedBy: "ana",
		Comment:   "bank maintenance",
	}
}

func TestSilenced(t *testing.T) {
	labels := AlertLabels("transfer-failures-high", map[string]string{"topic": "customer_bank_transfer_failed", "team": "payments"})
	now := base.Add(time.Hour)
	tests := []struct {
		name     string
		matchers []string
		want     bool
	}{
		{"alertname equal", []string{"alertname=transfer-failures-high"}, true},
		{"alertname other", []string{"alertname=lag-high"}, false},
		{"equal, all must match", []string{"alertname=transfer-failures-high", "team=payments"}, true},
		{"equal, one fails", []string{"alertname=transfer-failures-high", "team=ops"}, false},
		{"not equal", []string{"alertname=transfer-failures-high", "team!=ops"}, true},
		{"not equal fails", []string{"alertname=transfer-failures-high", "team!=payments"}, false},
		{"regexp", []string{"topic=~customer_.*_failed"}, true},
		{"regexp anchored", []string{"topic=~customer"}, false},
		{"not regexp", []string{"alertname=~transfer-.*", "topic!~.*_succeeded"}, true},
		{"not regexp fails", []string{"topic!~customer_.*"}, false},
		{"missing label is empty: equal", []string{"region=eu"}, false},
		{"missing label is empty: not equal", []string{"team=payments", "region!=eu"}, true},
		{"missing label is empty: regexp", []string{"team=payments", "region=~|eu"}, true},
	}
	for _, tc := range tests {
		s := silence(t, tc.matchers...)
		if err := s.Validate(); err != nil && tc.want {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got := s.Silenced(labels, now); got != tc.want {
			t.Errorf("%s: Silenced = %v; want %v", tc.name, got, tc.want)
		}
	}
}

func TestSilenceTimeBounds(t *testing.T) {
	s := silence(t, "alertname=r")
	labels := AlertLabels("r", nil)
	tests := []struct {
		at     time.Duration
		status string
		want   bool
	}{
		{-time.Second, SilencePending, false},
		{0, SilenceActive, true}, // starts inclusive
		{time.Hour, SilenceActive, true},
		{2*time.Hour - time.Nanosecond, SilenceActive, true},
		{2 * time.Hour, SilenceExpired, false}, // ends exclusive
		{3 * time.Hour, SilenceExpired, false},
	}
	for _, tc := range tests {
		now := base.Add(tc.at)
		if st := s.Status(now); st != tc.status {
			t.Errorf("+%s: status %s; want %s", tc.at, st, tc.status)
		}
		if got := s.Silenced(labels, now); got != tc.want {
			t.Errorf("+%s: Silenced = %v; want %v", tc.at, got, tc.want)
		}
	}
}

func TestSilenceValidate(t *testing.T) {
	if err := silence(t, "alertname=r", "team!=ops").Validate(); err != nil {
		t.Fatalf("valid silence: %v", err)
	}
	tests := []struct {
		name   string
		change func(*Silence)
		want   string
	}{
		{"no matchers", func(s *Silence) { s.Matchers = nil }, "no matchers"},
		{"nil matcher", func(s *Silence) { s.Matchers = []*Matcher{nil} }, "empty matcher"},
		{"only empty-matching: not equal", func(s *Silence) { s.Matchers = mustMatchers(t, "team!=ops") }, "empty string"},
		{"only empty-matching: regexp", func(s *Silence) { s.Matchers = mustMatchers(t, "team=~.*", "topic!~x") }, "empty string"},
		{"only empty-matching: equal empty", func(s *Silence) { s.Matchers = mustMatchers(t, "team=") }, "empty string"},
		{"bad regexp from storage", func(s *Silence) { s.Matchers = []*Matcher{{Name: "t", Type: MatchRegexp, Value: "("}} }, "regular expression"},
		{"bad label name from storage", func(s *Silence) { s.Matchers = []*Matcher{{Name: "a-b", Type: MatchEqual, Value: "x"}} }, "label name"},
		{"bad type from storage", func(s *Silence) { s.Matchers = []*Matcher{{Name: "a", Type: "==", Value: "x"}} }, "type"},
		{"ends before starts", func(s *Silence) { s.EndsAt = s.StartsAt.Add(-time.Minute) }, "not after"},
		{"ends when starts", func(s *Silence) { s.EndsAt = s.StartsAt }, "not after"},
		{"no start", func(s *Silence) { s.StartsAt = time.Time{} }, "starts and ends"},
		{"no creator", func(s *Silence) { s.CreatedBy = " " }, "who"},
		{"no comment", func(s *Silence) { s.Comment = "" }, "why"},
	}
	for _, tc := range tests {
		s := silence(t, "alertname=r")
		tc.change(s)
		err := s.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v; want one saying %q", tc.name, err, tc.want)
		}
	}
	// A silence without matchers silences nothing, valid or not.
	empty := silence(t)
	if empty.Silenced(AlertLabels("r", nil), base.Add(time.Minute)) {
		t.Error("a silence without matchers silenced an alert")
	}
}

func TestAlertSilencedBy(t *testing.T) {
	a := NewAlert("transfer-failures-high", map[string]string{"topic": "t", "alertname": "spoof"})
	s1 := silence(t, "alertname=transfer-failures-high")
	s2 := silence(t, "alertname=spoof") // the rule name wins over a label of that name
	s3 := silence(t, "topic=t")
	s3.ID = "s3"
	s3.StartsAt = base.Add(3 * time.Hour)
	s3.EndsAt = base.Add(4 * time.Hour)
	ss := []*Silence{s1, s2, s3}
	if got := a.SilencedBy(ss, base.Add(time.Hour)); len(got) != 1 || got[0] != "s1" {
		t.Errorf("at +1h: silenced by %v; want [s1]", got)
	}
	if got := a.SilencedBy(ss, base.Add(3*time.Hour)); len(got) != 1 || got[0] != "s3" {
		t.Errorf("at +3h: silenced by %v; want [s3]", got)
	}
	if got := a.SilencedBy(ss, base.Add(5*time.Hour)); len(got) != 0 {
		t.Errorf("at +5h: silenced by %v; want none", got)
	}
	if a.Labels["alertname"] != "spoof" {
		t.Error("AlertLabels changed the alert's labels")
	}
}
