package api

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/hookstream/hookstream/alert"
	"github.com/hookstream/hookstream/internal/testenv"
	"github.com/hookstream/hookstream/windows"
)

// The penetration pass over the API listener, item by item of the OWASP
// API Security Top 10 (2023); docs/security.md ("Penetration pass") maps
// each subtest to what it attacks. Each attack asserts the exact answer.

const (
	// digestSecret is the secret of a token configured by its SHA-256 only.
	digestSecret = "digest-secret-0123456789"
	// slackURL is a Slack target's URL: the URL is the secret.
	slackURL = "https://hooks.slack.com/services/T0PEN/B0PEN/slacksecretpath0123"
)

// Answers of authorized, kept here so a change of wording shows in one place.
const (
	detailNoToken  = "this route needs a token: send Authorization: Bearer <secret>"
	detailBadToken = "the token is not valid: not a Bearer token, or no configured token has this secret"
	challengeNone  = `Bearer realm="hookstream"`
	challengeBad   = `Bearer realm="hookstream", error="invalid_token"`
	challengeScope = `Bearer realm="hookstream", error="insufficient_scope", scope="admin"`
)

// wantProblem fails unless a is the problem status/kind/detail/param, with
// the headers every API error carries.
func wantProblem(t *testing.T, a answer, status int, kind, detail, param string) {
	t.Helper()
	if a.status != status {
		t.Fatalf("status %d, want %d: %s", a.status, status, a.body)
	}
	p := a.problem(t)
	if p.Type != problemBase+kind || p.Status != status || p.Detail != detail || p.Param != param {
		t.Fatalf("problem %+v\nwant type %s, detail %q, param %q", p, kind, detail, param)
	}
	wantSafeHeaders(t, a)
}

// wantSafeHeaders fails unless a carries the headers every API answer has
// (no caching, no sniffing) and none that open it to other origins.
func wantSafeHeaders(t *testing.T, a answer) {
	t.Helper()
	if got := a.header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control %q, want no-store", got)
	}
	if got := a.header.Get("X-Content-Type-Options"); got != "nosniff" {
		t.Errorf("X-Content-Type-Options %q, want nosniff", got)
	}
	for _, h := range []string{"Access-Control-Allow-Origin", "Access-Control-Allow-Credentials", "Access-Control-Allow-Methods"} {
		if v := a.header.Get(h); v != "" {
			t.Errorf("%s: %q; the API grants no cross-origin access", h, v)
		}
	}
}

