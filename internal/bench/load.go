package bench

import (
	"bytes"
	"context"
	"fmt"
	"hash/fnv"
	"io"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hookstream/hookstream/dwolla"
)

// Bodies makes unique, signed, realistic webhook bodies on the fly. Event ids
// are UUID-shaped (36 characters, like Dwolla's), unique within one Bodies
// value and, with high probability, across values with different seeds;
// customers repeat, as in real traffic.
type Bodies struct {
	secret []byte
	seed   uint32
	n      atomic.Int64
}

// NewBodies returns a generator whose ids are derived from seed.
func NewBodies(secret []byte, seed string) *Bodies {
	h := fnv.New32a()
	h.Write([]byte(seed))
	return &Bodies{secret: secret, seed: h.Sum32()}
}

// Next returns a fresh body and its signature.
func (b *Bodies) Next(dst []byte) ([]byte, string) {
	i := b.n.Add(1)
	id := fmt.Sprintf("%08x-0000-4000-8000-%012x", b.seed, i)
	cust := strconv.FormatInt(i%5000, 10)
	now := time.Now().UTC().Format("2006-01-02T15:04:05.000Z")
	dst = append(dst[:0], `{"id":"`...)
	dst = append(dst, id...)
	dst = append(dst, `","resourceId":"tr-`...)
	dst = append(dst, id...)
	dst = append(dst, `","topic":"customer_bank_transfer_completed","timestamp":"`...)
	dst = append(dst, now...)
	dst = append(dst, `","created":"`...)
	dst = append(dst, now...)
	dst = append(dst, `","_links":{"self":{"href":"https://api-sandbox.dwolla.com/events/`...)
	dst = append(dst, id...)
	dst = append(dst, `","type":"application/vnd.dwolla.v1.hal+json","resource-type":"event"},"account":{"href":"https://api-sandbox.dwolla.com/accounts/0ee84069-47c5-455c-b425-633523291dc3","type":"application/vnd.dwolla.v1.hal+json","resource-type":"account"},"resource":{"href":"https://api-sandbox.dwolla.com/transfers/tr-`...)
	dst = append(dst, id...)
	dst = append(dst, `","type":"application/vnd.dwolla.v1.hal+json","resource-type":"transfer"},"customer":{"href":"https://api-sandbox.dwolla.com/customers/cust-`...)
	dst = append(dst, cust...)
	dst = append(dst, `","type":"application/vnd.dwolla.v1.hal+json","resource-type":"customer"}}}`...)
	return dst, dwolla.Sign(b.secret, dst)
}

// Result summarises one load phase.
type Result struct {
	Name      string
	Duration  time.Duration
	Requests  int64
	Non2xx    int64
	Errors    int64
	Latencies []time.Duration // sorted
	// RedisCPUPerRequest is the Redis server's CPU time per request during
	// the phase, when the caller measured it.
	RedisCPUPerRequest time.Duration
	// MachineBusy is the fraction of all CPUs' time that was not idle during
	// the phase (from /proc/stat), when the caller measured it.
	MachineBusy float64
	// MeanBatch is the receiver's average requests per group commit, when known.
	MeanBatch float64
}

// Throughput is completed 2xx requests per second.
func (r Result) Throughput() float64 {
	return float64(r.Requests-r.Non2xx-r.Errors) / r.Duration.Seconds()
}

// Quantile returns the q-quantile latency (0 when nothing was measured).
func (r Result) Quantile(q float64) time.Duration {
	if len(r.Latencies) == 0 {
		return 0
	}
	i := int(q * float64(len(r.Latencies)-1))
	return r.Latencies[i]
}

