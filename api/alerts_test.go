package api

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hookstream/hookstream/alert"
	"github.com/hookstream/hookstream/windows"
)

// webhookSink is a webhook target: it checks each notification's Standard
// Webhooks signature and keeps what it received.
type webhookSink struct {
	srv    *httptest.Server
	secret alert.Secret
	mu     sync.Mutex
	got    []sinkRequest
}

type sinkRequest struct {
	id     string
	body   []byte
	verify error // alert.Verify's verdict
}

func newWebhookSink(t *testing.T) *webhookSink {
	t.Helper()
	key := make([]byte, 32)
	rand.Read(key)
	k := &webhookSink{secret: key}
	k.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		// The sender signs with the wall clock: verify against it, as a
		// receiver does.
		err := alert.Verify(r.Header, b, time.Now(), 0, k.secret)
		k.mu.Lock()
		k.got = append(k.got, sinkRequest{id: r.Header.Get("webhook-id"), body: b, verify: err})
		k.mu.Unlock()
		if err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(k.srv.Close)
	return k
}

func (k *webhookSink) received() []sinkRequest {
	k.mu.Lock()
	defer k.mu.Unlock()
	return slices.Clone(k.got)
}

// alertRules: dlq always holds (open dead letters >= 0) and fires at once;
// dlq-slow holds too but waits an hour, so it stays pending; never never
// holds. Notifications go to the sink at once (group_wait 0s).
func alertRules(t *testing.T, sink *webhookSink) *alert.Rules {
	t.Helper()
	yaml := `group_wait: 0s
targets:
  - {name: hook, kind: webhook, url: "` + sink.srv.URL + `", secret: "` + sink.secret.String() + `"}
rules:
  - {name: dlq, kind: operational, severity: warning, signal: dead_letters_open, op: ">=", value: 0, summary: "{{.Value}} open dead letters"}
  - {name: dlq-slow, kind: operational, severity: info, signal: dead_letters_open, op: ">=", value: 0, for: 1h}
  - {name: never, kind: operational, severity: critical, signal: dead_letters_open, op: "<", value: 0}
`
	rules, err := alert.ParseRules([]byte(yaml), windows.Config{}.WithDefaults())
	if err != nil {
		t.Fatal(err)
	}
	return rules
}

func post(t *testing.T, f *fixture, path, secret, body string) answer {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	return f.do(t, "POST", path, secret, r)
}

// status fails unless a has status want; for an error it returns the
// problem.
func (a answer) want(t *testing.T, what string, want int) Problem {
	t.Helper()
	if a.status != want {
		t.Fatalf("%s: status %d, want %d: %s", what, a.status, want, a.body)
	}
	if want >= 400 {
		return a.problem(t)
	}
	return Problem{}
}

