package plugin

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/data"

	"github.com/hookstream/hookstream/grafana-plugin/pkg/apiclient"
	"github.com/hookstream/hookstream/grafana-plugin/pkg/models"
)

// liveSeed gives every batch of simulated events its own seed, so its ids
// are new to the hookstream (the sim's ids follow from the seed).
var liveSeed atomic.Int64

func init() { liveSeed.Store(1000) }

// simEvents sends the lifecycles of customers new customers to hs's
// receiver and returns the events' ids, from the sim's ground truth. (The
// sim's --verify events compares the whole store, which holds the other
// tests' events too: waitStored waits for these ones.)
func (hs *hookstream) simEvents(t *testing.T, customers int) []string {
	t.Helper()
	ids, err := hs.trySimEvents(filepath.Join(t.TempDir(), "truth.jsonl"), customers)
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// trySimEvents is simEvents for a goroutine other than the test's.
func (hs *hookstream) trySimEvents(truth string, customers int) ([]string, error) {
	seed := liveSeed.Add(1)
	out, err := hs.run("sim", "--url", hs.webhookURL+"/webhooks/dwolla", "--webhook-secrets", "plugin-secret",
		"--customers", fmt.Sprint(customers), "--seed", fmt.Sprint(seed), "--rate", "0", "--truth", truth,
		"--verify", "none")
	if err != nil {
		return nil, fmt.Errorf("%v\n%s", err, hs.logs.String())
	}
	f, err := os.Open(truth)
	if err != nil {
		return nil, fmt.Errorf("%v\n%s", err, out)
	}
	defer f.Close()
	var ids []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var e struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil || e.ID == "" {
			return nil, fmt.Errorf("truth line %q: %v", sc.Text(), err)
		}
		ids = append(ids, e.ID)
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("the sim sent no events:\n%s", out)
	}
	return ids, nil
}

// waitStored waits until the API lists every one of ids.
func (hs *hookstream) waitStored(t *testing.T, ids []string) {
	t.Helper()
	api, err := apiclient.New(hs.apiURL, readSecret, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := poll(60*time.Second, fmt.Sprintf("the %d events to be stored", len(ids)), func() bool {
		evs, err := api.Events(context.Background(), apiclient.EventsParams{Limit: models.MaxEvents})
		if err != nil {
			return false
		}
		stored := make([]string, len(evs))
		for i, e := range evs {
			stored[i] = e.ID
		}
		return hasAll(stored, ids)
	}); err != nil {
		t.Fatal(err)
	}
}

// packetRecorder is Grafana's side of a stream: it keeps the event ids of
// the frames RunStream sends, in order.
type packetRecorder struct {
	mu     sync.Mutex
	ids    []string
	frames []*data.Frame
}

func (r *packetRecorder) Send(p *backend.StreamPacket) error {
	var f data.Frame
	if err := json.Unmarshal(p.Data, &f); err != nil {
		return fmt.Errorf("a packet that is not a frame: %w: %s", err, p.Data)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.frames = append(r.frames, &f)
	if id, i := f.FieldByName("id"); i >= 0 {
		for row := range id.Len() {
			r.ids = append(r.ids, id.At(row).(string))
		}
	}
	return nil
}

func (r *packetRecorder) received() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.ids...)
}

// hasAll says whether got holds every id of want.
func hasAll(got, want []string) bool {
	set := make(map[string]bool, len(got))
	for _, id := range got {
		set[id] = true
	}
	for _, id := range want {
		if !set[id] {
			return false
		}
	}
	return true
}

// checkExactly fails unless got is want in some order: no id lost, none
// repeated, none extra.
func checkExactly(t *testing.T, got, want []string) {
	t.Helper()
	count := map[string]int{}
	for _, id := range got {
		count[id]++
	}
	wanted := map[string]bool{}
	for _, id := range want {
		wanted[id] = true
		if count[id] == 0 {
			t.Errorf("event %s was lost", id)
		}
	}
	for id, n := range count {
		if n > 1 {
			t.Errorf("event %s was sent %d times", id, n)
		}
		if !wanted[id] {
			t.Errorf("event %s was not sent by this test", id)
		}
	}
	if t.Failed() {
		sort.Strings(got)
		t.Logf("received %d ids, want %d", len(got), len(want))
	}
}

