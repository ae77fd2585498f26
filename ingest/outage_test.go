package ingest

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookstream/hookstream/dwolla"
	"github.com/hookstream/hookstream/internal/testenv"
	"github.com/hookstream/hookstream/stream"
	"github.com/redis/go-redis/v9"
)

// privateRedis starts a redis-server this test may kill, and a client tuned
// like production's (short dial timeout, no hidden retries).
func privateRedis(t *testing.T) (*testenv.RedisServer, *redis.Client) {
	srv := testenv.StartRedisServer(t)
	rdb := redis.NewClient(&redis.Options{
		Addr: fmt.Sprintf("127.0.0.1:%d", srv.Port), DialTimeout: 200 * time.Millisecond,
		ReadTimeout: time.Second, WriteTimeout: time.Second, MaxRetries: -1,
	})
	t.Cleanup(func() { rdb.Close() })
	return srv, rdb
}

// TestRedisOutage kills the real Redis process mid-traffic, keeps sending,
// restarts it, and checks every event ends in the stream exactly once and
// every delivery was answered 2xx.
func TestRedisOutage(t *testing.T) {
	t.Parallel()
	redisSrv, rdb := privateRedis(t)
	h := newHarness(t, rdb, Options{ProbeInterval: 20 * time.Millisecond, RedisTimeout: time.Second})

	const total = 3000
	var sent atomic.Int64
	var mu sync.Mutex
	codes := map[int]int{}
	next := make(chan int)
	go func() {
		for i := range total {
			switch i {
			case total / 3:
				redisSrv.Kill()
			case 2 * total / 3:
				redisSrv.Start()
			}
			next <- i
		}
		close(next)
	}()
	client := &http.Client{Timeout: 15 * time.Second}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for i := range next {
				b := event(fmt.Sprintf("outage-%d", i))
				req, _ := http.NewRequest(http.MethodPost, h.srv.URL+"/webhooks/dwolla", bytesReader(b))
				req.Header.Set(dwolla.SignatureHeader, dwolla.Sign(secret, b))
				code := 0
				if resp, err := client.Do(req); err == nil {
					code = resp.StatusCode
					resp.Body.Close()
				}
				mu.Lock()
				codes[code]++
				mu.Unlock()
				sent.Add(1)
			}
		})
	}
	wg.Wait()
	if codes[200]+codes[202] != total {
		t.Fatalf("answers %v: every delivery should be 200 (stored) or 202 (spooled)", codes)
	}
	if codes[202] == 0 {
		t.Fatalf("answers %v: nothing was spooled, so Redis was never down during traffic", codes)
	}
	testenv.WaitFor(t, 30*time.Second, "the spool drained after Redis came back", func() bool { return h.recv.spool.Depth() == 0 })
	got := h.streamIDs()
	// Spooled events carry their receipt time; the others have it in the entry id.
	late := 0
	for p := range h.keys.Partitions {
		msgs, err := h.rdb.XRange(context.Background(), h.keys.Stream(p), "-", "+").Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			if _, ok := m.Values["received"]; ok {
				late++
			}
		}
	}
	if late == 0 || late > codes[202] {
		t.Fatalf("%d entries carry a received time; want between 1 and the %d spooled", late, codes[202])
	}
	for i := range total {
		if n := got[fmt.Sprintf("outage-%d", i)]; n != 1 {
			t.Fatalf("event outage-%d is in the streams %d times; want exactly once (answers %v)", i, n, codes)
		}
	}
	if len(got) != total {
		t.Fatalf("streams hold %d events, want %d", len(got), total)
	}
	t.Logf("answers: %v", codes)
}

// TestOverload fills the commit queue while Redis is paused and checks the
// overflow gets 503 with Retry-After, and that nothing accepted is lost.
func TestOverload(t *testing.T) {
	t.Parallel()
	_, rdb := privateRedis(t)
	h := newHarness(t, rdb, Options{Committers: 1, QueueSize: 1, MaxBatch: 1, EnqueueTimeout: 20 * time.Millisecond, RedisTimeout: 10 * time.Second, RetryAfter: 3 * time.Second})
	if err := rdb.Do(context.Background(), "CLIENT", "PAUSE", "1500", "ALL").Err(); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var overloaded []int
	stored := 0
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Go(func() {
			r := h.postSigned(event(fmt.Sprintf("ov-%d", i)))
			mu.Lock()
			defer mu.Unlock()
			switch r.code {
			case 503:
				if r.hdr.Get("Retry-After") != "3" {
					t.Errorf("503 without Retry-After: %v", r.hdr)
				}
				overloaded = append(overloaded, i)
			case 200:
				stored++
			default:
				t.Errorf("unexpected answer %d %+v", r.code, r.body)
			}
		})
	}
	wg.Wait()
	if len(overloaded) == 0 || stored == 0 {
		t.Fatalf("stored %d, overloaded %d: want both", stored, len(overloaded))
	}
	// Dwolla retries the 503s; they are stored then.
	for _, i := range overloaded {
		if r := h.postSigned(event(fmt.Sprintf("ov-%d", i))); r.code != 200 {
			t.Fatalf("retry of ov-%d: %d", i, r.code)
		}
	}
	if got := h.streamIDs(); len(got) != 10 {
		t.Fatalf("streams hold %d events, want 10", len(got))
	}
}

