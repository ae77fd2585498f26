package alert_test

import (
	"os"
	"testing"

	"github.com/hookstream/hookstream/alert"
	"github.com/hookstream/hookstream/windows"
)

// FuzzParseRules: an alert rules file, however malformed, is accepted as
// rules or refused with an error; ParseRules never panics and says the
// same of the same bytes.
//
// go test ./alert -run '^$' -fuzz FuzzParseRules -fuzztime 30s
func FuzzParseRules(f *testing.F) {
	def, err := os.ReadFile("rules.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(def)
	for _, s := range []string{
		"", "rules: []", "rules: [~]", "group_wait: -1s", "group_wait: 1s\nrules: [{name: a, kind: operational, signal: spool_depth, op: '>', value: 1}]",
		"targets: [{name: t, kind: webhook, url: 'http://x', secret: whsec_AAAA}]",
		"targets: [{name: t, kind: slack, url: ':'}]", "rules: [{name: a, kind: threshold, metric: count, window: 7m, op: '>', value: 1}]",
		"rules: [{name: a, kind: anomaly, series: '*', summary: '{{.Nope'}]", "{",
	} {
		f.Add([]byte(s))
	}
	wcfg := windows.Config{}.WithDefaults()
	f.Fuzz(func(t *testing.T, b []byte) {
		rs, err := alert.ParseRules(b, wcfg)
		_, err2 := alert.ParseRules(b, wcfg)
		if (err == nil) != (err2 == nil) || (err != nil && err.Error() != err2.Error()) {
			t.Fatalf("two parses of the same bytes disagree: %v / %v", err, err2)
		}
		if err == nil && rs == nil {
			t.Fatalf("accepted without rules: %q", b)
		}
		if err != nil && err.Error() == "" {
			t.Fatal("an empty error")
		}
	})
}