// raw sends a request with the Authorization header exactly as given
// (none when auth is empty) plus extra headers.
func (f *fixture) raw(t *testing.T, method, path string, auth []string, extra map[string]string) answer {
	t.Helper()
	req, err := http.NewRequest(method, f.srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range auth {
		req.Header.Add("Authorization", v)
	}
	for k, v := range extra {
		req.Header.Set(k, v)
	}
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{resp.StatusCode, resp.Header, b}
}

// API2: broken authentication.
func TestPenetrationAuthentication(t *testing.T) {
	t.Parallel()
	digest := sha256.Sum256([]byte(digestSecret))
	digestHex := hex.EncodeToString(digest[:])
	f := newFixture(t, func(c *Config) {
		more, err := ParseTokens("hashed:read:sha256:" + digestHex)
		if err != nil {
			t.Fatal(err)
		}
		c.Tokens = append(c.Tokens, more...)
	})
	const path = "/api/v1/info"

	t.Run("no Authorization header", func(t *testing.T) {
		a := f.raw(t, "GET", path, nil, nil)
		wantProblem(t, a, 401, ProblemUnauthorized, detailNoToken, "Authorization")
		if got := a.header.Get("WWW-Authenticate"); got != challengeNone {
			t.Fatalf("WWW-Authenticate %q, want %q", got, challengeNone)
		}
	})
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("reader:"+readSecret))
	for name, auth := range map[string]string{
		"empty header":                       "",
		"scheme alone":                       "Bearer",
		"scheme and space, no secret":        "Bearer ",
		"Basic with the right secret":        basic,
		"secret without a scheme":            readSecret,
		"other scheme, right secret":         "Token " + readSecret,
		"last character changed":             "Bearer " + readSecret[:len(readSecret)-1] + "X",
		"one character short":                "Bearer " + readSecret[:len(readSecret)-1],
		"one character more":                 "Bearer " + readSecret + "0",
		"upper-cased secret":                 "Bearer " + strings.ToUpper(readSecret),
		"the token's name":                   "Bearer reader",
		"two secrets in one header":          "Bearer " + readSecret + "," + adminSecret,
		"the configured digest":              "Bearer sha256:" + digestHex,
		"the configured digest's hex":        "Bearer " + digestHex,
		"half the digest's hex":              "Bearer " + hex.EncodeToString(digest[:16]),
		"secret with a NUL-like escape":      "Bearer " + readSecret + `\x00`,
		"secret followed by another scheme":  "Bearer " + readSecret + " Bearer " + adminSecret,
		"percent-encoded secret":             "Bearer " + url.QueryEscape(readSecret+"/"),
		"admin secret with a stray prefix":   "Bearer x" + adminSecret,
		"admin secret split by a space":      "Bearer " + adminSecret[:5] + " " + adminSecret[5:],
		"secret of another hookstream (dev)": "Bearer dev-secret-0123456789abcdef",
	} {
		t.Run(name, func(t *testing.T) {
			auth := []string{auth}
			a := f.raw(t, "GET", path, auth, nil)
			detail, challenge := detailBadToken, challengeBad
			if auth[0] == "" {
				detail, challenge = detailNoToken, challengeNone
			}
			wantProblem(t, a, 401, ProblemUnauthorized, detail, "Authorization")
			if got := a.header.Get("WWW-Authenticate"); got != challenge {
				t.Fatalf("WWW-Authenticate %q, want %q", got, challenge)
			}
		})
	}
	t.Run("a wrong token before the right one", func(t *testing.T) {
		a := f.raw(t, "GET", path, []string{"Bearer not-the-secret-0123456789", "Bearer " + readSecret}, nil)
		wantProblem(t, a, 401, ProblemUnauthorized, detailBadToken, "Authorization")
	})
	for _, q := range []string{"access_token", "token", "api_key", "bearer"} {
		t.Run("token in the query string ("+q+")", func(t *testing.T) {
			// Without the header, the query is not looked at.
			a := f.raw(t, "GET", path+"?"+q+"="+readSecret, nil, nil)
			wantProblem(t, a, 401, ProblemUnauthorized, detailNoToken, "Authorization")
			a = f.raw(t, "GET", "/api/v1/live?"+q+"="+readSecret, nil, nil)
			wantProblem(t, a, 401, ProblemUnauthorized, detailNoToken, "Authorization")
			// With it, the parameter is refused, not ignored.
			a = f.raw(t, "GET", path+"?"+q+"="+readSecret, []string{"Bearer " + readSecret}, nil)
			wantProblem(t, a, 400, ProblemBadParameter, q+": unknown parameter; this route takes none", q)
			if strings.Contains(string(a.body), readSecret) {
				t.Fatalf("the answer repeats the secret: %s", a.body)
			}
		})
	}
	t.Run("the right secrets get in, as themselves", func(t *testing.T) {
		for secret, want := range map[string]string{readSecret: "reader read", digestSecret: "hashed read", adminSecret: "ops admin", " " + adminSecret + " ": "ops admin"} {
			a := f.raw(t, "GET", path, []string{"Bearer " + secret}, nil).ok(t)
			var info struct{ Token, Scope string }
			a.decode(t, &info)
			if got := info.Token + " " + info.Scope; got != want {
				t.Errorf("secret %q: /info says %q, want %q", secret, got, want)
			}
			wantSafeHeaders(t, a)
		}
	})
	t.Run("no tokens and no --api-insecure", func(t *testing.T) {
		if _, err := New(nil, nil, Config{}); !errors.Is(err, ErrNoTokens) {
			t.Fatalf("New without tokens: %v, want ErrNoTokens", err)
		}
	})
	t.Run("--api-insecure off loopback", func(t *testing.T) {
		for _, addr := range []string{"0.0.0.0:0", "[::]:0", ":0", "192.0.2.1:8081", "hookstream.example:8081"} {
			_, err := NewRole(nil, nil, addr, Config{Insecure: true})
			if err == nil || !strings.Contains(err.Error(), "only on a loopback address (127.0.0.1:8081), not "+addr) {
				t.Errorf("NewRole(%q, insecure): %v, want a refusal naming the address", addr, err)
			}
		}
	})
	t.Run("short clear secrets are refused", func(t *testing.T) {
		_, err := ParseTokens("a:admin:short-secret")
		if err == nil || err.Error() != "API token 1 (a): the secret is shorter than 16 characters; use a long random one (openssl rand -hex 24)" {
			t.Fatalf("ParseTokens with a 12-character secret: %v", err)
		}
	})
	t.Run("secrets compared in constant time", func(t *testing.T) {
		// The timing cannot be asserted in a test; that the comparison is
		// the constant-time one of digests, of every token, can.
		calls := callsIn(t, "auth.go", "authenticate")
		for _, want := range []string{"sha256.Sum256", "subtle.ConstantTimeCompare"} {
			if !calls[want] {
				t.Errorf("authenticate does not call %s", want)
			}
		}
		if calls["bytes.Equal"] || calls["strings.EqualFold"] || calls["hmac.Equal"] {
			t.Errorf("authenticate compares with something else too: %v", calls)
		}
	})
}