// runStream runs RunStream for path in the background; stop cancels it and
// checks it returned nil.
func runStream(t *testing.T, ds *Datasource, path string, rec *packetRecorder) (connections *atomic.Int64, stop func()) {
	t.Helper()
	connections = &atomic.Int64{}
	ds.liveConnected = func(string) { connections.Add(1) }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- ds.RunStream(ctx, &backend.RunStreamRequest{Path: path}, backend.NewStreamSender(rec))
	}()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("RunStream: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("RunStream did not return after its context was cancelled")
		}
	}
	t.Cleanup(stop)
	return connections, stop
}

func TestSubscribeAndPublishStream(t *testing.T) {
	hs := liveHookstream(t)
	ds := newTestDatasource(t, hs.apiURL, readSecret)
	ctx := context.Background()
	for path, want := range map[string]backend.SubscribeStreamStatus{
		"live/events":                 backend.SubscribeStreamStatusOK,
		"live/anomalies":              backend.SubscribeStreamStatusOK,
		"live/alerts":                 backend.SubscribeStreamStatusOK,
		"live/metrics/count":          backend.SubscribeStreamStatusOK,
		"live/metrics/failure_ratio":  backend.SubscribeStreamStatusOK,
		"live/metrics/speed":          backend.SubscribeStreamStatusNotFound,
		"live/metrics/":               backend.SubscribeStreamStatusNotFound,
		"live/metrics/count/5m":       backend.SubscribeStreamStatusNotFound,
		"live/metrics/count/5m/event": backend.SubscribeStreamStatusOK,
		"live/metrics/count//event":   backend.SubscribeStreamStatusNotFound,
		"live/events/logs":            backend.SubscribeStreamStatusOK,
		"live/events/logs/topic=customer_created/topic=transfer_failed": backend.SubscribeStreamStatusOK,
		"live/events/topic=":            backend.SubscribeStreamStatusNotFound,
		"live/events/topic=a/logs":      backend.SubscribeStreamStatusNotFound,
		"live/windows":                  backend.SubscribeStreamStatusNotFound,
		"live":                          backend.SubscribeStreamStatusNotFound,
		"":                              backend.SubscribeStreamStatusNotFound,
		"events":                        backend.SubscribeStreamStatusNotFound,
		"live/events/customer_verified": backend.SubscribeStreamStatusNotFound,
	} {
		resp, err := ds.SubscribeStream(ctx, &backend.SubscribeStreamRequest{Path: path})
		if err != nil {
			t.Errorf("%q: %v", path, err)
			continue
		}
		if resp.Status != want {
			t.Errorf("SubscribeStream %q: status %v, want %v", path, resp.Status, want)
		}
	}
	resp, err := ds.PublishStream(ctx, &backend.PublishStreamRequest{Path: "live/events", Data: []byte(`{}`)})
	if err != nil || resp.Status != backend.PublishStreamStatusPermissionDenied {
		t.Errorf("PublishStream: %v %v, want PermissionDenied", resp, err)
	}
}

