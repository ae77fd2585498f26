package journeys_test

import (
	"os"
	"testing"

	"github.com/hookstream/hookstream/journeys"
)

// FuzzParse: a journeys file, however malformed (it is user input, and
// --journeys may point anywhere), is accepted as a usable set or refused
// with an error; Parse never panics and says the same of the same bytes.
//
// go test ./journeys -run '^$' -fuzz FuzzParse -fuzztime 30s
func FuzzParse(f *testing.F) {
	def, err := os.ReadFile("default.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(def)
	for _, s := range []string{
		"", "journeys: []", "journeys: [~]", "journeys: [{name: a, subject: customer}]",
		"journeys: [{name: a, subject: customer, steps: [{name: s, topics: [customer_created], abandon_after: -1h}]}]",
		"journeys: [{name: a, subject: resource, steps: [{name: s, topics: [x]}, {name: s, topics: [x]}]}]",
		"journeys:\n  - &a {name: a}\n  - *a\n", "{", "journeys: {a: 1}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		set, _, err := journeys.Parse(b)
		again, _, err2 := journeys.Parse(b)
		if (err == nil) != (err2 == nil) || (err != nil && err.Error() != err2.Error()) {
			t.Fatalf("two parses of the same bytes disagree: %v / %v", err, err2)
		}
		if err != nil {
			if err.Error() == "" {
				t.Fatal("an empty error")
			}
			return
		}
		if set == nil || again == nil || len(set.Journeys) == 0 {
			t.Fatalf("accepted without journeys: %q", b)
		}
		for _, d := range set.Journeys {
			if d == nil || d.Name == "" || len(d.Steps) == 0 {
				t.Fatalf("accepted a journey without a name or steps: %+v", d)
			}
		}
	})
}
