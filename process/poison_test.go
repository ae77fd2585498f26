package process_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hookstream/hookstream/process"
	"github.com/hookstream/hookstream/store"
	"github.com/hookstream/hookstream/stream"
	"github.com/jackc/pgx/v5"
)

// scriptedFold is a folding step whose outages follow a script: broken(n)
// says whether its n-th call (0-based, canary events included) fails. When
// it works it refuses one event, poisonID, like a step with a bug for one
// kind of event. after(n), if set, runs at the start of each call.
type scriptedFold struct {
	mu       sync.Mutex
	calls    int
	broken   func(n int) bool
	after    func(n int)
	poisonID string
}

func (f *scriptedFold) Name() string { return "scripted" }

func (f *scriptedFold) Fold(_ context.Context, _ pgx.Tx, evs []store.Event) error {
	f.mu.Lock()
	n := f.calls
	f.calls++
	broken, after, poison := f.broken, f.after, f.poisonID
	f.mu.Unlock()
	if after != nil {
		after(n)
	}
	if broken(n) {
		return errors.New("folding step is down")
	}
	for _, e := range evs {
		if e.ID == poison {
			return fmt.Errorf("cannot fold event %s", e.ID)
		}
	}
	return nil
}

// reset starts a new script.
func (f *scriptedFold) reset(poisonID string, broken func(n int) bool, after func(n int)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls, f.poisonID, f.broken, f.after = 0, poisonID, broken, after
}

// syntheticEntry is a stream entry holding a customer_created event.
func syntheticEntry(entryID, eventID string, deliveries int64) stream.Message {
	body := fmt.Sprintf(`{"id":%q,"topic":"customer_created","created":"2026-11-28T10:00:00.000Z","_links":{"resource":{"href":"https://api.dwolla.com/customers/%s"}}}`, eventID, eventID)
	return stream.Message{Partition: 0, ID: entryID, Values: map[string]any{stream.FieldID: eventID, stream.FieldBody: body}, Deliveries: deliveries}
}

// TestAFoldingStepThatGoesDownOrRecoversAtAnyMomentNeverDeadLettersAGoodEvent
// runs one batch (good events, one event the step refuses, one good event
// delivered more often than the limit) through a folding step that changes
// state at every call of the processor's bisection, canaries and retries in
// turn: it recovers after call n, goes down at call n for good, or is down
// for calls [n, n+l) only. Whatever the moment, no good event may be
// dead-lettered: a failure seen while the step was down is no evidence
// against an event. Once the step works, the refused event is dead-lettered
// and every good one stored.
//
// It is not parallel with the other tests: it runs hundreds of transactions,
// and their load would push other tests' transactions past their timeouts.
func TestAFoldingStepThatGoesDownOrRecoversAtAnyMomentNeverDeadLettersAGoodEvent(t *testing.T) {
	// A hold of the batch below (bisection, canary, backoff) takes about 24
	// calls: the moments cover more than two of them.
	const moments = 60
	scripts := []struct {
		short, name string
		broken      func(n, call int) bool
		// recovers: the step works for good from some call on; otherwise
		// the batch is held for ever and given up on (as at shutdown) at
		// call n+50, two holds after the step went down.
		recovers bool
	}{
		{"recovers", "recovers after call %d", func(n, c int) bool { return c < n }, true},
		{"goes_down", "goes down for good at call %d", func(n, c int) bool { return c >= n }, false},
		{"down_once", "is down for call %d only", func(n, c int) bool { return c == n }, true},
		{"down_a_while", "is down for calls %d to +3", func(n, c int) bool { return c >= n && c < n+4 }, true},
	}
	e := newEnv(t)
	if err := stream.NewGroup(e.rdb, e.keys, "process").Ensure(context.Background()); err != nil {
		t.Fatal(err)
	}
	base := time.Now().UnixMilli()
	for k, sc := range scripts {
		t.Run(sc.short, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			f := &scriptedFold{broken: func(int) bool { return false }}
			opts := fastOptions()
			opts.RetryBase, opts.RetryMax = time.Millisecond, 2*time.Millisecond
			opts.Folds = []process.Fold{f}
			p, err := process.New(e.rdb, e.db, e.keys, opts)
			if err != nil {
				t.Fatal(err)
			}
			for n := range moments {
				name := fmt.Sprintf(sc.name, n)
				prefix := fmt.Sprintf("s%d-%d-", k, n)
				entry := func(j int) string { return fmt.Sprintf("%d-%d", base+int64(k*moments+n), j) }
				var msgs []stream.Message
				for j := range 6 {
					msgs = append(msgs, syntheticEntry(entry(j), fmt.Sprintf("%sgood-%d", prefix, j), 1))
				}
				poison := prefix + "poison"
				msgs = append(msgs, syntheticEntry(entry(6), poison, 1))
				// Delivered more often than the limit: tried on its own.
				msgs = append(msgs, syntheticEntry(entry(7), prefix+"again", int64(opts.MaxDeliveries)+2))

				hctx, cancel := context.WithCancel(ctx)
				var after func(int)
				if !sc.recovers {
					after = func(c int) {
						if c >= n+50 {
							cancel()
						}
					}
				}
				f.reset(poison, func(c int) bool { return sc.broken(n, c) }, after)
				err := p.Handle(hctx, "test", msgs)
				cancel()
				if sc.recovers && err != nil {
					t.Fatalf("step %s: %v", name, err)
				}

				dead := map[string]string{}
				rows, err := e.db.Query(ctx, `SELECT event_id, reason FROM dead_letters WHERE event_id LIKE $1`, prefix+"%")
				if err != nil {
					t.Fatal(err)
				}
				for rows.Next() {
					var id, reason string
					if err := rows.Scan(&id, &reason); err != nil {
						t.Fatal(err)
					}
					dead[id] = reason
				}
				if err := rows.Err(); err != nil {
					t.Fatal(err)
				}
				for id, reason := range dead {
					if id != poison {
						t.Errorf("step %s: good event %s dead-lettered: %s", name, id, reason)
					}
				}
				if !sc.recovers {
					continue
				}
				if reason, ok := dead[poison]; !ok || !strings.Contains(reason, "fails alone") {
					t.Errorf("step %s: the event the step refuses: dead letter %q (present %v)", name, reason, ok)
				}
				if n := e.count(t, `SELECT count(*) FROM events WHERE id LIKE $1`, prefix+"%"); n != 7 {
					t.Errorf("step %s: %d good events stored, want 7", name, n)
				}
			}
		})
	}
}