// callsIn is the set of package-qualified calls (pkg.Func) made in the body
// of function fn of file.
func callsIn(t *testing.T, file, fn string) map[string]bool {
	t.Helper()
	fs := token.NewFileSet()
	f, err := parser.ParseFile(fs, file, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	calls := map[string]bool{}
	found := false
	for _, d := range f.Decls {
		fd, ok := d.(*ast.FuncDecl)
		if !ok || fd.Name.Name != fn {
			continue
		}
		found = true
		ast.Inspect(fd.Body, func(n ast.Node) bool {
			if c, ok := n.(*ast.CallExpr); ok {
				if sel, ok := c.Fun.(*ast.SelectorExpr); ok {
					if id, ok := sel.X.(*ast.Ident); ok {
						calls[id.Name+"."+sel.Sel.Name] = true
					}
				}
			}
			return true
		})
	}
	if !found {
		t.Fatalf("no function %s in %s", fn, file)
	}
	return calls
}

// API1 and API5: broken object and function level authorization. Tokens
// are scoped by function (read, admin), not by object: see
// docs/security.md.
func TestPenetrationScopes(t *testing.T) {
	t.Parallel()
	sink := newWebhookSink(t)
	f := newFixture(t, func(c *Config) { c.Alerts = alertRules(t, sink) })

	t.Run("every admin route refuses a read token before doing anything", func(t *testing.T) {
		n := 0
		for _, r := range f.s.routes {
			if r.scope != ScopeAdmin {
				continue
			}
			n++
			path := strings.NewReplacer("{id}", "1", "{fingerprint}", "x").Replace(r.pattern)
			var body io.Reader
			switch {
			case strings.HasSuffix(path, "/test"):
				path += "?target=hook"
			case path == "/api/v1/silences":
				body = strings.NewReader(`{"matchers":["alertname=dlq"],"for":"1h","comment":"by a read token"}`)
			}
			a := f.do(t, r.method, path, readSecret, body)
			wantProblem(t, a, 403, ProblemForbidden, "token reader has scope read; this needs admin", "Authorization")
			if got := a.header.Get("WWW-Authenticate"); got != challengeScope {
				t.Fatalf("%s %s: WWW-Authenticate %q, want %q", r.method, path, got, challengeScope)
			}
		}
		if n < 8 {
			t.Fatalf("only %d admin routes; the scope table lists 8", n)
		}
		// Nothing happened: not paused, no silence, no notification sent.
		var st struct{ Paused bool }
		f.send(t, "GET", "/api/v1/status", readSecret, nil, false).ok(t).decode(t, &st)
		var sil struct{ Silences []any }
		f.get(t, "/api/v1/silences?all=true").ok(t).decode(t, &sil)
		if st.Paused || len(sil.Silences) != 0 || len(sink.received()) != 0 {
			t.Fatalf("a read token changed something: paused %v, %d silences, %d test notifications", st.Paused, len(sil.Silences), len(sink.received()))
		}
	})
	t.Run("event bodies on the live feed need admin", func(t *testing.T) {
		_, resp := f.liveAnswer(t, "include=body", "", readSecret)
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("live include=body with a read token: %d, want 403", resp.StatusCode)
		}
		a := f.do(t, "GET", "/api/v1/live?include=body", readSecret, nil)
		wantProblem(t, a, 403, ProblemForbidden, "include=body needs an admin token; event bodies are not for read tokens", "include")
	})
	t.Run("who acts is the token, not the body", func(t *testing.T) {
		// Mass assignment: the fields the server sets are refused.
		for field, value := range map[string]string{"created_by": `"mallory"`, "id": `"sil_mine"`, "created_at": `"2020-01-01T00:00:00Z"`, "status": `"expired"`} {
			body := `{"matchers":["alertname=dlq"],"for":"1h","comment":"c",` + strconvQuote(field) + `:` + value + `}`
			a := post(t, f, "/api/v1/silences", adminSecret, body)
			wantProblem(t, a, 400, ProblemBadParameter, `body: not a silence: json: unknown field "`+field+`"; send a JSON object with matchers, for or ends_at, optional starts_at, and comment`, "body")
		}
		var v alert.SilenceView
		a := post(t, f, "/api/v1/silences", adminSecret, `{"matchers":["alertname=dlq"],"for":"1h","comment":"c"}`)
		a.want(t, "create a silence", http.StatusCreated)
		a.decode(t, &v)
		if v.CreatedBy != "ops" {
			t.Fatalf("the silence was created by %q, want the token's name ops", v.CreatedBy)
		}
	})
}

