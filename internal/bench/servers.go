package bench

import (
	"cmp"
	"context"
	"fmt"
	"io"

	"github.com/hookstream/hookstream/internal/scratch"
	"github.com/hookstream/hookstream/migrations"
	"github.com/hookstream/hookstream/store"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Defaults of the connection fields every config has; the same as the
// flags' of `hookstream`.
const (
	defaultRedisURL    = "redis://127.0.0.1:6379/0"
	defaultDatabaseURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	defaultPartitions  = 16
)

// newSchema creates schema through admin, applies the migrations in it and
// returns a pool whose search_path is it. The caller drops it.
func newSchema(ctx context.Context, admin *pgxpool.Pool, dbURL, schema string) (*pgxpool.Pool, error) {
	if _, err := admin.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		return nil, fmt.Errorf("create benchmark schema %s: %w", schema, err)
	}
	pool, err := store.Open(ctx, scratch.WithSearchPath(dbURL, schema))
	if err != nil {
		return nil, err
	}
	if _, err := migrations.Up(ctx, pool); err != nil {
		pool.Close()
		return nil, err
	}
	return pool, nil
}

// orDiscard is w, or io.Discard when w is nil.
func orDiscard(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}

// notNegative returns an error naming flag when v is below zero: every size,
// rate and duration of a benchmark counts something. Join several with
// errors.Join.
func notNegative[T cmp.Ordered](flag string, v T) error {
	var zero T
	if v < zero {
		return fmt.Errorf("%s %v: must not be negative", flag, v)
	}
	return nil
}
