package journeys_test

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/hookstream/hookstream/journeys"
)

func TestTheDefaultDefinitionsAreValid(t *testing.T) {
	s := journeys.Default()
	for _, name := range []string{"customer_verification", "beneficial_owner_verification", "funding_source_verification",
		"bank_transfer", "transfer", "mass_payment", "onboarding"} {
		if _, ok := s.Get(name); !ok {
			t.Errorf("default journey %q missing", name)
		}
	}
	if got := s.ForTopic("customer_verified"); len(got) != 2 {
		t.Errorf("customer_verified advances %d journeys, want 2 (verification and onboarding)", len(got))
	}
}

func TestDefinitionErrorsAreRejectedClearly(t *testing.T) {
	f := func(yaml string, want ...string) {
		t.Helper()
		_, _, err := journeys.Parse([]byte(yaml))
		if err == nil {
			t.Fatalf("accepted:\n%s", yaml)
		}
		for _, w := range want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("error %q does not say %q", err, w)
			}
		}
	}
	f(`journeys: []`, "no journeys defined")
	f(`journeys: [{name: a, subject: customer, steps: [{name: s, topics: [customer_created]}], success: [s]}, {name: a, subject: customer, steps: [{name: s, topics: [customer_created]}], success: [s]}]`,
		`journey 2 ("a"): duplicate name`)
	f(`journeys: [{name: a, subject: planet, steps: [{name: s, topics: [customer_created]}], success: [s]}]`, `subject "planet"`)
	f(`journeys: [{name: a, subject: customer, steps: [{name: s, topics: []}], success: [s]}]`, `step "s": no topics reach it (unreachable step)`)
	f(`journeys: [{name: a, subject: customer, steps: [{name: s, topics: [x], abandon_after: soon}], success: [s]}]`, `abandon_after "soon"`)
	f(`journeys: [{name: a, subject: customer, steps: [{name: s, topics: [x], abandon_after: -1h}], success: [s]}]`, `must be positive`)
	f(`journeys: [{name: a, subject: customer, steps: [{name: s, topics: [x]}, {name: s, topics: [y]}], success: [s]}]`, `duplicate step name`)
	f(`journeys: [{name: a, subject: customer, steps: [{name: s, topics: [x]}], success: [done]}]`, `outcome step "done" is not one of its steps`)
	f(`journeys: [{name: a, subject: customer, steps: [{name: s, topics: [x]}]}]`, `could never end`)
	f(`journeys: [{name: a, subject: customer, steps: [{name: s, topics: [x]}], success: [s], conflict: coinflip}]`, `conflict "coinflip"`)
	f(`journeys: [{name: A, subject: customer, steps: [{name: s, topics: [x]}], success: [s]}]`, `name must be lower-case`)
	f(`journeys: [{name: a, subject: customer, colour: red, steps: [{name: s, topics: [x]}], success: [s]}]`, `not valid journey YAML`)
	f("journeys:\n  -\n", "an empty journey entry")
	f(`journeys: [{name: a, subject: customer, steps: [{name: s, topics: [""]}], success: [s]}]`, `step "s": an empty topic`)

	_, warnings, err := journeys.Parse([]byte(`journeys: [{name: a, subject: customer, steps: [{name: s, topics: [customer_teleported]}], success: [s]}]`))
	if err != nil || len(warnings) != 1 || !strings.Contains(warnings[0], `"customer_teleported" is not in hookstream's catalogue`) {
		t.Fatalf("unknown topic: warnings %v, err %v; want one warning and no error", warnings, err)
	}
}

type ev struct {
	step  string
	at    time.Duration
	event string
}

// instance folds events (in the order given) into a state.
func instance(d *journeys.Definition, evs []ev) ([]journeys.Reach, journeys.State) {
	var steps []journeys.Reach
	t0 := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	for _, e := range evs {
		r := make([]journeys.Reach, len(d.Steps))
		r[d.Index(e.step)] = journeys.Reach{At: t0.Add(e.at), Event: e.event, Topic: "topic_of_" + e.step}
		journeys.Merge(&steps, r)
	}
	return steps, d.Derive(steps, false)
}

// TestEveryOrderingAndDuplicateGivesTheSameInstance: for each default
// journey, a documented lifecycle in every order (all permutations up to 6
// events, random ones beyond), with duplicates, gives one state.
func TestEveryOrderingAndDuplicateGivesTheSameInstance(t *testing.T) {
	set := journeys.Default()
	lifecycles := map[string][][]string{
		"customer_verification": {
			{"created", "verified"},
			{"created", "reverification_needed", "verified"},
			{"created", "reverification_needed", "kba_needed", "kba_passed", "verified"},
			{"created", "reverification_needed", "kba_needed", "kba_failed", "document_needed", "document_uploaded", "document_approved", "verified"},
			{"created", "reverification_needed", "document_needed", "document_uploaded", "document_failed", "suspended"},
		},
		"funding_source_verification": {
			{"added", "verified"},
			{"added", "microdeposits_added", "microdeposits_completed", "verified"},
			{"added", "microdeposits_added", "microdeposits_failed"},
			{"added", "microdeposits_added", "microdeposits_completed", "microdeposits_maxattempts"},
			{"added", "verified", "removed"},
		},
		"bank_transfer":                 {{"created", "completed"}, {"created", "failed"}, {"created", "cancelled"}, {"creation_failed"}, {"created", "completed", "failed"}},
		"transfer":                      {{"created", "completed"}, {"created", "failed"}},
		"mass_payment":                  {{"created", "completed"}, {"created", "cancelled"}},
		"onboarding":                    {{"created", "verified", "funding_source_verified", "first_transfer_completed"}, {"created", "verified"}},
		"beneficial_owner_verification": {{"created", "verified"}, {"created", "document_needed", "document_uploaded", "document_approved", "verified"}},
	}
	rng := rand.New(rand.NewPCG(8, 9))
	for name, paths := range lifecycles {
		d, _ := set.Get(name)
		for _, path := range paths {
			var evs []ev
			for i, s := range path {
				evs = append(evs, ev{s, time.Duration(i) * time.Hour, fmt.Sprintf("e%02d", i)})
			}
			wantSteps, want := instance(d, evs)
			orders := permutations(len(evs), rng)
			for _, order := range orders {
				var shuffled []ev
				for _, i := range order {
					shuffled = append(shuffled, evs[i])
					if rng.IntN(3) == 0 { // a duplicate delivery
						shuffled = append(shuffled, evs[i])
					}
				}
				gotSteps, got := instance(d, shuffled)
				if got.EntryTopic != "topic_of_"+path[0] {
					t.Fatalf("%s %v in order %v: entry topic %q, want the first step's", name, path, order, got.EntryTopic)
				}
				if fmt.Sprint(gotSteps) != fmt.Sprint(wantSteps) || fmt.Sprint(got) != fmt.Sprint(want) {
					t.Fatalf("%s %v in order %v: %+v, want %+v", name, path, order, got, want)
				}
			}
		}
	}
}

