package api

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/hookstream/hookstream/reconcile"
)

// The reconciliation routes: the runs reconciliation recorded and its
// report, read as hookstream reconcile runs and reconcile report read them.
// Running a reconciliation is not among them: it needs Dwolla's
// credentials, which the api role does not hold (serve --roles reconcile
// runs them).

const (
	// maxReconcileRuns bounds a listing of runs: each run carries its
	// audit and repair (up to 50 failed deliveries per subscription and 50
	// discrepancies), and 200 runs are about 16 hours at the default
	// --reconcile-every.
	maxReconcileRuns = 200
	// reportDays is the report's default range in days, today included.
	reportDays = 30
	// maxReportDays bounds a report's range in days: a little more than
	// the 30 days Dwolla keeps events, so a range of the whole horizon
	// fits whatever the time of day.
	maxReportDays = 31
)

func (s *Server) listReconcileRuns(w http.ResponseWriter, r *http.Request) {
	p := readParams(r.URL, "limit")
	limit := p.intIn("limit", 20, 1, maxReconcileRuns)
	if p.err != nil {
		s.fail(w, r, "", p.err)
		return
	}
	rs, err := reconcile.Runs(r.Context(), s.db, limit)
	if err != nil {
		s.fail(w, r, "list reconciliation runs", err)
		return
	}
	if rs == nil {
		rs = []reconcile.Run{}
	}
	writeJSON(w, map[string]any{"runs": rs})
}

func (s *Server) getReconcileRun(w http.ResponseWriter, r *http.Request) {
	if p := readParams(r.URL); p.err != nil {
		s.fail(w, r, "", p.err)
		return
	}
	v := r.PathValue("id")
	id, err := strconv.ParseInt(v, 10, 64)
	if err != nil || id <= 0 {
		s.fail(w, r, "", badParam("id", strconv.Quote(v)+" is not a reconciliation run id (a positive number; see GET /api/v1/reconcile/runs)"))
		return
	}
	run, err := reconcile.GetRun(r.Context(), s.db, id)
	if errors.Is(err, reconcile.ErrNotFound) {
		err = notFound(err.Error() + "; GET /api/v1/reconcile/runs lists the latest runs")
	}
	if err != nil {
		s.fail(w, r, "read reconciliation run", err)
		return
	}
	writeJSON(w, run)
}

func (s *Server) reconcileReport(w http.ResponseWriter, r *http.Request) {
	p := readParams(r.URL, "from", "to")
	from, to := p.reportDays(s.cfg.Now())
	if p.err != nil {
		s.fail(w, r, "", p.err)
		return
	}
	rep, err := reconcile.MakeReport(r.Context(), s.db, from, to)
	if err != nil {
		s.fail(w, r, "make the reconciliation report", err)
		return
	}
	writeJSON(w, rep)
}

// reportDays reads the report's range of UTC days, both included: a time
// is taken as its UTC day; to defaults to today, from to the reportDays
// days ending with to. It refuses a range that ends before it starts or
// spans more than maxReportDays days.
func (p *params) reportDays(now time.Time) (from, to time.Time) {
	const day = 24 * time.Hour
	from, to = p.time("from"), p.time("to")
	if p.err != nil {
		return from, to
	}
	toGiven := !to.IsZero()
	if !toGiven {
		to = now
	}
	to = to.UTC().Truncate(day)
	if from.IsZero() {
		from = to.Add(-(reportDays - 1) * day)
	}
	from = from.UTC().Truncate(day)
	switch days := int(to.Sub(from)/day) + 1; {
	case to.Before(from):
		p.fail("from", fmt.Sprintf("from %s is after to %s (to is the last day, included)",
			from.Format(time.DateOnly), to.Format(time.DateOnly)))
	case days > maxReportDays:
		detail := fmt.Sprintf("from %s to %s is %d days; a report covers at most %d (Dwolla keeps events 30 days): ask for shorter ranges",
			from.Format(time.DateOnly), to.Format(time.DateOnly), days, maxReportDays)
		if !toGiven {
			detail += "; to defaults to today, give it too"
		}
		p.fail("from", detail)
	}
	return from, to
}
