package api

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hookstream/hookstream/internal/testenv"
	"github.com/hookstream/hookstream/process"
	"github.com/hookstream/hookstream/stream"
	"github.com/redis/go-redis/v9"
)

// sseMsg is one message (or comment) read from the live feed.
type sseMsg struct {
	id, typ, data, comment string
}

// sseClient reads a live feed in the background.
type sseClient struct {
	resp   *http.Response
	msgs   chan sseMsg
	cancel context.CancelFunc
}

// live connects to the live feed with query, resuming after lastID when
// given; it fails the test unless the answer is a stream.
func (f *fixture) live(t *testing.T, query, lastID, secret string) *sseClient {
	t.Helper()
	c, resp := f.liveAnswer(t, query, lastID, secret)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("live feed: %d", resp.StatusCode)
	}
	return c
}

func (f *fixture) liveAnswer(t *testing.T, query, lastID, secret string) (*sseClient, *http.Response) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", f.srv.URL+"/api/v1/live?"+query, nil)
	req.Header.Set("Authorization", "Bearer "+secret)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		defer cancel()
		var b [4096]byte
		n, _ := resp.Body.Read(b[:])
		checkAgainstOpenAPI(t, req, resp, b[:n])
		resp.Body.Close()
		return nil, resp
	}
	checkAgainstOpenAPI(t, req, resp, nil)
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("live feed Content-Type %q", ct)
	}
	c := &sseClient{resp: resp, msgs: make(chan sseMsg, 1<<16), cancel: cancel}
	go func() {
		defer close(c.msgs)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		var m sseMsg
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if m != (sseMsg{}) {
					c.msgs <- m
				}
				m = sseMsg{}
			case strings.HasPrefix(line, ":"):
				m.comment = strings.TrimSpace(line[1:])
			case strings.HasPrefix(line, "id: "):
				m.id = line[4:]
			case strings.HasPrefix(line, "event: "):
				m.typ = line[7:]
			case strings.HasPrefix(line, "data: "):
				m.data = line[6:]
			}
		}
	}()
	t.Cleanup(cancel)
	return c, resp
}

// next is the next message (comments skipped unless comments), or false
// when none comes within timeout or the stream ended.
func (c *sseClient) next(timeout time.Duration, comments bool) (sseMsg, bool) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		select {
		case m, ok := <-c.msgs:
			if !ok {
				return m, false
			}
			if m.typ == "" && m.data == "" && !comments {
				continue // a comment, or the id-only first message
			}
			return m, true
		case <-deadline.C:
			return sseMsg{}, false
		}
	}
}

