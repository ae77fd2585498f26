package process_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookstream/hookstream/dwolla"
	"github.com/hookstream/hookstream/process"
	"github.com/hookstream/hookstream/sim"
	"github.com/hookstream/hookstream/stream"
	"github.com/redis/go-redis/v9"
)

// appendEvents is env.add for goroutines other than the test's: it returns
// the error instead of failing the test.
func (e *env) appendEvents(ctx context.Context, evs []sim.Event) error {
	pipe := e.rdb.Pipeline()
	for _, ev := range evs {
		parsed, err := dwolla.ParseEvent(ev.Body)
		if err != nil {
			return err
		}
		en := stream.NewEntry(e.keys.Partition(parsed.PartitionKey()), parsed.ID, ev.Body, "")
		pipe.XAdd(ctx, &redis.XAddArgs{Stream: e.keys.Stream(en.Partition), Values: en.Fields})
	}
	_, err := pipe.Exec(ctx)
	return err
}

// TestNothingAppendedAfterThePauseIsStoredUnderLoad sets the pause while
// events stream in and the workers are busy storing, and goes on appending.
// The processors poll the switch only once an hour here, so the pause can
// only take hold through the check every batch makes before it is stored
// (a read already waiting when the switch flips, or a processor that has not
// polled it yet, is exactly this case). No event appended after the switch
// was set may be stored until processing resumes; then every one is.
func TestNothingAppendedAfterThePauseIsStoredUnderLoad(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	evs := sim.Generate(sim.Config{Customers: 1000, Seed: 29}).Events
	first, second, third := evs[:len(evs)/3], evs[len(evs)/3:2*len(evs)/3], evs[2*len(evs)/3:]
	e.add(t, first)

	opts := fastOptions()
	opts.ControlEvery = time.Hour
	opts.BatchSize = 50
	opts.Workers = 4
	p, stop := e.run(t, e.db, opts)
	waitFor(t, 30*time.Second, "the workers storing", func() bool { return p.Stats().Stored > 0 })

	// The second third streams in while the switch is set: the chunks
	// appended once it is set are late.
	var pauseSet atomic.Bool
	type appended struct {
		late []string
		err  error
	}
	done := make(chan appended, 1)
	go func() {
		var a appended
		for i := 0; i < len(second) && a.err == nil; i += 50 {
			chunk := second[i:min(i+50, len(second))]
			late := pauseSet.Load()
			if a.err = e.appendEvents(ctx, chunk); late {
				a.late = append(a.late, ids(chunk)...)
			}
		}
		done <- a
	}()
	if err := process.SetPaused(ctx, e.rdb, e.keys, "process", true); err != nil {
		t.Fatal(err)
	}
	pauseSet.Store(true)
	e.add(t, third)
	a := <-done
	if a.err != nil {
		t.Fatal(a.err)
	}
	late := append(a.late, ids(third)...)
	storedLate := func() int64 { return e.count(t, `SELECT count(*) FROM events WHERE id = ANY($1)`, late) }

	// The workers that were storing finish; one that reads after the switch
	// was set holds what it read, and then none reads any more: every
	// pending entry is a held one.
	waitFor(t, 30*time.Second, "every pending entry held", func() bool {
		st := p.Stats()
		return storedLate() > 0 || st.HeldPaused > 0 && st.HeldPaused == e.pending(t)
	})
	if n := storedLate(); n != 0 {
		t.Fatalf("%d of the %d events appended after the pause was set were stored while paused", n, len(late))
	}
	if st := p.Stats(); !st.Paused {
		t.Fatalf("stats %+v: a processor holding a batch because of the pause does not report itself paused", st)
	}

	if err := process.SetPaused(ctx, e.rdb, e.keys, "process", false); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "every event stored after resume", func() bool {
		return e.count(t, `SELECT count(*) FROM events`) == int64(len(evs)) && e.Drained(t)
	})
	stop()
	if rep, err := sim.VerifyEvents(ctx, e.db, ids(evs)); err != nil || !rep.OK() {
		t.Fatalf("events vs truth: %v %v", rep, err)
	}
	if st := p.Stats(); st.HeldPaused != 0 || st.Dead != 0 {
		t.Fatalf("after resume: %+v", st)
	}
}