func strconvQuote(s string) string { return fmt.Sprintf("%q", s) }

// API3: excessive data exposure. No answer of any read route, nor of the
// test notification, holds a secret: tokens, a Slack URL, a webhook
// target's signing secret.
func TestPenetrationNoSecretInAnswers(t *testing.T) {
	t.Parallel()
	sink := newWebhookSink(t)
	yaml := `group_wait: 0s
targets:
  - {name: hook, kind: webhook, url: "` + sink.srv.URL + `", secret: "` + sink.secret.String() + `"}
  - {name: chat, kind: slack, url: "` + slackURL + `"}
rules:
  - {name: dlq, kind: operational, severity: warning, signal: dead_letters_open, op: ">=", value: 0, summary: "{{.Value}} open dead letters"}
`
	rules, err := alert.ParseRules([]byte(yaml), windows.Config{}.WithDefaults())
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, func(c *Config) { c.Alerts = rules })
	secrets := map[string]string{
		"read token":              readSecret,
		"admin token":             adminSecret,
		"Slack URL":               slackURL,
		"Slack URL's path":        "slacksecretpath0123",
		"webhook signing secret":  sink.secret.String(),
		"signing secret (base64)": base64.StdEncoding.EncodeToString(sink.secret),
	}
	scan := func(t *testing.T, what string, a answer) {
		t.Helper()
		for name, s := range secrets {
			if strings.Contains(string(a.body), s) {
				t.Errorf("%s: the answer holds the %s: %s", what, name, trim(a.body))
			}
		}
		for _, vs := range a.header {
			for _, v := range vs {
				for name, s := range secrets {
					if strings.Contains(v, s) {
						t.Errorf("%s: a header holds the %s", what, name)
					}
				}
			}
		}
	}
	// Test notifications: the webhook target's (delivered) and the Slack
	// one's (fails here: no Internet; what it says must not show the URL).
	for _, target := range []string{"hook", "chat", "nosuch"} {
		t.Run("test notification to "+target, func(t *testing.T) {
			a := f.do(t, "POST", "/api/v1/alerts/test?target="+target, adminSecret, nil)
			scan(t, "POST /alerts/test "+target, a)
			if target == "nosuch" {
				wantProblem(t, a, 404, ProblemNotFound, `target "nosuch": no such target; the rules file has [hook chat]`, "target")
			}
		})
	}
	t.Run("every read route", func(t *testing.T) {
		for _, r := range f.s.routes {
			if r.method != "GET" || r.pattern == "/api/v1/live" {
				continue
			}
			path := strings.NewReplacer("{id}", "1", "{name}", "customer_verification", "{subject}", "x", "{fingerprint}", "x").Replace(r.pattern)
			for _, secret := range []string{adminSecret, readSecret, ""} {
				// What is scanned is the point here, not the schema (the
				// other API tests check every answer against openapi.yaml).
				scan(t, "GET "+path, f.send(t, "GET", path, secret, nil, false))
			}
		}
		scan(t, "the console", f.raw(t, "GET", "/", nil, nil))
		scan(t, "the notification log", f.get(t, "/api/v1/alerts/notifications"))
	})
}

