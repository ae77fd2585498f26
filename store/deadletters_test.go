package store_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/hookstream/hookstream/internal/testenv"
	"github.com/hookstream/hookstream/migrations"
	"github.com/hookstream/hookstream/store"
	"github.com/jackc/pgx/v5"
)

func TestEachOpenDeadLetterIDWalksTheOpenOnesOldestFirstInPages(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, _ := testenv.Postgres(t)
	if _, err := migrations.Up(ctx, db); err != nil {
		t.Fatal(err)
	}
	insert := func(from, n int) []store.DeadLetter {
		t.Helper()
		dls := make([]store.DeadLetter, n)
		for i := range dls {
			dls[i] = store.DeadLetter{Stream: "s", EntryID: fmt.Sprintf("%d-0", from+i), Reason: "r", Deliveries: 1, Body: []byte("{}")}
		}
		var added []store.DeadLetter
		if err := pgx.BeginFunc(ctx, db, func(tx pgx.Tx) (err error) {
			added, err = store.InsertDeadLetters(ctx, tx, dls)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return added
	}
	added := insert(1, 2500)
	var want []int64
	for i, d := range added {
		switch i % 10 {
		case 3:
			mustMark(t, db, d.ID, "replayed")
		case 7:
			mustMark(t, db, d.ID, "discarded")
		default:
			want = append(want, d.ID)
		}
	}
	slices.Sort(want)

	var got []int64
	pages := 0
	err := store.EachOpenDeadLetterID(ctx, db, 700, func(ids []int64) error {
		if len(ids) > 700 {
			t.Fatalf("page of %d ids, more than 700", len(ids))
		}
		if pages++; pages == 1 {
			insert(10_000, 5) // dead-lettered during the walk: not included
		}
		got = append(got, ids...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("walked %d ids (first %v), want the %d open ones oldest first", len(got), got[:min(5, len(got))], len(want))
	}
	if pages != (len(want)+699)/700 {
		t.Fatalf("%d pages for %d ids", pages, len(want))
	}
	stop := fmt.Errorf("stop")
	if err := store.EachOpenDeadLetterID(ctx, db, 700, func([]int64) error { return stop }); err != stop {
		t.Fatalf("fn's error: %v, want it returned", err)
	}
}

func mustMark(t *testing.T, q store.Querier, id int64, state string) {
	t.Helper()
	if ok, err := store.MarkDeadLetter(context.Background(), q, id, state); err != nil || !ok {
		t.Fatalf("mark %d %s: %v %v", id, state, ok, err)
	}
}
