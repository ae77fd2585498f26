package process

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/hookstream/hookstream/dwolla"
	"github.com/hookstream/hookstream/store"
	"github.com/hookstream/hookstream/stream"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
)

// The operations behind "hookstream pause|resume|status|dlq|refold".

// SetPaused flips the switch every running processor of the group follows
// (within Options.ControlEvery). Receivers are not affected: they keep
// accepting and queueing.
func SetPaused(ctx context.Context, rdb redis.UniversalClient, keys stream.Keys, group string, paused bool) error {
	var err error
	if paused {
		err = rdb.Set(ctx, keys.Control(group), PausedValue, 0).Err()
	} else {
		err = rdb.Del(ctx, keys.Control(group)).Err()
	}
	if err != nil {
		return fmt.Errorf("set the %s switch: %w", group, err)
	}
	return nil
}

// IsPaused reads the switch.
func IsPaused(ctx context.Context, rdb redis.UniversalClient, keys stream.Keys, group string) (bool, error) {
	v, err := rdb.Get(ctx, keys.Control(group)).Result()
	if errors.Is(err, redis.Nil) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read the %s switch: %w", group, err)
	}
	return v == PausedValue, nil
}

// Heartbeats returns what the running processors last published, by
// consumer name. A processor that stopped publishing drops out within
// seconds. A heartbeat that cannot be decoded (a processor of another
// version?) is left out and named in the error, which comes with the others.
func Heartbeats(ctx context.Context, rdb redis.UniversalClient, keys stream.Keys) ([]Heartbeat, error) {
	var mu sync.Mutex
	var names []string
	err := stream.ScanKeys(ctx, rdb, keys.HeartbeatPattern(), 100, func(_ context.Context, _ redis.Cmdable, page []string) error {
		mu.Lock()
		names = append(names, page...)
		mu.Unlock()
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list processor heartbeats: %w", err)
	}
	if len(names) == 0 {
		return nil, nil
	}
	vals, err := stream.GetKeys(ctx, rdb, names)
	if err != nil {
		return nil, fmt.Errorf("read processor heartbeats: %w", err)
	}
	var out []Heartbeat
	var bad []error
	for i, v := range vals {
		s, ok := v.(string)
		if !ok {
			continue // expired between SCAN and MGET
		}
		var hb Heartbeat
		if err := json.Unmarshal([]byte(s), &hb); err != nil {
			bad = append(bad, fmt.Errorf("processor heartbeat %s is not readable (written by another hookstream version?): %w", names[i], err))
			continue
		}
		out = append(out, hb)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Consumer < out[j].Consumer })
	return out, errors.Join(bad...)
}

// ErrUnparsableBody is what RequeueDeadLetter's error matches when the body
// to requeue is not a Dwolla event.
var ErrUnparsableBody = errors.New("body is not a Dwolla event")

// RequeueDeadLetter puts dead letter id back on its partition stream so the
// processors store it through the normal path ("hookstream dlq requeue"),
// and marks it replayed (the state a requeued letter keeps). body,
// when not nil, replaces the stored body: the repaired event. The body must
// parse as a Dwolla event (otherwise it would only be dead-lettered again).
// The event keeps its original receipt time and source. Requeueing twice is
// harmless: the events table stores an event once.
func RequeueDeadLetter(ctx context.Context, rdb redis.UniversalClient, db *pgxpool.Pool, keys stream.Keys, id int64, body []byte) (string, error) {
	d, err := store.GetDeadLetter(ctx, db, id)
	if err != nil {
		return "", err
	}
	if d.State() != "open" {
		return "", fmt.Errorf("dead letter %d is already %s: %w", id, d.State(), store.ErrDeadLetterNotOpen)
	}
	if body == nil {
		body = d.Body
	}
	ev, err := dwolla.ParseEvent(body)
	if err != nil {
		return "", fmt.Errorf("dead letter %d cannot be requeued as it is: %w; repair the body and pass it with --body (API: as the request body): %w", id, err, ErrUnparsableBody)
	}
	received, ok := stream.Received(d.EntryID, anyMap(d.Fields))
	if !ok {
		received = d.DeadAt
	}
	en := stream.NewEntry(keys.Partition(ev.PartitionKey()), ev.ID, body, d.Fields[stream.FieldSource]).WithReceived(received)
	entryID, err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: keys.Stream(en.Partition), Values: en.Fields}).Result()
	if err != nil {
		return "", fmt.Errorf("requeue dead letter %d: %w", id, err)
	}
	ok, err = store.MarkDeadLetter(ctx, db, id, "replayed")
	if err == nil && !ok {
		// Another requeue or a discard came between the read and now. The
		// entry is on the stream all the same; storing it twice is harmless.
		err = fmt.Errorf("dead letter %d was requeued (entry %s) but another requeue or a discard marked it meanwhile: %w", id, entryID, store.ErrDeadLetterNotOpen)
	}
	return entryID, err
}

func anyMap(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// RefoldReport says what Refold did.
type RefoldReport struct {
	Events   int64    `json:"events"`   // stored events in the range
	Refolded []string `json:"refolded"` // folding steps recomputed
	Skipped  []string `json:"skipped"`  // folding steps that cannot recompute a range
}

// Refold re-runs the stored events created in [from, to) (of topics, if
// given) through every folding step that can recompute a range, all in one
// transaction: the fix-and-refold step after a folding bug. It is
// idempotent: each step discards what it derived for the range and derives
// it again from the events table.
func Refold(ctx context.Context, db *pgxpool.Pool, folds []Fold, from, to time.Time, topics []string) (RefoldReport, error) {
	var rep RefoldReport
	if !from.Before(to) {
		return rep, fmt.Errorf("empty range: --from %s is not before --to %s", from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	err := pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		var err error
		if rep.Events, err = (store.EventRange{From: from, To: to, Topics: topics}).Count(ctx, tx); err != nil {
			return err
		}
		for _, f := range folds {
			rf, ok := f.(Refolder)
			if !ok {
				rep.Skipped = append(rep.Skipped, f.Name())
				continue
			}
			if err := rf.Refold(ctx, tx, from, to, topics); err != nil {
				return fmt.Errorf("refold %s: %w", f.Name(), err)
			}
			rep.Refolded = append(rep.Refolded, f.Name())
		}
		return nil
	})
	return rep, err
}
