package api

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/VictoriaMetrics/metrics"
	"github.com/hookstream/hookstream/alert"
	"github.com/hookstream/hookstream/anomaly"
	"github.com/hookstream/hookstream/journeys"
	"github.com/hookstream/hookstream/process"
	"github.com/hookstream/hookstream/stream"
	"github.com/hookstream/hookstream/windows"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
)

// Config configures a Server. Zero values take the defaults given.
type Config struct {
	Keys     stream.Keys    // the namespace read
	Group    string         // the processors' consumer group (default process.DefaultGroup)
	Windows  windows.Config // as the processors run them
	Journeys *journeys.Set  // the definitions (nil: none; journey routes answer 404)
	Watch    *anomaly.Watch // the watched series (nil: none; forecast routes answer 404)
	// Alerts are the alert rules, for their targets (nil: none; POST
	// /api/v1/alerts/test answers 404 saying so). The alerts, silences and
	// notification log are read from PostgreSQL either way.
	Alerts *alert.Rules
	// Tokens are the accepted API tokens (ParseTokens). With none, New
	// refuses unless Insecure, which lets every request in as admin.
	Tokens   []Token
	Insecure bool
	Version  string // reported by /api/v1/info (default "dev")
	Live     LiveOptions
	Logger   *slog.Logger
	// Now is the clock that defaults of from and to are taken on (default
	// time.Now).
	Now func() time.Time
}

// LiveOptions configure the live feed.
type LiveOptions struct {
	MaxClients int           // more are refused with 503 (default 1000)
	Buffer     int           // messages a client may fall behind before it is disconnected (default 4096)
	Heartbeat  time.Duration // comment lines sent this often on an idle connection (default 15s)
	Block      time.Duration // how long one read of the streams waits (default 1s)
}

func (c Config) withDefaults() Config {
	c.Group = cmp.Or(c.Group, process.DefaultGroup)
	c.Windows = c.Windows.WithDefaults()
	c.Version = cmp.Or(c.Version, "dev")
	c.Live.MaxClients = cmp.Or(c.Live.MaxClients, 1000)
	c.Live.Buffer = cmp.Or(c.Live.Buffer, 4096)
	c.Live.Heartbeat = cmp.Or(c.Live.Heartbeat, 15*time.Second)
	c.Live.Block = cmp.Or(c.Live.Block, time.Second)
	c.Logger = cmp.Or(c.Logger, slog.Default())
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// ErrNoTokens is New's error when no token is configured and Insecure is
// not set.
var ErrNoTokens = errors.New("no API tokens configured: set HOOKSTREAM_API_TOKENS (name:scope:secret, scope read or admin), or --api-insecure to serve without authentication (loopback only)")

// Server answers the API. Create it with New; its Handler serves requests
// and Run feeds the live clients.
type Server struct {
	cfg    Config
	rdb    redis.UniversalClient
	db     *pgxpool.Pool
	log    *slog.Logger
	mux    *http.ServeMux
	routes []route
	hub    *hub
}

// route is one registered route: what openapi.yaml must describe.
type route struct {
	method, pattern string
	scope           Scope // 0: no token needed
}

// New builds the API over rdb and db for the namespace of cfg.Keys. It
// reads nothing yet.
func New(rdb redis.UniversalClient, db *pgxpool.Pool, cfg Config) (*Server, error) {
	cfg = cfg.withDefaults()
	if len(cfg.Tokens) == 0 && !cfg.Insecure {
		return nil, ErrNoTokens
	}
	if err := cfg.Windows.Validate(); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, rdb: rdb, db: db, log: cfg.Logger.With("role", "api"), mux: http.NewServeMux()}
	s.hub = newHub(s)
	s.register()
	return s, nil
}

