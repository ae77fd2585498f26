package migrations_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/hookstream/hookstream/internal/testenv"
	"github.com/hookstream/hookstream/migrations"
	"github.com/jackc/pgx/v5/stdlib"
)

func TestUpIsIdempotentAndCreatesTables(t *testing.T) {
	t.Parallel()
	pool, _ := testenv.Postgres(t)
	ctx := context.Background()
	res, err := migrations.Up(ctx, pool)
	if err != nil || len(res) == 0 {
		t.Fatalf("first up: %d applied, %v", len(res), err)
	}
	if res, err := migrations.Up(ctx, pool); err != nil || len(res) != 0 {
		t.Fatalf("second up should apply nothing: %d applied, %v", len(res), err)
	}
	// The events table takes an event and its primary key is the dedup.
	insert := `INSERT INTO events (id, topic, resource_type, resource_id, customer_id, created, received_at, source, body)
	           VALUES ('e1', 'customer_created', 'customers', 'c1', 'c1', now(), now(), 'webhook', '{}'::bytea)
	           ON CONFLICT (id) DO NOTHING`
	for i, want := range []int64{1, 0} {
		tag, err := pool.Exec(ctx, insert)
		if err != nil || tag.RowsAffected() != want {
			t.Fatalf("insert %d: affected %d, err %v; want %d", i, tag.RowsAffected(), err, want)
		}
	}
	if _, err := pool.Exec(ctx, `INSERT INTO dead_letters (stream, entry_id, reason, fields) VALUES ('s', '1-0', 'unparseable', '{}')`); err != nil {
		t.Fatalf("dead_letters: %v", err)
	}
	var buf bytes.Buffer
	if err := migrations.Status(ctx, pool, &buf); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "00001") || !strings.Contains(buf.String(), "applied") {
		t.Fatalf("status output:\n%s", buf.String())
	}
}

// TestCheckAtFilledForInstancesThatExisted: 00005 gives every in-progress
// instance a check_at (its deadline), so the abandoner, which now looks only
// at check_at, still finds instances written before the upgrade.
func TestCheckAtFilledForInstancesThatExisted(t *testing.T) {
	t.Parallel()
	pool, _ := testenv.Postgres(t)
	ctx := context.Background()
	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()
	p, err := migrations.Provider(db)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.UpTo(ctx, 4); err != nil {
		t.Fatal(err)
	}
	_, err = pool.Exec(ctx, `INSERT INTO journey_instances (journey, subject, step_at, step_event, status, entered_at, last_at, deadline)
		VALUES ('j', 'open', '{}', '{}', 'in_progress', now(), now(), '2026-12-01Z'),
		       ('j', 'done', '{}', '{}', 'completed', now(), now(), NULL),
		       ('j', 'gone', '{}', '{}', 'abandoned', now(), now(), '2026-11-01Z')`)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Up(ctx); err != nil {
		t.Fatal(err)
	}
	rows, err := pool.Query(ctx, `SELECT subject, coalesce(to_char(check_at AT TIME ZONE 'UTC', 'YYYY-MM-DD'), '-') FROM journey_instances ORDER BY subject`)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for rows.Next() {
		var s, c string
		if err := rows.Scan(&s, &c); err != nil {
			t.Fatal(err)
		}
		got = append(got, s+"="+c)
	}
	if strings.Join(got, " ") != "done=- gone=- open=2026-12-01" {
		t.Fatalf("check_at after 00005: %v", got)
	}
}

func TestCheckNamesAMissingSchemaAndPassesOnceMigrated(t *testing.T) {
	t.Parallel()
	pool, _ := testenv.Postgres(t)
	ctx := context.Background()
	err := migrations.Check(ctx, pool)
	if err == nil || !strings.Contains(err.Error(), "no hookstream schema") || !strings.Contains(err.Error(), "hookstream migrate up") {
		t.Fatalf("Check on an empty schema = %v; want an error naming the missing schema and `hookstream migrate up`", err)
	}
	if _, err := migrations.Up(ctx, pool); err != nil {
		t.Fatal(err)
	}
	if err := migrations.Check(ctx, pool); err != nil {
		t.Fatalf("Check after Up = %v, want nil", err)
	}
}