// TestReadinessDuringOutage: with Redis down the receiver stays ready while the
// spool can take events, and reports not ready only when neither can.
func TestReadinessDuringOutage(t *testing.T) {
	t.Parallel()
	redisSrv, rdb := privateRedis(t)
	h := newHarness(t, rdb, Options{ProbeInterval: 20 * time.Millisecond})
	redisSrv.Kill()
	if r := h.postSigned(event("during-outage")); r.code != 202 || r.body.Status != "spooled" {
		t.Fatalf("delivery while Redis is down: %d %+v", r.code, r.body)
	}
	rd := h.recv.Readiness(context.Background())
	if !rd.Ready || !strings.HasPrefix(rd.Redis, "down: ") || rd.Spool.Depth != 1 {
		t.Fatalf("readiness with Redis down and a writable spool: %+v", rd)
	}
	redisSrv.Start()
	testenv.WaitFor(t, 10*time.Second, "the spool drained and Redis up", func() bool {
		return h.recv.spool.Depth() == 0 && h.recv.Readiness(context.Background()).Redis == "up"
	})
	if got := h.streamIDs(); got["during-outage"] != 1 {
		t.Fatalf("streams hold %v", got)
	}
}

// TestNotReadyWhenNothingCanAccept: Redis down and a spool that cannot take
// files (its directory replaced by a file, which stops root too) make the
// receiver unready and its deliveries 503, never a false 2xx.
func TestNotReadyWhenNothingCanAccept(t *testing.T) {
	t.Parallel()
	redisSrv, rdb := privateRedis(t)
	spoolDir := t.TempDir() + "/spool"
	h := newHarness(t, rdb, Options{SpoolDir: spoolDir, ProbeInterval: 20 * time.Millisecond, RetryAfter: 2 * time.Second})
	redisSrv.Kill()
	if err := os.Remove(spoolDir); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(spoolDir, []byte("not a directory"), 0o600); err != nil {
		t.Fatal(err)
	}
	if rd := h.recv.Readiness(context.Background()); rd.Ready || rd.Spool.Writable || !strings.HasPrefix(rd.Redis, "down: ") {
		t.Fatalf("readiness: %+v", rd)
	}
	if r := h.postSigned(event("nowhere")); r.code != 503 || r.hdr.Get("Retry-After") != "2" || r.body.Error == "" {
		t.Fatalf("delivery with nowhere to store it: %d %+v", r.code, r.body)
	}
}

// TestSpoolSurvivesPartitionChange: events spooled by a receiver with 4
// partitions drain, after a restart with 8, into the streams 8 partitions
// assign them, instead of wedging the drainer.
func TestSpoolSurvivesPartitionChange(t *testing.T) {
	t.Parallel()
	redisSrv, rdb := privateRedis(t)
	spoolDir := t.TempDir()
	first := newHarness(t, rdb, Options{SpoolDir: spoolDir, ProbeInterval: time.Hour})
	redisSrv.Kill()
	for i := range 20 {
		if r := first.postSigned(event(fmt.Sprintf("repart-%d", i))); r.code != 202 {
			t.Fatalf("delivery %d while Redis is down: %d", i, r.code)
		}
	}
	first.srv.Close()
	if err := first.recv.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	redisSrv.Start()

	keys := stream.NewKeys(first.keys.Namespace, 8)
	recv, err := New(rdb, keys, Options{Secrets: [][]byte{secret}, SpoolDir: spoolDir, ProbeInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := recv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := recv.Stop(context.Background()); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	testenv.WaitFor(t, 10*time.Second, "the spool drained into 8 partitions", func() bool { return recv.spool.Depth() == 0 })
	for i := range 20 {
		id := fmt.Sprintf("repart-%d", i)
		want := keys.Stream(keys.Partition("c-" + id))
		msgs, err := rdb.XRange(context.Background(), want, "-", "+").Result()
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, m := range msgs {
			found = found || m.Values["id"] == id
		}
		if !found {
			t.Fatalf("%s is not in %s, the stream 8 partitions assign it", id, want)
		}
	}
}
