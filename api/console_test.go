package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/hookstream/hookstream/alert"
	"github.com/hookstream/hookstream/internal/testenv"
	"github.com/hookstream/hookstream/sim"
	"github.com/hookstream/hookstream/windows"
)

// The console in a real headless Chromium, against a real hookstream: a
// processor role storing simulated Dwolla traffic into PostgreSQL, and the
// API over it. The page signs in, tails the live feed (through a dropped
// connection), searches, opens an event, draws a journey timeline, a funnel
// and a metric chart, shows API problems, and signs out. Its Alerts panel
// follows the evaluator's changes live, shows an alert's detail (opened by
// a notification's #alert= link too), and offers acknowledging, silencing
// and expiring to an admin token only.
func TestConsoleInABrowser(t *testing.T) {
	browser := chromiumPath(t)
	const secret = "console-test-secret-0123456789"
	const admin = "console-admin-secret-0123456789"
	tokens, err := ParseTokens("console:read:" + secret + ",console-ops:admin:" + admin)
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, func(c *Config) {
		c.Tokens, c.Version = tokens, "v9.9.9-test"
		c.Live.Heartbeat, c.Live.Block = time.Second, 100*time.Millisecond
	})
	p, s := f.Pipeline, f.s

	// Traffic of the last hours, so the console's default ranges (the
	// metric chart's last 6 hours, the funnel's 30 days) hold it. Only what
	// has already happened is sent; it is held back in two batches for the
	// live tail, which shows what is stored after the page has loaded.
	now := time.Now().UTC()
	sc := sim.Generate(sim.Config{Customers: 60, Seed: 8, Start: now.Add(-5 * time.Hour), Span: 4 * time.Hour, StepDelay: 5 * time.Minute})
	var past []sim.Event
	for _, e := range sc.Events {
		if e.Created.Before(now) {
			past = append(past, e)
		}
	}
	if len(past) < 150 {
		t.Fatalf("the scenario has %d past events; want at least 150", len(past))
	}
	initial, liveBatch, resumeBatch := past[:len(past)-24], past[len(past)-24:len(past)-12], past[len(past)-12:]

	f.process(t)

	// The Last-Event-ID of every live request, to see what a reconnect sends.
	var mu sync.Mutex
	var liveRequests []string
	h := s.Handler()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/v1/live" {
			mu.Lock()
			liveRequests = append(liveRequests, r.Header.Get("Last-Event-ID"))
			mu.Unlock()
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		// Runs before the fixture's cleanup (which stops the live feed):
		// closing the connections ends the page's live requests first.
		ts.CloseClientConnections()
		ts.Close()
	})

	p.Append(t, initial)
	testenv.WaitFor(t, 60*time.Second, "the initial events stored and folded", func() bool {
		return countRows(t, p, `SELECT count(*) FROM events`) == int64(len(initial)) && p.Drained(t)
	})

	// What the page is asked about, picked from the stored data: a customer
	// whose verification journey began with a stored customer_created.
	var createdID, customer string
	if err := p.DB.QueryRow(context.Background(), `SELECT e.id, e.customer_id FROM events e JOIN journey_instances j
		ON j.journey = 'customer_verification' AND j.subject = e.customer_id WHERE e.topic = 'customer_created' ORDER BY e.created LIMIT 1`).Scan(&createdID, &customer); err != nil {
		t.Fatalf("pick a customer_created event with a journey instance: %v", err)
	}

	ctx := newBrowser(t, browser)
	problems := watchPage(t, ctx)
	do := func(what string, timeout time.Duration, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		c, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		if err := chromedp.Do(c, actions...); err != nil {
			t.Fatalf("%s: %v\n%s", what, err, pageState(ctx))
		}
	}
	// waitJS polls a JavaScript predicate until it holds.
	waitJS := func(what string, timeout time.Duration, expr string) {
		t.Helper()
		do(what, timeout+5*time.Second, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(timeout)))
	}
	eval := func(expr string) string {
		t.Helper()
		c, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		v, err := chromedp.Run(c, chromedp.Evaluate[string](expr))
		if err != nil {
			t.Fatalf("evaluate %s: %v", expr, err)
		}
		return v
	}
	text := func(id string) string { return eval(fmt.Sprintf(`document.getElementById(%q).textContent`, id)) }
	// choose sets a select and tells the page, as a user's pick does.
	choose := func(id, value string) {
		t.Helper()
		got := eval(fmt.Sprintf(`(() => { const s = document.getElementById(%q); s.value = %q; s.dispatchEvent(new Event('change')); return s.value; })()`, id, value))
		if got != value {
			t.Fatalf("select #%s has no option %q", id, value)
		}
	}

	// A bad token: the problem's detail is shown, nothing is kept.
	do("load the page", 30*time.Second,
		chromedp.Navigate(ts.URL+"/"),
		chromedp.WaitVisible(chromedp.ID("signin")),
		chromedp.SendKeys(chromedp.ID("token"), "not-the-secret-at-all"),
		chromedp.Click(chromedp.ID("signin-submit")),
		chromedp.WaitVisible(chromedp.ID("signin-error")))
	if got := text("signin-error"); !strings.Contains(got, "401") || !strings.Contains(got, "the token is not valid") {
		t.Fatalf("sign-in error shows %q, want the 401 problem's detail", got)
	}
	if got := eval(`String(sessionStorage.getItem('hookstream.token'))`); got != "null" {
		t.Fatalf("a refused token is kept in sessionStorage: %q", got)
	}

	// The right token: who is signed in, and the live tail connects.
	do("sign in", 30*time.Second,
		setField("token", ""),
		chromedp.SendKeys(chromedp.ID("token"), secret),
		chromedp.Click(chromedp.ID("signin-submit")),
		chromedp.WaitVisible(chromedp.ID("app")),
		chromedp.WaitNotVisible(chromedp.ID("signin")))
	if name, scope, version := text("who-name"), text("who-scope"), text("who-version"); name != "console" || scope != "read" || !strings.Contains(version, "v9.9.9-test") {
		t.Fatalf("signed in as %q, scope %q, version %q; want console, read, v9.9.9-test", name, scope, version)
	}
	waitJS("the live tail to connect", 20*time.Second, `document.getElementById('live-status').dataset.state === 'live'`)
	// The feed joins a new client to the fan-out just after answering it;
	// events stored before that are not for it (it resumes nothing).
	testenv.WaitFor(t, 20*time.Second, "the page's live client to join the feed", func() bool { return joinedClients(s.hub) == 1 })

	// Events stored after the page loaded show up within seconds, newest first.
	p.Append(t, liveBatch)
	waitJS("the live tail to show the new events", 20*time.Second, hasRows("live-rows", ids(liveBatch)))
	if n := eval(`String(document.querySelectorAll('#live-rows tr[data-testid="live-row"]').length)`); n != fmt.Sprint(len(liveBatch)) {
		t.Fatalf("the live tail shows %s rows, want the %d events stored since it connected", n, len(liveBatch))
	}
	if got := eval(`document.querySelector('#live-rows tr').querySelector('.topic').textContent`); got == "" {
		t.Fatal("the newest live row has no topic")
	}

	// The connection drops: the page reconnects with the id of the last
	// message it got, and events stored meanwhile arrive once each.
	lastID := eval(`document.getElementById('live-panel').dataset.lastEventId`)
	if lastID == "" {
		t.Fatal("the live tail kept no Last-Event-ID")
	}
	ts.CloseClientConnections()
	p.Append(t, resumeBatch)
	waitJS("the live tail to reconnect and show the events stored meanwhile", 30*time.Second,
		`document.getElementById('live-panel').dataset.reconnects === '1' && `+hasRows("live-rows", ids(resumeBatch)))
	if dup := eval(`(() => { const ids = [...document.querySelectorAll('#live-rows tr[data-id]')].map(r => r.dataset.id); return ids.filter((id, i) => ids.indexOf(id) !== i).join(','); })()`); dup != "" {
		t.Fatalf("the live tail shows events twice after reconnecting: %s", dup)
	}
	mu.Lock()
	sent := slices.Clone(liveRequests)
	mu.Unlock()
	if len(sent) < 2 || sent[0] != "" || sent[len(sent)-1] != lastID {
		t.Fatalf("live requests sent Last-Event-ID %q; want none first, then %q after the drop", sent, lastID)
	}

	// Every event is stored now: pick a bank transfer instance, whose
	// status no later event changes.
	testenv.WaitFor(t, 60*time.Second, "every event stored and folded", func() bool {
		return countRows(t, p, `SELECT count(*) FROM events`) == int64(len(past)) && p.Drained(t)
	})
	var transfer, transferStatus string
	if err := p.DB.QueryRow(context.Background(), `SELECT subject, status FROM journey_instances WHERE journey = 'bank_transfer'
		ORDER BY status = 'in_progress', subject LIMIT 1`).Scan(&transfer, &transferStatus); err != nil {
		t.Fatalf("pick a bank transfer instance: %v", err)
	}

	// Search, with paging, and a bad parameter's problem.
	do("search all events", 20*time.Second,
		chromedp.Click(chromedp.ID("s-submit")),
		chromedp.WaitVisible(chromedp.CSS(`#search-rows tr[data-testid="search-row"]`)),
		chromedp.WaitVisible(chromedp.ID("search-next")))
	if got := text("search-page"); !strings.HasPrefix(got, "page 1 · events 1–25") {
		t.Fatalf("search page reads %q", got)
	}
	firstPage := eval(`document.querySelector('#search-rows tr').dataset.id`)
	do("the next page", 20*time.Second, chromedp.Click(chromedp.ID("search-next")))
	waitJS("the second page", 20*time.Second, `document.getElementById('search-page').textContent.startsWith('page 2 · events 26–50')`)
	if got := eval(`document.querySelector('#search-rows tr').dataset.id`); got == firstPage {
		t.Fatal("the next page shows the first page again")
	}
	do("a search with a bad time", 20*time.Second,
		chromedp.SendKeys(chromedp.ID("s-from"), "yesterday-ish"),
		chromedp.Click(chromedp.ID("s-submit")),
		chromedp.WaitVisible(chromedp.ID("search-error")))
	if got := text("search-error"); !strings.Contains(got, "400") || !strings.Contains(got, "is not a time") {
		t.Fatalf("search error shows %q, want the 400 problem's detail", got)
	}
	do("search a customer", 20*time.Second,
		setField("s-from", ""),
		chromedp.SendKeys(chromedp.ID("s-from"), "-24h"),
		chromedp.SendKeys(chromedp.ID("s-customer"), customer),
		chromedp.Click(chromedp.ID("s-submit")),
		chromedp.WaitNotVisible(chromedp.ID("search-error")))
	waitJS("the customer's events", 20*time.Second, hasRows("search-rows", []string{createdID}))
	if n := eval(`String(document.querySelectorAll('#search-rows tr').length)`); n != fmt.Sprint(min(25, countRows(t, p, `SELECT count(*) FROM events WHERE customer_id = '`+customer+`'`))) {
		t.Fatalf("the search for customer %s shows %s rows, want every stored event of it", customer, n)
	}

	// The event's detail: its body, and the journey instance it began.
	do("open the event", 20*time.Second,
		chromedp.Click(chromedp.CSS(fmt.Sprintf(`#search-rows tr[data-id=%q]`, createdID))),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="detail-body"]`)))
	if got := text("detail"); !strings.Contains(got, createdID) || !strings.Contains(got, "customer_created") {
		t.Fatalf("the detail does not show event %s", createdID)
	}
	var body map[string]any
	if err := json.Unmarshal([]byte(eval(`document.querySelector('[data-testid="detail-body"]').textContent`)), &body); err != nil || body["id"] == nil {
		t.Fatalf("the detail's body is not the event's JSON body (%v): %v", err, body)
	}
	waitJS("the journey instance the event began", 10*time.Second,
		`[...document.querySelectorAll('[data-testid="detail-journey"]')].some(li => li.textContent.includes('customer_verification') && li.textContent.includes('this event reached created'))`)

	// Its instance's timeline, opened from the detail.
	do("open the instance from the event", 20*time.Second,
		chromedp.Click(chromedp.CSS(`[data-testid="detail-journey"] a[data-testid="open-instance"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="timeline"]`)))
	waitJS("the customer's timeline", 10*time.Second, fmt.Sprintf(
		`document.querySelector('[data-testid="instance-subject"]').textContent === %q && document.querySelector('[data-testid="timeline-step"][data-step="created"]').dataset.reached === 'true'`, customer))

	// A bank transfer's timeline, picked by hand.
	choose("journey", "bank_transfer")
	do("show a bank transfer's timeline", 20*time.Second,
		setField("subject", ""),
		chromedp.SendKeys(chromedp.ID("subject"), transfer),
		chromedp.Click(chromedp.ID("instance-submit")))
	waitJS("the transfer's timeline", 20*time.Second, fmt.Sprintf(
		`document.querySelector('[data-testid="instance-subject"]').textContent === %q && document.querySelector('[data-testid="instance-status"]').textContent === %q && document.querySelectorAll('[data-testid="timeline-step"][data-reached="true"]').length > 0 && document.querySelector('[data-testid="instance-events"] tr') !== null && document.querySelector('[data-testid="instance-records"]') !== null`,
		transfer, strings.ReplaceAll(transferStatus, "_", " ")))
	if got := eval(`String(document.querySelectorAll('[data-testid="recent-instance"]').length)`); got == "0" {
		t.Fatal("no recent bank transfer instances are listed")
	}

	// The funnel of the customer verification journey.
	choose("journey", "customer_verification")
	entered := countRows(t, p, `SELECT count(*) FROM journey_instances WHERE journey = 'customer_verification'`)
	waitJS("the verification funnel", 20*time.Second, fmt.Sprintf(
		`(() => { const s = document.querySelector('[data-testid="funnel-step"][data-step="created"]'); return s && s.dataset.reached === '%d' && Number(s.querySelector('[data-testid="funnel-bar"]').getAttribute('width')) > 0; })()`, entered))
	if got := text("funnel"); !strings.Contains(got, "entered") || !strings.Contains(got, "verified") {
		t.Fatalf("the funnel reads %q", got)
	}

	// The metric chart: one line, then one per family.
	waitJS("the metric chart", 20*time.Second, seriesDrawn(1))
	choose("group-by", "family")
	waitJS("the chart by family", 20*time.Second, `document.querySelector('#chart svg[data-group-by="family"]') !== null && `+seriesDrawn(2))
	choose("window", "15m")
	waitJS("the chart of 15 minute windows", 20*time.Second, `document.querySelector('#chart svg[data-window="15m"][data-group-by="family"]') !== null && `+seriesDrawn(2))
	if got := text("chart-legend"); !strings.Contains(got, "bank transfer") || !strings.Contains(got, "events") {
		t.Fatalf("the chart's legend reads %q", got)
	}

	// Alerts: an evaluation makes two alerts fire and one pend; the panel,
	// on the live feed, lists them without being asked.
	waitJS("the alerts panel to follow the live feed", 10*time.Second,
		`document.getElementById('alerts-panel').dataset.live === 'true' && document.getElementById('alerts-empty').hidden === false`)
	rules, oncall := consoleAlertRules(t)
	preset := adminCall(t, ts.URL, admin, "POST", "/api/v1/silences", `{"matchers":["team=nobody"],"for":"3h","comment":"nothing pages the nobody team"}`)
	ev := alert.NewEvaluator(f.DB, f.Redis, f.Keys, rules, f.s.cfg.Windows, alert.EvaluatorOptions{ConsoleURL: ts.URL, Logger: quiet})
	if did, err := ev.Tick(context.Background()); err != nil || !did {
		t.Fatalf("evaluate the alert rules: %v %v", did, err)
	}
	n := alert.NewNotifier(f.DB, rules.Targets, alert.NotifierOptions{Logger: quiet})
	for _, tg := range rules.Targets {
		if _, err := n.Drain(context.Background(), tg); err != nil {
			t.Fatalf("send the notifications to %s: %v", tg.Name, err)
		}
	}
	if got := oncall.received(); len(got) != 2 {
		t.Fatalf("the oncall target received %d notifications, want one per firing rule", len(got))
	}
	firing, err := alert.List(context.Background(), f.DB, alert.ListFiring, 100, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	fps := map[string]string{}
	for _, a := range firing {
		fps[a.Rule] = a.Fingerprint
	}
	if len(fps) != 3 || fps["dlq"] == "" || fps["dlq-page"] == "" || fps["dlq-slow"] == "" {
		t.Fatalf("alerts after an evaluation: %+v", firing)
	}
	fp := fps["dlq"]
	waitJS("the alerts panel to list the new alerts", 20*time.Second, alertRows(map[string]string{"dlq": "firing", "dlq-page": "firing", "dlq-slow": "pending"}))
	if got := text("alerts-count"); got != "2" {
		t.Fatalf("the alerts panel counts %q firing, want 2", got)
	}
	if got := eval(alertRow(fp) + `.textContent`); !strings.Contains(got, "warning") || !strings.Contains(got, "team=payments") || !strings.Contains(got, "≥ 0") {
		t.Fatalf("the dlq row reads %q; want its severity, labels and condition", got)
	}
	waitJS("the preset silence listed", 10*time.Second, fmt.Sprintf(`document.querySelector('#silences-rows tr[data-id=%q]') !== null`, preset["id"]))

	// A read token sees an alert's detail, but no actions.
	do("open an alert with a read token", 20*time.Second,
		chromedp.Click(chromedp.CSS(alertRowSel(fp))),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="alert-history"]`)))
	if got := eval(`location.hash`); got != "#alert="+fp {
		t.Fatalf("opening an alert sets the hash to %q, want #alert=%s", got, fp)
	}
	if got := text("alert-detail"); !strings.Contains(got, "0 open dead letters") || !strings.Contains(got, "value 0 ≥ 0") || !strings.Contains(got, "oncall") || !strings.Contains(got, "pager") {
		t.Fatalf("the alert's detail reads %q; want its summary, condition and notifications", got)
	}
	if got := eval(`String(document.getElementById('alerts-readonly').hidden) + ' ' + String(document.querySelector('[data-testid="alert-actions-readonly"]') !== null) + ' ' +
		String(document.querySelectorAll('[data-testid="alert-ack"], [data-testid="silence-form"], [data-testid="silence-expire"]').length)`); got != "false true 0" {
		t.Fatalf("with a read token: read-only note hidden, detail's note shown, admin controls = %q; want \"false true 0\"", got)
	}

	do("scroll to the top", 10*time.Second, chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, 0)`))
	shot := screenshot(t, ctx)

	// Signing out forgets the token.
	do("sign out", 20*time.Second,
		chromedp.Click(chromedp.ID("signout")),
		chromedp.WaitVisible(chromedp.ID("signin")),
		chromedp.WaitNotVisible(chromedp.ID("app")))
	if got := eval(`String(sessionStorage.getItem('hookstream.token'))`); got != "null" {
		t.Fatalf("the token is still kept after signing out: %q", got)
	}
	if got := eval(`String(document.querySelectorAll('#alerts-rows tr').length) + ' ' + String(document.querySelector('[data-testid="alert-history"]') !== null)`); got != "0 false" {
		t.Fatalf("signing out leaves alerts shown: %q", got)
	}

	// A notification's link, #alert=<fingerprint>: after signing in (here
	// with an admin token) the page opens that alert and scrolls to it.
	do("follow a notification's link to the firing dlq-page alert", 30*time.Second,
		chromedp.Navigate("about:blank"),
		chromedp.Navigate(ts.URL+"/#alert="+fps["dlq-page"]),
		chromedp.WaitVisible(chromedp.ID("signin")),
		setField("token", ""),
		chromedp.SendKeys(chromedp.ID("token"), admin),
		chromedp.Click(chromedp.ID("signin-submit")),
		chromedp.WaitVisible(chromedp.ID("app")))
	if scope := text("who-scope"); scope != "admin" {
		t.Fatalf("signed in with scope %q, want admin", scope)
	}
	waitJS("the linked alert's detail, in view", 20*time.Second, fmt.Sprintf(
		`(() => { const f = document.querySelector('[data-testid="alert-fingerprint"]'); const r = document.getElementById('alert-detail-box').getBoundingClientRect();
			return f !== null && f.textContent === %q && document.querySelector('[data-testid="alert-notification"]') !== null && r.top >= 0 && r.top < innerHeight; })()`, fps["dlq-page"]))
	if got := text("alert-detail"); !strings.Contains(got, "dlq-page") || !strings.Contains(got, "Pages whoever is on call") {
		t.Fatalf("the linked alert's detail reads %q", got)
	}
	// Its notifications, with each attempt's status and error.
	waitJS("the notifications' attempts", 10*time.Second,
		`[...document.querySelectorAll('[data-testid="alert-notification"]')].map(n => n.dataset.target + ':' + [...n.querySelectorAll('[data-testid="notification-attempt"]')].map(a => a.dataset.status).join(',')).sort().join(' ') === 'oncall:204 pager:503'`)
	if got := eval(`document.querySelector('[data-testid="alert-notification"][data-target="pager"]').textContent`); !strings.Contains(got, "503") || !strings.Contains(got, "retrying") {
		t.Fatalf("the failed notification reads %q; want its 503 and that it is retried", got)
	}
	if got := eval(`String(document.getElementById('alerts-readonly').hidden) + ' ' + String(document.querySelector('[data-testid="alert-ack"]') !== null)`); got != "true true" {
		t.Fatalf("with an admin token: read-only note hidden, acknowledge offered = %q", got)
	}

	// Acknowledge the dlq alert: its row then shows who did.
	do("open the dlq alert", 20*time.Second,
		chromedp.Click(chromedp.CSS(alertRowSel(fp))),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="alert-ack"]`)))
	waitJS("the dlq alert's detail", 10*time.Second, fmt.Sprintf(`document.querySelector('[data-testid="alert-fingerprint"]').textContent === %q`, fp))
	do("acknowledge it", 20*time.Second, chromedp.Click(chromedp.CSS(`[data-testid="alert-ack"]`)))
	waitJS("the row to show the acknowledgement", 20*time.Second, fmt.Sprintf(
		`%s.dataset.acked === 'true' && %s.textContent.includes('acked · console-ops') && document.querySelector('[data-testid="alert-detail-acked"]') !== null && document.querySelector('[data-testid="alert-ack"]').disabled`, alertRow(fp), alertRow(fp)))
	if got := eval(`document.querySelector('[data-testid="alert-history"]').textContent`); !strings.Contains(got, "acknowledged by console-ops") {
		t.Fatalf("the history after acknowledging reads %q", got)
	}

	// Silence it: the form is filled from its labels; the silence is
	// listed and the row says silenced.
	if got := eval(`document.querySelector('[data-testid="silence-matchers"]').value`); got != "alertname=dlq\nteam=payments" {
		t.Fatalf("the silence form's matchers read %q; want the alert's name and labels", got)
	}
	do("silence it", 20*time.Second,
		chromedp.SendKeys(chromedp.CSS(`[data-testid="silence-comment"]`), "replaying the dead letters"),
		chromedp.Click(chromedp.CSS(`[data-testid="silence-submit"]`)))
	silenceRow := `[...document.querySelectorAll('#silences-rows tr[data-testid="silence-row"]')].find(r => r.textContent.includes('alertname=dlq') && r.textContent.includes('replaying the dead letters'))`
	waitJS("the silence listed and the alert silenced", 20*time.Second, fmt.Sprintf(`%s !== undefined && %s.dataset.silenced === 'true'`, silenceRow, alertRow(fp)))
	if got := eval(alertRow(fps["dlq-page"]) + `.dataset.silenced`); got != "false" {
		t.Fatalf("the dlq-page alert reads silenced %s; the silence matches dlq only", got)
	}

	do("scroll to the alerts", 10*time.Second, chromedp.Evaluate[chromedp.Void](`document.getElementById('alerts-panel').scrollIntoView()`))
	alertsShot := elementScreenshot(t, ctx, "#alerts-panel", "console-alerts.png")

	// Expire it: gone from the list, and the alert is no longer silenced.
	do("expire the silence", 20*time.Second, chromedp.Evaluate[chromedp.Void](silenceRow+`.querySelector('[data-testid="silence-expire"]').click()`))
	waitJS("the silence gone and the alert no longer silenced", 20*time.Second, fmt.Sprintf(`%s === undefined && %s.dataset.silenced === 'false'`, silenceRow, alertRow(fp)))
	if got := eval(fmt.Sprintf(`String(document.querySelector('#silences-rows tr[data-id=%q]') !== null)`, preset["id"])); got != "true" {
		t.Fatal("expiring one silence removed the other from the list")
	}
	var sil struct {
		Silences []alert.SilenceView `json:"silences"`
	}
	b, _ := json.Marshal(adminCall(t, ts.URL, admin, "GET", "/api/v1/silences?all=true", ""))
	if err := json.Unmarshal(b, &sil); err != nil || len(sil.Silences) != 2 {
		t.Fatalf("silences after expiring one: %v %s", err, b)
	}
	for _, v := range sil.Silences {
		if v.ID != preset["id"] && (v.Status != alert.SilenceExpired || v.CreatedBy != "console-ops") {
			t.Fatalf("the console's silence after expiring it: %+v", v)
		}
	}
	t.Logf("alerts panel screenshot: %s", alertsShot)

	if ps := problems(); len(ps) > 0 {
		t.Fatalf("the page reported errors (screenshot %s):\n%s", shot, strings.Join(ps, "\n"))
	}
}