// TestRunStreamEvents: a subscriber of live/events receives, as frames,
// exactly the events stored after it subscribed.
func TestRunStreamEvents(t *testing.T) {
	hs := liveHookstream(t)
	ds := newTestDatasource(t, hs.apiURL, readSecret)
	rec := &packetRecorder{}
	connections, stop := runStream(t, ds, "live/events", rec)
	if err := poll(30*time.Second, "the stream to connect", func() bool { return connections.Load() > 0 }); err != nil {
		t.Fatal(err)
	}
	ids := hs.simEvents(t, 3)
	if err := poll(30*time.Second, fmt.Sprintf("the %d new events on the stream", len(ids)), func() bool { return hasAll(rec.received(), ids) }); err != nil {
		t.Fatalf("%v: got %d", err, len(rec.received()))
	}
	stop()
	checkExactly(t, rec.received(), ids)
	// Each streamed frame has the schema of the events query's frame, so
	// Grafana appends it to what a live query returned.
	resp, err := ds.QueryData(context.Background(), &backend.QueryDataRequest{Queries: []backend.DataQuery{{
		RefID: "A", QueryType: "events", JSON: []byte(`{"live":true,"limit":1}`),
		TimeRange: backend.TimeRange{From: time.Unix(0, 0), To: time.Now().Add(24 * time.Hour)}}}})
	if err != nil || resp.Responses["A"].Error != nil {
		t.Fatalf("events query: %v %v", err, resp.Responses["A"].Error)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	f := rec.frames[0]
	if got, want := schemaOf(f), schemaOf(resp.Responses["A"].Frames[0]); got != want {
		t.Errorf("a live/events frame has the fields %s, the events query's frame %s", got, want)
	}
	if topic, _ := f.FieldByName("topic"); topic.At(0).(string) == "" {
		t.Errorf("an event frame without its topic")
	}
	if c := connections.Load(); c != 1 {
		t.Errorf("%d connections to the live feed, want 1", c)
	}
}

// schemaOf is a frame's fields as name:type.
func schemaOf(f *data.Frame) string {
	var b strings.Builder
	for _, fd := range f.Fields {
		fmt.Fprintf(&b, "%s:%s ", fd.Name, fd.Type())
	}
	return b.String()
}

// cuttingProxy forwards loopback connections to the API; cut drops every
// open one and, while blocked, new ones are closed at once.
type cuttingProxy struct {
	ln      net.Listener
	target  string
	mu      sync.Mutex
	conns   []net.Conn
	blocked bool
}

func newCuttingProxy(t *testing.T, target string) *cuttingProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cuttingProxy{ln: ln, target: target}
	t.Cleanup(func() { ln.Close(); p.cut() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			if p.blocked {
				p.mu.Unlock()
				c.Close()
				continue
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				p.mu.Unlock()
				c.Close()
				continue
			}
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			go func() { io.Copy(up, c); up.Close() }()
			go func() { io.Copy(c, up); c.Close() }()
		}
	}()
	return p
}

func (p *cuttingProxy) url() string { return "http://" + p.ln.Addr().String() }

func (p *cuttingProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

func (p *cuttingProxy) block(b bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.blocked = b
}

// TestRunStreamReconnects cuts the stream's connection while events flow,
// and keeps it down while a whole batch is stored: RunStream reconnects
// with Last-Event-ID and no event is lost or repeated.
func TestRunStreamReconnects(t *testing.T) {
	hs := liveHookstream(t)
	proxy := newCuttingProxy(t, hs.apiURL[len("http://"):])
	ds := newTestDatasource(t, proxy.url(), readSecret)
	rec := &packetRecorder{}
	connections, stop := runStream(t, ds, "live/events", rec)
	if err := poll(30*time.Second, "the stream to connect", func() bool { return connections.Load() > 0 }); err != nil {
		t.Fatal(err)
	}

	// 1. Cut while the events arrive.
	type result struct {
		ids []string
		err error
	}
	batch1 := make(chan result, 1)
	truth1 := filepath.Join(t.TempDir(), "truth.jsonl")
	go func() { ids, err := hs.trySimEvents(truth1, 4); batch1 <- result{ids, err} }()
	if err := poll(60*time.Second, "some events on the stream", func() bool { return len(rec.received()) >= 5 }); err != nil {
		t.Fatal(err)
	}
	proxy.cut()
	r1 := <-batch1
	if r1.err != nil {
		t.Fatal(r1.err)
	}
	ids1 := r1.ids
	if err := poll(30*time.Second, "every event of the first batch", func() bool { return hasAll(rec.received(), ids1) }); err != nil {
		t.Fatalf("%v: got %d of %d", err, len(rec.received()), len(ids1))
	}
	if err := poll(30*time.Second, "a reconnection", func() bool { return connections.Load() >= 2 }); err != nil {
		t.Fatal(err)
	}

	// 2. Down while a whole batch is stored: it comes from the catch-up.
	proxy.block(true)
	proxy.cut()
	before := connections.Load()
	ids2 := hs.simEvents(t, 3)
	hs.waitStored(t, ids2)
	proxy.block(false)
	want := append(append([]string(nil), ids1...), ids2...)
	if err := poll(30*time.Second, "every event of the second batch", func() bool { return hasAll(rec.received(), ids2) }); err != nil {
		t.Fatalf("%v: got %d of %d", err, len(rec.received()), len(want))
	}
	if connections.Load() <= before {
		t.Errorf("the second batch arrived without a new connection")
	}
	stop()
	checkExactly(t, rec.received(), want)
}
