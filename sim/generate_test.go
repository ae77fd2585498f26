package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hookstream/hookstream/dwolla"
)

var (
	lowerUUID = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	upperUUID = regexp.MustCompile(`^[0-9A-F]{8}-[0-9A-F]{4}-4[0-9A-F]{3}-[89AB][0-9A-F]{3}-[0-9A-F]{12}$`)
	millisUTC = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`)
)

func TestGenerateIsReproducible(t *testing.T) {
	t.Parallel()
	base := Config{Customers: 50, Seed: 7, Start: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC), StepDelay: time.Second}
	other := base
	other.Seed = 8
	tests := []struct {
		name string
		a, b Config
		same bool
	}{
		{"same seed", base, base, true},
		{"different seed", base, other, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a, b := Generate(tc.a), Generate(tc.b)
			same := len(a.Events) == len(b.Events)
			for i := 0; same && i < len(a.Events); i++ {
				same = bytes.Equal(a.Events[i].Body, b.Events[i].Body) && a.Events[i].ID == b.Events[i].ID &&
					a.Events[i].Created.Equal(b.Events[i].Created)
			}
			if same != tc.same {
				t.Fatalf("scenarios identical = %v, want %v", same, tc.same)
			}
			if tc.same && !maps.Equal(a.Paths, b.Paths) {
				t.Fatalf("paths differ: %v vs %v", a.Paths, b.Paths)
			}
			if !tc.same && a.Events[0].ID == b.Events[0].ID {
				t.Fatalf("different seeds share the first event id %s", a.Events[0].ID)
			}
		})
	}
}

func TestGenerateIsTheGeneratorsFirstCustomers(t *testing.T) {
	t.Parallel()
	cfg := Config{Customers: 30, Seed: 3}
	sc := Generate(cfg)
	g := NewGenerator(cfg)
	var all []Event
	for range cfg.Customers {
		evs := g.Next()
		for i := 1; i < len(evs); i++ {
			if evs[i].Created.Before(evs[i-1].Created) {
				t.Fatalf("Next returned events out of Created order: %s before %s", evs[i-1].Created, evs[i].Created)
			}
		}
		all = append(all, evs...)
	}
	slices.SortStableFunc(all, func(a, b Event) int { return a.Created.Compare(b.Created) })
	if got, want := ids(all), ids(sc.Events); !slices.Equal(got, want) {
		t.Fatalf("Generator's first %d customers differ from Generate's (%d vs %d events)", cfg.Customers, len(got), len(want))
	}
	if !maps.Equal(g.Paths(), sc.Paths) {
		t.Fatalf("paths differ")
	}
	if g.Customers() != int64(cfg.Customers) {
		t.Fatalf("Customers() = %d, want %d", g.Customers(), cfg.Customers)
	}
}

func TestOrderedYieldsGenerateInCreatedOrder(t *testing.T) {
	t.Parallel()
	cfg := Config{Customers: 40, Seed: 11, StepDelay: 10 * time.Second}
	sc := Generate(cfg)
	// Customers after the first 40 start at or after this; before it, Ordered
	// and Generate must agree event for event.
	cutoff := NewGenerator(cfg).customerStart(int64(cfg.Customers))
	var want []string
	for _, ev := range sc.Events {
		if ev.Created.Before(cutoff) {
			want = append(want, ev.ID)
		}
	}
	o := NewOrdered(cfg)
	var got []string
	prev := time.Time{}
	for {
		ev := o.Next()
		if ev.Created.Before(prev) {
			t.Fatalf("Ordered went back in time: %s after %s", ev.Created, prev)
		}
		prev = ev.Created
		if !ev.Created.Before(cutoff) {
			break
		}
		got = append(got, ev.ID)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("Ordered yielded %d events before %s, Generate has %d (or their order differs)", len(got), cutoff, len(want))
	}
	if len(o.Paths()) == 0 {
		t.Fatal("Ordered reports no paths")
	}
}

func ids(evs []Event) []string {
	out := make([]string, len(evs))
	for i := range evs {
		out[i] = evs[i].ID
	}
	return out
}

func TestGeneratedBodiesAreDwollaEvents(t *testing.T) {
	t.Parallel()
	start := time.Date(2025, 6, 2, 14, 0, 0, 123_456_789, time.FixedZone("CEST", 2*3600))
	cfg := Config{Customers: 300, Seed: 42, Start: start, Span: time.Hour, Host: "https://api.dwolla.com/"}
	sc := Generate(cfg)
	secret := []byte("whsec-test")
	verifier := dwolla.NewVerifier([][]byte{secret})
	wrong := dwolla.NewVerifier([][]byte{[]byte("other")})

	wantStart := start.UTC().Truncate(time.Millisecond)
	if !sc.Events[0].Created.Equal(wantStart) {
		t.Fatalf("first event created %s, want Start %s", sc.Events[0].Created, wantStart)
	}
	seen := make(map[string]bool, len(sc.Events))
	upper := 0
	for i, e := range sc.Events {
		if seen[e.ID] {
			t.Fatalf("event id %s generated twice", e.ID)
		}
		seen[e.ID] = true
		if i > 0 && e.Created.Before(sc.Events[i-1].Created) {
			t.Fatalf("Scenario.Events not sorted by Created at %d", i)
		}
		for name, id := range map[string]string{"ID": e.ID, "CustomerID": e.CustomerID, "ResourceID": e.ResourceID} {
			if !lowerUUID.MatchString(id) {
				t.Fatalf("%s %q is not a lower-case v4 UUID", name, id)
			}
		}

		ev, err := dwolla.ParseEvent(e.Body)
		if err != nil {
			t.Fatalf("ParseEvent(%s): %v", e.Body, err)
		}
		if ev.ID != e.ID || ev.Topic != e.Topic || !ev.Created.Equal(e.Created) || ev.ResourceID != e.ResourceID ||
			ev.CustomerID() != e.CustomerID || ev.ResourceType() != e.ResourceType {
			t.Fatalf("parsed %+v (customer %s, type %s) does not match generated %+v", ev, ev.CustomerID(), ev.ResourceType(), e)
		}
		if info, ok := dwolla.LookupTopic(e.Topic); !ok || !info.Customer {
			t.Fatalf("topic %q is not a catalogued customer topic", e.Topic)
		}
		if !strings.HasPrefix(ev.Links.Self.Href, "https://api.dwolla.com/events/") {
			t.Fatalf("self href %q does not use the configured host", ev.Links.Self.Href)
		}

		var raw struct {
			ResourceID    string                       `json:"resourceId"`
			Created       string                       `json:"created"`
			Timestamp     string                       `json:"timestamp"`
			CorrelationID *string                      `json:"correlationId"`
			Links         map[string]map[string]string `json:"_links"`
		}
		if err := json.Unmarshal(e.Body, &raw); err != nil {
			t.Fatal(err)
		}
		if raw.Created != raw.Timestamp || !millisUTC.MatchString(raw.Created) {
			t.Fatalf("created %q / timestamp %q: want equal RFC 3339 times with milliseconds and Z", raw.Created, raw.Timestamp)
		}
		for _, rel := range []string{"self", "account", "resource", "customer"} {
			l := raw.Links[rel]
			if l["href"] == "" || l["type"] != "application/vnd.dwolla.v1.hal+json" || l["resource-type"] == "" {
				t.Fatalf("_links.%s = %v: want href, type and resource-type", rel, l)
			}
		}
		if upperUUID.MatchString(raw.ResourceID) {
			upper++
			if e.ResourceType != "transfers" {
				t.Fatalf("upper-case resourceId on a %s event", e.ResourceType)
			}
			if !strings.HasSuffix(raw.Links["resource"]["href"], "/"+raw.ResourceID) {
				t.Fatalf("resource href %q does not end in the resourceId %s", raw.Links["resource"]["href"], raw.ResourceID)
			}
		}
		if raw.CorrelationID != nil && e.ResourceType != "transfers" {
			t.Fatalf("correlationId on a %s event; Dwolla sets it on transfers only", e.Topic)
		}

		sig := dwolla.Sign(secret, e.Body)
		if !verifier.Verify(e.Body, sig) {
			t.Fatalf("signature of event %s does not verify", e.ID)
		}
		if wrong.Verify(e.Body, sig) {
			t.Fatalf("signature of event %s verifies under the wrong secret", e.ID)
		}
	}
	if upper == 0 {
		t.Fatal("no transfer has an upper-case resourceId; Dwolla sends some")
	}
}

// stepOf maps a topic back to its lifecycle family and step, independently of
// the generator's own table.
func stepOf(topic string) (family, step string) {
	for _, p := range []struct{ prefix, family, keep string }{
		{"customer_bank_transfer_", "bank_transfer", ""},
		{"customer_transfer_", "transfer", ""},
		{"customer_mass_payment_", "mass_payment", ""},
		{"customer_funding_source_", "funding_source", ""},
		{"customer_microdeposits_", "funding_source", "microdeposits_"},
	} {
		if rest, ok := strings.CutPrefix(topic, p.prefix); ok {
			return p.family, p.keep + rest
		}
	}
	step = strings.TrimPrefix(topic, "customer_")
	step = strings.Replace(step, "kba_verification_", "kba_", 1)
	step = strings.Replace(step, "verification_document_", "document_", 1)
	return "verification", step
}

// transitions are the steps each step may lead to (reference/dwolla.md 3.3);
// "" lists the steps a lifecycle may start with.
var transitions = map[string]map[string][]string{
	"verification": {
		"":                      {"created"},
		"created":               {"verified", "reverification_needed"},
		"reverification_needed": {"verified", "kba_needed", "document_needed", "suspended"},
		"kba_needed":            {"kba_passed", "kba_failed"},
		"kba_passed":            {"verified"},
		"kba_failed":            {"document_needed"},
		"document_needed":       {"document_uploaded"},
		"document_uploaded":     {"document_approved", "document_failed"},
		"document_approved":     {"verified"},
		"document_failed":       {"document_uploaded", "suspended"},
		"verified":              {"deactivated"},
		"suspended":             {"activated"},
		"deactivated":           {"activated"},
		"activated":             {"deactivated"}, // a reactivated customer may be deactivated again
	},
	"funding_source": {
		"":                          {"added"},
		"added":                     {"verified", "microdeposits_added"},
		"microdeposits_added":       {"microdeposits_completed", "microdeposits_failed"},
		"microdeposits_completed":   {"verified", "microdeposits_maxattempts"},
		"microdeposits_failed":      {"removed"},
		"microdeposits_maxattempts": {"removed"},
	},
	"bank_transfer": {
		"":          {"created", "creation_failed"},
		"created":   {"completed", "failed", "cancelled"},
		"completed": {"failed"}, // a late ACH return
	},
	"transfer": {
		"":        {"created"},
		"created": {"completed", "failed", "cancelled"},
	},
	"mass_payment": {
		"":        {"created"},
		"created": {"completed", "cancelled"},
	},
}

func TestLifecyclesFollowDwollasRules(t *testing.T) {
	t.Parallel()
	sc := Generate(Config{Customers: 1500, Seed: 5})

	type instance struct {
		family   string
		customer string
		steps    []string
		times    []time.Time
	}
	lifecycles := map[string]*instance{} // by family and resource
	var order []string
	for _, e := range sc.Events {
		family, step := stepOf(e.Topic)
		key := family + "/" + e.ResourceID
		l := lifecycles[key]
		if l == nil {
			l = &instance{family: family, customer: e.CustomerID}
			lifecycles[key] = l
			order = append(order, key)
		}
		l.steps = append(l.steps, step)
		l.times = append(l.times, e.Created)
	}

	paths := map[string]int{}
	created := map[string]time.Time{}  // customer -> customer_created
	usableAt := map[string]time.Time{} // customer -> verified or activated
	fundedAt := map[string]time.Time{} // customer -> first funding source verified
	for _, key := range order {
		l := lifecycles[key]
		paths[l.family+":"+strings.Join(l.steps, ">")]++
		rules := transitions[l.family]
		prev := ""
		for i, step := range l.steps {
			if !slices.Contains(rules[prev], step) {
				t.Fatalf("%s %s: step %q may not follow %q (path %v)", l.family, key, step, prev, l.steps)
			}
			if i > 0 && !l.times[i].After(l.times[i-1]) {
				t.Fatalf("%s %s: created times do not strictly increase: %v", l.family, key, l.times)
			}
			prev = step
		}
		switch l.family {
		case "verification":
			created[l.customer] = l.times[0]
			for i, s := range l.steps {
				if (s == "verified" || s == "activated") && usableAt[l.customer].IsZero() {
					usableAt[l.customer] = l.times[i]
				}
			}
		case "funding_source":
			if i := slices.Index(l.steps, "verified"); i >= 0 {
				if f, ok := fundedAt[l.customer]; !ok || l.times[i].Before(f) {
					fundedAt[l.customer] = l.times[i]
				}
			}
		}
	}
	for _, key := range order {
		l := lifecycles[key]
		c := l.customer
		switch l.family {
		case "funding_source":
			if u := usableAt[c]; u.IsZero() || l.times[0].Before(u) {
				t.Fatalf("customer %s added a funding source at %s before being verified (%s)", c, l.times[0], u)
			}
		case "bank_transfer", "transfer", "mass_payment":
			if f := fundedAt[c]; f.IsZero() || l.times[0].Before(f) {
				t.Fatalf("customer %s started a %s at %s before a funding source was verified (%s)", c, l.family, l.times[0], f)
			}
		}
		if cr, ok := created[c]; !ok || l.times[0].Before(cr) {
			t.Fatalf("customer %s has a %s event before customer_created", c, l.family)
		}
	}

	if !maps.Equal(paths, sc.Paths) {
		for p, n := range sc.Paths {
			if paths[p] != n {
				t.Errorf("path %s: %d in the events, %d in Paths", p, paths[p], n)
			}
		}
		t.Fatalf("Paths does not match the lifecycles the events show")
	}
	if got, want := sc.Lifecycles(), len(lifecycles); got != want {
		t.Fatalf("Paths counts sum to %d, the events hold %d lifecycles", got, want)
	}
}

func TestPathMixCoversTheDocumentedJourneys(t *testing.T) {
	t.Parallel()
	sc := Generate(Config{Customers: 3000, Seed: 9})
	for _, path := range []string{
		"verification:created>verified",
		"verification:created>reverification_needed>verified",
		"verification:created>reverification_needed>kba_needed>kba_passed>verified",
		"verification:created>reverification_needed>kba_needed>kba_failed>document_needed>document_uploaded>document_approved>verified",
		"verification:created>reverification_needed>document_needed>document_uploaded>document_approved>verified",
		"verification:created>reverification_needed>document_needed>document_uploaded>document_failed>document_uploaded>document_approved>verified",
		"verification:created>reverification_needed>suspended",
		"verification:created>reverification_needed>suspended>activated",
		"verification:created>verified>deactivated>activated",
		"funding_source:added>verified",
		"funding_source:added>microdeposits_added>microdeposits_completed>verified",
		"funding_source:added>microdeposits_added>microdeposits_failed>removed",
		"funding_source:added>microdeposits_added>microdeposits_completed>microdeposits_maxattempts>removed",
		"bank_transfer:created>completed",
		"bank_transfer:created>failed",
		"bank_transfer:created>cancelled",
		"bank_transfer:created>completed>failed",
		"bank_transfer:creation_failed",
		"transfer:created>completed",
		"transfer:created>failed",
		"transfer:created>cancelled",
		"mass_payment:created>completed",
		"mass_payment:created>cancelled",
	} {
		if sc.Paths[path] == 0 {
			t.Errorf("no lifecycle took %s", path)
		}
	}
	// The happy paths dominate, as in real traffic.
	if v, all := sc.Paths["verification:created>verified"], 3000; v < all/2 {
		t.Errorf("only %d of %d customers verified straight away", v, all)
	}
}

func TestConfigDefaults(t *testing.T) {
	t.Parallel()
	tests := []struct {
		cfg       Config
		customers int
		span      time.Duration
	}{
		{Config{}, 100, 100 * time.Second},
		{Config{Customers: 10}, 10, 10 * time.Second},
		{Config{Customers: 10, Span: time.Minute}, 10, time.Minute},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%+v", tc.cfg), func(t *testing.T) {
			t.Parallel()
			sc := Generate(tc.cfg)
			customers := map[string]bool{}
			for _, e := range sc.Events {
				customers[e.CustomerID] = true
				if e.Topic == "customer_created" {
					if off := e.Created.Sub(defaultStart); off < 0 || off >= tc.span {
						t.Fatalf("customer created at Start%+v, outside [0, %s)", off, tc.span)
					}
				}
			}
			if len(customers) != tc.customers {
				t.Fatalf("%d customers, want %d", len(customers), tc.customers)
			}
			if !strings.Contains(string(sc.Events[0].Body), `"href":"`+DefaultHost+`/`) {
				t.Fatalf("body does not use the default host: %s", sc.Events[0].Body)
			}
		})
	}
}

func BenchmarkGenerate(b *testing.B) {
	b.ReportAllocs()
	events := 0
	for b.Loop() {
		events += len(Generate(Config{Customers: 100, Seed: 1}).Events)
	}
	b.ReportMetric(float64(events)/float64(b.N), "events/op")
}

func TestOrderedNextDue(t *testing.T) {
	start := time.Now().Add(50 * time.Millisecond)
	o := NewOrdered(Config{Customers: 10, Seed: 3, Start: start, StepDelay: time.Millisecond})
	ev, err := o.NextDue(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if now := time.Now(); now.Before(ev.Created) {
		t.Fatalf("event created %v returned early at %v", ev.Created, now)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	late := NewOrdered(Config{Customers: 10, Seed: 3, Start: time.Now().Add(time.Hour)})
	if _, err := late.NextDue(ctx); err == nil {
		t.Fatal("NextDue should give up when ctx ends")
	}
}
