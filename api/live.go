package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/hookstream/hookstream/alert"
	"github.com/hookstream/hookstream/anomaly"
	"github.com/hookstream/hookstream/process"
	"github.com/hookstream/hookstream/store"
	"github.com/hookstream/hookstream/windows"
	"github.com/redis/go-redis/v9"
)

// The live feed: GET /api/v1/live, Server-Sent Events.
//
// One reader per process (the hub) reads the announcement streams the
// processors and the closer write (stored events, closed windows) and fans
// every message out to the connected clients, each through a bounded
// buffer: a client that falls a buffer behind is disconnected, so it can
// neither slow the others nor grow memory. A client reconnecting with
// Last-Event-ID first catches up from the streams themselves, then joins
// the fan-out exactly where its catch-up ended, so nothing is lost or
// repeated within what the streams keep (see docs/api.md).
//
// A message's id is the position of the feed after it, in every stream
// (entry id, plus how many of that entry's messages were sent when an
// entry holds several, as a stored-events batch does), so resuming from it
// is exact whatever types the client asked for.

// source is one announcement stream the feed reads.
type source struct {
	typ    string // the SSE event type
	key    string
	decode func(ctx context.Context, s *Server, values map[string]any) ([]payload, error)
}

// payload is one message of an entry, before it gets its id.
type payload struct {
	data     []byte
	event    *process.StoredEvent // for filters and bodies; nil for other types
	withBody []byte               // data with the body, when a client asked for bodies
}

// pos is where the feed is in one stream: every entry up to id is sent,
// except, when skip > 0, entry id itself is sent only up to its first
// skip messages.
type pos struct {
	id   string
	skip int
}

// position is a pos per source, in sources order.
type position []pos

func (p position) String() string {
	var b strings.Builder
	for i, q := range p {
		if i > 0 {
			b.WriteByte('_')
		}
		b.WriteString(q.id)
		b.WriteByte('-')
		b.WriteString(strconv.Itoa(q.skip))
	}
	return b.String()
}

// parsePosition reads a Last-Event-ID. An id from a version with fewer
// streams resumes those and starts the others at now.
func parsePosition(s string, now position) (position, error) {
	parts := strings.Split(s, "_")
	if len(parts) > len(now) {
		return nil, errors.New("it names more streams than this feed has")
	}
	out := slices.Clone(now)
	for i, part := range parts {
		f := strings.Split(part, "-")
		if len(f) != 3 {
			return nil, fmt.Errorf("part %q is not ms-seq-skip", part)
		}
		var n [3]uint64
		for j := range f {
			v, err := strconv.ParseUint(f[j], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("part %q is not ms-seq-skip", part)
			}
			n[j] = v
		}
		out[i] = pos{id: f[0] + "-" + f[1], skip: int(n[2])}
	}
	return out, nil
}

// compareIDs orders stream entry ids.
func compareIDs(a, b string) int {
	ams, aseq, _ := strings.Cut(a, "-")
	bms, bseq, _ := strings.Cut(b, "-")
	x, _ := strconv.ParseUint(ams, 10, 64)
	y, _ := strconv.ParseUint(bms, 10, 64)
	if x != y {
		if x < y {
			return -1
		}
		return 1
	}
	x, _ = strconv.ParseUint(aseq, 10, 64)
	y, _ = strconv.ParseUint(bseq, 10, 64)
	switch {
	case x < y:
		return -1
	case x > y:
		return 1
	}
	return 0
}

var (
	liveClients  = metrics.NewCounter(`hookstream_api_live_clients`) // gauge kept by Inc/Dec
	liveDropped  = metrics.NewCounter(`hookstream_api_live_dropped_total`)
	liveRefused  = metrics.NewCounter(`hookstream_api_live_refused_total`)
	liveMessages = metrics.NewCounter(`hookstream_api_live_messages_total`)
	liveGaps     = metrics.NewCounter(`hookstream_api_live_gaps_total`)
	liveReads    = metrics.NewCounter(`hookstream_api_live_read_errors_total`)
)

// frame is one message ready to send.
type frame struct {
	typ      string
	id       string
	data     []byte
	withBody []byte
	event    *process.StoredEvent
}

