package api

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
)

// Role is the api role: the Server behind its own HTTP listener. Create it
// with NewRole, which already listens (so Addr is known), and run it once
// with Run.
type Role struct {
	s   *Server
	srv *http.Server
	ln  net.Listener
}

// NewRole builds the API and listens on addr. Insecure (no tokens) is
// refused unless addr is a loopback address. The caller owns rdb and db
// and closes them after Run has returned.
func NewRole(rdb redis.UniversalClient, db *pgxpool.Pool, addr string, cfg Config) (*Role, error) {
	if cfg.Insecure && len(cfg.Tokens) == 0 && !loopback(addr) {
		return nil, fmt.Errorf("--api-insecure serves the API without authentication, so only on a loopback address (127.0.0.1:8081), not %s; configure HOOKSTREAM_API_TOKENS instead", addr)
	}
	s, err := New(rdb, db, cfg)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w; is another process using the port? set HOOKSTREAM_API_ADDR", addr, err)
	}
	return &Role{s: s, ln: ln, srv: &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		// No WriteTimeout: live clients stay connected; each write to them
		// has its own deadline, and every other route its request timeout.
		IdleTimeout: 120 * time.Second,
	}}, nil
}

func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Addr is the address the role listens on.
func (r *Role) Addr() string { return r.ln.Addr().String() }

// Server is the role's API server.
func (r *Role) Server() *Server { return r.s }

// ShutdownWait bounds how long requests in flight may take once the role
// stops.
const ShutdownWait = 10 * time.Second

// Run serves until ctx ends, then stops in order: stop the live feed's
// reader (its clients get what is buffered and are disconnected; they
// resume elsewhere with Last-Event-ID), stop accepting, let the requests
// in flight finish (at most ShutdownWait), close. It returns once
// everything it started has stopped.
func (r *Role) Run(ctx context.Context) error {
	hctx, stopHub := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		r.s.Run(hctx)
	}()
	errc := make(chan error, 1)
	go func() { errc <- r.srv.Serve(r.ln) }()
	r.s.log.Info("api listening", "addr", r.Addr(), "api_url", "http://"+r.Addr()+"/api/v1", "console_url", "http://"+r.Addr()+"/",
		"tokens", len(r.s.cfg.Tokens), "insecure", r.s.cfg.Insecure)
	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
		serveErr = fmt.Errorf("api server on %s: %w", r.Addr(), serveErr)
	}
	stopHub()
	wg.Wait()
	sctx, cancel := context.WithTimeout(context.Background(), ShutdownWait)
	defer cancel()
	if err := r.srv.Shutdown(sctx); err != nil {
		r.srv.Close()
		if serveErr == nil {
			serveErr = fmt.Errorf("stop the api server: %w", err)
		}
	}
	if serveErr == nil {
		if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
			serveErr = err
		}
	}
	return serveErr
}
