package reconcile

import (
	"context"
	"fmt"
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

// Discrepancy is a stuck instance whose resource Dwolla reports settled.
type Discrepancy struct {
	Journey      string `json:"journey"`
	Subject      string `json:"subject"`
	Resource     string `json:"resource"`
	OurStatus    string `json:"our_status"`
	OurStep      string `json:"our_step"`
	DwollaStatus string `json:"dwolla_status"`
	Note         string `json:"note"`
}

const repairItemsKept = 50

// settled are the statuses Dwolla reports for a resource whose lifecycle
// has ended one way or the other (customers, transfers, funding sources).
var settled = map[string]bool{
	"verified": true, "suspended": true, "deactivated": true, "document": false, "retry": false,
	"processed": true, "failed": true, "cancelled": true, "unverified": false, "pending": false,
	"removed": true,
}

// recheckAfter keeps a run from asking about the same instance again soon.
const recheckAfter = 24 * time.Hour

// repair checks journey instances past their deadline (in progress or
// abandoned) against Dwolla: the resource their latest event names (the
// customer for customer journeys, the resource for resource journeys) is
// fetched, and when Dwolla reports it settled while the instance is not,
// the discrepancy is recorded: "recovered" when this run recovered events of
// the subject (they fold into the instance like any other), else reported
// (Dwolla's events for it are past the horizon or were never sent).
func (r *Reconciler) repair(ctx context.Context, run *Run, dry bool) (*Repair, error) {
	rp := &Repair{Items: []Discrepancy{}}
	if r.opts.Journeys == nil {
		return rp, nil
	}
	now := r.opts.Now()
	rows, err := r.db.Query(ctx, `SELECT i.journey, i.subject, i.status, coalesce(i.current_step, ''), e.body
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
	}
	var list []stuck
	for rows.Next() {
		var (
			s    stuck
			body []byte
		)
		if err := rows.Scan(&s.journey, &s.subject, &s.status, &s.step, &body); err != nil {
			rows.Close()
			return rp, fmt.Errorf("reconcile: read stuck journey instances: %w", err)
		}
		def, ok := r.opts.Journeys.Get(s.journey)
		if !ok {
			continue
		}
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
		if !settled[status] {
			continue // Dwolla is waiting too: the instance is rightly in progress
		}
		d := Discrepancy{Journey: s.journey, Subject: s.subject, Resource: s.href, OurStatus: s.status, OurStep: s.step, DwollaStatus: status}
		n, err := r.recoveredFor(ctx, run, s.subject)
		switch {
		case err != nil:
			return rp, err
		case n > 0:
			d.Note = fmt.Sprintf("recovered: this run recovered %d events of %s; they fold into the instance", n, s.subject)
		default:
			d.Note = fmt.Sprintf("Dwolla says %s, and it lists no event we lack for it: its events are past Dwolla's 30-day horizon or were never published", status)
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

// recoveredFor counts the events this run recovered (or found in flight)
// whose body names the subject as customer, resource or correlation.
func (r *Reconciler) recoveredFor(_ context.Context, run *Run, subject string) (int, error) {
	return run.recoveredBy[subject], nil
}
