package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hookstream/hookstream/journeys"
	"github.com/hookstream/hookstream/sim"
	"github.com/hookstream/hookstream/store"
	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	"github.com/pb33f/libopenapi-validator/config"
	oaerrors "github.com/pb33f/libopenapi-validator/errors"
	"github.com/pb33f/libopenapi-validator/helpers"
	v3 "github.com/pb33f/libopenapi/datamodel/high/v3"
)

// openAPISpec is openapi.yaml parsed once: the model (for the route test)
// and the validators every test's answers are checked with.
type openAPISpec struct {
	model *v3.Document
	base  string // the servers' base path, "/api/v1"
	// answers checks responses, strictly: a property or header the
	// document does not declare is an error, so it must describe every
	// field the handlers write.
	answers validator.Validator
	// loose checks the parameters of requests that were answered 2xx (the
	// document must accept what the server accepts), not their tokens,
	// which tests may leave out with Insecure; and the answers of
	// /openapi.json, the document itself, free-form.
	loose validator.Validator
}

// strictExceptions are where answers hold free-form values or maps (a
// schema's additionalProperties), whose keys strict mode would report as
// undeclared: their values are still checked against the schema.
var strictExceptions = []string{
	"$.body.body", "$.body.body.**", // an event's body, as Dwolla sent it
	"$.body.fields.*", "$.body.dead_letters[*].fields.*", // a dead letter's entry fields
	"$.body.windows_closed_until.*", "$.body.journey_instances_by_status.*", "$.body.errors.*", // status
	"$.body.metrics.*", // a closed window's metrics (live feed)
	"$.body.filter.*",  // a metric comparison's series
}

var loadOpenAPISpec = sync.OnceValues(func() (*openAPISpec, error) {
	doc, err := libopenapi.NewDocument(openAPIYAML)
	if err != nil {
		return nil, fmt.Errorf("parse api/openapi.yaml: %w", err)
	}
	m, err := doc.BuildV3Model()
	if err != nil {
		return nil, fmt.Errorf("build the OpenAPI model of api/openapi.yaml: %w", err)
	}
	spec := &openAPISpec{model: &m.Model}
	if len(m.Model.Servers) > 0 {
		spec.base = strings.TrimSuffix(m.Model.Servers[0].URL, "/")
	}
	// X-Content-Type-Options is on every answer, as Cache-Control (which
	// strict mode ignores by default): not declared per response.
	answers, errs := validator.NewValidator(doc, config.WithStrictMode(), config.WithStrictIgnorePaths(strictExceptions...),
		config.WithStrictIgnoredHeadersExtra("x-content-type-options"), config.WithFormatAssertions())
	if len(errs) > 0 {
		return nil, fmt.Errorf("build the response validator: %v", errs)
	}
	loose, errs := validator.NewValidator(doc, config.WithFormatAssertions(), config.WithoutSecurityValidation(),
		config.WithoutRequestBodyValidation())
	if len(errs) > 0 {
		return nil, fmt.Errorf("build the request validator: %v", errs)
	}
	spec.answers, spec.loose = answers, loose
	return spec, nil
})

// The validators keep caches; they are not documented as safe for
// concurrent use, and parallel tests call them.
var openAPIValidatorMu sync.Mutex

// checkAgainstOpenAPI fails t unless resp (whose body, already read, is
// body) is an answer openapi.yaml documents for req: its status, content
// type and body (against the schema of that operation and status, strictly:
// no undeclared property) and its declared headers. A problem+json body
// must also carry the answer's status and a documented problem type. The
// body of a text/event-stream is not checked (it is a stream). For a 2xx
// answer the request's parameters are checked too: the document must
// accept what the server answered. req may be absolute, against any host.
func checkAgainstOpenAPI(t testing.TB, req *http.Request, resp *http.Response, body []byte) {
	t.Helper()
	problems, err := openAPIProblems(req, resp, body)
	if err != nil {
		t.Fatalf("openapi.yaml: %v", err)
	}
	if len(problems) > 0 {
		t.Errorf("%s %s answered %d (%s) not as openapi.yaml documents:\n  %s\nbody: %s", req.Method, req.URL.RequestURI(),
			resp.StatusCode, resp.Header.Get("Content-Type"), strings.Join(problems, "\n  "), clip(body))
	}
}