// filter is what one client asked for.
type filter struct {
	types    []string // empty: every type
	topics   []string // empty: every topic
	customer string
	body     bool
}

func (f *filter) wants(fr *frame) bool {
	if len(f.types) > 0 && !slices.Contains(f.types, fr.typ) {
		return false
	}
	if fr.event != nil {
		if len(f.topics) > 0 && !slices.Contains(f.topics, fr.event.Topic) {
			return false
		}
		if f.customer != "" && fr.event.CustomerID != f.customer {
			return false
		}
	} else if len(f.topics) > 0 || f.customer != "" {
		return false // topic and customer filters select events only
	}
	return true
}

// client is one connected live client.
type client struct {
	f    filter
	ch   chan *frame
	gone chan struct{} // closed when the hub drops it
	once sync.Once
}

func (c *client) drop() { c.once.Do(func() { close(c.gone) }) }

// hub is the one reader of a process.
type hub struct {
	s       *Server
	sources []source

	mu      sync.Mutex
	at      position // after the last message fanned out (whole entries)
	clients map[*client]struct{}
	ready   chan struct{}
	started atomic.Bool
	count   atomic.Int64 // clients connected, catching up included
	bodies  atomic.Int64 // clients that asked for bodies
}

func newHub(s *Server) *hub {
	return &hub{s: s, clients: map[*client]struct{}{}, ready: make(chan struct{}), sources: []source{
		{typ: "event", key: s.cfg.Keys.Stored(), decode: decodeStored},
		{typ: "window", key: s.cfg.Keys.WindowsClosed(), decode: decodeWindow},
		{typ: "anomaly", key: s.cfg.Keys.Anomalies(), decode: decodeAnomaly},
		{typ: "alert", key: s.cfg.Keys.Alerts(), decode: decodeAlert},
	}}
}

func decodeStored(ctx context.Context, s *Server, values map[string]any) ([]payload, error) {
	evs, err := process.DecodeStored(values)
	if err != nil {
		return nil, err
	}
	out := make([]payload, len(evs))
	var bodies map[string][]byte
	if s.hub.bodies.Load() > 0 {
		ids := make([]string, len(evs))
		for i := range evs {
			ids[i] = evs[i].ID
		}
		bctx, cancel := context.WithTimeout(ctx, readTimeout)
		bodies, err = store.EventBodies(bctx, s.db, ids)
		cancel()
		if err != nil {
			s.log.Warn("live feed: cannot read event bodies; those clients get events without them", "err", err)
		}
	}
	for i := range evs {
		e := &evs[i]
		out[i] = payload{event: e}
		out[i].data, _ = json.Marshal(e)
		if b, ok := bodies[e.ID]; ok {
			out[i].withBody, _ = json.Marshal(struct {
				*process.StoredEvent
				Body json.RawMessage `json:"body"`
			}{e, rawBody(b)})
		}
	}
	return out, nil
}

// readTimeout bounds what the feed reads from PostgreSQL for a message
// (bodies, a window's metrics): past it the message goes out without them,
// rather than holding every client back.
const readTimeout = 2 * time.Second

func decodeAnomaly(_ context.Context, _ *Server, values map[string]any) ([]payload, error) {
	rec, err := anomaly.DecodeAnnouncement(values)
	if err != nil {
		return nil, err
	}
	data, _ := json.Marshal(rec)
	return []payload{{data: data}}, nil
}

func decodeAlert(_ context.Context, _ *Server, values map[string]any) ([]payload, error) {
	a, err := alert.DecodeAnnouncement(values)
	if err != nil {
		return nil, err
	}
	data, _ := json.Marshal(a)
	return []payload{{data: data}}, nil
}

// WindowClosed is the data of a window message.
type WindowClosed struct {
	windows.WindowReport
	Watermark string `json:"watermark,omitempty"`
	// Error says why Metrics are missing (PostgreSQL could not be read).
	Error string `json:"error,omitempty"`
}

