package api

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/hookstream/hookstream/anomaly"
	"github.com/hookstream/hookstream/journeys"
	"github.com/hookstream/hookstream/store"
	"github.com/hookstream/hookstream/windows"
)

type tokenInfo struct {
	name  string
	scope Scope
}

func withToken(ctx context.Context, name string, scope Scope) context.Context {
	return context.WithValue(ctx, tokenKey, tokenInfo{name, scope})
}

func tokenOf(ctx context.Context) tokenInfo {
	t, _ := ctx.Value(tokenKey).(tokenInfo)
	return t
}

// info says who is asking and what answers: for health checks (the
// Grafana datasource's) and the console's sign-in.
func (s *Server) info(w http.ResponseWriter, r *http.Request) {
	if p := readParams(r.URL); p.err != nil {
		s.fail(w, r, "", p.err)
		return
	}
	t := tokenOf(r.Context())
	writeJSON(w, map[string]any{
		"version": s.cfg.Version, "namespace": s.cfg.Keys.Namespace, "token": t.name, "scope": t.scope.String(),
		"time": s.cfg.Now().UTC(),
	})
}

// Event is a stored event as the API lists it.
type Event struct {
	ID            string    `json:"id"`
	Topic         string    `json:"topic"`
	Family        string    `json:"family,omitempty"`
	Outcome       string    `json:"outcome,omitempty"`
	Terminal      bool      `json:"terminal"`
	ResourceType  string    `json:"resource_type,omitempty"`
	ResourceID    string    `json:"resource_id,omitempty"`
	CustomerID    string    `json:"customer_id,omitempty"`
	CorrelationID string    `json:"correlation_id,omitempty"`
	Created       time.Time `json:"created"`
	Received      time.Time `json:"received"`
	Source        string    `json:"source"`
}

func eventOf(e *store.Event) Event {
	return Event{ID: e.ID, Topic: e.Topic, Family: e.Family, Outcome: e.Outcome, Terminal: e.Terminal, ResourceType: e.ResourceType,
		ResourceID: e.ResourceID, CustomerID: e.CustomerID, CorrelationID: e.CorrelationID, Created: e.Created.UTC(),
		Received: e.Received.UTC(), Source: e.Source}
}

type eventCursor struct {
	Created time.Time `json:"c"`
	ID      string    `json:"i"`
}

func (s *Server) listEvents(w http.ResponseWriter, r *http.Request) {
	p := readParams(r.URL, "topic", "customer", "resource", "from", "to", "limit", "cursor")
	f := store.EventFilter{Topics: p.list("topic"), CustomerID: strings.ToLower(p.str("customer")), ResourceID: strings.ToLower(p.str("resource")),
		From: p.time("from"), To: p.time("to"), Limit: p.intIn("limit", 100, 1, 1000)}
	var c eventCursor
	if p.cursor("events", &c) {
		f.After = &store.EventKey{Created: c.Created, ID: c.ID}
	}
	if p.err == nil && !f.From.IsZero() && !f.To.IsZero() && !f.From.Before(f.To) {
		p.fail("from", f.From.Format(time.RFC3339)+" is not before to "+f.To.Format(time.RFC3339))
	}
	if p.err != nil {
		s.fail(w, r, "", p.err)
		return
	}
	limit := f.Limit
	f.Limit++ // one more tells whether there is a next page
	evs, err := store.ListEvents(r.Context(), s.db, f)
	if err != nil {
		s.fail(w, r, "list events", err)
		return
	}
	evs, next := page(evs, limit, "events", func(e store.Event) any { return eventCursor{e.Created, e.ID} })
	out := struct {
		Events     []Event `json:"events"`
		NextCursor *string `json:"next_cursor"`
	}{Events: make([]Event, len(evs)), NextCursor: next}
	for i := range evs {
		out.Events[i] = eventOf(&evs[i])
	}
	writeJSON(w, out)
}

// EventDetail is one stored event in full.
type EventDetail struct {
	Event
	StoredAt time.Time                `json:"stored_at"`
	Body     json.RawMessage          `json:"body"`
	Journeys []journeys.EventInstance `json:"journey_instances"`
}