// openAPIProblems is what checkAgainstOpenAPI finds wrong, one message
// each; err is a document that cannot be used.
func openAPIProblems(req *http.Request, resp *http.Response, body []byte) ([]string, error) {
	spec, err := loadOpenAPISpec()
	if err != nil {
		return nil, err
	}
	// The document's paths are relative to its server, /api/v1, and the
	// request may name any host (an httptest server's): match the path
	// alone.
	vreq := req.Clone(context.Background())
	vreq.URL = &url.URL{Path: req.URL.Path, RawPath: req.URL.RawPath, RawQuery: req.URL.RawQuery}
	vreq.Host = ""
	vreq.RequestURI = ""
	vreq.Body = http.NoBody
	vresp := *resp
	vresp.Header = resp.Header.Clone()
	vresp.Body = io.NopCloser(bytes.NewReader(body))
	vresp.Request = vreq

	var problems []string
	mediaType, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if mediaType == "text/event-stream" {
		vresp.Body = http.NoBody // a stream: only its status and type are checked
	}
	answers := spec.answers
	if req.URL.Path == spec.base+"/openapi.json" {
		answers = spec.loose // the document itself, free-form
	}
	openAPIValidatorMu.Lock()
	_, errs := answers.ValidateHttpResponse(vreq, &vresp)
	if resp.StatusCode/100 == 2 && !slices.ContainsFunc(errs, func(e *oaerrors.ValidationError) bool {
		return e.ValidationType == helpers.PathValidation // said once is enough
	}) {
		_, reqErrs := spec.loose.ValidateHttpRequest(vreq)
		for _, e := range reqErrs {
			e.Message = "request accepted by the server but not by the document: " + e.Message
		}
		errs = append(errs, reqErrs...)
	}
	openAPIValidatorMu.Unlock()
	for _, e := range errs {
		problems = append(problems, validationMessage(e))
	}
	if mediaType == "application/problem+json" {
		var p Problem
		if err := json.Unmarshal(body, &p); err != nil {
			problems = append(problems, "problem body: "+err.Error())
		} else {
			if p.Status != resp.StatusCode {
				problems = append(problems, fmt.Sprintf("problem status %d, but the answer's is %d", p.Status, resp.StatusCode))
			}
			kinds := []string{ProblemBadParameter, ProblemUnauthorized, ProblemForbidden, ProblemNotFound, ProblemConflict,
				ProblemUnavailable, ProblemInternal, ProblemTooMany}
			if kind, ok := strings.CutPrefix(p.Type, problemBase); !ok || !slices.Contains(kinds, kind) {
				problems = append(problems, fmt.Sprintf("problem type %q is not %s<one of %s>", p.Type, problemBase, strings.Join(kinds, ", ")))
			}
		}
	}
	return problems, nil
}

func validationMessage(e *oaerrors.ValidationError) string {
	var b strings.Builder
	b.WriteString(e.Message)
	if e.Reason != "" && e.Reason != e.Message {
		b.WriteString(": " + e.Reason)
	}
	for _, f := range e.SchemaValidationErrors {
		b.WriteString("\n    ")
		if f.FieldPath != "" {
			b.WriteString(f.FieldPath + ": ")
		} else if len(f.InstancePath) > 0 {
			b.WriteString("/" + strings.Join(f.InstancePath, "/") + ": ")
		}
		b.WriteString(f.Reason)
		if f.KeywordLocation != "" {
			b.WriteString(" (" + f.KeywordLocation + ")")
		}
	}
	return b.String()
}