// API4: unrestricted resource consumption.
func TestPenetrationResourceLimits(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(c *Config) { c.Live.MaxClients = 1 })

	for _, route := range []string{"/api/v1/events", "/api/v1/journeys/customer_verification/instances", "/api/v1/dlq", "/api/v1/alerts", "/api/v1/alerts/notifications", "/api/v1/anomalies"} {
		for _, limit := range []string{"1001", "-1", "0", "99999999999999999999", "1e3"} {
			t.Run("page size "+limit+" on "+route, func(t *testing.T) {
				a := f.get(t, route+"?limit="+limit)
				wantProblem(t, a, 400, ProblemBadParameter, `limit: "`+limit+`" is not a whole number from 1 to 1000`, "limit")
			})
		}
	}
	t.Run("metrics over too many windows", func(t *testing.T) {
		a := f.get(t, "/api/v1/metrics?window=1m&from=2020-01-01T00:00:00Z&to=2025-01-01T00:00:00Z")
		if a.status != 400 {
			t.Fatalf("status %d, want 400: %s", a.status, a.body)
		}
		if p := a.problem(t); p.Param != "from" || !strings.Contains(p.Detail, "100000") {
			t.Fatalf("problem %+v, want one about from naming the limit of 100000 windows", p)
		}
	})
	t.Run("silence body over 64 KiB", func(t *testing.T) {
		body := `{"matchers":["alertname=dlq"],"for":"1h","comment":"` + strings.Repeat("a", maxSilenceBody) + `"}`
		a := post(t, f, "/api/v1/silences", adminSecret, body)
		wantProblem(t, a, 400, ProblemBadParameter, "body: not a silence: http: request body too large; send a JSON object with matchers, for or ends_at, optional starts_at, and comment", "body")
	})
	t.Run("repaired body over 1 MiB", func(t *testing.T) {
		a := post(t, f, "/api/v1/dlq/1/replay", adminSecret, strings.Repeat("a", maxRepairedBody+1))
		wantProblem(t, a, 400, ProblemBadParameter, "body: cannot read the repaired body: http: request body too large", "body")
	})
	t.Run("live clients over the limit", func(t *testing.T) {
		c := f.live(t, "", "", readSecret)
		if _, ok := c.next(10*time.Second, true); !ok {
			t.Fatal("the first live client got nothing within 10s")
		}
		a := f.do(t, "GET", "/api/v1/live", readSecret, nil)
		wantProblem(t, a, 503, ProblemTooMany, "the live feed has its maximum of 1 clients; retry later", "")
		if a.header.Get("Retry-After") != "10" {
			t.Fatalf("Retry-After %q, want 10", a.header.Get("Retry-After"))
		}
		c.cancel()
		testenv.WaitFor(t, 10*time.Second, "the live client's slot to be freed", func() bool {
			return f.s.hub.count.Load() == 0
		})
	})

	// The role's own server: headers too large, and a client that never
	// finishes its headers (slowloris), while others are still answered.
	role, err := NewRole(f.Redis, f.DB, "127.0.0.1:0", Config{Keys: f.Keys, Tokens: f.s.cfg.Tokens, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- role.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("api role: %v", err)
		}
	})
	base := "http://" + role.Addr()
	healthy := func(t *testing.T) {
		t.Helper()
		req, _ := http.NewRequest("GET", base+"/api/v1/info", nil)
		req.Header.Set("Authorization", "Bearer "+readSecret)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("GET /api/v1/info: %d", resp.StatusCode)
		}
	}
	t.Run("headers over 1 MB", func(t *testing.T) {
		req, _ := http.NewRequest("GET", base+"/api/v1/info", nil)
		req.Header.Set("Authorization", "Bearer "+readSecret)
		req.Header.Set("X-Padding", strings.Repeat("a", 1<<20+4096))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge || string(b) != "431 Request Header Fields Too Large" {
			t.Fatalf("%d %q, want 431", resp.StatusCode, b)
		}
		healthy(t)
	})
	t.Run("slowloris: headers never finished", func(t *testing.T) {
		c, err := net.Dial("tcp", role.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := io.WriteString(c, "GET /api/v1/info HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "+readSecret+"\r\n"); err != nil {
			t.Fatal(err)
		}
		healthy(t) // others are answered meanwhile
		// The server closes the connection (ReadHeaderTimeout, 5s) without
		// an answer; the bound here is only against a hang.
		c.SetReadDeadline(time.Now().Add(60 * time.Second))
		b, err := io.ReadAll(bufio.NewReader(c))
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatal("the server kept a connection with unfinished headers open for 60s")
		}
		if len(b) != 0 {
			t.Fatalf("the server answered unfinished headers: %q", b)
		}
		healthy(t)
	})
}

