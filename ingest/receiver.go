package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/hookstream/hookstream/dwolla"
	"github.com/hookstream/hookstream/stream"
	"github.com/redis/go-redis/v9"
)

// Pinger is anything that can tell whether it is reachable, such as *pgxpool.Pool.
type Pinger interface {
	Ping(ctx context.Context) error
}

var (
	ackSeconds = metrics.NewPrometheusHistogramExt(`hookstream_ingest_ack_seconds`,
		[]float64{.0005, .001, .002, .005, .01, .02, .05, .1, .25, .5, 1, 2.5, 5, 10})
	reqStored     = metrics.NewCounter(`hookstream_ingest_requests_total{outcome="stored"}`)
	reqDuplicate  = metrics.NewCounter(`hookstream_ingest_requests_total{outcome="duplicate"}`)
	reqSpooled    = metrics.NewCounter(`hookstream_ingest_requests_total{outcome="spooled"}`)
	reqNoSig      = metrics.NewCounter(`hookstream_ingest_requests_total{outcome="missing_signature"}`)
	reqBadSig     = metrics.NewCounter(`hookstream_ingest_requests_total{outcome="bad_signature"}`)
	reqBadRequest = metrics.NewCounter(`hookstream_ingest_requests_total{outcome="bad_request"}`)
	reqTooLarge   = metrics.NewCounter(`hookstream_ingest_requests_total{outcome="too_large"}`)
	reqMethod     = metrics.NewCounter(`hookstream_ingest_requests_total{outcome="method_not_allowed"}`)
	reqOverloaded = metrics.NewCounter(`hookstream_ingest_requests_total{outcome="overloaded"}`)
	reqFailed     = metrics.NewCounter(`hookstream_ingest_requests_total{outcome="failed"}`)
)

// Receiver is the webhook receiver. Create it with New, mount Handler, call
// Start before serving and Stop after the HTTP server has shut down.
type Receiver struct {
	opts     Options
	verifier *dwolla.Verifier
	rdb      redis.UniversalClient
	producer *stream.Producer
	keys     stream.Keys
	spool    *spool

	redisUp atomic.Bool
	queue   chan *pending
	quit    chan struct{}

	stopMu   sync.RWMutex
	stopping bool
	stopOnce sync.Once
	stopped  chan struct{} // closed when the shutdown Stop began has finished
	stopErr  error         // the shutdown's result, set before stopped is closed
	inflight sync.WaitGroup
	started  bool // Start ran (it counts a Redis seen down in redisDownNow)

	committers sync.WaitGroup
	drainDone  sync.WaitGroup
	bufs       sync.Pool
}

// New validates opts and returns a Receiver writing to the partition streams of keys.
func New(rdb redis.UniversalClient, keys stream.Keys, opts Options) (*Receiver, error) {
	opts = opts.withDefaults()
	if err := opts.validate(); err != nil {
		return nil, fmt.Errorf("invalid ingest options: %w", err)
	}
	r := &Receiver{
		opts:     opts,
		verifier: dwolla.NewVerifier(opts.Secrets),
		rdb:      rdb,
		producer: stream.NewProducer(rdb, keys, opts.SeenTTL),
		keys:     keys,
		queue:    make(chan *pending, opts.QueueSize),
		quit:     make(chan struct{}),
		stopped:  make(chan struct{}),
	}
	r.bufs.New = func() any { return new(bytes.Buffer) }
	return r, nil
}

// Start opens the spool and starts the committers and the spool drainer. It
// does not fail when Redis is down: the receiver then starts in spool mode.
func (r *Receiver) Start(ctx context.Context) error {
	sp, err := openSpool(r.opts.SpoolDir, r.opts.Logger)
	if err != nil {
		return err
	}
	r.spool = sp
	r.started = true
	lctx, cancel := context.WithTimeout(ctx, r.opts.RedisTimeout)
	defer cancel()
	if err := r.producer.Load(lctx); err != nil {
		r.opts.Logger.Error("redis unreachable at start; spooling events to local disk until it is back", "err", err, "spool_dir", r.opts.SpoolDir)
		redisDownNow.Add(1)
	} else {
		r.redisUp.Store(true)
	}
	for range r.opts.Committers {
		r.committers.Add(1)
		go r.committer()
	}
	r.drainDone.Add(1)
	go r.drainer()
	if !r.opts.VerifyOnly { // a benchmark ceiling: it stores nothing, so it has nothing to report
		r.drainDone.Add(1)
		go r.reporter()
	}
	return nil
}

