package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/hookstream/hookstream/alert"
	"github.com/hookstream/hookstream/internal/cli"
)

// The alerting routes: alerts, their acknowledgement, silences, the
// notification log and test notifications. They call what the CLI's
// alerts and silences commands call.

func (s *Server) listAlerts(w http.ResponseWriter, r *http.Request) {
	p := readParams(r.URL, "state", "limit")
	state := p.choice("state", alert.ListFiring, alert.ListFiring, alert.ListResolved, alert.ListAll)
	limit := p.intIn("limit", 100, 1, 1000)
	if p.err != nil {
		s.fail(w, r, "", p.err)
		return
	}
	as, err := alert.List(r.Context(), s.db, state, limit, s.cfg.Now())
	if err != nil {
		s.fail(w, r, "list alerts", err)
		return
	}
	if as == nil {
		as = []alert.View{}
	}
	writeJSON(w, map[string]any{"alerts": as})
}

// alertFailed answers a failed read or action on an alert or silence: 404
// when it does not exist.
func (s *Server) alertFailed(w http.ResponseWriter, r *http.Request, what, list string, err error) {
	if errors.Is(err, alert.ErrNotFound) {
		err = notFound(err.Error() + "; " + list + " lists them")
	}
	s.fail(w, r, what, err)
}

func (s *Server) getAlert(w http.ResponseWriter, r *http.Request) {
	if p := readParams(r.URL); p.err != nil {
		s.fail(w, r, "", p.err)
		return
	}
	fp := r.PathValue("fingerprint")
	d, err := alert.Get(r.Context(), s.db, fp, s.cfg.Now())
	if err != nil {
		s.alertFailed(w, r, "read alert", "GET /api/v1/alerts?state=all", err)
		return
	}
	writeJSON(w, d)
}

// ackAlert acknowledges a firing alert in the name of the request's token:
// it gets no more repeat notifications until it resolves.
func (s *Server) ackAlert(w http.ResponseWriter, r *http.Request) {
	if p := readParams(r.URL); p.err != nil {
		s.fail(w, r, "", p.err)
		return
	}
	fp := r.PathValue("fingerprint")
	by := tokenOf(r.Context()).name
	v, err := alert.Acknowledge(r.Context(), s.db, fp, by, s.cfg.Now())
	if errors.Is(err, alert.ErrNotFiring) {
		writeProblem(w, r, http.StatusConflict, ProblemConflict, err.Error(), "")
		return
	}
	if err != nil {
		s.alertFailed(w, r, "acknowledge alert", "GET /api/v1/alerts", err)
		return
	}
	s.log.Info("alert acknowledged", "fingerprint", fp, "rule", v.Rule, "token", by)
	writeJSON(w, v)
}

func (s *Server) alertNotifications(w http.ResponseWriter, r *http.Request) {
	p := readParams(r.URL, "target", "limit")
	target := p.str("target")
	limit := p.intIn("limit", 100, 1, 1000)
	if p.err != nil {
		s.fail(w, r, "", p.err)
		return
	}
	ds, err := alert.Deliveries(r.Context(), s.db, target, limit)
	if err != nil {
		s.fail(w, r, "read the notification log", err)
		return
	}
	if ds == nil {
		ds = []alert.Delivery{}
	}
	writeJSON(w, map[string]any{"notifications": ds})
}

// testTimeout bounds the request of a test notification.
const testTimeout = 10 * time.Second

// testAlertTarget sends a sample notification to a target of the loaded
// rules at once (no outbox, no retries) and says how it answered.
func (s *Server) testAlertTarget(w http.ResponseWriter, r *http.Request) {
	p := readParams(r.URL, "target")
	name := p.str("target")
	if p.err != nil {
		s.fail(w, r, "", p.err)
		return
	}
	if s.cfg.Alerts == nil {
		writeProblem(w, r, http.StatusNotFound, ProblemNotFound,
			"this server has no alert rules loaded, so no targets to test; start the API with the alert rules (--alert-rules) or use hookstream alerts test", "")
		return
	}
	if name == "" {
		names := make([]string, len(s.cfg.Alerts.Targets))
		for i, t := range s.cfg.Alerts.Targets {
			names[i] = t.Name
		}
		s.fail(w, r, "", badParam("target", fmt.Sprintf("give the name of the target to test; the rules have %v", names)))
		return
	}
	t, err := s.cfg.Alerts.Target(name)
	if err != nil {
		writeProblem(w, r, http.StatusNotFound, ProblemNotFound, err.Error(), "target")
		return
	}
	res, err := alert.SendTest(r.Context(), t, &http.Client{Timeout: testTimeout}, s.cfg.Now())
	if err != nil {
		s.fail(w, r, "send a test notification", err)
		return
	}
	s.log.Info("alert test notification sent", "target", t.Name, "delivered", res.Delivered, "status", res.Status,
		"token", tokenOf(r.Context()).name)
	writeJSON(w, res)
}

func (s *Server) listSilences(w http.ResponseWriter, r *http.Request) {
	p := readParams(r.URL, "all")
	all := p.choice("all", "false", "true", "false") == "true"
	if p.err != nil {
		s.fail(w, r, "", p.err)
		return
	}
	ss, err := alert.ListSilences(r.Context(), s.db, all, s.cfg.Now())
	if err != nil {
		s.fail(w, r, "list silences", err)
		return
	}
	if ss == nil {
		ss = []alert.SilenceView{}
	}
	writeJSON(w, map[string]any{"silences": ss})
}