func (s *Server) register() {
	const v1 = "/api/v1"
	h := func(method, pattern string, scope Scope, fn http.HandlerFunc) {
		s.routes = append(s.routes, route{method, v1 + pattern, scope})
		if pattern != "/live" {
			fn = withTimeout(RequestTimeout, fn)
		}
		fn = textOnly(fn)
		s.mux.Handle(method+" "+v1+pattern, s.logged(s.authorized(scope, fn)))
	}
	h("GET", "/info", ScopeRead, s.info)
	h("GET", "/events", ScopeRead, s.listEvents)
	h("GET", "/events/{id}", ScopeRead, s.getEvent)
	h("GET", "/metrics", ScopeRead, s.queryMetrics)
	h("GET", "/metrics/catalog", ScopeRead, s.metricCatalog)
	h("GET", "/metrics/compare", ScopeRead, s.compareMetric)
	h("GET", "/journeys", ScopeRead, s.listJourneys)
	h("GET", "/journeys/{name}/funnel", ScopeRead, s.funnel)
	h("GET", "/journeys/{name}/compare", ScopeRead, s.compareFunnels)
	h("GET", "/journeys/{name}/instances", ScopeRead, s.listInstances)
	h("GET", "/journeys/{name}/instances/{subject}", ScopeRead, s.getInstance)
	h("GET", "/anomalies", ScopeRead, s.listAnomalies)
	h("GET", "/forecasts", ScopeRead, s.forecasts)
	h("GET", "/forecasts/backtest", ScopeRead, s.backtests)
	h("GET", "/status", ScopeRead, s.status)
	h("GET", "/dlq", ScopeRead, s.listDeadLetters)
	h("GET", "/dlq/{id}", ScopeRead, s.getDeadLetter)
	h("POST", "/dlq/{id}/replay", ScopeAdmin, s.requeueDeadLetter)
	h("POST", "/dlq/{id}/discard", ScopeAdmin, s.discardDeadLetter)
	h("POST", "/process/pause", ScopeAdmin, s.pause(true))
	h("POST", "/process/resume", ScopeAdmin, s.pause(false))
	h("GET", "/alerts", ScopeRead, s.listAlerts)
	h("GET", "/alerts/notifications", ScopeRead, s.alertNotifications)
	h("POST", "/alerts/test", ScopeAdmin, s.testAlertTarget)
	h("GET", "/alerts/{fingerprint}", ScopeRead, s.getAlert)
	h("POST", "/alerts/{fingerprint}/ack", ScopeAdmin, s.ackAlert)
	h("GET", "/silences", ScopeRead, s.listSilences)
	h("POST", "/silences", ScopeAdmin, s.createSilence)
	h("GET", "/silences/{id}", ScopeRead, s.getSilence)
	h("DELETE", "/silences/{id}", ScopeAdmin, s.expireSilence)
	h("GET", "/reconcile/runs", ScopeRead, s.listReconcileRuns)
	h("GET", "/reconcile/runs/{id}", ScopeRead, s.getReconcileRun)
	h("GET", "/reconcile/report", ScopeRead, s.reconcileReport)
	h("GET", "/live", ScopeRead, s.live)
	h("GET", "/openapi.json", 0, s.openAPI)

	// Answers for what no route takes, as problems too: 405 when the path
	// is a route's with another method (the methods that would be served
	// are found by asking the mux, since a fallback pattern per path
	// without a method would conflict with a method's wildcard route, as
	// /alerts/test with GET /alerts/{fingerprint}), 404 otherwise.
	var methods []string
	for _, r := range s.routes {
		if !slices.Contains(methods, r.method) {
			methods = append(methods, r.method)
		}
	}
	s.mux.Handle(v1+"/", s.logged(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if allowed := s.allowedMethods(r, methods); len(allowed) > 0 {
			w.Header().Set("Allow", strings.Join(allowed, ", "))
			writeProblem(w, r, http.StatusMethodNotAllowed, ProblemNotFound, r.Method+" is not allowed here; use "+strings.Join(allowed, " or "), "")
			return
		}
		writeProblem(w, r, http.StatusNotFound, ProblemNotFound, "no such route; the routes are listed at "+v1+"/openapi.json", "")
	})))
	s.mux.Handle("/", consoleHandler())
}

// allowedMethods are those of methods a route serves r's path with.
func (s *Server) allowedMethods(r *http.Request, methods []string) []string {
	var out []string
	for _, m := range methods {
		q := r.Clone(r.Context())
		q.Method = m
		if _, pattern := s.mux.Handler(q); strings.HasPrefix(pattern, m+" ") {
			out = append(out, m)
		}
	}
	return out
}

