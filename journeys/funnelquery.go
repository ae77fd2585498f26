package journeys

import (
	"context"
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/hookstream/hookstream/anomaly/stats"
	"github.com/hookstream/hookstream/store"
)

// Conversion is a proportion with its 95% Wilson score interval.
type Conversion struct {
	Rate float64 `json:"rate"`
	Low  float64 `json:"low"`
	High float64 `json:"high"`
}

// Wilson is x out of n with its 95% Wilson score interval (n = 0: zeros).
func Wilson(x, n int64) Conversion {
	rate, low, high := stats.Wilson(x, n)
	return Conversion{Rate: rate, Low: low, High: high}
}

// FunnelStep is one step of a funnel.
type FunnelStep struct {
	Step     string `json:"step"`
	Optional bool   `json:"optional"`
	Reached  int64  `json:"reached"`
	// Previous is the step this one is measured from: the nearest earlier
	// required step that is not an outcome ("" for the first).
	Previous string `json:"previous,omitempty"`
	// FromPrevious is the share of the instances that reached Previous and
	// then this step; Overall is reached / entered.
	FromPrevious Conversion `json:"from_previous"`
	Overall      Conversion `json:"overall"`
	// Time from Previous to this step, over the instances that reached
	// both, in seconds (nil when none did).
	MedianSeconds *float64 `json:"median_seconds_from_previous"`
	P90Seconds    *float64 `json:"p90_seconds_from_previous"`
	// Instances whose current step this is, by status: where the
	// population stands now, and where it dropped off.
	InFlight  int64 `json:"in_flight"`
	Abandoned int64 `json:"abandoned"`
	Completed int64 `json:"completed"`
	Failed    int64 `json:"failed"`
}

// FunnelReport is how the instances of a journey that entered in [From, To)
// (the cohort) went through its steps.
type FunnelReport struct {
	Journey    string       `json:"journey"`
	EntryTopic string       `json:"entry_topic,omitempty"` // the breakdown value, with --by entry_topic
	From       time.Time    `json:"from"`
	To         time.Time    `json:"to"`
	Entered    int64        `json:"entered"`
	InProgress int64        `json:"in_progress"`
	Completed  int64        `json:"completed"`
	Failed     int64        `json:"failed"`
	Abandoned  int64        `json:"abandoned"`
	Steps      []FunnelStep `json:"steps"`
}

// Funnel reports the funnel of journey d for the cohorts that entered on
// the UTC days from from's day up to and including the day before to (to
// exclusive, rounded up to a whole day): it sums the funnel aggregates the
// fold keeps per journey and day, a few hundred rows however many
// instances there are. Times between steps come from log-scale buckets,
// within 1% (GapGamma).
func Funnel(ctx context.Context, db store.Querier, d *Definition, from, to time.Time) (FunnelReport, error) {
	fs, err := Funnels(ctx, db, d, from, to, "")
	if err != nil {
		return FunnelReport{}, err
	}
	return fs[0], nil
}

// BreakdownEntryTopic breaks a funnel down by the topic instances entered
// with (a master-account or a customer transfer, ...).
const BreakdownEntryTopic = "entry_topic"

// Funnels is Funnel broken down by ("" or entry_topic): one funnel per
// value, ordered by value (one funnel, with no EntryTopic, when by is "").
func Funnels(ctx context.Context, db store.Querier, d *Definition, from, to time.Time, by string) ([]FunnelReport, error) {
	if by != "" && by != BreakdownEntryTopic {
		return nil, fmt.Errorf("cannot break a funnel down by %q; use entry_topic", by)
	}
	from = from.UTC().Truncate(24 * time.Hour)
	to = to.UTC().Add(-time.Nanosecond).Truncate(24 * time.Hour).Add(24 * time.Hour)
	if !from.Before(to) {
		return nil, fmt.Errorf("empty range: from %s is not before to %s", from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	rows, err := sumFunnel(ctx, db, d.Name, from, to, by != "")
	if err != nil {
		return nil, fmt.Errorf("funnel of %s: %w", d.Name, err)
	}
	byDim := map[string][]funnelSum{}
	for _, r := range rows {
		byDim[r.Dim] = append(byDim[r.Dim], r)
	}
	if len(byDim) == 0 {
		byDim[""] = nil
	}
	values := make([]string, 0, len(byDim))
	for k := range byDim {
		values = append(values, k)
	}
	sort.Strings(values)
	out := make([]FunnelReport, 0, len(values))
	for _, dim := range values {
		out = append(out, funnelOf(d, from, to, dim, byDim[dim]))
	}
	return out, nil
}

func funnelOf(d *Definition, from, to time.Time, dim string, rows []funnelSum) FunnelReport {
	f := FunnelReport{Journey: d.Name, EntryTopic: dim, From: from, To: to}
	f.Steps = make([]FunnelStep, len(d.Steps))
	gaps := make([]map[int32]int64, len(d.Steps))
	for i, s := range d.Steps {
		f.Steps[i] = FunnelStep{Step: s.Name, Optional: s.Optional}
		gaps[i] = map[int32]int64{}
	}
	for _, r := range rows {
		i := d.Index(r.Step)
		if r.Kind == KindEntered {
			f.Entered += r.N
			continue
		}
		if i < 0 {
			continue // a step no longer in the definition
		}
		switch r.Kind {
		case KindReached:
			f.Steps[i].Reached += r.N
		case KindGap:
			gaps[i][r.Bucket] += r.N
		case InProgress:
			f.Steps[i].InFlight += r.N
			f.InProgress += r.N
		case Completed:
			f.Steps[i].Completed += r.N
			f.Completed += r.N
		case Failed:
			f.Steps[i].Failed += r.N
			f.Failed += r.N
		case Abandoned:
			f.Steps[i].Abandoned += r.N
			f.Abandoned += r.N
		}
	}
	for i := range f.Steps {
		s := &f.Steps[i]
		s.Overall = Wilson(s.Reached, f.Entered)
		p := d.Previous(i)
		if p < 0 {
			s.FromPrevious = Wilson(s.Reached, f.Entered)
			continue
		}
		s.Previous = d.Steps[p].Name
		var both int64 // instances that reached p and then i: the gap histogram's count
		for _, n := range gaps[i] {
			both += n
		}
		s.FromPrevious = Wilson(both, f.Steps[p].Reached)
		s.MedianSeconds, s.P90Seconds = gapQuantile(gaps[i], 0.5), gapQuantile(gaps[i], 0.9)
	}
	return f
}

// gapQuantile reads quantile q off bucket counts (nil when empty).
func gapQuantile(buckets map[int32]int64, q float64) *float64 {
	var total int64
	keys := make([]int32, 0, len(buckets))
	for b, n := range buckets {
		total += n
		keys = append(keys, b)
	}
	if total <= 0 {
		return nil
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	rank := int64(math.Ceil(q * float64(total)))
	var seen int64
	for _, b := range keys {
		seen += buckets[b]
		if seen >= max(rank, 1) {
			v := math.Round(GapSeconds(int(b))*1000) / 1000
			return &v
		}
	}
	return nil
}
