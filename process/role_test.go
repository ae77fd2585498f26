package process_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hookstream/hookstream/journeys"
	"github.com/hookstream/hookstream/process"
	"github.com/hookstream/hookstream/sim"
	"github.com/hookstream/hookstream/windows"
)

// The process role (processor, closer, abandoner, status exporter) starts
// and stops as one value: what it stores, folds and closes is visible while
// it runs, and Run returns once ctx ends with nothing of it left running.
func TestRoleStartsAndStopsAsOneValue(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	sc := sim.Generate(sim.Config{Customers: 40, Seed: 23})
	e.add(t, sc.Events)

	opts := fastOptions()
	// Generous bounds: under -race on a loaded machine a commit can outlast
	// a short timeout, and its batch is then stored as duplicates.
	opts.TxTimeout, opts.ClaimIdle = 3*time.Second, 5*time.Second
	cfg := process.RoleConfig{Processor: opts, Journeys: journeys.Default(), StatusEvery: 50 * time.Millisecond}
	cfg.Windows.Idle = time.Millisecond // every partition counts as idle at once: windows close on the wall clock
	role, err := process.NewRole(e.rdb, e.db, e.keys, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- role.Run(ctx) }()

	waitFor(t, 30*time.Second, "every event stored and folded", func() bool {
		return e.count(t, `SELECT count(*) FROM events`) == int64(len(sc.Events)) && e.Drained(t)
	})
	if n := e.count(t, `SELECT count(*) FROM journey_instances`); n == 0 {
		t.Fatal("the role folded no journey instances")
	}
	// The simulated events are hours old: the closer (part of the role)
	// closes their windows once the partitions are idle.
	waitFor(t, 30*time.Second, "the role's closer to close windows", func() bool {
		return e.count(t, `SELECT count(*) FROM window_closes`) > 0
	})
	// A commit whose outcome was unknown is redelivered and then counted as
	// duplicates, so stored alone may fall short; together they cannot.
	if st := role.Processor().Stats(); st.Stored+st.Duplicates < int64(len(sc.Events)) || st.Stored == 0 {
		t.Fatalf("processor stats: %d stored and %d duplicates, want %d in all", st.Stored, st.Duplicates, len(sc.Events))
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run returned %v after ctx ended, want nil", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return within 30s of ctx ending")
	}
	// Nothing of the role runs any more: its heartbeat is gone, and no
	// processor reports itself.
	st, err := process.ReadStatus(context.Background(), e.rdb, e.db, e.keys, "process", cfg.Windows)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Processors) != 0 {
		t.Fatalf("after Run returned, processors still report: %+v", st.Processors)
	}
	var journeys int64
	for _, n := range st.JourneyCount {
		journeys += n
	}
	if want := e.count(t, `SELECT count(*) FROM journey_instances`); journeys != want || len(st.Errors) != 0 {
		t.Fatalf("status: %d journey instances by status (table: %d), errors %v", journeys, want, st.Errors)
	}
}

// NewRole validates the whole configuration before anything starts.
func TestNewRoleRejectsABadConfigurationBeforeStarting(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	bad := func(name string, cfg process.RoleConfig, want string) {
		t.Helper()
		if _, err := process.NewRole(e.rdb, e.db, e.keys, cfg); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: NewRole = %v, want an error mentioning %q", name, err, want)
		}
	}
	bad("window size that does not divide a day", process.RoleConfig{Windows: windows.Config{Sizes: []time.Duration{7 * time.Hour}}}, "windows")
	bad("folds given by hand", process.RoleConfig{Processor: process.Options{Folds: []process.Fold{nil}}}, "filled by NewRole")
	bad("read block below Redis's resolution", process.RoleConfig{EventsOnly: true, Processor: process.Options{Block: time.Microsecond}}, "read block")
}