// Stop stops taking new events and shuts the receiver down: every accepted
// event is committed (to Redis or the spool), then the committers and the
// drainer stop and the spool is closed. Shut the HTTP server down first so no
// request is cut off.
//
// The first call begins the shutdown, and it runs to its end whatever ctx
// does. If ctx ends first, Stop returns an error and the shutdown goes on in
// the background (requests still waiting get their answers); calling Stop
// again waits for it and returns its result, as does every later call.
func (r *Receiver) Stop(ctx context.Context) error {
	r.stopOnce.Do(func() {
		r.stopMu.Lock()
		r.stopping = true
		r.stopMu.Unlock()
		go r.shutdown()
	})
	select {
	case <-r.stopped:
		return r.stopErr
	case <-ctx.Done():
		return fmt.Errorf("ingest stop: not finished within the deadline (requests still waiting for their commit, or a commit or spool drain still running); the shutdown goes on, call Stop again to wait for it: %w", ctx.Err())
	}
}

// shutdown is the stop order: wait for the requests already admitted (their
// commits are queued or running), then stop the committers (the queue is
// empty by then: no request is admitted once stopping is set) and the drainer,
// and close the spool.
func (r *Receiver) shutdown() {
	defer close(r.stopped)
	r.inflight.Wait()
	close(r.quit)
	r.committers.Wait()
	r.drainDone.Wait()
	if r.started && !r.redisUp.Load() {
		redisDownNow.Add(-1)
	}
	if r.spool != nil {
		if err := r.spool.Close(); err != nil {
			r.stopErr = fmt.Errorf("ingest stop: close the spool in %s: %w; its segments stay on disk and drain at the next start", r.opts.SpoolDir, err)
		}
	}
}

// Handler serves POST /webhooks/dwolla, GET /healthz, GET /readyz and GET
// /metrics. Anything else is answered in JSON too: 405 for another method
// on those paths, 404 elsewhere (never net/http's plain-text pages, and
// never the path or a header echoed back).
func (r *Receiver) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/webhooks/dwolla", http.HandlerFunc(r.ServeWebhook))
	mux.Handle("/healthz", readOnly(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"status":"alive"}` + "\n"))
	}))
	mux.Handle("/readyz", readOnly(r.serveReady))
	mux.Handle("/metrics", readOnly(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		metrics.WritePrometheus(w, true)
	}))
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusNotFound, response{Status: "error", Error: "no such endpoint; webhooks are POSTed to /webhooks/dwolla"})
	})
	return mux
}

// readOnly serves fn for GET and HEAD, and 405 for any other method.
func readOnly(fn http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodGet && req.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			writeJSON(w, http.StatusMethodNotAllowed, response{Status: "error", Error: "only GET is accepted here"})
			return
		}
		fn(w, req)
	})
}

// response is the JSON body of every webhook answer.
type response struct {
	Status string `json:"status"`          // stored | duplicate | spooled | error
	ID     string `json:"id,omitempty"`    // event id, lower-cased
	Entry  string `json:"entry,omitempty"` // stream entry that holds the event
	Field  string `json:"field,omitempty"` // the offending field of a 400
	Error  string `json:"error,omitempty"` // what was wrong
	Retry  int    `json:"retry_after,omitempty"`
}

func writeJSON(w http.ResponseWriter, code int, v response) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

// writeOK answers a stored, duplicate or spooled event. It is the hot path,
// so it appends the JSON by hand: status is a constant and id was validated
// by the parser, but is still escaped.
func writeOK(w http.ResponseWriter, code int, status, id, entry string) {
	var buf [256]byte
	b := append(buf[:0], `{"status":"`...)
	b = append(b, status...)
	b = append(b, `","id":`...)
	b = appendJSONString(b, id)
	if entry != "" {
		b = append(b, `,"entry":"`...)
		b = append(b, entry...) // a stream entry id: digits and one dash
		b = append(b, '"')
	}
	b = append(b, "}\n"...)
	h := w.Header()
	h["Content-Type"] = contentTypeJSON
	w.WriteHeader(code)
	w.Write(b)
}

var contentTypeJSON = []string{"application/json"}

// appendJSONString appends s as a JSON string, escaping what JSON requires.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

// ServeWebhook handles one Dwolla webhook delivery.
func (r *Receiver) ServeWebhook(w http.ResponseWriter, req *http.Request) {
	start := time.Now()
	code := r.serveWebhook(w, req, start)
	if code < 300 {
		ackSeconds.UpdateDuration(start)
	}
}

func (r *Receiver) serveWebhook(w http.ResponseWriter, req *http.Request, start time.Time) int {
	if req.Method != http.MethodPost {
		reqMethod.Inc()
		w.Header().Set("Allow", http.MethodPost)
		writeJSON(w, http.StatusMethodNotAllowed, response{Status: "error", Error: "only POST is accepted"})
		return http.StatusMethodNotAllowed
	}
	if req.ContentLength > r.opts.MaxBody {
		reqTooLarge.Inc()
		writeJSON(w, http.StatusRequestEntityTooLarge, response{Status: "error", Error: fmt.Sprintf("body of %d bytes exceeds the %d byte limit", req.ContentLength, r.opts.MaxBody)})
		return http.StatusRequestEntityTooLarge
	}
	buf := r.bufs.Get().(*bytes.Buffer)
	buf.Reset()
	defer r.bufs.Put(buf)
	if _, err := buf.ReadFrom(http.MaxBytesReader(w, req.Body, r.opts.MaxBody)); err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			reqTooLarge.Inc()
			writeJSON(w, http.StatusRequestEntityTooLarge, response{Status: "error", Error: fmt.Sprintf("body exceeds the %d byte limit", r.opts.MaxBody)})
			return http.StatusRequestEntityTooLarge
		}
		reqBadRequest.Inc()
		writeJSON(w, http.StatusBadRequest, response{Status: "error", Error: "cannot read body: " + err.Error()})
		return http.StatusBadRequest
	}
	body := buf.Bytes()

	// Authenticate before parsing anything: an unsigned body is not looked at.
	sig := dwolla.SignatureFrom(req.Header)
	if sig == "" {
		reqNoSig.Inc()
		writeJSON(w, http.StatusUnauthorized, response{Status: "error", Error: "missing " + dwolla.SignatureHeader + " header"})
		return http.StatusUnauthorized
	}
	if !r.verifier.Verify(body, sig) {
		reqBadSig.Inc()
		writeJSON(w, http.StatusUnauthorized, response{Status: "error", Error: dwolla.SignatureHeader + " does not match the body under any configured secret"})
		return http.StatusUnauthorized
	}

	ev, err := dwolla.ParseEvent(body)
	if err != nil {
		reqBadRequest.Inc()
		resp := response{Status: "error", Error: err.Error()}
		if fe, ok := errors.AsType[*dwolla.FieldError](err); ok {
			resp.Field = fe.Field
		}
		writeJSON(w, http.StatusBadRequest, resp)
		return http.StatusBadRequest
	}

	e := stream.NewEntry(r.keys.Partition(ev.PartitionKey()), ev.ID, body, r.opts.Source)
	if r.opts.VerifyOnly {
		writeOK(w, http.StatusOK, "verified", e.ID, "")
		return http.StatusOK
	}
	o, entryID, err := r.commit(req.Context(), e, start)
	switch {
	case err == nil && o == outcomeStored:
		reqStored.Inc()
		writeOK(w, http.StatusOK, "stored", ev.ID, entryID)
		return http.StatusOK
	case err == nil && o == outcomeDuplicate:
		reqDuplicate.Inc()
		writeOK(w, http.StatusOK, "duplicate", ev.ID, entryID)
		return http.StatusOK
	case err == nil && o == outcomeSpooled:
		reqSpooled.Inc()
		writeOK(w, http.StatusAccepted, "spooled", ev.ID, "")
		return http.StatusAccepted
	}
	if errors.Is(err, errOverloaded) {
		reqOverloaded.Inc()
	} else {
		reqFailed.Inc()
	}
	secs := int(r.opts.RetryAfter / time.Second)
	w.Header().Set("Retry-After", strconv.Itoa(max(secs, 1)))
	writeJSON(w, http.StatusServiceUnavailable, response{Status: "error", ID: ev.ID, Error: "not stored: " + err.Error(), Retry: max(secs, 1)})
	return http.StatusServiceUnavailable
}