func clip(b []byte) string {
	if len(b) > 1500 {
		return string(b[:1500]) + "…"
	}
	return strings.TrimSpace(string(b))
}

// The document describes exactly the routes the server registers: each
// method and path, and the scope each needs (x-hookstream-scope); and it
// is a valid OpenAPI 3.1 document.
func TestOpenAPIDocumentsEveryRoute(t *testing.T) {
	s, err := New(nil, nil, Config{Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	spec, err := loadOpenAPISpec()
	if err != nil {
		t.Fatal(err)
	}
	if v := spec.model.Version; v != "3.1.0" {
		t.Errorf("openapi %q, want 3.1.0", v)
	}
	if v := spec.model.Info.Version; v != "1" {
		t.Errorf("info.version %q, want 1", v)
	}
	if spec.base != "/api/v1" {
		t.Errorf("servers[0].url %q, want /api/v1 (the paths are relative to it)", spec.base)
	}
	openAPIValidatorMu.Lock()
	ok, errs := spec.answers.ValidateDocument()
	openAPIValidatorMu.Unlock()
	if !ok {
		for _, e := range errs {
			t.Errorf("openapi.yaml is not a valid OpenAPI 3.1 document: %s", validationMessage(e))
		}
	}

	registered := map[string]string{} // "GET /api/v1/info" -> scope
	for _, r := range s.routes {
		scope := "none"
		if r.scope != 0 {
			scope = r.scope.String()
		}
		registered[r.method+" "+r.pattern] = scope
	}
	documented := map[string]string{}
	operationIDs := map[string]string{}
	for path, item := range spec.model.Paths.PathItems.FromOldest() {
		for method, op := range item.GetOperations().FromOldest() {
			key := strings.ToUpper(method) + " " + spec.base + path
			scope := ""
			if op.Extensions != nil {
				if n := op.Extensions.GetOrZero("x-hookstream-scope"); n != nil {
					scope = n.Value
				}
			}
			documented[key] = scope
			switch {
			case op.OperationId == "":
				t.Errorf("%s: no operationId", key)
			case operationIDs[op.OperationId] != "":
				t.Errorf("%s: operationId %s is also %s's", key, op.OperationId, operationIDs[op.OperationId])
			default:
				operationIDs[op.OperationId] = key
			}
			if strings.TrimSpace(op.Description) == "" {
				t.Errorf("%s: no description", key)
			}
			// A route that needs no token says so with security: [].
			public := op.Security != nil && len(op.Security) == 0
			if public != (registered[key] == "none") && registered[key] != "" {
				t.Errorf("%s: the document says a token is needed: %v, but the route's scope is %s", key, !public, registered[key])
			}
		}
	}
	var missing, extra []string
	for key, scope := range registered {
		docScope, ok := documented[key]
		switch {
		case !ok:
			missing = append(missing, key)
		case docScope != scope:
			t.Errorf("%s needs scope %s, but openapi.yaml says x-hookstream-scope: %q", key, scope, docScope)
		}
	}
	for key := range documented {
		if _, ok := registered[key]; !ok {
			extra = append(extra, key)
		}
	}
	slices.Sort(missing)
	slices.Sort(extra)
	for _, key := range missing {
		t.Errorf("route %s is registered (api/server.go) but not in openapi.yaml", key)
	}
	for _, key := range extra {
		t.Errorf("openapi.yaml documents %s, which no route registers", key)
	}
	if len(registered) < 18 {
		t.Errorf("only %d routes registered; the route list is broken", len(registered))
	}

	// The served document is the same one, as JSON.
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/api/v1/openapi.json", nil)
	s.Handler().ServeHTTP(rec, req)
	if rec.Code != 200 {
		t.Fatalf("GET /api/v1/openapi.json: %d %s", rec.Code, rec.Body)
	}
	var served map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &served); err != nil || served["openapi"] != "3.1.0" {
		t.Errorf("GET /api/v1/openapi.json is not the document: %v %.200s", err, rec.Body)
	}
	checkAgainstOpenAPI(t, req, rec.Result(), rec.Body.Bytes())
}

// oaRecorder is a testing.TB that records failures instead of failing.
type oaRecorder struct {
	testing.TB
	failures []string
}

func (r *oaRecorder) Helper() {}
func (r *oaRecorder) Errorf(format string, args ...any) {
	r.failures = append(r.failures, fmt.Sprintf(format, args...))
}
func (r *oaRecorder) Fatalf(format string, args ...any) {
	r.failures = append(r.failures, fmt.Sprintf(format, args...))
}

// The checker rejects answers that do not match the document: it cannot
// pass everything.
func TestCheckAgainstOpenAPIRejectsWhatIsNotDocumented(t *testing.T) {
	answer := func(status int, contentType, body string) *http.Response {
		h := http.Header{}
		if contentType != "" {
			h.Set("Content-Type", contentType)
		}
		return &http.Response{StatusCode: status, Header: h, Body: http.NoBody}
	}
	get := func(target string) *http.Request {
		req := httptest.NewRequest("GET", "http://127.0.0.1:34567"+target, nil)
		return req
	}
	const info = `{"version":"dev","namespace":"hs","token":"t","scope":"read","time":"2026-01-01T00:00:00Z"}`
	const problem = `{"type":"https://github.com/hookstream/hookstream/blob/main/docs/api.md#not-found","title":"Not Found","status":404,"detail":"no","instance":"/api/v1/events/x"}`
	unauthorized := answer(401, "application/problem+json", "")
	unauthorized.Header.Set("WWW-Authenticate", `Bearer realm="hookstream"`)
	cases := []struct {
		name string
		req  *http.Request
		resp *http.Response
		body string
		want string // a piece of the failure
	}{
		{"matches", get("/api/v1/info"), answer(200, "application/json", ""), info, ""},
		{"wrong type", get("/api/v1/info"), answer(200, "application/json", ""), strings.Replace(info, `"scope":"read"`, `"scope":3`, 1), "scope"},
		{"not in the enum", get("/api/v1/info"), answer(200, "application/json", ""), strings.Replace(info, `"read"`, `"write"`, 1), "scope"},
		{"missing property", get("/api/v1/info"), answer(200, "application/json", ""), strings.Replace(info, `"token":"t",`, ``, 1), "token"},
		{"undeclared property", get("/api/v1/info"), answer(200, "application/json", ""), strings.Replace(info, `{`, `{"secret":"x",`, 1), "secret"},
		{"not a time", get("/api/v1/info"), answer(200, "application/json", ""), strings.Replace(info, `2026-01-01T00:00:00Z`, `yesterday`, 1), "time"},
		{"nested", get("/api/v1/events"), answer(200, "application/json", ""), `{"events":[{"id":"a","topic":"t","terminal":"no","created":"2026-01-01T00:00:00Z","received":"2026-01-01T00:00:00Z","source":"webhook"}],"next_cursor":null}`, "terminal"},
		{"undocumented status", get("/api/v1/info"), answer(418, "application/json", ""), `{}`, "418"},
		{"wrong content type", get("/api/v1/events/x"), answer(404, "application/json", ""), problem, "content"},
		{"problem with another status", get("/api/v1/events/x"), answer(404, "application/problem+json", ""), strings.Replace(problem, `"status":404`, `"status":400`, 1), "problem status"},
		{"unknown problem type", get("/api/v1/events/x"), answer(404, "application/problem+json", ""), strings.Replace(problem, `#not-found`, `#gone`, 1), "problem type"},
		{"missing required header", get("/api/v1/info"), answer(401, "application/problem+json", ""), strings.NewReplacer("404", "401", "Not Found", "Unauthorized", "not-found", "unauthorized").Replace(problem), "WWW-Authenticate"},
		{"header present", get("/api/v1/info"), unauthorized, strings.NewReplacer("404", "401", "Not Found", "Unauthorized", "not-found", "unauthorized").Replace(problem), ""},
		{"stream as JSON", get("/api/v1/live"), answer(200, "application/json", ""), `{}`, "content"},
		{"stream", get("/api/v1/live"), answer(200, "text/event-stream", ""), ": hello\n\nevent: event\ndata: {\"x\":1}\n\n", ""},
		{"stream status", get("/api/v1/live"), answer(404, "text/event-stream", ""), ``, "404"},
		{"no such route", get("/api/v1/nothing"), answer(200, "application/json", ""), `{}`, "nothing"},
		{"no such method", httptest.NewRequest("DELETE", "/api/v1/info", nil), answer(200, "application/json", ""), info, "DELETE"},
		{"parameter the document does not accept", get("/api/v1/events?limit=5000"), answer(200, "application/json", ""), `{"events":[],"next_cursor":null}`, "limit"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rec := &oaRecorder{TB: t}
			checkAgainstOpenAPI(rec, c.req, c.resp, []byte(c.body))
			got := strings.Join(rec.failures, "\n")
			t.Logf("failures: %s", got)
			switch {
			case c.want == "" && got != "":
				t.Errorf("rejected a documented answer:\n%s", got)
			case c.want != "" && got == "":
				t.Errorf("accepted an answer that is not documented (%s)", c.name)
			case c.want != "" && !strings.Contains(strings.ToLower(got), strings.ToLower(c.want)):
				t.Errorf("rejected, but the failure does not mention %q:\n%s", c.want, got)
			}
		})
	}
}

