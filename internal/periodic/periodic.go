// Package periodic runs a background step on a ticker: the one loop shared by
// the windows closer, the journey abandoner, the processor's pause switch and
// heartbeat, and the status exporter. It is not a scheduler: one step, one
// interval, until the context ends.
package periodic

import (
	"context"
	"log/slog"
	"time"
)

// Run calls step at once and then every interval until ctx ends. A failed
// step is logged (as "<what> failed; retrying") and tried again at the next
// tick; errors after ctx ended are shutdown noise and are not logged. Run
// returns when ctx ends, never in the middle of a step.
func Run(ctx context.Context, interval time.Duration, log *slog.Logger, what string, step func(context.Context) error) {
	if log == nil {
		log = slog.Default()
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if err := step(ctx); err != nil && ctx.Err() == nil {
			log.Warn(what+" failed; retrying", "err", err, "every", interval)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
