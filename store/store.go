// Package store is hookstream's PostgreSQL access: connection pools and, as
// later roles need them, batch writes and queries. It imports no role.
package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Open connects a pool to url and checks it answers.
func Open(ctx context.Context, url string) (*pgxpool.Pool, error) {
	pool, err := OpenLazy(ctx, url)
	if err != nil {
		return nil, err
	}
	cfg := pool.Config()
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to PostgreSQL at %s:%d: %w; check HOOKSTREAM_DATABASE_URL and that the server is running", cfg.ConnConfig.Host, cfg.ConnConfig.Port, err)
	}
	return pool, nil
}

// OpenLazy makes a pool for url that connects when it is first used: for
// a role that must start, and answer what it can, while PostgreSQL is down.
func OpenLazy(ctx context.Context, url string) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parse database URL: %w; expected postgres://user@host:port/db", err)
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		// Without it a blackholed server holds a dial for minutes.
		cfg.ConnConfig.ConnectTimeout = 5 * time.Second
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	return pool, nil
}

// DBNow is the database's clock.
func DBNow(ctx context.Context, q Querier) (time.Time, error) {
	var t time.Time
	if err := q.QueryRow(ctx, `SELECT now()`).Scan(&t); err != nil {
		return t, fmt.Errorf("read the database clock: %w", err)
	}
	return t.UTC(), nil
}
