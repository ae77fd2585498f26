package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/hookstream/hookstream/stream"
	"github.com/redis/go-redis/v9"
)

// ShutdownWait bounds the ingest role's orderly stop: requests in flight
// finish and every accepted event is committed (Redis or spool) within it.
const ShutdownWait = 20 * time.Second

// MaxHeaderBytes caps a webhook request's headers (431 past it).
const MaxHeaderBytes = 64 << 10

// DrainWait bounds the first step of the stop: every response says
// "Connection: close" until the clients' keep-alive connections are gone or
// DrainWait has passed. A client then never sends a request on a connection
// the server is closing as idle (a POST that is not retried: a failed
// delivery), and with --reuse-port its next connection goes to a receiver
// that stays.
const DrainWait = 2 * time.Second

// Role is the ingest role: the Receiver behind its HTTP server. Create it
// with NewRole, which already listens (so Addr is known), and run it once
// with Run.
type Role struct {
	recv *Receiver
	srv  *http.Server
	ln   net.Listener
	log  *slog.Logger
	// draining makes every response close its connection; open counts
	// the connections not yet closed.
	draining atomic.Bool
	open     atomic.Int64
}

// NewRole builds the receiver over the partitions of keys and listens on
// addr. The caller owns rdb (and Options.DB) and closes them after Run has
// returned.
func NewRole(rdb redis.UniversalClient, keys stream.Keys, addr string, opts Options) (*Role, error) {
	recv, err := New(rdb, keys, opts)
	if err != nil {
		return nil, err
	}
	ln, err := Listen(addr, opts.ReusePort)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w; is another process using the port? set HOOKSTREAM_HTTP_ADDR", addr, err)
	}
	r := &Role{recv: recv, ln: ln, log: recv.opts.Logger}
	h := recv.Handler()
	r.srv = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			if r.draining.Load() {
				w.Header().Set("Connection", "close")
			}
			h.ServeHTTP(w, req)
		}),
		ConnState: func(_ net.Conn, s http.ConnState) {
			switch s {
			case http.StateNew:
				r.open.Add(1)
			case http.StateClosed, http.StateHijacked:
				r.open.Add(-1)
			}
		},
		// Dwolla's headers are a few hundred bytes; larger ones get 431.
		MaxHeaderBytes:    MaxHeaderBytes,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      15 * time.Second,
		IdleTimeout:       120 * time.Second,
	}
	return r, nil
}

// drain answers with "Connection: close" until no connection is open or
// DrainWait has passed (see DrainWait).
func (r *Role) drain() {
	r.draining.Store(true)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	deadline := time.Now().Add(DrainWait)
	for r.open.Load() > 0 && time.Now().Before(deadline) {
		<-tick.C
	}
}

// Addr is the address the role listens on.
func (r *Role) Addr() string { return r.ln.Addr().String() }

// Run starts the receiver and serves webhooks until ctx ends, then stops in
// order: close keep-alive connections after their next response (at most
// DrainWait), stop accepting requests, let those in flight finish (each waits for
// its commit; past ShutdownWait their connections are closed), stop the
// committers and the drainer, close the spool. It returns once everything it
// started has stopped.
func (r *Role) Run(ctx context.Context) error {
	if err := r.recv.Start(ctx); err != nil {
		r.ln.Close()
		return err
	}
	errc := make(chan error, 1)
	go func() { errc <- r.srv.Serve(r.ln) }()
	r.log.Info("ingest listening", "addr", r.Addr(), "webhook_url", "http://"+r.Addr()+"/webhooks/dwolla",
		"namespace", r.recv.keys.Namespace, "partitions", r.recv.keys.Partitions, "secrets", len(r.recv.opts.Secrets))
	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
		serveErr = fmt.Errorf("http server on %s: %w", r.Addr(), serveErr)
	}
	// Shutdown order: close the keep-alive connections after their next
	// response (drain); stop accepting and let the requests in flight
	// finish (each waits for its commit); past ShutdownWait, close their
	// connections. Then stop the committers and the drainer and close the
	// spool, waiting for that to end whatever it takes: the caller closes
	// the Redis client once Run returns.
	if serveErr == nil {
		r.drain()
	}
	var errs []error
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ShutdownWait)
	defer cancel()
	if err := r.srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		errs = append(errs, fmt.Errorf("requests still in flight after %s were cut off: %w", ShutdownWait, err))
		r.srv.Close()
	}
	rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), ShutdownWait)
	defer rcancel()
	if err := r.recv.Stop(rctx); err != nil {
		r.log.Warn("the receiver is slow to stop; waiting for it", "err", err)
		if err := r.recv.Stop(context.WithoutCancel(ctx)); err != nil {
			errs = append(errs, fmt.Errorf("stop the receiver: %w", err))
		}
	}
	if serveErr == nil && len(errs) == 0 {
		r.log.Info("ingest stopped")
	}
	return errors.Join(append([]error{serveErr}, errs...)...)
}