// chromiumPath is the browser to drive: HOOKSTREAM_CHROMIUM, else chromium
// on PATH.
func chromiumPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("HOOKSTREAM_CHROMIUM"); p != "" {
		return p
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	t.Fatal("no Chromium to run the console's test in: set HOOKSTREAM_CHROMIUM to a Chromium or Chrome, or run `make test`, which installs it (scripts/chromium.sh)")
	return ""
}

// newBrowser starts a headless Chromium with a fresh profile, stopped when
// the test ends.
func newBrowser(t *testing.T, path string) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox, // the tests run as root in CI
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1440, 1000),
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx, chromedp.WithErrorf(t.Logf))
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	// The first action starts the browser, bound to the context it runs
	// in: that is ctx itself, not a child with a timeout.
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start %s: %v", path, err)
	}
	return ctx
}

// watchPage collects what the page reports as errors: uncaught exceptions,
// and console and browser errors (a Content-Security-Policy violation is
// one) other than failed requests, which the test causes on purpose.
func watchPage(t *testing.T, ctx context.Context) func() []string {
	t.Helper()
	var mu sync.Mutex
	var problems []string
	err := chromedp.Listen(ctx, func(ev any) {
		var p string
		switch ev := ev.(type) {
		case *runtime.EventExceptionThrown:
			p = "exception: " + ev.ExceptionDetails.Text
			if ev.ExceptionDetails.Exception != nil {
				p += " " + ev.ExceptionDetails.Exception.Description
			}
		case *cdplog.EventEntryAdded:
			if ev.Entry.Level == cdplog.EntryLevelError && ev.Entry.Source != cdplog.EntrySourceNetwork {
				p = fmt.Sprintf("%s: %s", ev.Entry.Source, ev.Entry.Text)
			}
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.ConsoleAPICalledTypeError {
				p = "console.error"
			}
		}
		if p != "" {
			mu.Lock()
			problems = append(problems, p)
			mu.Unlock()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(ctx, cdplog.Enable, cdp.Empty{}); err != nil {
		t.Fatal(err)
	}
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(problems)
	}
}

// pageState is what the page shows, for a failure's message.
func pageState(ctx context.Context) string {
	c, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	s, err := chromedp.Run(c, chromedp.Evaluate[string](`[...document.querySelectorAll('.problem:not([hidden]), #live-status, #live-note')].map(e => e.id + ': ' + e.textContent).join('\n')`))
	if err != nil {
		return "(page state unreadable: " + err.Error() + ")"
	}
	return s
}

// screenshot writes a full-page PNG to HOOKSTREAM_SCREENSHOTS (else the
// test's temporary directory) and returns its path.
func screenshot(t *testing.T, ctx context.Context) string {
	t.Helper()
	dir := os.Getenv("HOOKSTREAM_SCREENSHOTS")
	if dir == "" {
		dir = t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	c, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(c, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	path := filepath.Join(dir, "console.png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("console screenshot: %s", path)
	return path
}

// setField sets an input's value, as typing over it would.
func setField(id, value string) chromedp.Action[chromedp.Void] {
	v, _ := json.Marshal(value)
	return chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`(() => { const e = document.getElementById(%q); e.value = %s; e.dispatchEvent(new Event('input')); })()`, id, v))
}

// joinedClients is how many live clients the hub fans out to.
func joinedClients(h *hub) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.clients)
}

func ids(evs []sim.Event) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.ID
	}
	return out
}