// API8: security misconfiguration.
func TestPenetrationMisconfiguration(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	evil := map[string]string{"Origin": "https://evil.example", "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization"}

	t.Run("JSON answers say so, are not cached, not sniffed, not shared", func(t *testing.T) {
		for _, path := range []string{"/api/v1/info", "/api/v1/events", "/api/v1/alerts", "/api/v1/silences", "/api/v1/dlq"} {
			a := f.raw(t, "GET", path, []string{"Bearer " + readSecret}, map[string]string{"Origin": "https://evil.example"}).ok(t)
			if ct := a.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("%s: Content-Type %q", path, ct)
			}
			wantSafeHeaders(t, a)
		}
	})
	t.Run("CORS preflight", func(t *testing.T) {
		a := f.raw(t, "OPTIONS", "/api/v1/process/pause", nil, evil)
		wantProblem(t, a, 405, ProblemNotFound, "OPTIONS is not allowed here; use POST", "")
		if a.header.Get("Allow") != "POST" {
			t.Fatalf("Allow %q", a.header.Get("Allow"))
		}
	})
	t.Run("TRACE is not echoed", func(t *testing.T) {
		a := f.raw(t, "TRACE", "/api/v1/info", []string{"Bearer " + readSecret}, map[string]string{"X-Echo": "echo-me"})
		wantProblem(t, a, 405, ProblemNotFound, "TRACE is not allowed here; use GET", "")
		if strings.Contains(string(a.body), readSecret) || strings.Contains(string(a.body), "echo-me") {
			t.Fatalf("TRACE echoed the request: %s", a.body)
		}
		a = f.raw(t, "TRACE", "/", []string{"Bearer " + readSecret}, map[string]string{"X-Echo": "echo-me"})
		if a.status != 405 || strings.TrimSpace(string(a.body)) != "the console is read with GET" || a.header.Get("Allow") != "GET, HEAD" {
			t.Fatalf("TRACE /: %d %q Allow %q", a.status, a.body, a.header.Get("Allow"))
		}
	})
	t.Run("a method a route does not take", func(t *testing.T) {
		for _, c := range []struct{ method, path, allow string }{
			{"DELETE", "/api/v1/events", "GET"}, {"PUT", "/api/v1/silences", "GET, POST"}, {"GET", "/api/v1/process/pause", "POST"},
			{"PATCH", "/api/v1/silences/x", "GET, DELETE"},
		} {
			a := f.raw(t, c.method, c.path, []string{"Bearer " + adminSecret}, nil)
			want := c.method + " is not allowed here; use " + strings.ReplaceAll(c.allow, ", ", " or ")
			wantProblem(t, a, 405, ProblemNotFound, want, "")
			if a.header.Get("Allow") != c.allow {
				t.Errorf("%s %s: Allow %q, want %q", c.method, c.path, a.header.Get("Allow"), c.allow)
			}
		}
	})
	t.Run("unknown routes", func(t *testing.T) {
		for _, path := range []string{"/api/v1/nothing", "/api/v1/", "/api/v2/events", "/api/v1/events/x/y", "/api/v1/admin"} {
			a := f.raw(t, "GET", path, []string{"Bearer " + adminSecret}, nil)
			if strings.HasPrefix(path, "/api/v1/") {
				wantProblem(t, a, 404, ProblemNotFound, "no such route; the routes are listed at /api/v1/openapi.json", "")
			} else if a.status != 404 {
				t.Errorf("%s: %d, want 404", path, a.status)
			}
		}
	})
	t.Run("console files stay inside the console", func(t *testing.T) {
		for _, path := range []string{"/..%2f..%2fetc%2fpasswd", "/%2e%2e/%2e%2e/etc/passwd", "/console.go", "/../api/auth.go"} {
			a := f.raw(t, "GET", path, nil, nil)
			if a.status == 200 && (strings.Contains(string(a.body), "root:") || strings.Contains(string(a.body), "package api")) {
				t.Errorf("%s: %d served a file outside the console: %.80s", path, a.status, a.body)
			}
			if a.status != 404 && a.status != 400 && a.status != 301 {
				t.Errorf("%s: %d, want 404 (or 400/301 from net/http's path cleaning)", path, a.status)
			}
		}
	})
}

