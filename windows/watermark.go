package windows

import (
	"time"

	"github.com/hookstream/hookstream/store"
)

// Watermark is how far a clock has certainly progressed over all
// partitions: the smallest partition watermark. A partition's watermark is
// the largest time it has folded minus cfg.Delay (the bounded
// out-of-orderness); a partition that has folded nothing for cfg.Idle, or
// ever, follows the wall clock instead (now − Delay, or its own largest
// time if that is ahead), so one quiet partition never holds every window
// open. partitions is how many there are.
func Watermark(marks []store.WindowMark, partitions int, now time.Time, cfg *Config) time.Time {
	byPart := make(map[int32]store.WindowMark, len(marks))
	for _, m := range marks {
		byPart[m.Partition] = m
	}
	var wm time.Time
	for p := range partitions {
		m, ok := byPart[int32(p)]
		var w time.Time
		switch {
		case !ok || now.Sub(m.SeenAt) >= cfg.Idle:
			w = now
			if ok && m.MaxTime.After(now) {
				w = m.MaxTime
			}
		default:
			w = m.MaxTime
		}
		w = w.Add(-cfg.Delay)
		if p == 0 || w.Before(wm) {
			wm = w
		}
	}
	return wm.UTC()
}

// ClosedUntil is the end of the last window of size that closes under
// watermark wm: windows closes once the watermark passes end + lateness.
func ClosedUntil(wm time.Time, size time.Duration, cfg *Config) time.Time {
	return Start(wm.Add(-cfg.LatenessOf(size)), size)
}