// hasRows is a predicate: the tbody holds a row for every id.
func hasRows(tbody string, ids []string) string {
	b, _ := json.Marshal(ids)
	return fmt.Sprintf(`%s.every(id => document.querySelector('#%s tr[data-id="' + id + '"]') !== null)`, b, tbody)
}

// seriesDrawn is a predicate: the chart has at least n lines, each through
// more than one point.
func seriesDrawn(n int) string {
	return fmt.Sprintf(`(() => { const ps = [...document.querySelectorAll('#chart svg path[data-testid="chart-series"]')]; return ps.length >= %d && ps.every(p => (p.getAttribute('d').match(/[ML][\d.]+,[\d.]+/g) || []).length > 1); })()`, n)
}

func countRows(t *testing.T, p *testenv.Pipeline, query string) int64 {
	t.Helper()
	var n int64
	if err := p.DB.QueryRow(context.Background(), query).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// consoleAlertRules: dlq and dlq-page always hold (open dead letters >= 0)
// and fire at once, dlq-slow holds but waits an hour, so it pends. Each
// notification goes to oncall, which takes it, and pager, which answers
// 503.
func consoleAlertRules(t *testing.T) (*alert.Rules, *webhookSink) {
	t.Helper()
	oncall := newWebhookSink(t)
	pager := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "pager is down for maintenance", http.StatusServiceUnavailable)
	}))
	t.Cleanup(pager.Close)
	yaml := `group_wait: 0s
targets:
  - {name: oncall, kind: webhook, url: "` + oncall.srv.URL + `", secret: "` + oncall.secret.String() + `"}
  - {name: pager, kind: webhook, url: "` + pager.URL + `", secret: "` + oncall.secret.String() + `"}
rules:
  - {name: dlq, kind: operational, severity: warning, signal: dead_letters_open, op: ">=", value: 0, labels: {team: payments},
     summary: "{{.Value}} open dead letters", description: "Dead letters wait for a replay or a discard."}
  - {name: dlq-page, kind: operational, severity: critical, signal: dead_letters_open, op: ">=", value: 0, labels: {team: payments, route: pager},
     summary: "{{.Value}} open dead letters (paging)", description: "Pages whoever is on call."}
  - {name: dlq-slow, kind: operational, severity: info, signal: dead_letters_open, op: ">=", value: 0, for: 1h}
`
	rules, err := alert.ParseRules([]byte(yaml), windows.Config{}.WithDefaults())
	if err != nil {
		t.Fatal(err)
	}
	return rules, oncall
}