func (f *fixture) storedIDs(t *testing.T) map[string]bool {
	rows, err := f.DB.Query(context.Background(), `SELECT id FROM events`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	ids := map[string]bool{}
	for rows.Next() {
		var id string
		rows.Scan(&id)
		ids[id] = true
	}
	return ids
}

// Every event stored while a client follows the feed reaches it exactly
// once, across a disconnect in the middle of a batch and a resume with
// Last-Event-ID while more events are being stored.
func TestLiveFeedDeliversEveryStoredEventOnceAcrossAReconnect(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	f.process(t)
	first := f.live(t, "types=event", "", readSecret)
	a, b := scenario(80, 21).Events, scenario(80, 22).Events
	f.Append(t, a)
	got := map[string]int{}
	var last string
	// Leave after a number of events that is no batch boundary but by chance.
	for n := 0; n < len(a)/2+3; n++ {
		m, ok := first.next(30*time.Second, false)
		if !ok {
			t.Fatalf("the live feed gave %d events, then nothing for 30s", n)
		}
		var ev process.StoredEvent
		if err := json.Unmarshal([]byte(m.data), &ev); err != nil || m.typ != "event" || ev.ID == "" || m.id == "" {
			t.Fatalf("message %+v: %v", m, err)
		}
		got[ev.ID]++
		last = m.id
	}
	first.cancel()
	f.Append(t, b)
	second := f.live(t, "types=event", last, readSecret)
	want := len(a) + len(b)
	for len(got) < want {
		m, ok := second.next(30*time.Second, false)
		if !ok {
			t.Fatalf("after the resume: %d of %d events, then nothing for 30s", len(got), want)
		}
		var ev process.StoredEvent
		json.Unmarshal([]byte(m.data), &ev)
		got[ev.ID]++
	}
	stored := f.storedIDs(t)
	for id, n := range got {
		if n != 1 {
			t.Errorf("event %s delivered %d times", id, n)
		}
		if !stored[id] {
			t.Errorf("event %s delivered but not stored", id)
		}
	}
	if len(stored) != want {
		t.Fatalf("%d events stored, want %d", len(stored), want)
	}
	// Nothing more comes: no repeats after the last.
	if m, ok := second.next(300*time.Millisecond, false); ok {
		t.Fatalf("an extra message after every event: %+v", m)
	}
}

// announce adds n events to the stored-events stream in entries of per,
// as processors do, and returns their ids.
func (f *fixture) announce(t *testing.T, prefix string, n, per int) []string {
	t.Helper()
	var ids []string
	pipe := f.Redis.Pipeline()
	for i := 0; i < n; i += per {
		var evs []process.StoredEvent
		for j := i; j < min(i+per, n); j++ {
			id := fmt.Sprintf("%s-%06d", prefix, j)
			ids = append(ids, id)
			evs = append(evs, process.StoredEvent{ID: id, Topic: "customer_created", Created: time.Unix(0, 0).UTC(), Received: time.Unix(0, 0).UTC(),
				CustomerID: "c" + fmt.Sprint(j%5), Source: "webhook"})
		}
		b, _ := json.Marshal(evs)
		pipe.XAdd(context.Background(), &redis.XAddArgs{Stream: f.Keys.Stored(), Values: []string{process.StoredField, string(b)}})
	}
	if _, err := pipe.Exec(context.Background()); err != nil {
		t.Fatal(err)
	}
	return ids
}

// A client that stops reading is disconnected once its buffer is full,
// while a client that keeps up gets every message.
func TestLiveFeedDropsAStalledClientWhileAHealthyOneKeepsReceiving(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(c *Config) { c.Live.Buffer = 600 })
	healthy := f.live(t, "types=event", "", readSecret)

	// The stalled client: a connection that asks for the feed and never
	// reads, with a receive buffer as small as the kernel allows.
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 1024) })
	}}
	conn, err := d.Dial("tcp", strings.TrimPrefix(f.srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /api/v1/live HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n", readSecret)
	testenv.WaitFor(t, 10*time.Second, "both clients to join the feed", func() bool { return f.s.hub.clientCount() == 2 })

	sent := map[string]bool{}
	received := 0
	for round := 0; f.s.hub.clientCount() == 2; round++ {
		if round > 400 {
			t.Fatal("the stalled client was never disconnected")
		}
		for _, id := range f.announce(t, fmt.Sprint("r", round), 500, 50) {
			sent[id] = true
		}
		// The healthy client keeps up with each round (a round fits in its
		// buffer: the hub hands an entry's messages over at once).
		for received < len(sent) {
			m, ok := healthy.next(30*time.Second, false)
			if !ok {
				t.Fatalf("the healthy client got %d of %d messages, then nothing for 30s", received, len(sent))
			}
			var ev process.StoredEvent
			json.Unmarshal([]byte(m.data), &ev)
			if !sent[ev.ID] {
				t.Fatalf("unexpected message %+v", m)
			}
			received++
		}
	}
	// After the drop the healthy one goes on.
	for _, id := range f.announce(t, "after", 100, 10) {
		sent[id] = true
	}
	for received < len(sent) {
		if _, ok := healthy.next(30*time.Second, false); !ok {
			t.Fatalf("after the drop, the healthy client got %d of %d", received, len(sent))
		}
		received++
	}
}

// Past the maximum number of clients the feed answers 503; a client
// without traffic gets heartbeats.
func TestLiveFeedLimitsClientsAndSendsHeartbeats(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(c *Config) { c.Live.MaxClients, c.Live.Heartbeat = 1, 20*time.Millisecond })
	c := f.live(t, "", "", readSecret)
	if m, ok := c.next(10*time.Second, true); !ok || m.comment == "" {
		t.Fatalf("first comment: %+v %v", m, ok)
	}
	beats := 0
	for beats < 3 {
		m, ok := c.next(10*time.Second, true)
		if !ok {
			t.Fatal("no heartbeat within 10s")
		}
		if m.comment == "heartbeat" {
			beats++
		}
	}
	_, resp := f.liveAnswer(t, "", "", readSecret)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("a second client: %d, want 503 with Retry-After", resp.StatusCode)
	}
}

