package ingest

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookstream/hookstream/internal/testenv"
	"github.com/hookstream/hookstream/stream"
	"github.com/redis/go-redis/v9"
)

// stallingProxy forwards to the test Redis until stall: from then on what
// clients send is held (counted, never forwarded), so a command waits for
// its timeout, as against a Redis that hangs.
type stallingProxy struct {
	ln      net.Listener
	target  string
	stalled atomic.Bool
	held    atomic.Int64 // bytes held since the stall
	mu      sync.Mutex
	conns   []net.Conn
}

func newStallingProxy(t *testing.T, target string) *stallingProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &stallingProxy{ln: ln, target: target}
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, c := range p.conns {
			c.Close()
		}
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, s)
			p.mu.Unlock()
			go io.Copy(c, s)
			go func() {
				buf := make([]byte, 32<<10)
				for {
					n, err := c.Read(buf)
					if n > 0 && p.stalled.Load() {
						p.held.Add(int64(n))
					} else if n > 0 {
						if _, err := s.Write(buf[:n]); err != nil {
							return
						}
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	return p
}

// TestStopThatTimesOutStillShutsDownAndASecondStopWaitsForIt: a Stop whose
// deadline passes while a request still waits for its commit returns an
// error, but the shutdown goes on: the request gets its answer, the
// committers and the drainer stop and the spool closes without another call,
// and a second Stop returns the shutdown's result.
func TestStopThatTimesOutStillShutsDownAndASecondStopWaitsForIt(t *testing.T) {
	t.Parallel()
	_, ns := testenv.Redis(t)
	opt, err := redis.ParseURL(testenv.RedisURL())
	if err != nil {
		t.Fatal(err)
	}
	proxy := newStallingProxy(t, opt.Addr)
	opt.Addr, opt.MaxRetries, opt.ReadTimeout = proxy.ln.Addr().String(), -1, 500*time.Millisecond
	rdb := redis.NewClient(opt)
	t.Cleanup(func() { rdb.Close() })

	recv, err := New(rdb, stream.NewKeys(ns, 4), Options{Secrets: [][]byte{secret}, SpoolDir: t.TempDir(), RedisTimeout: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := recv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	proxy.stalled.Store(true)
	type answer struct {
		o   outcome
		err error
	}
	answered := make(chan answer, 1)
	go func() {
		o, _, err := recv.commit(context.Background(), stream.NewEntry(0, "stop-1", event("stop-1"), ""), time.Now())
		answered <- answer{o, err}
	}()
	testenv.WaitFor(t, 10*time.Second, "the commit to reach the stalled Redis", func() bool { return proxy.held.Load() > 0 })

	expired, cancel := context.WithCancel(context.Background())
	cancel()
	if err := recv.Stop(expired); !errors.Is(err, context.Canceled) {
		t.Fatalf("Stop with a request still waiting and no time left: %v; want the context's error", err)
	}
	// No new request is admitted once Stop has begun.
	if _, _, err := recv.commit(context.Background(), stream.NewEntry(0, "stop-2", event("stop-2"), ""), time.Now()); !errors.Is(err, errStopped) {
		t.Fatalf("commit after Stop: %v; want %v", err, errStopped)
	}
	// The waiting request is answered (Redis timed out: spooled) and the
	// shutdown finishes with no second call.
	if a := <-answered; a.err != nil || a.o != outcomeSpooled {
		t.Fatalf("the request in flight during Stop: outcome %d, %v; want it spooled", a.o, a.err)
	}
	select {
	case <-recv.stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("the shutdown did not finish after the timed-out Stop")
	}
	select {
	case <-recv.quit:
	default:
		t.Fatal("quit is still open: committers and drainer were not told to stop")
	}
	recv.committers.Wait()
	recv.drainDone.Wait()
	if recv.spool.f != nil {
		t.Fatal("the spool's active segment is still open")
	}
	if recv.spool.Depth() != 1 {
		t.Fatalf("spool depth %d, want the one event spooled", recv.spool.Depth())
	}
	for range 2 {
		if err := recv.Stop(context.Background()); err != nil {
			t.Fatalf("Stop after the shutdown finished: %v", err)
		}
	}
}
