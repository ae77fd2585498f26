package migrations_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/hookstream/hookstream/internal/testenv"
	"github.com/hookstream/hookstream/migrations"
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