// Ready is the readiness report served on /readyz.
type Ready struct {
	Ready    bool       `json:"ready"`
	Redis    string     `json:"redis"`    // up | down: <error> (a live PING)
	Postgres string     `json:"postgres"` // up | down: <error> | not configured
	Spool    SpoolState `json:"spool"`
}

// SpoolState describes the local spool.
type SpoolState struct {
	Dir      string `json:"dir"`
	Depth    int64  `json:"depth"`
	Writable bool   `json:"writable"`
	Error    string `json:"error,omitempty"`
}

// Readiness reports whether the receiver can accept events: it can while
// either Redis (pinged now) or the spool can take them. PostgreSQL is
// reported, not required.
func (r *Receiver) Readiness(ctx context.Context) Ready {
	rd := Ready{Redis: "up", Postgres: "not configured", Spool: SpoolState{Dir: r.opts.SpoolDir}}
	rctx, cancel := context.WithTimeout(ctx, time.Second)
	if err := r.rdb.Ping(rctx).Err(); err != nil {
		rd.Redis = "down: " + err.Error()
	}
	cancel()
	if r.spool != nil {
		rd.Spool.Depth = r.spool.Depth()
		if err := r.spool.Writable(); err != nil {
			rd.Spool.Error = err.Error()
		} else {
			rd.Spool.Writable = true
		}
	}
	if r.opts.DB != nil {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		if err := r.opts.DB.Ping(pctx); err != nil {
			rd.Postgres = "down: " + err.Error()
		} else {
			rd.Postgres = "up"
		}
		cancel()
	}
	rd.Ready = rd.Redis == "up" || rd.Spool.Writable
	return rd
}

func (r *Receiver) serveReady(w http.ResponseWriter, req *http.Request) {
	rd := r.Readiness(req.Context())
	code := http.StatusOK
	if !rd.Ready {
		code = http.StatusServiceUnavailable
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(rd)
}
