package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hookstream/hookstream/dwolla"
	"github.com/hookstream/hookstream/internal/testenv"
	"github.com/hookstream/hookstream/stream"
	"github.com/redis/go-redis/v9"
)

var secret = []byte("test-secret")

type harness struct {
	t    testing.TB
	rdb  redis.UniversalClient
	keys stream.Keys
	recv *Receiver
	srv  *httptest.Server
}

// newHarness starts a Receiver against the test Redis (or rdb, if given)
// behind a real loopback HTTP server.
func newHarness(t testing.TB, rdb redis.UniversalClient, opts Options) *harness {
	t.Helper()
	ns := testenv.Name("hst")
	if rdb == nil {
		rdb, ns = testenv.Redis(t)
	}
	keys := stream.NewKeys(ns, 4)
	if opts.Secrets == nil {
		opts.Secrets = [][]byte{secret}
	}
	if opts.SpoolDir == "" {
		opts.SpoolDir = t.TempDir()
	}
	recv, err := New(rdb, keys, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := recv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(recv.Handler())
	t.Cleanup(func() {
		srv.Close()
		if err := recv.Stop(context.Background()); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	return &harness{t: t, rdb: rdb, keys: keys, recv: recv, srv: srv}
}

func event(id string) []byte {
	return []byte(fmt.Sprintf(`{"id":%q,"resourceId":"r-%s","topic":"customer_created","created":"2026-11-28T10:00:00.000Z","timestamp":"2026-11-28T10:00:00.000Z","_links":{"customer":{"href":"https://api-sandbox.dwolla.com/customers/c-%s"}}}`, id, id, id))
}

type reply struct {
	code int
	body response
	hdr  http.Header
}

func (h *harness) post(body []byte, header map[string]string) reply {
	h.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, h.srv.URL+"/webhooks/dwolla", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := h.srv.Client().Do(req)
	if err != nil {
		h.t.Fatalf("post: %v", err)
	}
	defer resp.Body.Close()
	var r reply
	r.code, r.hdr = resp.StatusCode, resp.Header
	raw, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(raw, &r.body); err != nil {
		h.t.Fatalf("response %d is not JSON: %q", resp.StatusCode, raw)
	}
	return r
}

func (h *harness) postSigned(body []byte) reply {
	return h.post(body, map[string]string{dwolla.SignatureHeader: dwolla.Sign(secret, body)})
}

// streamIDs returns every event id in the partition streams with its count.
func (h *harness) streamIDs() map[string]int {
	h.t.Helper()
	out := map[string]int{}
	for p := range h.keys.Partitions {
		msgs, err := h.rdb.XRange(context.Background(), h.keys.Stream(p), "-", "+").Result()
		if err != nil {
			h.t.Fatal(err)
		}
		for _, m := range msgs {
			out[m.Values["id"].(string)]++
		}
	}
	return out
}

func TestSignatures(t *testing.T) {
	t.Parallel()
	old, cur := []byte("old"), []byte("current")
	h := newHarness(t, nil, Options{Secrets: [][]byte{old, cur}})
	f := func(name string, body []byte, hdr map[string]string, wantCode int, wantStatus string) {
		t.Helper()
		r := h.post(body, hdr)
		if r.code != wantCode || r.body.Status != wantStatus {
			t.Fatalf("%s: got %d %+v, want %d %s", name, r.code, r.body, wantCode, wantStatus)
		}
		if r.code == http.StatusUnauthorized && r.body.Error == "" {
			t.Fatalf("%s: 401 without a reason", name)
		}
	}
	b1, b2, b3, b4 := event("sig-1"), event("sig-2"), event("sig-3"), event("sig-4")
	f("current secret", b1, map[string]string{dwolla.SignatureHeader: dwolla.Sign(cur, b1)}, 200, "stored")
	f("old secret during rotation", b2, map[string]string{dwolla.SignatureHeader: dwolla.Sign(old, b2)}, 200, "stored")
	f("upper-case hex", b3, map[string]string{dwolla.SignatureHeader: strings.ToUpper(dwolla.Sign(cur, b3))}, 200, "stored")
	f("missing", b4, nil, 401, "error")
	f("wrong secret", b4, map[string]string{dwolla.SignatureHeader: dwolla.Sign([]byte("nope"), b4)}, 401, "error")
	f("signature of another body", b4, map[string]string{dwolla.SignatureHeader: dwolla.Sign(cur, b1)}, 401, "error")
	f("garbage", b4, map[string]string{dwolla.SignatureHeader: "not-hex"}, 401, "error")
	if got := h.streamIDs(); len(got) != 3 || got["sig-4"] != 0 {
		t.Fatalf("stream holds %v; want exactly the three signed events", got)
	}
}

func TestRejections(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil, Options{MaxBody: 4096})
	f := func(name string, body []byte, wantCode int, wantField string) {
		t.Helper()
		r := h.postSigned(body)
		if r.code != wantCode || r.body.Field != wantField || r.body.Error == "" {
			t.Fatalf("%s: got %d %+v, want %d field %q with an error message", name, r.code, r.body, wantCode, wantField)
		}
	}
	f("not JSON", []byte("hello"), 400, "")
	f("array", []byte(`[{"id":"x"}]`), 400, "")
	f("truncated", []byte(`{"id":"x","topic":"customer_created"`), 400, "")
	f("no id", []byte(`{"topic":"customer_created","created":"2026-11-28T10:00:00Z"}`), 400, "id")
	f("numeric id", []byte(`{"id":7,"topic":"customer_created","created":"2026-11-28T10:00:00Z"}`), 400, "id")
	f("no topic", []byte(`{"id":"x","created":"2026-11-28T10:00:00Z"}`), 400, "topic")
	f("no time", []byte(`{"id":"x","topic":"customer_created"}`), 400, "created")
	f("bad time", []byte(`{"id":"x","topic":"customer_created","created":"soon"}`), 400, "created")
	f("too large", append(event("big"), bytes.Repeat([]byte(" "), 5000)...), 413, "")

	// Too large without Content-Length (chunked): the cap still holds.
	big := append(event("big2"), bytes.Repeat([]byte(" "), 5000)...)
	req, _ := http.NewRequest(http.MethodPost, h.srv.URL+"/webhooks/dwolla", io.MultiReader(bytes.NewReader(big)))
	req.ContentLength = -1
	req.Header.Set(dwolla.SignatureHeader, dwolla.Sign(secret, big))
	resp, err := h.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 413 {
		t.Fatalf("chunked oversize body: got %d, want 413", resp.StatusCode)
	}

	// Wrong method.
	resp, err = h.srv.Client().Get(h.srv.URL + "/webhooks/dwolla")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 405 || resp.Header.Get("Allow") != "POST" {
		t.Fatalf("GET: got %d Allow=%q, want 405 Allow=POST", resp.StatusCode, resp.Header.Get("Allow"))
	}

	// An unknown topic is stored (Dwolla adds topics), and nothing valid was lost to the bad ones.
	unknown := []byte(`{"id":"new-topic-1","topic":"customer_teleported","created":"2026-11-28T10:00:00Z"}`)
	if r := h.postSigned(unknown); r.code != 200 || r.body.Status != "stored" {
		t.Fatalf("unknown topic: got %d %+v", r.code, r.body)
	}
	if r := h.postSigned(event("good-after-bad")); r.code != 200 {
		t.Fatalf("valid event after rejections: %d %+v", r.code, r.body)
	}
	if got := h.streamIDs(); len(got) != 2 {
		t.Fatalf("stream holds %v; want only the two valid events", got)
	}
}

func TestDuplicateResponses(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil, Options{})
	b := event("dup-A")
	first := h.postSigned(b)
	second := h.postSigned(b)
	if first.code != 200 || first.body.Status != "stored" || first.body.Entry == "" {
		t.Fatalf("first delivery: %d %+v", first.code, first.body)
	}
	if second.code != 200 || second.body.Status != "duplicate" || second.body.Entry != first.body.Entry {
		t.Fatalf("second delivery: %d %+v; want 200 duplicate pointing at %s", second.code, second.body, first.body.Entry)
	}
	// The id is case-insensitive: Dwolla ids are UUIDs.
	upper := bytes.Replace(b, []byte("dup-A"), []byte("DUP-A"), 1)
	if r := h.postSigned(upper); r.body.Status != "duplicate" {
		t.Fatalf("upper-case id: %+v", r.body)
	}
	// The seen marker expires after SeenTTL.
	p := h.keys.Partition("c-dup-a")
	ttl, err := h.rdb.TTL(context.Background(), h.keys.Seen(p, "dup-a")).Result()
	if err != nil || ttl <= 71*time.Hour || ttl > 72*time.Hour {
		t.Fatalf("seen key TTL %v (%v); want about 72h", ttl, err)
	}
}

func TestSameEventConcurrently(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil, Options{})
	b := event("same-1000")
	sig := dwolla.Sign(secret, b)
	var mu sync.Mutex
	counts := map[string]int{}
	var wg sync.WaitGroup
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 200}}
	for range 1000 {
		wg.Go(func() {
			req, _ := http.NewRequest(http.MethodPost, h.srv.URL+"/webhooks/dwolla", bytes.NewReader(b))
			req.Header.Set(dwolla.SignatureHeader, sig)
			resp, err := client.Do(req)
			key := "error"
			if err == nil {
				var r response
				json.NewDecoder(resp.Body).Decode(&r)
				resp.Body.Close()
				key = fmt.Sprintf("%d %s", resp.StatusCode, r.Status)
			}
			mu.Lock()
			counts[key]++
			mu.Unlock()
		})
	}
	wg.Wait()
	if counts["200 stored"] != 1 || counts["200 duplicate"] != 999 {
		t.Fatalf("responses %v; want 1 stored and 999 duplicates", counts)
	}
	if got := h.streamIDs(); len(got) != 1 || got["same-1000"] != 1 {
		t.Fatalf("stream holds %v; want the event exactly once", got)
	}
}