func (s *Server) getEvent(w http.ResponseWriter, r *http.Request) {
	if p := readParams(r.URL); p.err != nil {
		s.fail(w, r, "", p.err)
		return
	}
	id := r.PathValue("id")
	e, err := store.GetEvent(r.Context(), s.db, id)
	if errors.Is(err, store.ErrNoEvent) {
		err = notFound("no stored event has id " + id + " (it may not be processed yet, or was never received)")
	}
	if err != nil {
		s.fail(w, r, "read event", err)
		return
	}
	d := EventDetail{Event: eventOf(&e.Event), StoredAt: e.StoredAt.UTC(), Body: rawBody(e.Body)}
	if d.Journeys, err = journeys.InstancesOf(r.Context(), s.db, s.cfg.Journeys, &e.Event); err != nil {
		s.fail(w, r, "read the event's journey instances", err)
		return
	}
	writeJSON(w, d)
}

// rawBody is a body as JSON: itself when it is JSON (a stored body always
// parsed as a Dwolla event), else as a string.
func rawBody(b []byte) json.RawMessage {
	if json.Valid(b) {
		return b
	}
	s, _ := json.Marshal(string(b))
	return s
}

// apiParam is the API's name of a metric query parameter the windows
// package names as the CLI does.
var apiParam = strings.NewReplacer("group-by", "group_by", "non-empty", "non_empty")

func (s *Server) queryMetrics(w http.ResponseWriter, r *http.Request) {
	p := readParams(r.URL, "window", "metric", "group_by", "filter", "from", "to", "basis", "non_empty")
	q := windows.MetricQuery{Window: p.duration("window"), Basis: windows.Basis(p.str("basis")), Metric: windows.Metric(p.str("metric")),
		GroupBy: p.str("group_by"), SkipEmpty: p.choice("non_empty", "false", "true", "false") == "true"}
	q.Window = cmp.Or(q.Window, s.cfg.Windows.Base())
	q.Metric = cmp.Or(q.Metric, windows.MetricCount)
	q.From, q.To = p.timeRange(s.cfg.Now().UTC(), time.Hour)
	if p.err == nil {
		var err error
		if q.Filter, err = windows.ParseFilter(p.str("filter")); err != nil {
			p.err = metricParamError(err)
		}
	}
	if p.err == nil {
		if err := q.Validate(s.cfg.Windows); err != nil {
			p.err = metricParamError(err)
		}
	}
	if p.err != nil {
		s.fail(w, r, "", p.err)
		return
	}
	res, err := windows.QueryMetrics(r.Context(), s.db, s.cfg.Windows, q)
	if err != nil {
		s.fail(w, r, "query metrics", metricParamError(err))
		return
	}
	writeJSON(w, res)
}

// metricParamError turns the windows package's parameter errors, worded
// for the CLI's flags, into the API's.
func metricParamError(err error) error {
	var pe *windows.ParamError
	if !errors.As(err, &pe) {
		return err
	}
	name := apiParam.Replace(pe.Param)
	detail := strings.ReplaceAll(apiParam.Replace(pe.Reason), "--", "")
	if pe.Value != "" {
		detail = "\"" + pe.Value + "\": " + detail
	}
	return badParam(name, detail)
}

func (s *Server) metricCatalog(w http.ResponseWriter, r *http.Request) {
	p := readParams(r.URL, "since")
	since := p.time("since")
	if since.IsZero() {
		since = s.cfg.Now().UTC().AddDate(0, 0, -7)
	}
	if p.err != nil {
		s.fail(w, r, "", p.err)
		return
	}
	c, err := windows.ReadCatalog(r.Context(), s.db, s.cfg.Windows, since)
	if err != nil {
		s.fail(w, r, "read the metric catalog", err)
		return
	}
	writeJSON(w, c)
}

// journeyStep and journeyDef are a definition as JSON.
type journeyStep struct {
	Name         string   `json:"name"`
	Topics       []string `json:"topics"`
	Optional     bool     `json:"optional"`
	AbandonAfter string   `json:"abandon_after,omitempty"`
}

type journeyDef struct {
	Name        string        `json:"name"`
	Description string        `json:"description,omitempty"`
	Subject     string        `json:"subject"`
	Steps       []journeyStep `json:"steps"`
	Success     []string      `json:"success"`
	Failure     []string      `json:"failure"`
	Conflict    string        `json:"conflict"`
}

