package periodic

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestRunCallsAtOnceRetriesAfterErrorsAndStopsWithTheContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		Run(ctx, time.Millisecond, nil, "test step", func(context.Context) error {
			calls++
			if calls == 3 {
				cancel()
			}
			return errors.New("fails every time")
		})
	}()
	<-done
	if calls != 3 {
		t.Fatalf("step ran %d times, want 3 (a failing step is retried; Run stops once ctx ends)", calls)
	}
}