// SilenceRequest is the body of POST /api/v1/silences.
type SilenceRequest struct {
	// Matchers are written as name=value, name!=value, name=~regexp or
	// name!~regexp; the rule's name is the label alertname.
	Matchers []string `json:"matchers"`
	// For is how long the silence lasts from StartsAt; or EndsAt (RFC
	// 3339) when it ends. One of the two.
	For    string `json:"for"`
	EndsAt string `json:"ends_at"`
	// StartsAt is when it starts (RFC 3339; default now).
	StartsAt string `json:"starts_at"`
	Comment  string `json:"comment"`
}

// maxSilenceBody bounds the body of a silence.
const maxSilenceBody = 64 << 10

// silenceFrom reads a silence request: a body that cannot be one is a
// bad-parameter error naming the field at fault.
func silenceFrom(w http.ResponseWriter, r *http.Request, by string, now time.Time) (*alert.Silence, error) {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxSilenceBody))
	dec.DisallowUnknownFields()
	var req SilenceRequest
	if err := dec.Decode(&req); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, badParam("body", `no body; send a JSON object such as {"matchers":["alertname=transfer-failures-high"],"for":"2h","comment":"deploying the fix"}`)
		}
		return nil, badParam("body", "not a silence: "+err.Error()+`; send a JSON object with matchers, for or ends_at, optional starts_at, and comment`)
	}
	if dec.More() {
		return nil, badParam("body", "more than one JSON value; send one silence")
	}
	sil := &alert.Silence{CreatedBy: by, Comment: strings.TrimSpace(req.Comment), StartsAt: now}
	if len(req.Matchers) == 0 {
		return nil, badParam("matchers", "no matchers; give at least one, for example alertname=transfer-failures-high")
	}
	for _, ms := range req.Matchers {
		m, err := alert.ParseMatcher(ms)
		if err != nil {
			return nil, badParam("matchers", err.Error())
		}
		sil.Matchers = append(sil.Matchers, m)
	}
	if s := strings.TrimSpace(req.StartsAt); s != "" {
		t, err := cli.ParseTime(s)
		if err != nil {
			return nil, badParam("starts_at", err.Error())
		}
		sil.StartsAt = t
	}
	forS, endS := strings.TrimSpace(req.For), strings.TrimSpace(req.EndsAt)
	switch {
	case forS == "" && endS == "":
		return nil, badParam("for", `give how long the silence lasts ("for": "2h") or when it ends ("ends_at": RFC 3339)`)
	case forS != "" && endS != "":
		return nil, badParam("for", "give for or ends_at, not both")
	case forS != "":
		d, err := time.ParseDuration(forS)
		if err != nil || d <= 0 {
			return nil, badParam("for", fmt.Sprintf("%q is not a duration such as 30m or 2h", forS))
		}
		sil.EndsAt = sil.StartsAt.Add(d)
	default:
		t, err := cli.ParseTime(endS)
		if err != nil {
			return nil, badParam("ends_at", err.Error())
		}
		sil.EndsAt = t
	}
	sil.StartsAt, sil.EndsAt = sil.StartsAt.UTC(), sil.EndsAt.UTC()
	if err := sil.Validate(); err != nil {
		return nil, badParam("body", err.Error())
	}
	if !sil.EndsAt.After(now) {
		return nil, badParam("ends_at", fmt.Sprintf("the silence would end %s, which has passed", sil.EndsAt.Format(time.RFC3339)))
	}
	return sil, nil
}

// createSilence stores a silence in the name of the request's token.
func (s *Server) createSilence(w http.ResponseWriter, r *http.Request) {
	if p := readParams(r.URL); p.err != nil {
		s.fail(w, r, "", p.err)
		return
	}
	now := s.cfg.Now()
	by := tokenOf(r.Context()).name
	sil, err := silenceFrom(w, r, by, now)
	if err == nil {
		err = alert.CreateSilence(r.Context(), s.db, sil, now)
	}
	if err != nil {
		s.fail(w, r, "create silence", err)
		return
	}
	matchers := make([]string, len(sil.Matchers))
	for i, m := range sil.Matchers {
		matchers[i] = m.String()
	}
	s.log.Info("silence created", "id", sil.ID, "matchers", strings.Join(matchers, ","), "ends_at", sil.EndsAt, "token", by)
	w.Header().Set("Location", "/api/v1/silences/"+sil.ID)
	writeJSONStatus(w, http.StatusCreated, alert.SilenceView{Silence: *sil, Status: sil.Status(now)})
}

func (s *Server) getSilence(w http.ResponseWriter, r *http.Request) {
	if p := readParams(r.URL); p.err != nil {
		s.fail(w, r, "", p.err)
		return
	}
	v, err := alert.GetSilence(r.Context(), s.db, r.PathValue("id"), s.cfg.Now())
	if err != nil {
		s.alertFailed(w, r, "read silence", "GET /api/v1/silences?all=true", err)
		return
	}
	writeJSON(w, v)
}

// expireSilence ends a silence now (Alertmanager's expire); it stays
// listed with all=true. Expiring an expired silence changes nothing.
func (s *Server) expireSilence(w http.ResponseWriter, r *http.Request) {
	if p := readParams(r.URL); p.err != nil {
		s.fail(w, r, "", p.err)
		return
	}
	id := r.PathValue("id")
	v, err := alert.ExpireSilence(r.Context(), s.db, id, s.cfg.Now())
	if err != nil {
		s.alertFailed(w, r, "expire silence", "GET /api/v1/silences?all=true", err)
		return
	}
	s.log.Info("silence expired", "id", id, "token", tokenOf(r.Context()).name)
	writeJSON(w, v)
}

// writeJSONStatus answers v as JSON with status.
func writeJSONStatus(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
}