// Handler serves the API, the live feed and the console.
func (s *Server) Handler() http.Handler { return s.mux }

var (
	requestsTotal = func(class string) *metrics.Counter {
		return metrics.GetOrCreateCounter(`hookstream_api_requests_total{class="` + class + `"}`)
	}
	requestDuration = metrics.NewHistogram(`hookstream_api_request_duration_seconds`)
	unauthorized    = metrics.NewCounter(`hookstream_api_unauthorized_total`)
	forbidden       = metrics.NewCounter(`hookstream_api_forbidden_total`)
)

type ctxKey int

const tokenKey ctxKey = 0

// statusWriter remembers the status written, for the access log.
type statusWriter struct {
	http.ResponseWriter
	status int
	token  string
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach Flush.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// logged writes the access log line: method, path, status, duration and
// the token's name (never its secret). Every API answer also tells
// browsers not to sniff it as something else than its Content-Type (an
// error's detail repeats what the request gave).
func (s *Server) logged(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		w.Header().Set("X-Content-Type-Options", "nosniff")
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		d := time.Since(start)
		requestDuration.Update(d.Seconds())
		requestsTotal(classOf(sw.status)).Inc()
		s.log.Info("api request", "method", r.Method, "path", r.URL.Path, "query", r.URL.RawQuery, "status", sw.status,
			"duration_ms", float64(d.Microseconds())/1000, "token", sw.token, "remote", r.RemoteAddr)
	})
}

func classOf(status int) string {
	switch {
	case status >= 500:
		return "5xx"
	case status >= 400:
		return "4xx"
	}
	return "2xx"
}

// authorized lets the request through when it bears a token of at least
// scope (scope 0: any request).
func (s *Server) authorized(scope Scope, next http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if scope == 0 {
			next(w, r)
			return
		}
		name, has, ok := s.authenticate(r)
		if !ok {
			unauthorized.Inc()
			detail := "this route needs a token: send Authorization: Bearer <secret>"
			challenge := `Bearer realm="hookstream"`
			if r.Header.Get("Authorization") != "" {
				detail = "the token is not valid: not a Bearer token, or no configured token has this secret"
				challenge += `, error="invalid_token"`
			}
			w.Header().Set("WWW-Authenticate", challenge)
			writeProblem(w, r, http.StatusUnauthorized, ProblemUnauthorized, detail, "Authorization")
			return
		}
		if sw, ok := w.(*statusWriter); ok {
			sw.token = name
		}
		if has < scope {
			forbidden.Inc()
			w.Header().Set("WWW-Authenticate", `Bearer realm="hookstream", error="insufficient_scope", scope="`+scope.String()+`"`)
			writeProblem(w, r, http.StatusForbidden, ProblemForbidden,
				"token "+name+" has scope "+has.String()+"; this needs "+scope.String(), "Authorization")
			return
		}
		next(w, r.WithContext(withToken(r.Context(), name, has)))
	})
}

// textOnly refuses a request whose path or query parameters hold bytes
// that are not UTF-8, or NUL: no stored value holds them (PostgreSQL's
// text cannot), and passed on they would fail in PostgreSQL as a 500.
func textOnly(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		bad := func(s string) bool { return !utf8.ValidString(s) || strings.ContainsRune(s, 0) }
		const detail = "holds a NUL or bytes that are not UTF-8; no stored value does"
		if bad(r.URL.Path) {
			writeProblem(w, r, http.StatusBadRequest, ProblemBadParameter, "path: "+detail, "path")
			return
		}
		for name, vs := range r.URL.Query() {
			for _, v := range vs {
				if bad(name) || bad(v) {
					name = strings.ToValidUTF8(strings.ReplaceAll(name, "\x00", ""), "?")
					writeProblem(w, r, http.StatusBadRequest, ProblemBadParameter, name+": "+detail, name)
					return
				}
			}
		}
		next(w, r)
	}
}

// RequestTimeout bounds every request but the live feed's.
const RequestTimeout = 30 * time.Second

func withTimeout(d time.Duration, fn http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), d)
		defer cancel()
		fn(w, r.WithContext(ctx))
	}
}