func decodeWindow(ctx context.Context, s *Server, values map[string]any) ([]payload, error) {
	str := func(k string) string { v, _ := values[k].(string); return v }
	size, err := time.ParseDuration(str("size"))
	if err != nil {
		return nil, fmt.Errorf("window entry: size %q: %w", str("size"), err)
	}
	start, err := time.Parse(time.RFC3339, str("start"))
	if err != nil {
		return nil, fmt.Errorf("window entry: start %q: %w", str("start"), err)
	}
	wc := WindowClosed{Watermark: str("watermark")}
	rctx, cancel := context.WithTimeout(ctx, readTimeout)
	defer cancel()
	wc.WindowReport, err = windows.ReadWindow(rctx, s.db, windows.Basis(str("basis")), size, start)
	if err != nil {
		wc.Error = err.Error()
		wc.Count, _ = strconv.ParseInt(str("count"), 10, 64)
		wc.Closed, wc.Metrics = true, nil
	}
	data, _ := json.Marshal(wc)
	return []payload{{data: data}}, nil
}

// Run reads the streams and fans out until ctx ends.
func (s *Server) Run(ctx context.Context) error { return s.hub.run(ctx) }

func (h *hub) run(ctx context.Context) error {
	if !h.started.CompareAndSwap(false, true) {
		return errors.New("the live feed is already running")
	}
	log := h.s.log
	// Start at the end of every stream: the feed is live; history is
	// for clients that resume.
	at := make(position, len(h.sources))
	for {
		err := func() error {
			for i, src := range h.sources {
				last, err := h.s.rdb.XRevRangeN(ctx, src.key, "+", "-", 1).Result()
				if err != nil {
					return err
				}
				at[i] = pos{id: "0-0"}
				if len(last) == 1 {
					at[i].id = last[0].ID
				}
			}
			return nil
		}()
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return nil
		}
		liveReads.Inc()
		log.Warn("live feed: cannot read the streams' ends from Redis; retrying", "err", err)
		if !sleep(ctx, time.Second) {
			return nil
		}
	}
	h.mu.Lock()
	h.at = slices.Clone(at)
	h.mu.Unlock()
	close(h.ready)
	log.Info("live feed reading", "streams", len(h.sources))
	args := make([]string, 2*len(h.sources))
	for {
		for i, src := range h.sources {
			args[i], args[len(h.sources)+i] = src.key, at[i].id
		}
		var res []redis.XStream
		var err error
		if _, cluster := h.s.rdb.(*redis.ClusterClient); cluster {
			res, err = h.readEach(ctx, args)
		} else {
			res, err = h.s.rdb.XRead(ctx, &redis.XReadArgs{Streams: args, Count: 256, Block: h.s.cfg.Live.Block}).Result()
		}
		if ctx.Err() != nil {
			h.closeAll()
			return nil
		}
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			liveReads.Inc()
			log.Warn("live feed: cannot read from Redis; retrying (clients wait, nothing is lost)", "err", err)
			if !sleep(ctx, time.Second) {
				h.closeAll()
				return nil
			}
			continue
		}
		for _, st := range res {
			i := slices.IndexFunc(h.sources, func(s source) bool { return s.key == st.Stream })
			for _, m := range st.Messages {
				frames := h.frames(ctx, i, m, at)
				at[i] = pos{id: m.ID}
				h.fanOut(frames, at)
			}
		}
	}
}

// readEach is the read on a Redis Cluster, where the sources' streams sit in
// different hash slots and one XREAD cannot span them: each is read without
// blocking (one pipeline, split by node), with a short pause when all were
// empty. args is XREAD's streams-then-ids list. Nothing new is redis.Nil.
func (h *hub) readEach(ctx context.Context, args []string) ([]redis.XStream, error) {
	n := len(args) / 2
	cmds := make([]*redis.XStreamSliceCmd, n)
	_, _ = h.s.rdb.Pipelined(ctx, func(pipe redis.Pipeliner) error {
		for i := range n {
			cmds[i] = pipe.XRead(ctx, &redis.XReadArgs{Streams: []string{args[i], args[n+i]}, Count: 256, Block: -1})
		}
		return nil
	})
	var out []redis.XStream
	for _, c := range cmds {
		res, err := c.Result()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, res...)
	}
	if len(out) == 0 {
		sleep(ctx, min(h.s.cfg.Live.Block, 100*time.Millisecond))
		return nil, redis.Nil
	}
	return out, nil
}

