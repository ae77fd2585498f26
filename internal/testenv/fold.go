package testenv

import (
	"context"
	"errors"
	"sync/atomic"

	"github.com/hookstream/hookstream/store"
	"github.com/jackc/pgx/v5"
)

// FlakyFold is a folding step that fails every Every-th call (the first,
// the Every+1-th, ...). Placed after a real fold, it makes the processor roll
// back batches that fold has already written into, and retry them: the test
// of anything a fold must count or cache only once its transaction commits.
type FlakyFold struct {
	Every        int64
	calls, fails atomic.Int64
}

// Name implements process.Fold.
func (f *FlakyFold) Name() string { return "flaky" }

// Fold implements process.Fold.
func (f *FlakyFold) Fold(context.Context, pgx.Tx, []store.Event) error {
	if f.calls.Add(1)%f.Every == 1 {
		f.fails.Add(1)
		return errors.New("flaky: failing this call")
	}
	return nil
}

// Fails is how many calls failed so far.
func (f *FlakyFold) Fails() int64 { return f.fails.Load() }