func TestHealthReadyMetrics(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil, Options{})
	h.postSigned(event("metrics-1"))
	get := func(path string) (int, string) {
		resp, err := h.srv.Client().Get(h.srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Fatalf("healthz %d", code)
	}
	code, body := get("/readyz")
	var rd Ready
	if err := json.Unmarshal([]byte(body), &rd); err != nil || code != 200 || !rd.Ready || rd.Redis != "up" || !rd.Spool.Writable {
		t.Fatalf("readyz %d %s", code, body)
	}
	_, m := get("/metrics")
	for _, want := range []string{
		`hookstream_ingest_ack_seconds_bucket{le="0.01"}`,
		`hookstream_ingest_requests_total{outcome="stored"}`,
		`hookstream_ingest_batch_size_count`,
		`hookstream_spool_depth`,
		`hookstream_spool_drained_total{result="stored"}`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }

// TestReport: a receiver's report carries the rejections since its last
// one into the namespace's per-minute counts, and its spool depth.
func TestReport(t *testing.T) {
	h := newHarness(t, nil, Options{})
	ctx := context.Background()
	base := ReadCounters()
	for range 2 {
		if r := h.post(event("unsigned"), nil); r.code != http.StatusUnauthorized {
			t.Fatalf("unsigned webhook: %d", r.code)
		}
	}
	now := time.Now()
	next, err := h.recv.reportSince(ctx, "r1", base, now)
	if err != nil {
		t.Fatal(err)
	}
	if next.Rejected < base.Rejected+2 {
		t.Fatalf("the new base %+v does not include the rejections", next)
	}
	// Other tests of the package run alongside and may reject too.
	n, err := h.rdb.HGet(ctx, h.keys.IngestMinute(now.Unix()/60), stream.IngestRejected).Int64()
	if err != nil || n < 2 {
		t.Fatalf("rejected this minute: %d, %v", n, err)
	}
	rep, err := h.rdb.HGet(ctx, h.keys.IngestSpool(), "r1").Result()
	if err != nil {
		t.Fatal(err)
	}
	if depth, at, ok := stream.ParseSpoolReport(rep); !ok || depth != 0 || at.Unix() != now.Unix() {
		t.Fatalf("spool report %q", rep)
	}
}