// The alert routes read and act on what the evaluator keeps, as the alert
// package's functions do; silences, acknowledgements and test notifications
// are made in the token's name; the live feed carries the evaluator's
// announcements.
func TestAlertRoutes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// The server's clock and the evaluator's: in the past, so that the
	// notifier (on the wall clock, which signs) finds the notification due.
	at := time.Date(2025, 6, 2, 12, 0, 0, 0, time.UTC)
	sink := newWebhookSink(t)
	rules := alertRules(t, sink)
	f := newFixture(t, func(c *Config) {
		c.Now = func() time.Time { return at }
		c.Alerts = rules
	})

	jsonEq(t, "no alerts yet", f.get(t, "/api/v1/alerts").ok(t).body, map[string]any{"alerts": []any{}})
	jsonEq(t, "no silences yet", f.get(t, "/api/v1/silences").ok(t).body, map[string]any{"silences": []any{}})
	jsonEq(t, "no notifications yet", f.get(t, "/api/v1/alerts/notifications").ok(t).body, map[string]any{"notifications": []any{}})

	// One evaluation: dlq fires, dlq-slow is pending; the live feed says so.
	live := f.live(t, "types=alert", "", readSecret)
	ev := alert.NewEvaluator(f.DB, f.Redis, f.Keys, rules, f.s.cfg.Windows, alert.EvaluatorOptions{
		Now: func() time.Time { return at }, Logger: quiet})
	if did, err := ev.Tick(ctx); err != nil || !did {
		t.Fatalf("evaluate: %v %v", did, err)
	}
	seen := map[string]alert.Announcement{}
	for len(seen) < 2 {
		m, ok := live.next(10*time.Second, false)
		if !ok {
			t.Fatalf("live feed: only %d alert messages after an evaluation: %v", len(seen), seen)
		}
		var a alert.Announcement
		if m.typ != "alert" || m.id == "" || json.Unmarshal([]byte(m.data), &a) != nil {
			t.Fatalf("live message %+v", m)
		}
		seen[a.Rule] = a
	}
	if a := seen["dlq"]; a.State != alert.StateFiring || a.From != alert.StateInactive || !a.At.Equal(at) || a.Summary != "0 open dead letters" {
		t.Errorf("dlq announced %+v", a)
	}
	if a := seen["dlq-slow"]; a.State != alert.StatePending {
		t.Errorf("dlq-slow announced %+v", a)
	}

	// List and get.
	want, err := alert.List(ctx, f.DB, alert.ListFiring, 100, at)
	if err != nil {
		t.Fatal(err)
	}
	if len(want) != 2 || want[0].Rule != "dlq" || want[0].State != alert.StateFiring || want[1].Rule != "dlq-slow" {
		t.Fatalf("alerts %+v", want)
	}
	jsonEq(t, "firing alerts", f.get(t, "/api/v1/alerts").ok(t).body, map[string]any{"alerts": want})
	jsonEq(t, "firing alerts, limit 1", f.get(t, "/api/v1/alerts?state=firing&limit=1").ok(t).body, map[string]any{"alerts": want[:1]})
	jsonEq(t, "all alerts", f.get(t, "/api/v1/alerts?state=all").ok(t).body, map[string]any{"alerts": want})
	jsonEq(t, "resolved alerts", f.get(t, "/api/v1/alerts?state=resolved").ok(t).body, map[string]any{"alerts": []any{}})
	for _, bad := range []string{"state=open", "limit=0", "limit=1001", "firing=true"} {
		p := f.get(t, "/api/v1/alerts?"+bad).want(t, bad, 400)
		if p.Param == "" || p.Detail == "" {
			t.Errorf("%s: problem %+v", bad, p)
		}
	}
	fp, pending := want[0].Fingerprint, want[1].Fingerprint
	detail, err := alert.Get(ctx, f.DB, fp, at)
	if err != nil {
		t.Fatal(err)
	}
	if len(detail.History) != 1 || len(detail.Notifications) != 1 || detail.Notifications[0].Target != "hook" {
		t.Fatalf("alert detail %+v", detail)
	}
	jsonEq(t, "alert", f.get(t, "/api/v1/alerts/"+fp).ok(t).body, detail)
	if p := f.get(t, "/api/v1/alerts/no-such-alert").want(t, "unknown alert", 404); !strings.Contains(p.Detail, "no-such-alert") {
		t.Errorf("unknown alert: %+v", p)
	}

	// Acknowledge: admin only, firing only, in the token's name.
	post(t, f, "/api/v1/alerts/"+fp+"/ack", readSecret, "").want(t, "ack with a read token", 403)
	if p := post(t, f, "/api/v1/alerts/"+pending+"/ack", adminSecret, "").want(t, "ack a pending alert", 409); !strings.Contains(p.Detail, "only a firing alert") {
		t.Errorf("ack a pending alert: %+v", p)
	}
	post(t, f, "/api/v1/alerts/no-such-alert/ack", adminSecret, "").want(t, "ack an unknown alert", 404)
	var acked alert.View
	post(t, f, "/api/v1/alerts/"+fp+"/ack", adminSecret, "").ok(t).decode(t, &acked)
	if acked.AckedBy != "ops" || !acked.AckedAt.Equal(at) || acked.State != alert.StateFiring {
		t.Errorf("acknowledged %+v", acked)
	}
	want, _ = alert.List(ctx, f.DB, alert.ListFiring, 100, at)
	jsonEq(t, "acknowledged alert", post(t, f, "/api/v1/alerts/"+fp+"/ack", adminSecret, "").ok(t).body, want[0])
	var d alert.Detail
	f.get(t, "/api/v1/alerts/"+fp).ok(t).decode(t, &d)
	if n := len(d.History); n != 2 || d.History[n-1].Note != "acknowledged by ops" {
		t.Errorf("history after acknowledgement %+v", d.History)
	}

	// The notification log: written by the evaluation, delivered by a
	// notifier to the sink, which verifies its signature.
	var log struct {
		Notifications []alert.Delivery `json:"notifications"`
	}
	f.get(t, "/api/v1/alerts/notifications").ok(t).decode(t, &log)
	if len(log.Notifications) != 1 || log.Notifications[0].Attempts != 0 || !slices.Equal(log.Notifications[0].Fingerprints, []string{fp}) {
		t.Fatalf("notification log before delivery %+v", log)
	}
	ntf := log.Notifications[0].ID
	n := alert.NewNotifier(f.DB, rules.Targets, alert.NotifierOptions{Logger: quiet})
	if sent, err := n.Drain(ctx, rules.Targets[0]); err != nil || sent != 1 {
		t.Fatalf("deliver: %d %v", sent, err)
	}
	if got := sink.received(); len(got) != 1 || got[0].id != ntf || got[0].verify != nil {
		t.Fatalf("the sink received %+v", got)
	}
	wantLog, err := alert.Deliveries(ctx, f.DB, "hook", 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(wantLog) != 1 || wantLog[0].DeliveredAt.IsZero() || len(wantLog[0].Log) != 1 || wantLog[0].Log[0].Status != 204 {
		t.Fatalf("delivery log %+v", wantLog)
	}
	jsonEq(t, "notification log", f.get(t, "/api/v1/alerts/notifications?target=hook&limit=10").ok(t).body, map[string]any{"notifications": wantLog})
	jsonEq(t, "notification log of another target", f.get(t, "/api/v1/alerts/notifications?target=other").ok(t).body, map[string]any{"notifications": []any{}})
	f.get(t, "/api/v1/alerts/notifications?limit=5000").want(t, "notifications limit", 400)

	// A test notification, signed, straight to the sink; not in the log.
	post(t, f, "/api/v1/alerts/test?target=hook", readSecret, "").want(t, "test with a read token", 403)
	var res alert.TestResult
	post(t, f, "/api/v1/alerts/test?target=hook", adminSecret, "").ok(t).decode(t, &res)
	got := sink.received()
	if !res.Delivered || res.Status != 204 || res.Target != "hook" || len(got) != 2 || got[1].id != res.ID || got[1].verify != nil {
		t.Fatalf("test notification %+v; the sink received %+v", res, got)
	}
	var payload alert.WebhookPayload
	if err := json.Unmarshal(got[1].body, &payload); err != nil || payload.Type != "alert.firing" {
		t.Fatalf("test notification body %s: %v", got[1].body, err)
	}
	f.get(t, "/api/v1/alerts/notifications").ok(t).decode(t, &log)
	if len(log.Notifications) != 1 {
		t.Errorf("a test notification is in the log: %+v", log)
	}
	if p := post(t, f, "/api/v1/alerts/test?target=nope", adminSecret, "").want(t, "test an unknown target", 404); !strings.Contains(p.Detail, "no such target") {
		t.Errorf("unknown target: %+v", p)
	}
	if p := post(t, f, "/api/v1/alerts/test", adminSecret, "").want(t, "test no target", 400); p.Param != "target" || !strings.Contains(p.Detail, "hook") {
		t.Errorf("no target: %+v", p)
	}
	// A GET of /alerts/test is an alert named test; other methods are
	// refused with what is allowed.
	// (The OpenAPI validator takes the path for the POST route's: unchecked.)
	f.send(t, "GET", "/api/v1/alerts/test", readSecret, nil, false).want(t, "GET /alerts/test", 404)
	if a := f.send(t, "DELETE", "/api/v1/alerts/notifications", adminSecret, nil, false); a.status != 405 || a.header.Get("Allow") != "GET" {
		t.Errorf("DELETE /alerts/notifications: %d, Allow %q", a.status, a.header.Get("Allow"))
	}
	if a := f.send(t, "POST", "/api/v1/silences/x", adminSecret, nil, false); a.status != 405 || a.header.Get("Allow") != "GET, DELETE" {
		t.Errorf("POST /silences/x: %d, Allow %q", a.status, a.header.Get("Allow"))
	}

	// Silences.
	const body = `{"matchers":["alertname=dlq","alertname=~dl.*"],"for":"2h","comment":"draining the dead letters"}`
	post(t, f, "/api/v1/silences", readSecret, body).want(t, "silence with a read token", 403)
	a := post(t, f, "/api/v1/silences", adminSecret, body)
	a.want(t, "create a silence", 201)
	var sil alert.SilenceView
	a.decode(t, &sil)
	if !strings.HasPrefix(sil.ID, "sil_") || sil.CreatedBy != "ops" || !sil.StartsAt.Equal(at) || !sil.EndsAt.Equal(at.Add(2*time.Hour)) ||
		sil.Status != alert.SilenceActive || len(sil.Matchers) != 2 || sil.Matchers[1].Type != alert.MatchRegexp || sil.Comment != "draining the dead letters" {
		t.Fatalf("silence %+v", sil)
	}
	if loc := a.header.Get("Location"); loc != "/api/v1/silences/"+sil.ID {
		t.Errorf("Location %q", loc)
	}
	jsonEq(t, "silence", f.get(t, "/api/v1/silences/"+sil.ID).ok(t).body, sil)
	jsonEq(t, "silences", f.get(t, "/api/v1/silences").ok(t).body, map[string]any{"silences": []any{sil}})
	var alerts struct {
		Alerts []alert.View `json:"alerts"`
	}
	f.get(t, "/api/v1/alerts").ok(t).decode(t, &alerts)
	if !slices.Equal(alerts.Alerts[0].SilencedBy, []string{sil.ID}) || len(alerts.Alerts[1].SilencedBy) != 0 {
		t.Errorf("silenced_by %v %v", alerts.Alerts[0].SilencedBy, alerts.Alerts[1].SilencedBy)
	}
	ends := at.Add(30 * time.Minute).Format(time.RFC3339)
	post(t, f, "/api/v1/silences", adminSecret, `{"matchers":["alertname=never"],"starts_at":"`+at.Add(10*time.Minute).Format(time.RFC3339)+
		`","ends_at":"`+ends+`","comment":"later"}`).want(t, "create a pending silence", 201)
	for _, c := range []struct{ body, param, detail string }{
		{`{"matchers":["alertname"],"for":"1h","comment":"x"}`, "matchers", "want name=value"},
		{`{"matchers":["topic=~("],"for":"1h","comment":"x"}`, "matchers", "not a regular expression"},
		{`{"matchers":[],"for":"1h","comment":"x"}`, "matchers", "no matchers"},
		{`{"matchers":["topic=~.*"],"for":"1h","comment":"x"}`, "body", "empty string"},
		{`{"matchers":["alertname=dlq"],"for":"1h"}`, "body", "comment"},
		{`{"matchers":["alertname=dlq"],"comment":"x"}`, "for", "ends_at"},
		{`{"matchers":["alertname=dlq"],"for":"1h","ends_at":"` + ends + `","comment":"x"}`, "for", "not both"},
		{`{"matchers":["alertname=dlq"],"for":"soon","comment":"x"}`, "for", "not a duration"},
		{`{"matchers":["alertname=dlq"],"starts_at":"2025-05-31T00:00:00Z","ends_at":"2025-06-01T00:00:00Z","comment":"x"}`, "ends_at", "passed"},
		{`{"matchers":["alertname=dlq"],"starts_at":"2025-06-03T00:00:00Z","ends_at":"2025-06-02T13:00:00Z","comment":"x"}`, "body", "not after it starts"},
		{`{"matchers":["alertname=dlq"],"ends_at":"tomorrow","comment":"x"}`, "ends_at", ""},
		{`{"matchers":["alertname=dlq"],"for":"1h","comment":"x","creator":"me"}`, "body", "creator"},
		{`{"matchers":"alertname=dlq","for":"1h","comment":"x"}`, "body", "matchers"},
		{``, "body", "no body"},
	} {
		p := post(t, f, "/api/v1/silences", adminSecret, c.body).want(t, "silence "+c.body, 400)
		if p.Param != c.param || !strings.Contains(p.Detail, c.detail) {
			t.Errorf("silence %s: problem %+v, want param %s and %q", c.body, p, c.param, c.detail)
		}
	}
	f.do(t, "DELETE", "/api/v1/silences/"+sil.ID, readSecret, nil).want(t, "expire with a read token", 403)
	var expired alert.SilenceView
	f.do(t, "DELETE", "/api/v1/silences/"+sil.ID, adminSecret, nil).ok(t).decode(t, &expired)
	if expired.Status != alert.SilenceExpired || !expired.EndsAt.Equal(at) || expired.ID != sil.ID {
		t.Errorf("expired %+v", expired)
	}
	jsonEq(t, "expire again", f.do(t, "DELETE", "/api/v1/silences/"+sil.ID, adminSecret, nil).ok(t).body, expired)
	var list struct {
		Silences []alert.SilenceView `json:"silences"`
	}
	f.get(t, "/api/v1/silences").ok(t).decode(t, &list)
	if len(list.Silences) != 1 || list.Silences[0].Status != alert.SilencePending || list.Silences[0].Comment != "later" {
		t.Errorf("silences after expiring one %+v", list.Silences)
	}
	f.get(t, "/api/v1/silences?all=true").ok(t).decode(t, &list)
	if len(list.Silences) != 2 || list.Silences[1].ID != sil.ID || list.Silences[1].Status != alert.SilenceExpired {
		t.Errorf("every silence %+v", list.Silences)
	}
	f.get(t, "/api/v1/silences?all=maybe").want(t, "all=maybe", 400)
	f.get(t, "/api/v1/silences/sil_nothing").want(t, "unknown silence", 404)
	f.do(t, "DELETE", "/api/v1/silences/sil_nothing", adminSecret, nil).want(t, "expire an unknown silence", 404)
	f.get(t, "/api/v1/alerts").ok(t).decode(t, &alerts)
	if len(alerts.Alerts[0].SilencedBy) != 0 {
		t.Errorf("silenced by an expired silence: %v", alerts.Alerts[0].SilencedBy)
	}
}

// Without alert rules the server has no targets to test, and says so; the
// rest reads PostgreSQL all the same. Without tokens (insecure), silences
// are made as insecure.
func TestAlertRoutesWithoutRulesOrTokens(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(c *Config) { c.Tokens, c.Insecure = nil, true })
	if p := post(t, f, "/api/v1/alerts/test?target=hook", adminSecret, "").want(t, "test without rules", 404); !strings.Contains(p.Detail, "no alert rules") {
		t.Errorf("test without rules: %+v", p)
	}
	f.get(t, "/api/v1/alerts").ok(t)
	f.get(t, "/api/v1/alerts/notifications").ok(t)
	f.get(t, "/api/v1/silences").ok(t)
	post(t, f, "/api/v1/silences", "", `{"matchers":["alertname=dlq"],"for":"1h","comment":"x"}`).want(t, "create a silence", 201)
	var list struct {
		Silences []alert.SilenceView `json:"silences"`
	}
	f.do(t, "GET", "/api/v1/silences", "", nil).ok(t).decode(t, &list)
	if len(list.Silences) != 1 || list.Silences[0].CreatedBy != "insecure" {
		t.Errorf("silences %+v", list.Silences)
	}
}
