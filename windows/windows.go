// Package windows turns stored events into live metrics over tumbling,
// UTC-aligned windows (1m, 5m, 15m, 1h by default), on event time (Dwolla's
// `created`) and on received time, and answers metric queries over them.
//
// It holds the pure logic (window assignment, the mergeable aggregate,
// watermarks and the close rule); the fold that keeps the aggregates in
// PostgreSQL as the processor stores events; the refold that recomputes a
// range of them from the events table ("hookstream refold"); the closer that
// closes windows as the watermark passes them; and QueryMetrics, the one
// metric read that the CLI, the JSON API and the Grafana plugin share. It
// owns the window tables and all their SQL (pg.go).
//
// Every aggregate is a merge that gives the same result in any order (sums, a
// DDSketch of delivery lag, a HyperLogLog of customers), and the processor
// folds each event exactly once (only newly inserted events), so duplicates,
// redeliveries, crashes and arrival order do not change a number. Folds and
// the closer judge time on one clock, the database's.
//
// It is not the processor (package process decides when a fold runs and owns
// its transaction), it does not store or read events beyond the shared
// range reader (package store), and it formats nothing: callers print or
// serialise a MetricResult.
package windows

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/hookstream/hookstream/store"
)

// Basis is the clock a window is on.
type Basis string

const (
	EventTime    Basis = "event"    // Dwolla's created: what happened when
	ReceivedTime Basis = "received" // when hookstream received it: delivery behaviour
)

// Bases are both clocks, in a fixed order.
var Bases = []Basis{EventTime, ReceivedTime}

// Dimensions a window can be broken down by. DimAll is always kept: one
// row per window over every event.
const (
	DimAll          = "all"
	DimTopic        = "topic"
	DimFamily       = "family"
	DimResourceType = "resource_type"
)

// KnownDims are the dimensions that can be configured.
var KnownDims = []string{DimTopic, DimFamily, DimResourceType}

// Value of ev in dimension dim ("" for DimAll; "unknown" when the event has
// none, so every event is counted in every dimension).
func Value(ev *store.Event, dim string) string {
	var v string
	switch dim {
	case DimAll:
		return ""
	case DimTopic:
		v = ev.Topic
	case DimFamily:
		v = ev.Family
	case DimResourceType:
		v = ev.ResourceType
	}
	if v == "" {
		return "unknown"
	}
	return v
}

// Key names one aggregate: a window of one size on one clock, and one value
// of one dimension.
type Key struct {
	Basis Basis
	Size  time.Duration
	Start time.Time // UTC, a multiple of Size since the Unix epoch
	Dim   string
	Value string
}

// End is when the window ends (exclusive).
func (k Key) End() time.Time { return k.Start.Add(k.Size) }

func (k Key) String() string {
	return fmt.Sprintf("%s/%s/%s/%s=%s", k.Basis, k.Size, k.Start.Format(time.RFC3339), k.Dim, k.Value)
}

// Compare orders keys (the order rows are locked in, so concurrent folds
// cannot deadlock).
func (k Key) Compare(o Key) int {
	if c := strings.Compare(string(k.Basis), string(o.Basis)); c != 0 {
		return c
	}
	if k.Size != o.Size {
		return int(k.Size - o.Size)
	}
	if c := strings.Compare(k.Dim, o.Dim); c != 0 {
		return c
	}
	if c := strings.Compare(k.Value, o.Value); c != 0 {
		return c
	}
	return k.Start.Compare(o.Start)
}

// Start is the start of the size-long window holding t: UTC-aligned, on a
// multiple of size since the Unix epoch (so 1h windows start on the hour and
// 15m ones on :00, :15, :30, :45). An instant exactly on a boundary opens
// the next window. UTC has no DST, so every window is exactly size long.
func Start(t time.Time, size time.Duration) time.Time {
	ns := t.UnixNano()
	s := int64(size)
	r := ns % s
	if r < 0 {
		r += s // before 1970
	}
	return time.Unix(0, ns-r).UTC()
}

// Config is what the windows are: their sizes, dimensions, lateness and
// watermark rules. The zero value takes the defaults.
type Config struct {
	Sizes []time.Duration // default 1m, 5m, 15m, 1h
	Dims  []string        // besides DimAll; default topic, family, resource_type
	// Lateness per size: a window closes when the watermark passes its end
	// plus this. Default 1m: 1m, 5m: 2m, 15m: 5m, 1h: 10m; other sizes 1m.
	Lateness map[time.Duration]time.Duration
	// Delay is the bounded out-of-orderness: a partition's watermark is the
	// largest time it has seen minus Delay (default 30s).
	Delay time.Duration
	// Idle is how long a partition may see nothing before its watermark
	// follows the clock instead (default 30s). The clock is the database's
	// (or the one a test gives the folds and the closer alike).
	Idle time.Duration
	// Retention per size: windows are pruned past it. Default 1m: 7 days,
	// 5m: 30 days, 15m: 90 days, 1h: 2 years.
	Retention map[time.Duration]time.Duration
}