// frames makes the frames of entry m of source i, read after position at.
func (h *hub) frames(ctx context.Context, i int, m redis.XMessage, at position) []*frame {
	src := h.sources[i]
	ps, err := src.decode(ctx, h.s, m.Values)
	if err != nil {
		h.s.log.Warn("live feed: skipping an entry that cannot be read", "stream", src.key, "entry", m.ID, "err", err)
		return nil
	}
	out := make([]*frame, len(ps))
	cur := slices.Clone(at)
	for j, p := range ps {
		cur[i] = pos{id: m.ID, skip: j + 1}
		if j == len(ps)-1 {
			cur[i].skip = 0
		}
		out[j] = &frame{typ: src.typ, id: cur.String(), data: p.data, withBody: p.withBody, event: p.event}
	}
	return out
}

// fanOut hands frames to every client and moves the hub to at; a client
// whose buffer is full is dropped.
func (h *hub) fanOut(frames []*frame, at position) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for c := range h.clients {
		for _, f := range frames {
			if !c.f.wants(f) {
				continue
			}
			select {
			case c.ch <- f:
			default:
				liveDropped.Inc()
				delete(h.clients, c)
				c.drop()
			}
		}
	}
	liveMessages.Add(len(frames))
	h.at = slices.Clone(at)
}

func (h *hub) closeAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for c := range h.clients {
		delete(h.clients, c)
		c.drop()
	}
}

// now is the hub's position.
func (h *hub) now() position {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.at)
}

// join registers c if the hub is still at p, and reports whether it did.
func (h *hub) join(c *client, p position) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !slices.Equal(h.at, p) {
		return false
	}
	h.clients[c] = struct{}{}
	return true
}

// joinNow registers c at the hub's position, which it returns.
func (h *hub) joinNow(c *client) position {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.clients[c] = struct{}{}
	return slices.Clone(h.at)
}

// clientCount is how many clients the hub fans out to.
func (h *hub) clientCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.clients)
}

