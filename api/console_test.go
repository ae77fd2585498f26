package api

import (
	"context"
	"encoding/json"
	"fmt"
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
	"github.com/hookstream/hookstream/internal/testenv"
	"github.com/hookstream/hookstream/sim"
)

// The console in a real headless Chromium, against a real hookstream: a
// processor role storing simulated Dwolla traffic into PostgreSQL, and the
// API over it. The page signs in, tails the live feed (through a dropped
// connection), searches, opens an event, draws a journey timeline, a funnel
// and a metric chart, shows API problems, and signs out.
func TestConsoleInABrowser(t *testing.T) {
	browser := chromiumPath(t)
	const secret = "console-test-secret-0123456789"
	tokens, err := ParseTokens("console:read:" + secret)
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