// adminCall sends a request to the API with secret and decodes its JSON
// answer; anything but a 2xx fails the test.
func adminCall(t *testing.T, base, secret, method, path, body string) map[string]any {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, base+path, r)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+secret)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode/100 != 2 {
		t.Fatalf("%s %s: %d %s", method, path, res.StatusCode, b)
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("%s %s: %v: %s", method, path, err, b)
	}
	return out
}

func alertRowSel(fp string) string {
	return fmt.Sprintf(`#alerts-rows tr[data-fingerprint=%q]`, fp)
}

// alertRow is the expression of the alerts table's row of fp.
func alertRow(fp string) string {
	return fmt.Sprintf(`document.querySelector(%q)`, alertRowSel(fp))
}

// alertRows is a predicate: the alerts table lists exactly these rules, in
// these states.
func alertRows(want map[string]string) string {
	b, _ := json.Marshal(want)
	return fmt.Sprintf(`(() => { const want = %s; const rows = [...document.querySelectorAll('#alerts-rows tr[data-testid="alert-row"]')];
		return rows.length === Object.keys(want).length && rows.every(r => want[r.dataset.rule] === r.dataset.state); })()`, b)
}

// elementScreenshot writes a PNG of the element sel to
// HOOKSTREAM_SCREENSHOTS (else the test's temporary directory).
func elementScreenshot(t *testing.T, ctx context.Context, sel, name string) string {
	t.Helper()
	dir := os.Getenv("HOOKSTREAM_SCREENSHOTS")
	if dir == "" {
		dir = t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	c, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(c, chromedp.Screenshot(chromedp.CSS(sel)))
	if err != nil {
		t.Fatalf("screenshot %s: %v", sel, err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}
