package reconcile

import (
	"context"
	"errors"
	"time"
)

// RunEvery runs a reconciliation every interval (the first at once) until
// ctx ends: the reconcile role. With several processes, the lock lets one
// run at a time; the others skip their turn.
func (r *Reconciler) RunEvery(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		_, err := r.Run(ctx, Window{})
		switch {
		case errors.Is(err, ErrBusy):
			r.opts.Logger.Debug("reconciliation skipped: another process is running one")
		case err != nil && ctx.Err() == nil:
			r.opts.Logger.Warn("reconciliation failed; the next one covers its window again", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