// Filters select by type, topic and customer; bodies only for admins;
// windows come with their metrics.
func TestLiveFeedFiltersAndWindows(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	sc := scenario(30, 5)
	topic, customer := sc.Events[0].Topic, sc.Events[0].CustomerID
	byTopic := f.live(t, "types=event&topics="+topic, "", readSecret)
	byCustomer := f.live(t, "customer="+strings.ToUpper(customer), "", readSecret)
	bodies := f.live(t, "types=event&include=body", "", adminSecret)
	wins := f.live(t, "types=window", "", readSecret)
	if _, resp := f.liveAnswer(t, "include=body", "", readSecret); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("include=body with a read token: %d, want 403", resp.StatusCode)
	}
	f.process(t)
	f.store(t, sc.Events)
	count := func(pred func(e sim_Event) bool) int {
		n := 0
		for _, e := range sc.Events {
			if pred(sim_Event{e.Topic, e.CustomerID}) {
				n++
			}
		}
		return n
	}
	for _, c := range []struct {
		name   string
		client *sseClient
		want   int
		check  func(process.StoredEvent) bool
	}{
		{"topics", byTopic, count(func(e sim_Event) bool { return e.topic == topic }), func(e process.StoredEvent) bool { return e.Topic == topic }},
		{"customer", byCustomer, count(func(e sim_Event) bool { return e.customer == customer }), func(e process.StoredEvent) bool { return e.CustomerID == customer }},
	} {
		for i := 0; i < c.want; i++ {
			m, ok := c.client.next(30*time.Second, false)
			var ev process.StoredEvent
			json.Unmarshal([]byte(m.data), &ev)
			if !ok || m.typ != "event" || !c.check(ev) {
				t.Fatalf("%s filter: message %d of %d: %+v %v", c.name, i, c.want, m, ok)
			}
		}
		if m, ok := c.client.next(300*time.Millisecond, false); ok && m.typ == "event" {
			t.Fatalf("%s filter: an extra message %+v", c.name, m)
		}
	}
	m, ok := bodies.next(30*time.Second, false)
	var withBody struct {
		ID   string          `json:"id"`
		Body json.RawMessage `json:"body"`
	}
	json.Unmarshal([]byte(m.data), &withBody)
	if !ok || len(withBody.Body) == 0 || !strings.Contains(string(withBody.Body), withBody.ID) {
		t.Fatalf("include=body: %+v", m)
	}
	// The process role closes the simulated windows (they are long past).
	m, ok = wins.next(60*time.Second, false)
	var w WindowClosed
	if err := json.Unmarshal([]byte(m.data), &w); !ok || err != nil || m.typ != "window" || w.Window == "" || w.Metrics == nil || !w.Closed {
		t.Fatalf("window message %+v: %v (%+v)", m, err, w)
	}
}

type sim_Event struct{ topic, customer string }

// A client resuming from before what the stream still keeps is told what
// it missed, then gets what is kept.
func TestLiveFeedSaysWhenAResumeReachesPastTheRetention(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	c := f.live(t, "types=event", "", readSecret)
	f.announce(t, "old", 10, 5)
	m, ok := c.next(10*time.Second, false)
	if !ok {
		t.Fatal("no message")
	}
	c.cancel()
	// Trim everything, then add more: the resume point is gone.
	if err := f.Redis.XTrimMaxLen(context.Background(), f.Keys.Stored(), 0).Err(); err != nil {
		t.Fatal(err)
	}
	kept := f.announce(t, "new", 4, 4)
	r := f.live(t, "types=event", m.id, readSecret)
	g, ok := r.next(10*time.Second, false)
	if !ok || g.typ != "gap" || !strings.Contains(g.data, "/api/v1/events?from=") {
		t.Fatalf("first message after resuming past the retention: %+v", g)
	}
	for _, id := range kept {
		m, ok := r.next(10*time.Second, false)
		if !ok || !strings.Contains(m.data, id) {
			t.Fatalf("after the gap: %+v, want %s", m, id)
		}
	}
	if _, resp := f.liveAnswer(t, "", "garbage", readSecret); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("a malformed Last-Event-ID: %d", resp.StatusCode)
	}
}

var _ = stream.AnnounceMaxLen
