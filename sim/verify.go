package sim

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/hookstream/hookstream/stream"
)

// maxExamples bounds the ids a Report lists per kind of difference.
const maxExamples = 10

// Report compares a ground truth with what a store holds.
type Report struct {
	Expected   int // unique ids in the truth
	Found      int // truth ids the store holds at least once
	Missing    int // truth ids the store does not hold
	Duplicated int // ids the store holds more than once
	Unexpected int // ids the store holds that the truth does not have
	// Examples of each kind, sorted, at most 10 each.
	MissingIDs, DuplicatedIDs, UnexpectedIDs []string
}

// OK reports whether the store holds exactly the truth, each id once.
func (r Report) OK() bool {
	return r.Found == r.Expected && r.Missing == 0 && r.Duplicated == 0 && r.Unexpected == 0
}

// String summarises the report, with examples when it is not OK.
func (r Report) String() string {
	var b strings.Builder
	verdict := "OK"
	if !r.OK() {
		verdict = "MISMATCH"
	}
	fmt.Fprintf(&b, "%s: expected %d events, found %d; %d missing, %d duplicated, %d unexpected",
		verdict, r.Expected, r.Found, r.Missing, r.Duplicated, r.Unexpected)
	examples := func(kind string, n int, ids []string) {
		if len(ids) > 0 {
			fmt.Fprintf(&b, "\n  %s (%d of %d): %s", kind, len(ids), n, strings.Join(ids, " "))
		}
	}
	examples("missing", r.Missing, r.MissingIDs)
	examples("duplicated", r.Duplicated, r.DuplicatedIDs)
	examples("unexpected", r.Unexpected, r.UnexpectedIDs)
	return b.String()
}

// compare builds the report of truth against counts (how often the store
// holds each id).
func compare(truth []string, counts map[string]int) Report {
	want := make(map[string]struct{}, len(truth))
	for _, id := range truth {
		want[id] = struct{}{}
	}
	r := Report{Expected: len(want)}
	var missing, dup, unexpected []string
	for id := range want {
		if counts[id] == 0 {
			missing = append(missing, id)
		}
	}
	for id, n := range counts {
		if _, ok := want[id]; ok {
			r.Found++
		} else {
			unexpected = append(unexpected, id)
		}
		if n > 1 {
			dup = append(dup, id)
		}
	}
	r.Missing, r.Duplicated, r.Unexpected = len(missing), len(dup), len(unexpected)
	r.MissingIDs, r.DuplicatedIDs, r.UnexpectedIDs = examples(missing), examples(dup), examples(unexpected)
	return r
}

func examples(ids []string) []string {
	if len(ids) == 0 {
		return nil
	}
	slices.Sort(ids)
	return slices.Clip(ids[:min(len(ids), maxExamples)])
}

// xrangePage is how many entries VerifyStreams reads per XRANGE.
const xrangePage = 1000

// VerifyStreams compares truth with the event ids (entry field "id") in every
// partition stream of keys, read with XRANGE in pages. An entry without an id
// counts as unexpected, named by its stream and entry id.
func VerifyStreams(ctx context.Context, rdb redis.UniversalClient, keys stream.Keys, truth []string) (Report, error) {
	counts := make(map[string]int, len(truth))
	for p := range keys.Partitions {
		key := keys.Stream(p)
		start := "-"
		for {
			msgs, err := rdb.XRangeN(ctx, key, start, "+", xrangePage).Result()
			if err != nil {
				return Report{}, fmt.Errorf("sim: read stream %q: %w; check the Redis URL and that the namespace and partitions match the receiver's", key, err)
			}
			for _, m := range msgs {
				id, _ := m.Values["id"].(string)
				if id == "" {
					id = fmt.Sprintf("<%s %s: no id field>", key, m.ID)
				}
				counts[id]++
			}
			if len(msgs) < xrangePage {
				break
			}
			start = "(" + msgs[len(msgs)-1].ID
		}
	}
	return compare(truth, counts), nil
}

// VerifyEvents compares truth with the ids of the events table.
func VerifyEvents(ctx context.Context, db *pgxpool.Pool, truth []string) (Report, error) {
	rows, err := db.Query(ctx, "SELECT id FROM events")
	if err != nil {
		return Report{}, fmt.Errorf("sim: read event ids from PostgreSQL: %w; check the database URL and that 'hookstream migrate up' has run", err)
	}
	defer rows.Close()
	counts := make(map[string]int, len(truth))
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return Report{}, fmt.Errorf("sim: read event id: %w", err)
		}
		counts[id]++
	}
	if err := rows.Err(); err != nil {
		return Report{}, fmt.Errorf("sim: read event ids from PostgreSQL: %w", err)
	}
	return compare(truth, counts), nil
}