func (s *Server) listJourneys(w http.ResponseWriter, r *http.Request) {
	if p := readParams(r.URL); p.err != nil {
		s.fail(w, r, "", p.err)
		return
	}
	out := struct {
		Journeys []journeyDef `json:"journeys"`
	}{Journeys: []journeyDef{}}
	if s.cfg.Journeys != nil {
		for _, d := range s.cfg.Journeys.Journeys {
			jd := journeyDef{Name: d.Name, Description: d.Description, Subject: string(d.Subject), Success: nonNil(d.Success),
				Failure: nonNil(d.Failure), Conflict: d.Conflict}
			for _, st := range d.Steps {
				js := journeyStep{Name: st.Name, Topics: nonNil(st.Topics), Optional: st.Optional}
				if st.AbandonAfter > 0 {
					js.AbandonAfter = st.AbandonAfter.String()
				}
				jd.Steps = append(jd.Steps, js)
			}
			out.Journeys = append(out.Journeys, jd)
		}
	}
	writeJSON(w, out)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// journey is the definition a route's {name} names; failing that, or when
// p holds a bad parameter, the error to answer.
func (s *Server) journey(r *http.Request, p *params) (*journeys.Definition, error) {
	name := r.PathValue("name")
	if s.cfg.Journeys == nil {
		return nil, notFound("no journeys are configured (the processors run with --no-journeys)")
	}
	d, ok := s.cfg.Journeys.Get(name)
	if !ok {
		var names []string
		for _, d := range s.cfg.Journeys.Journeys {
			names = append(names, d.Name)
		}
		return nil, notFound("no journey " + name + "; known: " + strings.Join(names, ", "))
	}
	return d, p.err
}

func (s *Server) funnel(w http.ResponseWriter, r *http.Request) {
	p := readParams(r.URL, "from", "to", "by")
	by := p.choice("by", "", "entry_topic")
	from, to := p.timeRange(s.cfg.Now().UTC(), 30*24*time.Hour)
	d, err := s.journey(r, p)
	if err != nil {
		s.fail(w, r, "", err)
		return
	}
	fs, err := journeys.Funnels(r.Context(), s.db, d, from, to, by)
	if err != nil {
		s.fail(w, r, "read the funnel", err)
		return
	}
	if by == "" {
		writeJSON(w, fs[0])
		return
	}
	writeJSON(w, struct {
		By      string                  `json:"by"`
		Funnels []journeys.FunnelReport `json:"funnels"`
	}{by, fs})
}

type instanceCursor struct {
	EnteredAt time.Time `json:"e"`
	Subject   string    `json:"s"`
}

func (s *Server) listInstances(w http.ResponseWriter, r *http.Request) {
	p := readParams(r.URL, "status", "from", "to", "limit", "cursor")
	f := journeys.InstanceFilter{Status: p.choice("status", "", journeys.InProgress, journeys.Completed, journeys.Failed, journeys.Abandoned),
		Limit: p.intIn("limit", 100, 1, 1000)}
	f.From, f.To = p.timeRange(s.cfg.Now().UTC(), 30*24*time.Hour)
	var c instanceCursor
	if p.cursor("instances", &c) {
		f.After = &journeys.InstanceKey{EnteredAt: c.EnteredAt, Subject: c.Subject}
	}
	d, err := s.journey(r, p)
	if err != nil {
		s.fail(w, r, "", err)
		return
	}
	limit := f.Limit
	f.Limit++
	rows, err := journeys.Instances(r.Context(), s.db, d, f)
	if err != nil {
		s.fail(w, r, "list journey instances", err)
		return
	}
	out := struct {
		Instances  []journeys.InstanceSummary `json:"instances"`
		NextCursor *string                    `json:"next_cursor"`
	}{}
	out.Instances, out.NextCursor = page(rows, limit, "instances", func(i journeys.InstanceSummary) any { return instanceCursor{i.EnteredAt, i.Subject} })
	writeJSON(w, out)
}

func (s *Server) getInstance(w http.ResponseWriter, r *http.Request) {
	p := readParams(r.URL)
	d, err := s.journey(r, p)
	if err != nil {
		s.fail(w, r, "", err)
		return
	}
	in, err := journeys.Instance(r.Context(), s.db, d, r.PathValue("subject"))
	if errors.Is(err, journeys.ErrNoInstance) {
		err = notFound(err.Error())
	}
	if err != nil {
		s.fail(w, r, "read the journey instance", err)
		return
	}
	writeJSON(w, in)
}

// compareFunnels compares two cohorts of a journey (query compare --journey).
func (s *Server) compareFunnels(w http.ResponseWriter, r *http.Request) {
	p := readParams(r.URL, "a", "b")
	aFrom, aTo := p.period("a")
	bFrom, bTo := p.period("b")
	d, err := s.journey(r, p)
	if err != nil {
		s.fail(w, r, "", err)
		return
	}
	c, err := journeys.CompareFunnels(r.Context(), s.db, d, aFrom, aTo, bFrom, bTo)
	if err != nil {
		s.fail(w, r, "compare the funnels", err)
		return
	}
	writeJSON(w, c)
}

// compareMetric compares one series over two periods (query compare --metric).
func (s *Server) compareMetric(w http.ResponseWriter, r *http.Request) {
	p := readParams(r.URL, "metric", "filter", "basis", "window", "a", "b")
	q := windows.MetricQuery{Window: p.duration("window"), Basis: windows.Basis(p.str("basis")), Metric: windows.Metric(p.str("metric"))}
	q.Window = cmp.Or(q.Window, time.Hour)
	q.Metric = cmp.Or(q.Metric, windows.MetricCount)
	aFrom, aTo := p.period("a")
	bFrom, bTo := p.period("b")
	if p.err == nil {
		var err error
		if q.Filter, err = windows.ParseFilter(p.str("filter")); err != nil {
			p.err = metricParamError(err)
		}
	}
	for _, period := range [][2]time.Time{{aFrom, aTo}, {bFrom, bTo}} {
		if p.err == nil {
			v := q
			v.From, v.To = period[0], period[1]
			if err := v.Validate(s.cfg.Windows); err != nil {
				p.err = metricParamError(err)
			}
		}
	}
	if p.err != nil {
		s.fail(w, r, "", p.err)
		return
	}
	c, err := windows.CompareMetric(r.Context(), s.db, s.cfg.Windows, q, aFrom, aTo, bFrom, bTo)
	if err != nil {
		s.fail(w, r, "compare the metric", metricParamError(err))
		return
	}
	writeJSON(w, c)
}

type anomalyCursor = anomaly.Key

// listAnomalies lists what the anomaly scorer recorded (query anomalies).
func (s *Server) listAnomalies(w http.ResponseWriter, r *http.Request) {
	p := readParams(r.URL, "series", "from", "to", "min_score", "all", "limit", "cursor")
	f := anomaly.Filter{Series: p.str("series"), Only: p.choice("all", "false", "true", "false") == "false", Limit: p.intIn("limit", 100, 1, 1000)}
	f.From, f.To = p.timeRange(s.cfg.Now().UTC(), 24*time.Hour)
	if ms := p.str("min_score"); ms != "" {
		v, err := strconv.ParseFloat(ms, 64)
		if err != nil || v < 0 || v > 1 {
			p.fail("min_score", strconv.Quote(ms)+" is not a score from 0 to 1")
		}
		f.MinScore = v
	}
	var c anomalyCursor
	if p.cursor("anomalies", &c) {
		f.After = &c
	}
	if p.err != nil {
		s.fail(w, r, "", p.err)
		return
	}
	limit := f.Limit
	f.Limit++
	recs, err := anomaly.List(r.Context(), s.db, f)
	if err != nil {
		s.fail(w, r, "list anomalies", err)
		return
	}
	out := struct {
		Anomalies  []anomaly.Record `json:"anomalies"`
		NextCursor *string          `json:"next_cursor"`
	}{}
	out.Anomalies, out.NextCursor = page(recs, limit, "anomalies", func(r anomaly.Record) any {
		return anomalyCursor{Start: r.Start, Series: r.Series, Revision: r.Revision}
	})
	writeJSON(w, out)
}