func (h *hub) leave(c *client) {
	h.mu.Lock()
	delete(h.clients, c)
	h.mu.Unlock()
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// liveTypes are the message types a client can ask for.
var liveTypes = []string{"event", "window", "anomaly", "alert"}

func (s *Server) live(w http.ResponseWriter, r *http.Request) {
	h := s.hub
	p := readParams(r.URL, "types", "topics", "customer", "include")
	f := filter{types: p.list("types"), topics: p.list("topics"), customer: strings.ToLower(p.str("customer"))}
	for _, t := range f.types {
		if !slices.Contains(liveTypes, t) {
			p.fail("types", strconv.Quote(t)+" is not a type; use "+strings.Join(liveTypes, ", "))
		}
	}
	f.body = p.choice("include", "", "body") == "body"
	if p.err != nil {
		s.fail(w, r, "", p.err)
		return
	}
	if f.body && tokenOf(r.Context()).scope < ScopeAdmin {
		forbidden.Inc()
		writeProblem(w, r, http.StatusForbidden, ProblemForbidden, "include=body needs an admin token; event bodies are not for read tokens", "include")
		return
	}
	// The reader starts once Redis answers; until then, say so rather than
	// hold the client.
	wait := time.NewTimer(5 * time.Second)
	defer wait.Stop()
	select {
	case <-h.ready:
	case <-r.Context().Done():
		return
	case <-wait.C:
		w.Header().Set("Retry-After", "5")
		writeProblem(w, r, http.StatusServiceUnavailable, ProblemUnavailable, "the live feed has not started reading: Redis has not answered yet; retry shortly", "")
		return
	}
	var from position
	if last := r.Header.Get("Last-Event-ID"); last != "" {
		var err error
		if from, err = parsePosition(last, h.now()); err != nil {
			writeProblem(w, r, http.StatusBadRequest, ProblemBadParameter, "Last-Event-ID "+strconv.Quote(last)+": "+err.Error()+"; send the id of the last message received", "Last-Event-ID")
			return
		}
	}
	if n := h.count.Add(1); n > int64(s.cfg.Live.MaxClients) {
		h.count.Add(-1)
		liveRefused.Inc()
		w.Header().Set("Retry-After", "10")
		writeProblem(w, r, http.StatusServiceUnavailable, ProblemTooMany, fmt.Sprintf("the live feed has its maximum of %d clients; retry later", s.cfg.Live.MaxClients), "")
		return
	}
	defer h.count.Add(-1)
	if f.body {
		h.bodies.Add(1)
		defer h.bodies.Add(-1)
	}
	liveClients.Inc()
	defer liveClients.Dec()

	c := &client{f: f, ch: make(chan *frame, s.cfg.Live.Buffer), gone: make(chan struct{})}
	var start position
	if from == nil {
		// A new client joins the fan-out before its answer starts, so that
		// everything announced after it saw the answer reaches it, and its
		// first message is that position (an id without data): a client
		// that reconnects before any message resumes from there.
		start = h.joinNow(c)
		defer h.leave(c)
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	out := &sseWriter{w: w, rc: http.NewResponseController(w), body: f.body}
	out.comment("hookstream live feed; retry after 2s")
	out.raw("retry: 2000\n\n")
	if start != nil {
		out.raw("id: " + start.String() + "\n\n")
	}
	if err := out.flush(); err != nil {
		return
	}
	if from != nil {
		if err := h.catchUp(r.Context(), c, from, out); err != nil {
			if r.Context().Err() == nil {
				s.log.Info("live client left during catch-up", "err", err, "token", tokenOf(r.Context()).name)
			}
			return
		}
	}
	defer h.leave(c)
	beat := time.NewTicker(s.cfg.Live.Heartbeat)
	defer beat.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-c.gone:
			// Dropped for falling behind, or the server is stopping. What
			// is buffered is still sent; the client resumes after it.
			for {
				select {
				case fr := <-c.ch:
					out.frame(fr)
					continue
				default:
				}
				break
			}
			out.flush()
			return
		case <-beat.C:
			out.comment("heartbeat")
		case fr := <-c.ch:
			out.frame(fr)
			for n := len(c.ch); n > 0; n-- {
				out.frame(<-c.ch)
			}
		}
		if err := out.flush(); err != nil {
			h.leave(c)
			return
		}
	}
}

// catchUp sends c what came after from, reading the streams, until it
// reaches the hub's position, then joins c to the hub there.
func (h *hub) catchUp(ctx context.Context, c *client, from position, out *sseWriter) error {
	told := make([]bool, len(h.sources)) // a gap is told once per stream
	for {
		target := h.now()
		for i := range h.sources {
			var err error
			if from, err = h.history(ctx, c, i, from, target, out, told); err != nil {
				return err
			}
		}
		if err := out.flush(); err != nil {
			return err
		}
		if h.join(c, target) {
			return nil
		}
	}
}

// historyPage is how many entries one read of a stream's history takes.
const historyPage = 200

// history sends c the messages of source i after from[i] up to target[i],
// and returns the position after them.
func (h *hub) history(ctx context.Context, c *client, i int, from, target position, out *sseWriter, told []bool) (position, error) {
	src := h.sources[i]
	if compareIDs(from[i].id, target[i].id) > 0 {
		from[i] = target[i] // an id from the future (another Redis): start at now
	}
	if !told[i] && (len(c.f.types) == 0 || slices.Contains(c.f.types, src.typ)) {
		var err error
		if told[i], err = h.gap(ctx, i, from[i], out); err != nil {
			return from, err
		}
	}
	start, skip := "("+from[i].id, 0
	if from[i].skip > 0 {
		start, skip = from[i].id, from[i].skip
	}
	for compareIDs(from[i].id, target[i].id) < 0 || from[i].skip > 0 {
		msgs, err := h.s.rdb.XRangeN(ctx, src.key, start, target[i].id, historyPage).Result()
		if err != nil {
			return from, fmt.Errorf("read %s: %w", src.key, err)
		}
		if len(msgs) == 0 {
			from[i] = target[i]
			break
		}
		for _, m := range msgs {
			frames := h.frames(ctx, i, m, from)
			if m.ID == from[i].id && skip > 0 {
				frames = frames[min(skip, len(frames)):]
			}
			skip = 0
			for _, fr := range frames {
				if c.f.wants(fr) {
					out.frame(fr)
				}
			}
			from[i] = pos{id: m.ID}
			start = "(" + m.ID
		}
		if err := out.flush(); err != nil {
			return from, err
		}
	}
	return from, nil
}