func permutations(n int, rng *rand.Rand) [][]int {
	if n > 6 {
		out := make([][]int, 500)
		for i := range out {
			out[i] = rng.Perm(n)
		}
		return out
	}
	var out [][]int
	var rec func(cur []int, used []bool)
	rec = func(cur []int, used []bool) {
		if len(cur) == n {
			out = append(out, append([]int(nil), cur...))
			return
		}
		for i := range n {
			if !used[i] {
				used[i] = true
				rec(append(cur, i), used)
				used[i] = false
			}
		}
	}
	rec(nil, make([]bool, n))
	return out
}

func TestTheDerivationRule(t *testing.T) {
	set := journeys.Default()
	bank, _ := set.Get("bank_transfer")
	verif, _ := set.Get("customer_verification")
	onb, _ := set.Get("onboarding")
	f := func(d *journeys.Definition, evs []ev, status, current, conflict string) {
		t.Helper()
		_, st := instance(d, evs)
		cur := ""
		if st.Current >= 0 {
			cur = d.Steps[st.Current].Name
		}
		if st.Status != status || cur != current || !strings.Contains(st.Conflict, conflict) || (conflict == "" && st.Conflict != "") {
			t.Errorf("%s %v: %s at %s (conflict %q); want %s at %s (conflict %q)", d.Name, evs, st.Status, cur, st.Conflict, status, current, conflict)
		}
	}
	f(bank, []ev{{"created", 0, "a"}}, journeys.InProgress, "created", "")
	f(bank, []ev{{"created", 0, "a"}, {"completed", time.Hour, "b"}}, journeys.Completed, "completed", "")
	// A completed transfer that fails later (a late ACH return): failure wins, recorded.
	f(bank, []ev{{"created", 0, "a"}, {"completed", time.Hour, "b"}, {"failed", 48 * time.Hour, "c"}}, journeys.Failed, "failed",
		"reached success step completed and failure step failed; failure_wins: failed")
	// Latest wins for verification: suspended, then verified after review.
	f(verif, []ev{{"created", 0, "a"}, {"suspended", time.Hour, "b"}, {"verified", 2 * time.Hour, "c"}}, journeys.Completed, "verified", "latest_wins: verified")
	f(verif, []ev{{"created", 0, "a"}, {"verified", time.Hour, "b"}, {"suspended", 2 * time.Hour, "c"}}, journeys.Failed, "suspended", "latest_wins: suspended")
	// Events that skip a step: recorded, the furthest step is current.
	f(onb, []ev{{"created", 0, "a"}, {"funding_source_verified", time.Hour, "b"}}, journeys.InProgress, "funding_source_verified", "skipped steps: verified")
	// Optional steps are never "skipped".
	f(verif, []ev{{"created", 0, "a"}, {"verified", time.Hour, "b"}}, journeys.Completed, "verified", "")
	// The deadline: last progress plus the current step's abandon_after.
	_, st := instance(bank, []ev{{"created", 0, "a"}})
	if st.Deadline == nil || !st.Deadline.Equal(time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC).Add(168*time.Hour)) {
		t.Fatalf("deadline %v, want created + 168h", st.Deadline)
	}
	if st := bank.Derive([]journeys.Reach{{At: time.Now(), Event: "a"}, {}, {}, {}, {}}, true); st.Status != journeys.Abandoned {
		t.Fatalf("abandoned flag on an in-progress instance: %s", st.Status)
	}
	if st := bank.Derive([]journeys.Reach{{At: time.Now(), Event: "a"}, {At: time.Now(), Event: "b"}, {}, {}, {}}, true); st.Status != journeys.Completed {
		t.Fatalf("an ended instance is never abandoned: %s", st.Status)
	}
}

func TestWilsonInterval(t *testing.T) {
	f := func(x, n int64, rate, low, high float64) {
		t.Helper()
		c := journeys.Wilson(x, n)
		near := func(a, b float64) bool { return a-b < 1e-4 && b-a < 1e-4 }
		if !near(c.Rate, rate) || !near(c.Low, low) || !near(c.High, high) {
			t.Errorf("Wilson(%d, %d) = %+v, want %v [%v, %v]", x, n, c, rate, low, high)
		}
	}
	f(0, 0, 0, 0, 0)
	f(5, 10, 0.5, 0.2366, 0.7634)
	f(0, 10, 0, 0, 0.2775)
	f(10, 10, 1, 0.7225, 1)
	f(81, 263, 0.30798, 0.25528, 0.36620)
}
