package journeys

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/hookstream/hookstream/internal/testenv"
	"github.com/hookstream/hookstream/migrations"
	"github.com/hookstream/hookstream/store"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// errRollback ends a test transaction without committing it.
var errRollback = errors.New("roll back")

// inRollback runs fn in a transaction that is then rolled back.
func inRollback(t *testing.T, db *pgxpool.Pool, fn func(tx pgx.Tx) error) {
	t.Helper()
	err := pgx.BeginFunc(context.Background(), db, func(tx pgx.Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		return errRollback
	})
	if !errors.Is(err, errRollback) {
		t.Fatal(err)
	}
}

// tables is every instance and every non-zero funnel aggregate, as text,
// in key order.
func tables(t *testing.T, q store.Querier) []string {
	t.Helper()
	ctx := context.Background()
	var out []string
	for _, sql := range []string{
		`SELECT journey, subject, step_at::text, step_event::text, status, coalesce(current_step, ''), entered_at, last_at,
			coalesce(deadline::text, ''), coalesce(abandoned_at::text, ''), coalesce(check_at::text, ''), coalesce(conflict, ''),
			coalesce(entry_topic, '') FROM journey_instances ORDER BY journey, subject COLLATE "C"`,
		`SELECT journey, day, dim, kind, step, bucket, n FROM journey_funnel WHERE n <> 0 ORDER BY 1, 2, 3, 4, 5, 6`,
	} {
		rows, err := q.Query(ctx, sql)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			vals, err := rows.Values()
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, fmt.Sprint(vals...))
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// TestARebuildInBatchesEqualsOneInOneBatch: a journey with many subjects
// (some abandoned, some whose events are gone, subjects that sort
// differently byte-wise and by collation) rebuilt a few instances at a
// time gives the same instances and funnels as folding, and as a rebuild
// in one batch; the rebuild holds no more than a batch of instances.
func TestARebuildInBatchesEqualsOneInOneBatch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, _ := testenv.Postgres(t)
	if _, err := migrations.Up(ctx, db); err != nil {
		t.Fatal(err)
	}
	f := NewFold(Default(), DefaultCacheMB)
	t0 := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	var evs []store.Event
	var subjects []string
	for i := range 40 {
		s := fmt.Sprintf("c-%d", i) // c-1 < c-10 < c-11 < ... < c-2
		switch i % 10 {
		case 3:
			s = fmt.Sprintf("C-%d", i) // upper case
		case 6:
			s = fmt.Sprintf("c-ü%d", i) // not ASCII
		}
		subjects = append(subjects, s)
		ev := func(n int, topic string, after time.Duration) store.Event {
			at := t0.Add(after + time.Duration(i)*time.Minute)
			return store.Event{ID: fmt.Sprintf("e-%d-%d", i, n), Topic: topic, CustomerID: s, ResourceID: s, Created: at, Received: at,
				Source: "webhook", Body: []byte("{}")}
		}
		evs = append(evs, ev(0, "customer_created", 0))
		if i%2 == 0 {
			evs = append(evs, ev(1, "customer_verification_document_needed", time.Hour))
		}
		if i%5 == 0 {
			evs = append(evs, ev(2, "customer_verified", 2*time.Hour))
		}
	}
	var used pgx.Tx
	err := pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		used = tx
		if _, err := store.InsertEvents(ctx, tx, evs); err != nil {
			return err
		}
		return f.Fold(ctx, tx, evs)
	})
	f.TxEnded(used, err == nil)
	if err != nil {
		t.Fatal(err)
	}
	// Instances that stopped at their first step are abandoned (deadline
	// 24h); the others' deadlines are still ahead.
	ab := &Abandoner{DB: db, Set: f.Set(), Watermark: func(context.Context) (time.Time, bool, error) { return t0.Add(30 * time.Hour), true, nil }}
	if n, err := ab.Tick(ctx); err != nil || n == 0 {
		t.Fatalf("abandoned %d (%v), want some", n, err)
	}

	rebuild := func(tx pgx.Tx, batch int, subject string) *rebuildRun {
		t.Helper()
		var last *rebuildRun
		for _, d := range f.Set().Journeys {
			r, err := f.rebuild(ctx, tx, d.Name, RebuildOptions{Subject: subject, Batch: batch})
			if err != nil {
				t.Fatal(err)
			}
			if d.Name == "customer_verification" {
				last = r
			}
		}
		return last
	}
	check := func(want []string, wantInstances int) {
		t.Helper()
		for _, batch := range []int{1, 3, 7} {
			inRollback(t, db, func(tx pgx.Tx) error {
				r := rebuild(tx, batch, "")
				if r.instances != wantInstances {
					t.Errorf("batch %d: %d customer_verification instances rebuilt, want %d", batch, r.instances, wantInstances)
				}
				if want := (wantInstances + batch - 1) / batch; r.batches != want || r.maxHeld > batch {
					t.Errorf("batch %d: %d batches of at most %d instances, want %d of at most %d", batch, r.batches, r.maxHeld, want, batch)
				}
				if got := tables(t, tx); !slices.Equal(got, want) {
					t.Errorf("batch %d: rebuilt tables differ:\n got %q\nwant %q", batch, got, want)
				}
				return nil
			})
		}
	}

	// Nothing changed since folding: a rebuild, in any batches, changes
	// nothing (not even check_at or an abandonment).
	folded := tables(t, db)
	check(folded, len(subjects))

	// Some events are gone (a subject's only or last ones): their
	// instances go or go back, wherever they fall among the batches (C-13
	// and c-ü6 are the first and last subjects in the C.UTF-8 order the
	// test database has).
	gone := []string{"C-13", "c-0", "c-7", "c-14", "c-39", "c-ü6"}
	if _, err := db.Exec(ctx, `DELETE FROM events WHERE customer_id = ANY($1) OR id = 'e-30-2'`, gone); err != nil {
		t.Fatal(err)
	}
	var once []string
	inRollback(t, db, func(tx pgx.Tx) error {
		if r := rebuild(tx, 1_000_000, ""); r.batches != 1 || r.instances != len(subjects)-len(gone) {
			t.Errorf("one batch: %d batches, %d instances; want 1 and %d", r.batches, r.instances, len(subjects)-len(gone))
		}
		var left int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM journey_instances WHERE subject = ANY($1)`, gone).Scan(&left); err != nil || left != 0 {
			t.Errorf("%d instances left of subjects without events (%v)", left, err)
		}
		once = tables(t, tx)
		return nil
	})
	if slices.Equal(once, folded) {
		t.Fatal("deleting events changed nothing in the rebuild")
	}
	check(once, len(subjects)-len(gone))

	// The subjects whose events changed, each rebuilt alone, end as the
	// whole rebuild did.
	inRollback(t, db, func(tx pgx.Tx) error {
		for _, s := range append(gone, "c-30") {
			if r := rebuild(tx, 1, s); r.batches != 1 || r.maxHeld > 1 {
				t.Errorf("subject %s: %d batches of at most %d instances, want 1 of at most 1", s, r.batches, r.maxHeld)
			}
		}
		if got := tables(t, tx); !slices.Equal(got, once) {
			t.Errorf("subject rebuilds differ from the whole rebuild:\n got %q\nwant %q", got, once)
		}
		return nil
	})
}
