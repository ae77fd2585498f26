package reconcile

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/hookstream/hookstream/dwolla"
	"github.com/hookstream/hookstream/journeys"
)

// Repair is what a run learnt about journey instances stuck past their
// deadline: it asked Dwolla for the current status of each one's resource,
// and recorded where Dwolla knows more than the events we hold.
type Repair struct {
	Checked       int           `json:"checked"`
	Discrepancies int           `json:"discrepancies"`
	Items         []Discrepancy `json:"items"` // the first repairItemsKept
	Error         string        `json:"error,omitempty"`
}

// Discrepancy is a stuck instance whose resource Dwolla reports in a status
// that a step the instance has not reached would have left it in.
type Discrepancy struct {
	Journey      string `json:"journey"`
	Subject      string `json:"subject"`
	Resource     string `json:"resource"`
	OurStatus    string `json:"our_status"`
	OurStep      string `json:"our_step"`
	DwollaStatus string `json:"dwolla_status"`
	// Steps are the steps not reached whose topics leave the resource in
	// Dwolla's status: where the missing events belong.
	Steps []string `json:"steps"`
	Note  string   `json:"note"`
}

const repairItemsKept = 50

// recheckAfter keeps a run from asking about the same instance again soon.
const recheckAfter = 24 * time.Hour

// repair checks journey instances past their deadline (in progress or
// abandoned) against Dwolla: the resource the instance follows (the
// customer for customer journeys, the resource for resource journeys, as
// its latest event links it) is fetched, and when Dwolla reports a status
// that only a step the instance has not reached would give (the transfer is
// processed, the instance never reached "completed"), the discrepancy is
// recorded: "recovered" when this run recovered events of the subject (they
// fold into the instance like any other), else reported (Dwolla's events for
// it are past the horizon or were never sent). A status the instance's
// reached steps explain (a verified customer whose onboarding waits for a
// first transfer) is no discrepancy.
func (r *Reconciler) repair(ctx context.Context, run *Run, dry bool) (*Repair, error) {
	rp := &Repair{Items: []Discrepancy{}}
	if r.opts.Journeys == nil {
		return rp, nil
	}
	now := r.opts.Now()
	rows, err := r.db.Query(ctx, `SELECT i.journey, i.subject, i.status, coalesce(i.current_step, ''),
			array(SELECT x IS NOT NULL FROM unnest(i.step_at) AS t(x)), e.body
		FROM journey_instances i
		CROSS JOIN LATERAL (SELECT x FROM unnest(i.step_event) WITH ORDINALITY AS t(x, n) WHERE x IS NOT NULL ORDER BY n DESC LIMIT 1) last
		JOIN events e ON e.id = last.x
		WHERE i.status IN ('in_progress', 'abandoned') AND i.deadline < $1
		  AND NOT EXISTS (SELECT 1 FROM reconcile_discrepancies d WHERE d.journey = i.journey AND d.subject = i.subject AND d.found_at > $2)
		ORDER BY i.deadline DESC LIMIT $3`, now, now.Add(-recheckAfter), r.opts.StuckLimit)
	if err != nil {
		rp.Error = "find stuck journey instances: " + err.Error()
		run.Errors++
		return rp, nil
	}
	type stuck struct {
		journey, subject, status, step, href string
		def                                  *journeys.Definition
		reached                              []bool
	}
	var list []stuck
	for rows.Next() {
		var (
			s    stuck
			body []byte
		)
		if err := rows.Scan(&s.journey, &s.subject, &s.status, &s.step, &s.reached, &body); err != nil {
			rows.Close()
			return rp, fmt.Errorf("reconcile: read stuck journey instances: %w", err)
		}
		def, ok := r.opts.Journeys.Get(s.journey)
		if !ok || len(s.reached) != len(def.Steps) {
			continue // a journey no longer defined, or redefined since
		}
		s.def = def
		ev, err := dwolla.ParseEvent(body)
		if err != nil {
			continue
		}
		switch def.Subject {
		case journeys.SubjectCustomer:
			s.href = ev.Links.Customer.Href
		case journeys.SubjectResource:
			s.href = ev.Links.Resource.Href
		}
		if s.href != "" {
			list = append(list, s)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return rp, fmt.Errorf("reconcile: read stuck journey instances: %w", err)
	}
	for _, s := range list {
		res, err := r.api.Resource(ctx, s.href)
		run.APICalls++
		rp.Checked++
		if err != nil {
			run.Errors++
			rp.Error = fmt.Sprintf("ask Dwolla about %s: %v", s.href, err)
			continue
		}
		status := strings.ToLower(res.Status)
		steps := unreachedFor(s.def, s.reached, collectionOf(s.href), status)
		if len(steps) == 0 {
			continue // the steps reached explain Dwolla's status: rightly in progress
		}
		d := Discrepancy{Journey: s.journey, Subject: s.subject, Resource: s.href, OurStatus: s.status, OurStep: s.step,
			DwollaStatus: status, Steps: steps}
		// The events this run recovered (or found in flight) naming the
		// subject as customer, resource or correlation.
		n := run.recoveredBy[s.subject]
		switch {
		case n > 0:
			d.Note = fmt.Sprintf("recovered: Dwolla says %s, which step %s would give; this run recovered %d events of %s, they fold into the instance",
				status, strings.Join(steps, " or "), n, s.subject)
		default:
			d.Note = fmt.Sprintf("Dwolla says %s, which step %s would give, and it lists no event we lack for it: its events are past Dwolla's 30-day horizon or were never published",
				status, strings.Join(steps, " or "))
		}
		rp.Discrepancies++
		if len(rp.Items) < repairItemsKept {
			rp.Items = append(rp.Items, d)
		}
		if dry {
			continue
		}
		if _, err := r.db.Exec(ctx, `INSERT INTO reconcile_discrepancies (run_id, journey, subject, resource, our_status, our_step, dwolla_status, note, found_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`, run.ID, d.Journey, d.Subject, d.Resource, d.OurStatus, d.OurStep, d.DwollaStatus, d.Note, now); err != nil {
			return rp, fmt.Errorf("reconcile: record a journey discrepancy: %w", err)
		}
	}
	return rp, nil
}

// unreachedFor lists the steps of def not reached whose topics leave a
// resource of collection in status.
func unreachedFor(def *journeys.Definition, reached []bool, collection, status string) []string {
	var out []string
	for i, st := range def.Steps {
		if reached[i] {
			continue
		}
		for _, topic := range st.Topics {
			if c, s := dwolla.StatusAfter(topic); c == collection && s == status {
				out = append(out, st.Name)
				break
			}
		}
	}
	return out
}

// collectionOf is the collection of a resource's href: "transfers" for
// https://api.dwolla.com/transfers/{id}.
func collectionOf(href string) string {
	u, err := url.Parse(href)
	if err != nil {
		return ""
	}
	parts := strings.Split(strings.Trim(u.Path, "/"), "/")
	if len(parts) < 2 {
		return ""
	}
	return parts[len(parts)-2]
}
