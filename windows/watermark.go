package windows

import "time"

// Watermark is how far a clock has certainly progressed over all
// partitions: the smallest partition watermark. A partition's watermark is
// the largest time it has folded minus cfg.Delay (the bounded
// out-of-orderness). A partition that has folded nothing for cfg.Idle, or
// ever, and has nothing waiting in its stream (not in backlogged) follows
// the clock instead (now − Delay), so one quiet partition never holds
// every window open; one with entries waiting keeps its own time, so a
// pause, an outage or a restart does not close windows over events not yet
// folded. Times ahead of now count as now (a bogus future created time
// must not pin the watermark in the future). ok is false when a partition
// with entries waiting has never folded anything: its events' times are
// unknown, so nothing may close.
//
// now and the marks' SeenAt must be on one clock (the database's in
// production): a SeenAt after now reads as "just seen", so a closer running
// on an earlier clock than the folds never sees a partition idle.
func Watermark(marks []Mark, partitions int, now time.Time, cfg *Config, backlogged map[int32]bool) (wm time.Time, ok bool) {
	byPart := make(map[int32]Mark, len(marks))
	for _, m := range marks {
		byPart[m.Partition] = m
	}
	for p := range partitions {
		m, seen := byPart[int32(p)]
		waiting := backlogged[int32(p)]
		var w time.Time
		switch {
		case !seen && waiting:
			return time.Time{}, false
		case !waiting && (!seen || now.Sub(m.SeenAt) >= cfg.Idle):
			w = now
		default:
			w = m.MaxTime
			if w.After(now) {
				w = now
			}
		}
		w = w.Add(-cfg.Delay)
		if p == 0 || w.Before(wm) {
			wm = w
		}
	}
	return wm.UTC(), true
}

// ClosedUntil is the end of the last window of size that closes under
// watermark wm: windows closes once the watermark passes end + lateness.
func ClosedUntil(wm time.Time, size time.Duration, cfg *Config) time.Time {
	return Start(wm.Add(-cfg.LatenessOf(size)), size)
}
