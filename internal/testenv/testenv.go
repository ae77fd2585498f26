// Package testenv gives tests their own slice of the real Redis and PostgreSQL:
// a fresh key namespace or schema per test, removed when the test ends, so
// tests run in parallel and never touch anything that is not theirs. The
// servers come from HOOKSTREAM_REDIS_URL and HOOKSTREAM_DATABASE_URL, which
// `make test` sets (starting private servers when none is reachable).
//
// It is for tests only (it imports testing); what a program also needs, such
// as fresh names and schema-selecting URLs, lives in internal/scratch.
package testenv

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/hookstream/hookstream/internal/scratch"
	"github.com/hookstream/hookstream/stream"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
)

// RedisURL is the Redis the tests use.
func RedisURL() string {
	if u := os.Getenv("HOOKSTREAM_REDIS_URL"); u != "" {
		return u
	}
	return "redis://127.0.0.1:6379/0"
}

// DatabaseURL is the PostgreSQL the tests use.
func DatabaseURL() string {
	if u := os.Getenv("HOOKSTREAM_DATABASE_URL"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

// Name returns a short random identifier with prefix, safe as a key prefix or
// schema name (scratch.Name).
func Name(prefix string) string { return scratch.Name(prefix) }

// Redis returns a client of the test Redis and a namespace no other test
// uses; every key under "<namespace>:" is deleted when the test ends.
func Redis(t testing.TB) (*redis.Client, string) {
	t.Helper()
	opt, err := redis.ParseURL(RedisURL())
	if err != nil {
		t.Fatalf("parse HOOKSTREAM_REDIS_URL: %v", err)
	}
	rdb := redis.NewClient(opt)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		t.Fatalf("Redis at %s is unreachable: %v; run the tests with `make test`, which starts one", RedisURL(), err)
	}
	ns := Name("hst")
	t.Cleanup(func() {
		DeleteKeys(t, rdb, ns+":*")
		rdb.Close()
	})
	return rdb, ns
}

// DeleteKeys removes every key matching pattern (SCAN, never FLUSH).
func DeleteKeys(t testing.TB, rdb redis.UniversalClient, pattern string) {
	if _, err := stream.DeleteKeys(context.Background(), rdb, pattern); err != nil {
		t.Logf("cleanup: %v", err)
	}
}

// Postgres creates a schema for this test and returns a pool whose
// search_path is that schema, and the URL that selects it (for binaries the
// test starts). The schema is dropped when the test ends.
func Postgres(t testing.TB) (*pgxpool.Pool, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	admin, err := pgxpool.New(ctx, DatabaseURL())
	if err != nil {
		t.Fatalf("parse HOOKSTREAM_DATABASE_URL: %v", err)
	}
	if err := admin.Ping(ctx); err != nil {
		admin.Close()
		t.Fatalf("PostgreSQL at %s is unreachable: %v; run the tests with `make test`, which starts one", DatabaseURL(), err)
	}
	schema := Name("t_")
	if _, err := admin.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		admin.Close()
		t.Fatalf("create test schema: %v", err)
	}
	u := WithSearchPath(DatabaseURL(), schema)
	pool, err := pgxpool.New(ctx, u)
	if err != nil {
		t.Fatalf("connect to test schema: %v", err)
	}
	t.Cleanup(func() {
		pool.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := admin.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Logf("drop test schema %s: %v", schema, err)
		}
		admin.Close()
	})
	return pool, u
}

// WithSearchPath returns dbURL with its search_path set to schema
// (scratch.WithSearchPath).
func WithSearchPath(dbURL, schema string) string { return scratch.WithSearchPath(dbURL, schema) }