// gap tells the client when entries after p were trimmed from source i
// before it resumed: what it missed is no longer in the feed, only in the
// tables. Streams are trimmed from their oldest end only (nothing is
// deleted from the middle), so entries after p are gone exactly when
// something was trimmed and the oldest entry kept is after p, unless p was
// itself the last one trimmed: then the client is told of a gap it did not
// have, which costs it one needless read of the API, never a lost message.
func (h *hub) gap(ctx context.Context, i int, p pos, out *sseWriter) (bool, error) {
	info, err := h.s.rdb.XInfoStream(ctx, h.sources[i].key).Result()
	if errors.Is(err, redis.Nil) || (err != nil && strings.Contains(err.Error(), "no such key")) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read %s: %w", h.sources[i].key, err)
	}
	gone := compareIDs(info.FirstEntry.ID, p.id) > 0
	if info.Length == 0 { // every entry is gone, up to the last one added
		c := compareIDs(info.LastGeneratedID, p.id)
		gone = c > 0 || (c == 0 && p.skip > 0)
	}
	if info.EntriesAdded <= info.Length || !gone {
		return false, nil
	}
	liveGaps.Inc()
	ms, _, _ := strings.Cut(p.id, "-")
	n, _ := strconv.ParseInt(ms, 10, 64)
	since := time.UnixMilli(n).UTC().Format(time.RFC3339Nano)
	read := map[string]string{
		"event":   "GET /api/v1/events?from=" + since,
		"window":  "GET /api/v1/metrics?from=" + since,
		"anomaly": "GET /api/v1/anomalies?from=" + since,
		"alert":   "GET /api/v1/alerts?state=all",
	}[h.sources[i].typ]
	data, _ := json.Marshal(map[string]string{
		"type": h.sources[i].typ, "resumed_from": since, "earliest": info.FirstEntry.ID,
		"detail": "some " + h.sources[i].typ + " messages after " + since + " are older than the live feed keeps; read them from the API: " + read,
	})
	out.frame(&frame{typ: "gap", data: data})
	return true, nil
}

// sseWriter writes Server-Sent Events, buffered until flush.
type sseWriter struct {
	w    http.ResponseWriter
	rc   *http.ResponseController
	body bool
	buf  []byte
}

func (o *sseWriter) frame(f *frame) {
	if f.id != "" {
		o.buf = append(o.buf, "id: "...)
		o.buf = append(o.buf, f.id...)
		o.buf = append(o.buf, '\n')
	}
	o.buf = append(o.buf, "event: "...)
	o.buf = append(o.buf, f.typ...)
	o.buf = append(o.buf, "\ndata: "...)
	if o.body && f.withBody != nil {
		o.buf = append(o.buf, f.withBody...)
	} else {
		o.buf = append(o.buf, f.data...)
	}
	o.buf = append(o.buf, "\n\n"...)
}

func (o *sseWriter) comment(s string) { o.buf = append(o.buf, ": "+s+"\n\n"...) }

func (o *sseWriter) raw(s string) { o.buf = append(o.buf, s...) }

// writeTimeout bounds one write to a client: a client that stops reading
// is disconnected rather than holding its goroutine for ever.
const writeTimeout = 10 * time.Second

func (o *sseWriter) flush() error {
	if len(o.buf) == 0 {
		return nil
	}
	o.rc.SetWriteDeadline(time.Now().Add(writeTimeout))
	_, err := o.w.Write(o.buf)
	o.buf = o.buf[:0]
	if err == nil {
		err = o.rc.Flush()
	}
	return err
}