// DefaultSizes are the window sizes unless configured.
var DefaultSizes = []time.Duration{time.Minute, 5 * time.Minute, 15 * time.Minute, time.Hour}

// WithDefaults fills in the defaults.
func (c Config) WithDefaults() Config {
	if len(c.Sizes) == 0 {
		c.Sizes = DefaultSizes
	}
	c.Sizes = slices.Clone(c.Sizes)
	slices.Sort(c.Sizes)
	c.Sizes = slices.Compact(c.Sizes)
	if c.Dims == nil {
		c.Dims = KnownDims
	}
	lateness := map[time.Duration]time.Duration{time.Minute: time.Minute, 5 * time.Minute: 2 * time.Minute,
		15 * time.Minute: 5 * time.Minute, time.Hour: 10 * time.Minute}
	for k, v := range c.Lateness {
		lateness[k] = v
	}
	c.Lateness = lateness
	retention := map[time.Duration]time.Duration{time.Minute: 7 * 24 * time.Hour, 5 * time.Minute: 30 * 24 * time.Hour,
		15 * time.Minute: 90 * 24 * time.Hour, time.Hour: 730 * 24 * time.Hour}
	for k, v := range c.Retention {
		retention[k] = v
	}
	c.Retention = retention
	if c.Delay <= 0 {
		c.Delay = 30 * time.Second
	}
	if c.Idle <= 0 {
		c.Idle = 30 * time.Second
	}
	return c
}

// Validate reports a configuration that cannot work, saying what to fix.
func (c Config) Validate() error {
	for _, s := range c.Sizes {
		if s < time.Second || s%time.Second != 0 || (24*time.Hour)%s != 0 {
			return fmt.Errorf("window size %s must be whole seconds and divide a day evenly, so windows stay aligned", s)
		}
		if s%c.Sizes[0] != 0 {
			return fmt.Errorf("window size %s must be a multiple of the smallest, %s: larger windows are rolled up from it", s, c.Sizes[0])
		}
	}
	for _, s := range c.Sizes[1:] {
		if c.LatenessOf(s) < c.LatenessOf(c.Sizes[0]) {
			return fmt.Errorf("the lateness of %s windows (%s) must be at least that of %s windows (%s): they are rolled up from them once those have closed",
				s, c.LatenessOf(s), c.Sizes[0], c.LatenessOf(c.Sizes[0]))
		}
	}
	// The base windows feed the roll-ups: they must outlive the largest
	// window's close (its end, its lateness and the watermark delay).
	largest := c.Sizes[len(c.Sizes)-1]
	if need := largest + c.LatenessOf(largest) + c.Delay + time.Hour; c.Retention[c.Sizes[0]] < need {
		return fmt.Errorf("the retention of %s windows (%s) must be at least %s: larger windows are rolled up from them when they close",
			c.Sizes[0], c.Retention[c.Sizes[0]], need)
	}
	for _, d := range c.Dims {
		if !slices.Contains(KnownDims, d) {
			return fmt.Errorf("unknown window dimension %q; known: %s", d, strings.Join(KnownDims, ", "))
		}
	}
	return nil
}

// Base is the smallest window size: the one the processor folds; larger
// sizes are rolled up from it when they close (and read from it while open).
func (c Config) Base() time.Duration { return c.Sizes[0] }

// LatenessOf is the allowed lateness of windows of size.
func (c Config) LatenessOf(size time.Duration) time.Duration {
	if l, ok := c.Lateness[size]; ok {
		return l
	}
	return time.Minute
}

// AllDims is DimAll and the configured dimensions.
func (c Config) AllDims() []string { return append([]string{DimAll}, c.Dims...) }

// ParseDurations parses "1m=2m,5m=3m" into a map (for flags).
func ParseDurations(s string) (map[time.Duration]time.Duration, error) {
	out := map[time.Duration]time.Duration{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			return nil, fmt.Errorf("%q: want size=duration, for example 1m=2m", part)
		}
		size, err := time.ParseDuration(strings.TrimSpace(k))
		if err != nil {
			return nil, fmt.Errorf("%q: window size: %w", part, err)
		}
		d, err := parseLongDuration(strings.TrimSpace(v))
		if err != nil {
			return nil, fmt.Errorf("%q: %w", part, err)
		}
		out[size] = d
	}
	return out, nil
}

// parseLongDuration also accepts days ("30d").
func parseLongDuration(s string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		var days int
		if _, err := fmt.Sscanf(n, "%d", &days); err == nil && fmt.Sprint(days) == n {
			return time.Duration(days) * 24 * time.Hour, nil
		}
	}
	return time.ParseDuration(s)
}

// ParseSizes parses "1m,5m" (for flags).
func ParseSizes(s string) ([]time.Duration, error) {
	var out []time.Duration
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part == "" {
			continue
		}
		d, err := time.ParseDuration(part)
		if err != nil {
			return nil, fmt.Errorf("window size %q: %w", part, err)
		}
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out, nil
}