// API10 (injection): hostile text in every parameter that reaches
// PostgreSQL, over stored events. Each answer is a 400 naming the
// parameter, a 404, or a 200 listing nothing: never a PostgreSQL error,
// never more rows.
func TestPenetrationInjection(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	f.process(t)
	sc := scenario(8, 11)
	f.store(t, sc.Events)
	var stored int
	if err := f.DB.QueryRow(context.Background(), `SELECT count(*) FROM events`).Scan(&stored); err != nil || stored == 0 {
		t.Fatalf("stored events: %d %v", stored, err)
	}
	ev := sc.Events[0]
	payloads := []string{
		`' OR '1'='1`, `x' OR 1=1--`, `'; DROP TABLE events;--`, `") OR ("1"="1`, `%`, `_`, `*`, `\`,
		`1; SELECT pg_sleep(10)`, `$1`, `' UNION SELECT id, topic FROM events--`, `/**/OR/**/1=1`,
		ev.CustomerID + `' OR 'a'='a`, `customer_created' OR topic<>'`, "a\x00b", "\xff\xfe", "\u202e",
		strings.Repeat("'", 500),
	}
	leaks := []string{"SQLSTATE", "syntax error", "pgx", "pq:", "ERROR:", "relation ", "goroutine", ".go:", "/work/", "panic", "invalid byte sequence"}
	// check fails unless a is an acceptable answer; it returns the
	// listing's length for a 200 (n of key).
	check := func(t *testing.T, what string, a answer, key string) int {
		t.Helper()
		for _, l := range leaks {
			if strings.Contains(string(a.body), l) {
				t.Fatalf("%s: the answer leaks %q: %s", what, l, trim(a.body))
			}
		}
		switch a.status {
		case 200:
			if key == "" {
				return 0
			}
			var m map[string][]any
			a.decode(t, &m)
			return len(m[key])
		case 400, 404:
			p := a.problem(t)
			if p.Detail == "" {
				t.Fatalf("%s: %d without a detail", what, a.status)
			}
			wantSafeHeaders(t, a)
			return 0
		}
		t.Fatalf("%s: %d, want 200, 400 or 404: %s", what, a.status, trim(a.body))
		return 0
	}
	for i, p := range payloads {
		q := url.QueryEscape(p)
		seg := url.PathEscape(p)
		t.Run(fmt.Sprintf("payload %d %q", i, p), func(t *testing.T) {
			for _, c := range []struct{ path, key string }{
				{"/api/v1/events?topic=" + q, "events"},
				{"/api/v1/events?topic=customer_created," + q, "-"},
				{"/api/v1/events?customer=" + q, "events"},
				{"/api/v1/events?resource=" + q, "events"},
				{"/api/v1/events/" + seg, ""},
				{"/api/v1/journeys/" + seg + "/funnel", ""},
				{"/api/v1/journeys/customer_verification/instances/" + seg, ""},
				{"/api/v1/journeys/customer_verification/instances?status=" + q, "instances"},
				{"/api/v1/journeys/customer_verification/funnel?by=" + q, ""},
				{"/api/v1/anomalies?series=" + q, "anomalies"},
				{"/api/v1/forecasts?series=" + q, ""},
				{"/api/v1/alerts/" + seg, ""},
				{"/api/v1/alerts?state=" + q, "alerts"},
				{"/api/v1/alerts/notifications?target=" + q, "notifications"},
				{"/api/v1/silences/" + seg, ""},
				{"/api/v1/reconcile/runs/" + seg, ""},
				{"/api/v1/dlq/" + seg, ""},
				{"/api/v1/dlq?state=" + q, "dead_letters"},
				{"/api/v1/metrics/catalog?since=" + q, ""},
				{"/api/v1/events?cursor=" + encodeCursor("events", eventCursor{Created: ev.Created, ID: p}), "-"},
				{"/api/v1/events?cursor=" + q, "-"},
				{"/api/v1/journeys/customer_verification/instances?cursor=" + encodeCursor("instances", instanceCursor{Subject: p}), "-"},
				{"/api/v1/dlq?cursor=" + encodeCursor("dlq", p), "-"},
			} {
				n := check(t, c.path, f.do(t, "GET", c.path, adminSecret, nil), strings.TrimPrefix(c.key, "-"))
				if !strings.HasPrefix(c.key, "-") && n != 0 {
					t.Fatalf("%s: listed %d, want none (nothing has this value)", c.path, n)
				}
				if n > 100 {
					t.Fatalf("%s: listed %d, more than a page", c.path, n)
				}
			}
			// Metrics: group_by and filter name dimensions from a fixed
			// set; a filter's value matches nothing.
			for _, path := range []string{
				"/api/v1/metrics?group_by=" + q + "&" + simRange,
				"/api/v1/metrics?filter=" + q + "&" + simRange,
				"/api/v1/metrics?filter=topic%3D" + q + "&" + simRange,
				"/api/v1/metrics?filter=" + q + "%3Dx&" + simRange,
				"/api/v1/metrics?metric=" + q + "&" + simRange,
				"/api/v1/metrics/compare?metric=count&a=2025-06-02..2025-06-03&b=2025-06-03..2025-06-04&filter=topic%3D" + q,
			} {
				a := f.do(t, "GET", path, adminSecret, nil)
				check(t, path, a, "")
				if a.status == 200 && strings.HasPrefix(path, "/api/v1/metrics?") {
					var res struct{ Points []windows.Point }
					a.decode(t, &res)
					for _, pt := range res.Points {
						if pt.Value != 0 {
							t.Fatalf("%s: a point of %v; the filter matches nothing", path, pt.Value)
						}
					}
				}
			}
			// The live feed's filters.
			// The live feed's filters (no type is any of the payloads, so
			// this is refused rather than streamed).
			a := f.do(t, "GET", "/api/v1/live?topics="+q+"&customer="+q+"&types="+q, adminSecret, nil)
			if check(t, "live", a, ""); a.status != 400 || !strings.Contains("types topics customer", a.problem(t).Param) {
				t.Fatalf("live with types=%q: %d %s, want a 400 naming one of the parameters", p, a.status, a.body)
			}
		})
	}
	t.Run("nothing was dropped or changed", func(t *testing.T) {
		var n int
		if err := f.DB.QueryRow(context.Background(), `SELECT count(*) FROM events`).Scan(&n); err != nil || n != stored {
			t.Fatalf("events after the attacks: %d (%v), before %d", n, err, stored)
		}
		f.get(t, "/api/v1/events?limit=1").ok(t)
	})
}