func (r Result) String() string {
	s := fmt.Sprintf("%-12s %7.0f req/s  p50 %8s  p90 %8s  p99 %8s  max %8s  non-2xx %d  errors %d",
		r.Name, r.Throughput(), r.Quantile(.5).Round(time.Microsecond), r.Quantile(.9).Round(time.Microsecond),
		r.Quantile(.99).Round(time.Microsecond), r.Quantile(1).Round(time.Microsecond), r.Non2xx, r.Errors)
	if r.MeanBatch > 0 {
		s += fmt.Sprintf("  batch %.1f", r.MeanBatch)
	}
	if r.MachineBusy > 0 {
		s += fmt.Sprintf("  cpu busy %.0f%%", 100*r.MachineBusy)
	}
	if r.RedisCPUPerRequest > 0 {
		s += fmt.Sprintf("  redis cpu/req %.1fµs", float64(r.RedisCPUPerRequest)/float64(time.Microsecond))
	}
	return s
}

// Client returns an HTTP client that keeps conns connections open to one host.
func Client(conns int) *http.Client {
	return &http.Client{
		Timeout: 10 * time.Second, // Dwolla's
		Transport: &http.Transport{
			MaxIdleConns:        conns,
			MaxIdleConnsPerHost: conns,
			MaxConnsPerHost:     conns,
			IdleConnTimeout:     time.Minute,
		},
	}
}

type recorder struct {
	mu       sync.Mutex
	lat      []time.Duration
	requests atomic.Int64
	non2xx   atomic.Int64
	errors   atomic.Int64
}

func (rec *recorder) post(client *http.Client, url string, body []byte, sig string) time.Duration {
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(dwolla.SignatureHeader, sig)
	start := time.Now()
	resp, err := client.Do(req)
	rec.requests.Add(1)
	if err != nil {
		rec.errors.Add(1)
		return time.Since(start)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		rec.non2xx.Add(1)
	}
	return time.Since(start)
}

func (rec *recorder) result(name string, d time.Duration) Result {
	slices.Sort(rec.lat)
	return Result{Name: name, Duration: d, Requests: rec.requests.Load(), Non2xx: rec.non2xx.Load(), Errors: rec.errors.Load(), Latencies: rec.lat}
}

// ClosedLoop runs conc workers that each send the next request as soon as the
// previous one is answered, for d. It measures the receiver's capacity.
func ClosedLoop(ctx context.Context, name, url string, bodies *Bodies, conc int, d time.Duration) Result {
	client := Client(conc)
	defer client.CloseIdleConnections()
	var rec recorder
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	for range conc {
		wg.Go(func() {
			var buf []byte
			lat := make([]time.Duration, 0, 4096)
			for ctx.Err() == nil {
				var sig string
				buf, sig = bodies.Next(buf)
				lat = append(lat, rec.post(client, url, buf, sig))
			}
			rec.mu.Lock()
			rec.lat = append(rec.lat, lat...)
			rec.mu.Unlock()
		})
	}
	wg.Wait()
	return rec.result(name, time.Since(start))
}

// OpenLoop sends rate requests per second for d, each at its scheduled time
// whether or not earlier ones were answered, and measures latency from the
// scheduled time, so a stall shows up in the percentiles instead of silently
// lowering the offered load (no coordinated omission).
func OpenLoop(ctx context.Context, name, url string, bodies *Bodies, rate float64, d time.Duration, maxConc int) Result {
	client := Client(maxConc)
	defer client.CloseIdleConnections()
	var rec recorder
	total := int(rate * d.Seconds())
	sched := make(chan time.Time, maxConc)
	var wg sync.WaitGroup
	for range maxConc {
		wg.Go(func() {
			var buf []byte
			lat := make([]time.Duration, 0, total/maxConc+16)
			for at := range sched {
				var sig string
				buf, sig = bodies.Next(buf)
				rec.post(client, url, buf, sig)
				lat = append(lat, time.Since(at))
			}
			rec.mu.Lock()
			rec.lat = append(rec.lat, lat...)
			rec.mu.Unlock()
		})
	}
	start := time.Now()
	interval := time.Duration(float64(time.Second) / rate)
	for i := range total {
		at := start.Add(time.Duration(i) * interval)
		if w := time.Until(at); w > 0 {
			time.Sleep(w)
		}
		if ctx.Err() != nil {
			break
		}
		sched <- at // blocks only when every worker is busy; that wait counts in latency
	}
	close(sched)
	wg.Wait()
	return rec.result(name, time.Since(start))
}