// Real answers, over real Redis and PostgreSQL with events stored by a
// process role, are all as documented: the checker accepts them (and
// every test that uses it checks its answers the same way).
func TestCheckAgainstOpenAPIOnRealAnswers(t *testing.T) {
	f := newFixture(t, nil)
	p, srv, reader, admin := f.Pipeline, f.srv, readSecret, adminSecret
	// A process role stores a small scenario, so the listings have items.
	f.process(t)
	f.store(t, sim.Generate(sim.Config{Customers: 15, Seed: 7}).Events)
	// A dead letter whose body cannot be requeued as it is.
	tx, err := p.DB.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	dls, err := store.InsertDeadLetters(context.Background(), tx, []store.DeadLetter{{Stream: p.Keys.Stream(0), EntryID: "1-1",
		EventID: "oa-dead", Reason: "not a Dwolla event", Deliveries: 1, Fields: map[string]string{"id": "oa-dead"}, Body: []byte("{broken")}})
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
	dead := fmt.Sprint(dls[0].ID)

	do := func(method, target, secret string, body io.Reader) (int, []byte) {
		t.Helper()
		req, err := http.NewRequest(method, srv.URL+target, body)
		if err != nil {
			t.Fatal(err)
		}
		if secret != "" {
			req.Header.Set("Authorization", "Bearer "+secret)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		checkAgainstOpenAPI(t, req, resp, b)
		return resp.StatusCode, b
	}
	expect := func(want int, method, target, secret string) []byte {
		t.Helper()
		got, b := do(method, target, secret, nil)
		if got != want {
			t.Errorf("%s %s: %d, want %d: %s", method, target, got, want, clip(b))
		}
		return b
	}
	const rng = "from=2025-06-01T00:00:00Z&to=2025-06-10T00:00:00Z"

	expect(200, "GET", "/api/v1/info", reader)
	var page struct {
		Events     []Event `json:"events"`
		NextCursor *string `json:"next_cursor"`
	}
	if err := json.Unmarshal(expect(200, "GET", "/api/v1/events?limit=3", reader), &page); err != nil || len(page.Events) != 3 || page.NextCursor == nil {
		t.Fatalf("GET /api/v1/events?limit=3: %v %+v", err, page)
	}
	expect(200, "GET", "/api/v1/events?limit=3&cursor="+*page.NextCursor, reader)
	expect(200, "GET", "/api/v1/events?topic=customer_created,customer_verified&"+rng, reader)
	expect(200, "GET", "/api/v1/events/"+page.Events[0].ID, reader)
	expect(404, "GET", "/api/v1/events/no-such-event", reader)
	expect(200, "GET", "/api/v1/metrics?window=1h&group_by=family&non_empty=true&"+rng, reader)
	expect(200, "GET", "/api/v1/metrics?metric=lag_p90&basis=received&window=15m&filter=topic=customer_created&"+rng, reader)
	expect(400, "GET", "/api/v1/metrics?window=7m", reader)
	expect(200, "GET", "/api/v1/metrics/catalog?since=2025-06-01", reader)
	expect(200, "GET", "/api/v1/journeys", reader)
	expect(200, "GET", "/api/v1/journeys/customer_verification/funnel?"+rng, reader)
	expect(200, "GET", "/api/v1/journeys/customer_verification/funnel?by=entry_topic&"+rng, reader)
	expect(404, "GET", "/api/v1/journeys/no_such_journey/funnel", reader)
	var instances struct {
		Instances []journeys.InstanceSummary `json:"instances"`
	}
	if err := json.Unmarshal(expect(200, "GET", "/api/v1/journeys/customer_verification/instances?limit=2&"+rng, reader), &instances); err != nil || len(instances.Instances) == 0 {
		t.Fatalf("no customer_verification instances: %v", err)
	}
	expect(200, "GET", "/api/v1/journeys/customer_verification/instances/"+url.PathEscape(instances.Instances[0].Subject), reader)
	expect(404, "GET", "/api/v1/journeys/customer_verification/instances/no-such-subject", reader)
	expect(200, "GET", "/api/v1/status", reader)
	expect(200, "GET", "/api/v1/dlq?state=all", reader)
	expect(200, "GET", "/api/v1/dlq/"+dead, reader)
	expect(400, "GET", "/api/v1/dlq/x", reader)
	expect(404, "GET", "/api/v1/dlq/999999", reader)
	expect(403, "POST", "/api/v1/dlq/"+dead+"/replay", reader)
	expect(400, "POST", "/api/v1/dlq/"+dead+"/replay", admin) // its body is not a Dwolla event
	expect(200, "POST", "/api/v1/dlq/"+dead+"/discard", admin)
	expect(409, "POST", "/api/v1/dlq/"+dead+"/discard", admin)
	expect(404, "POST", "/api/v1/dlq/999999/discard", admin)
	expect(200, "POST", "/api/v1/process/pause", admin)
	expect(200, "POST", "/api/v1/process/resume", admin)
	expect(401, "GET", "/api/v1/events", "")
	expect(401, "GET", "/api/v1/events", "not-a-token-of-this-server")
	expect(400, "GET", "/api/v1/events?bogus=1", reader)
	expect(400, "GET", "/api/v1/events?limit=0", reader)
	expect(400, "GET", "/api/v1/live?types=bogus", reader)
	expect(403, "GET", "/api/v1/live?include=body", reader)
	expect(200, "GET", "/api/v1/openapi.json", "")

	// The live feed: its headers are checked as soon as they arrive.
	lctx, lcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer lcancel()
	req, err := http.NewRequestWithContext(lctx, "GET", srv.URL+"/api/v1/live?types=event,window&include=body", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+admin)
	req.Header.Set("Last-Event-ID", "0-0-0_0-0-0")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	first := make([]byte, 64)
	n, _ := io.ReadAtLeast(resp.Body, first, 1)
	lcancel()
	resp.Body.Close()
	checkAgainstOpenAPI(t, req, resp, first[:n])
	if resp.StatusCode != 200 {
		t.Errorf("GET /api/v1/live: %d", resp.StatusCode)
	}
}
