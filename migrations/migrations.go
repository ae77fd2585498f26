// Package migrations holds hookstream's PostgreSQL schema as ordered SQL files,
// embedded in the binary and applied with goose. Add a change as a new file
// NNNNN_name.sql with "-- +goose Up" and "-- +goose Down" sections; never edit
// one that has shipped.
package migrations

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
)

//go:embed *.sql
var files embed.FS

// Provider returns a goose provider for the embedded migrations on db. The
// version table lives in the first schema of db's search_path.
func Provider(db *sql.DB) (*goose.Provider, error) {
	p, err := goose.NewProvider(goose.DialectPostgres, db, files)
	if err != nil {
		return nil, fmt.Errorf("load embedded migrations: %w", err)
	}
	return p, nil
}

// Up applies every pending migration using pool's connection settings.
func Up(ctx context.Context, pool *pgxpool.Pool) ([]*goose.MigrationResult, error) {
	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()
	p, err := Provider(db)
	if err != nil {
		return nil, err
	}
	res, err := p.Up(ctx)
	if err != nil {
		return res, fmt.Errorf("apply migrations: %w; check that the database user may create tables", err)
	}
	return res, nil
}

// Status writes one line per migration: version, state, applied time.
func Status(ctx context.Context, pool *pgxpool.Pool, w io.Writer) error {
	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()
	p, err := Provider(db)
	if err != nil {
		return err
	}
	st, err := p.Status(ctx)
	if err != nil {
		return fmt.Errorf("read migration status: %w", err)
	}
	for _, s := range st {
		applied := "-"
		if !s.AppliedAt.IsZero() {
			applied = s.AppliedAt.UTC().Format("2006-01-02T15:04:05Z")
		}
		fmt.Fprintf(w, "%05d  %-8s  %-20s  %s\n", s.Source.Version, s.State, applied, s.Source.Path)
	}
	return nil
}

// Check reports an error that says what to do when the schema in pool's
// database is missing or behind the migrations embedded in this binary. It
// only reads (goose would create its version table). Read commands call it
// first, so a wrong or unmigrated database is named as such instead of
// surfacing as "relation does not exist".
func Check(ctx context.Context, pool *pgxpool.Pool) error {
	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()
	p, err := Provider(db)
	if err != nil {
		return err
	}
	src := p.ListSources()
	target := src[len(src)-1].Version
	cc := pool.Config().ConnConfig
	where := fmt.Sprintf("PostgreSQL at %s:%d/%s", cc.Host, cc.Port, cc.Database)
	var exists bool
	if err := pool.QueryRow(ctx, `SELECT to_regclass('goose_db_version') IS NOT NULL`).Scan(&exists); err != nil {
		return fmt.Errorf("read the schema version of %s: %w", where, err)
	}
	var current int64
	if exists {
		if err := pool.QueryRow(ctx, `SELECT coalesce(max(version_id), 0) FROM goose_db_version WHERE is_applied`).Scan(&current); err != nil {
			return fmt.Errorf("read the schema version of %s: %w", where, err)
		}
	}
	if current == 0 {
		return fmt.Errorf("%s holds no hookstream schema; apply it with `hookstream migrate up` (or point HOOKSTREAM_DATABASE_URL at the right database)", where)
	}
	if current < target {
		return fmt.Errorf("the hookstream schema in %s is at version %d, this binary needs %d; apply the rest with `hookstream migrate up`", where, current, target)
	}
	return nil
}
