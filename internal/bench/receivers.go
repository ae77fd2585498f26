package bench

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"time"

	"github.com/hookstream/hookstream/ingest"
	"github.com/hookstream/hookstream/stream"
	"github.com/redis/go-redis/v9"
)

// ReceiversConfig configures the three receivers of the ingest benchmark;
// each field is the flag of `hookstream bench receivers` named in its
// comment. Zero values take the defaults in parentheses.
type ReceiversConfig struct {
	// RedisURL is the Redis they store into (--redis-url, default
	// redis://127.0.0.1:6379/0).
	RedisURL string
	// Partitions is the number of partition streams (--partitions, default 16).
	Partitions int
	// Prefix starts the receivers' namespaces: Prefix-hs, Prefix-naive and
	// Prefix-verify (--prefix, required).
	Prefix string
	// Secret is the one secret the receivers accept (--bench-secret,
	// default "bench-secret").
	Secret []byte
	// Committers is the hookstream receiver's pipelined round trips in
	// flight (--committers, default 2).
	Committers int
	// MaxBatch is the hookstream receiver's most events per round trip
	// (--max-batch, default 256).
	MaxBatch int
	// NaivePoolSize is the naive receiver's connection pool size, one per
	// concurrent request being its best case (--concurrency, default 64).
	NaivePoolSize int
}

func (c ReceiversConfig) withDefaults() (ReceiversConfig, error) {
	c.RedisURL = cmp.Or(c.RedisURL, defaultRedisURL)
	c.Partitions = cmp.Or(c.Partitions, defaultPartitions)
	c.Committers = cmp.Or(c.Committers, 2)
	c.MaxBatch = cmp.Or(c.MaxBatch, 256)
	c.NaivePoolSize = cmp.Or(c.NaivePoolSize, 64)
	if len(c.Secret) == 0 {
		c.Secret = []byte("bench-secret")
	}
	if c.Prefix == "" {
		return c, errors.New("--prefix is required")
	}
	return c, errors.Join(notNegative("--partitions", c.Partitions), notNegative("--committers", c.Committers),
		notNegative("--max-batch", c.MaxBatch), notNegative("--concurrency", c.NaivePoolSize))
}

// ServeReceivers starts, in this process on loopback, the three receivers
// the ingest benchmark compares:
//
//	hookstream   the real receiver: HMAC, parse, atomic dedup+XADD with group
//	             commit, spool fallback
//	naive-xadd   NaiveReceiver: the same HMAC and parse, then one XADD per
//	             request (no dedup, no spool)
//	hmac-only    hookstream's own handler with storing switched off
//
// It writes their webhook URLs by name as one JSON object to urls, then
// serves until until reaches its end (or fails) or ctx ends. Ingest runs it
// in a child process, whose stdin is until, when asked for a separate
// process.
func ServeReceivers(ctx context.Context, c ReceiversConfig, urls io.Writer, until io.Reader) error {
	addrs, stop, err := startReceivers(ctx, c)
	if err != nil {
		return err
	}
	defer stop()
	if err := json.NewEncoder(urls).Encode(addrs); err != nil {
		return fmt.Errorf("write the receivers' URLs: %w", err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		io.Copy(io.Discard, until)
	}()
	select {
	case <-done:
	case <-ctx.Done():
	}
	return nil
}

// startReceivers starts the three receivers of ServeReceivers and returns
// their webhook URLs by name, and a function that stops them.
func startReceivers(ctx context.Context, c ReceiversConfig) (map[string]string, func(), error) {
	c, err := c.withDefaults()
	if err != nil {
		return nil, nil, err
	}
	var stops []func()
	stop := func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}
	rdb, err := stream.NewClient(c.RedisURL, 2*time.Second, c.Committers+4)
	if err != nil {
		return nil, nil, err
	}
	stops = append(stops, func() { rdb.Close() })
	naiveOpt, err := redis.ParseURL(c.RedisURL)
	if err != nil {
		stop()
		return nil, nil, err
	}
	naiveOpt.PoolSize = c.NaivePoolSize
	naiveRdb := redis.NewClient(naiveOpt)
	stops = append(stops, func() { naiveRdb.Close() })
	spool, err := os.MkdirTemp("", "hookstream-bench-spool-")
	if err != nil {
		stop()
		return nil, nil, err
	}
	stops = append(stops, func() { os.RemoveAll(spool) })
	urls := map[string]string{}
	serve := func(name string, h http.Handler) error {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
		go srv.Serve(ln)
		stops = append(stops, func() { srv.Close() })
		urls[name] = "http://" + ln.Addr().String() + "/webhooks/dwolla"
		return nil
	}
	receiver := func(suffix string, verifyOnly bool) (http.Handler, error) {
		r, err := ingest.New(rdb, stream.NewKeys(c.Prefix+"-"+suffix, c.Partitions), ingest.Options{
			Secrets: [][]byte{c.Secret}, SpoolDir: spool + "/" + suffix, Committers: c.Committers,
			MaxBatch: c.MaxBatch, VerifyOnly: verifyOnly,
		})
		if err != nil {
			return nil, err
		}
		if err := r.Start(ctx); err != nil {
			return nil, err
		}
		stops = append(stops, func() { r.Stop(context.Background()) })
		return r.Handler(), nil
	}
	hs, err := receiver("hs", false)
	if err == nil {
		err = serve("hookstream", hs)
	}
	if err == nil {
		err = serve("naive-xadd", NaiveReceiver(naiveRdb, stream.NewKeys(c.Prefix+"-naive", c.Partitions), [][]byte{c.Secret}, 256<<10))
	}
	var vo http.Handler
	if err == nil {
		vo, err = receiver("verify", true)
	}
	if err == nil {
		err = serve("hmac-only", vo)
	}
	if err != nil {
		stop()
		return nil, nil, fmt.Errorf("start benchmark receivers: %w", err)
	}
	return urls, stop, nil
}

// spawnReceivers runs ServeReceivers in a child process (`hookstream bench
// receivers`), so the load generator and the receivers do not share a Go
// runtime, and returns their URLs.
func spawnReceivers(c ReceiversConfig) (map[string]string, func(), error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, nil, err
	}
	cmd := exec.Command(exe, "bench", "receivers",
		"--redis-url", c.RedisURL, "--partitions", strconv.Itoa(c.Partitions), "--committers", strconv.Itoa(c.Committers),
		"--max-batch", strconv.Itoa(c.MaxBatch), "--concurrency", strconv.Itoa(c.NaivePoolSize), "--bench-secret", string(c.Secret), "--prefix", c.Prefix)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, nil, fmt.Errorf("start benchmark receivers process: %w", err)
	}
	stop := func() { stdin.Close(); cmd.Wait() }
	var urls map[string]string
	if err := json.NewDecoder(stdout).Decode(&urls); err != nil {
		cmd.Process.Kill()
		stop()
		return nil, nil, fmt.Errorf("read benchmark receivers' URLs: %w", err)
	}
	return urls, stop, nil
}
