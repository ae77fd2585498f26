package plugin

import (
	"testing"
	"time"
)

func TestChooseWindow(t *testing.T) {
	sizes := []time.Duration{time.Minute, 5 * time.Minute, 15 * time.Minute, time.Hour}
	f := func(span, interval time.Duration, maxPoints int64, want time.Duration) {
		t.Helper()
		if got := chooseWindow(sizes, span, interval, maxPoints); got != want {
			t.Errorf("span %s, interval %s, %d points: %s, want %s", span, interval, maxPoints, got, want)
		}
	}
	f(time.Hour, time.Minute, 1000, time.Minute)     // room for every minute
	f(time.Hour, 0, 60, time.Minute)                 // exactly 60 points fit
	f(time.Hour, 0, 59, 5*time.Minute)               // one point too many for 1m
	f(2*time.Hour, time.Minute, 10, 15*time.Minute)  // 12m per point needed
	f(time.Hour, 5*time.Minute, 1000, 5*time.Minute) // the interval is honoured
	f(time.Hour, 2*time.Minute, 1000, 5*time.Minute) // rounded up to a size
	f(30*24*time.Hour, time.Minute, 100, time.Hour)  // nothing coarse enough: the coarsest
	f(time.Hour, 0, 0, time.Minute)                  // no limit given
	if got := chooseWindow(nil, time.Hour, 0, 10); got != time.Minute {
		t.Errorf("no sizes: %s", got)
	}
}

func TestFormatWindow(t *testing.T) {
	for d, want := range map[time.Duration]string{time.Minute: "1m", 5 * time.Minute: "5m", time.Hour: "1h", 90 * time.Minute: "90m", 30 * time.Second: "30s"} {
		if got := formatWindow(d); got != want {
			t.Errorf("%s: %q, want %q", d, got, want)
		}
	}
}
