package journey

import (
	"context"
	"math"
	"slices"
	"time"

	"github.com/hookstream/hookstream/store"
	"github.com/jackc/pgx/v5"
)

// Funnel aggregates: what each instance contributes to its journey's
// cohort (the UTC day it entered). The fold adds an instance's new
// contribution and subtracts its old one, so the aggregates always equal a
// recomputation from the instances, in any order of events.

// Kinds of funnel aggregate.
const (
	KindEntered = "entered"
	KindReached = "reached"
	KindGap     = "gap"
)

// GapGamma is the ratio between consecutive gap buckets: a time between
// steps read back from its bucket is within 1% of the true value.
const GapGamma = 1.02

// GapBucket is the bucket of a gap in seconds: 0 for under a second, else
// 1 + floor(log_gamma(seconds)).
func GapBucket(d time.Duration) int {
	s := d.Seconds()
	if s < 1 {
		return 0
	}
	return 1 + int(math.Floor(math.Log(s)/math.Log(GapGamma)))
}

// GapSeconds is a bucket's representative value (its geometric middle).
func GapSeconds(b int) float64 {
	if b <= 0 {
		return 0.5
	}
	return math.Pow(GapGamma, float64(b-1)+0.5)
}

// FunnelKey names one aggregate.
type FunnelKey struct {
	Journey string
	Day     time.Time // UTC midnight
	Dim     string    // the instance's entry topic
	Kind    string
	Step    string
	Bucket  int
}

// Contribution adds (sign +1) or removes (-1) what an instance with steps
// and state counts in its journey's funnel.
func Contribution(d *Definition, steps []Reach, st State, sign int64, into map[FunnelKey]int64) {
	for _, x := range contribution(d, steps, st, sign, nil) {
		into[x.key] += x.n
	}
}

// funnelDelta is one change to one aggregate.
type funnelDelta struct {
	key FunnelKey
	n   int64
}

// contribution appends to out what Contribution adds to its map.
func contribution(d *Definition, steps []Reach, st State, sign int64, out []funnelDelta) []funnelDelta {
	if st.Current < 0 && st.EnteredAt.IsZero() {
		return out // a placeholder: no step reached
	}
	day := st.EnteredAt.UTC().Truncate(24 * time.Hour)
	add := func(kind, step string, bucket int) {
		out = append(out, funnelDelta{FunnelKey{Journey: d.Name, Day: day, Dim: st.EntryTopic, Kind: kind, Step: step, Bucket: bucket}, sign})
	}
	add(KindEntered, "", 0)
	for i, r := range steps {
		if i >= len(d.Steps) || !r.Reached() {
			continue
		}
		add(KindReached, d.Steps[i].Name, 0)
		if p := d.Previous(i); p >= 0 && p < len(steps) && steps[p].Reached() {
			add(KindGap, d.Steps[i].Name, GapBucket(max(r.At.Sub(steps[p].At), 0)))
		}
	}
	if st.Current >= 0 {
		add(st.Status, d.Steps[st.Current].Name, 0)
	}
	return out
}

// sumDeltas adds up deltas by aggregate.
func sumDeltas(ds []funnelDelta) map[FunnelKey]int64 {
	out := make(map[FunnelKey]int64, len(ds)/2)
	for _, x := range ds {
		out[x.key] += x.n
	}
	return out
}

// FunnelRows turns deltas into rows for an additive upsert, without zeros,
// in key order (concurrent folds lock rows in one order).
func FunnelRows(deltas map[FunnelKey]int64) []store.FunnelDelta {
	out := make([]store.FunnelDelta, 0, len(deltas))
	for k, n := range deltas {
		if n != 0 {
			out = append(out, store.FunnelDelta{Journey: k.Journey, Day: k.Day, Dim: k.Dim, Kind: k.Kind, Step: k.Step, Bucket: int32(k.Bucket), N: n})
		}
	}
	slices.SortFunc(out, func(a, b store.FunnelDelta) int {
		switch {
		case a.Journey != b.Journey:
			return cmpStr(a.Journey, b.Journey)
		case !a.Day.Equal(b.Day):
			return a.Day.Compare(b.Day)
		case a.Dim != b.Dim:
			return cmpStr(a.Dim, b.Dim)
		case a.Kind != b.Kind:
			return cmpStr(a.Kind, b.Kind)
		case a.Step != b.Step:
			return cmpStr(a.Step, b.Step)
		}
		return int(a.Bucket - b.Bucket)
	})
	return out
}

func cmpStr(a, b string) int {
	if a < b {
		return -1
	}
	if a > b {
		return 1
	}
	return 0
}

// rowState derives the state of a stored row as the fold last wrote it.
func rowState(d *Definition, r *store.JourneyRow) ([]Reach, State) {
	steps := ReachesOf(r)
	st := d.Derive(steps, r.AbandonedAt != nil)
	return steps, st
}

// RebuildFunnel recomputes journey d's funnel aggregates from its
// instances, in tx (for instances written by other means than the fold).
func RebuildFunnel(ctx context.Context, tx pgx.Tx, d *Definition) error {
	if err := store.DeleteFunnel(ctx, tx, d.Name); err != nil {
		return err
	}
	funnel := map[FunnelKey]int64{}
	err := store.EachJourney(ctx, tx, d.Name, func(r *store.JourneyRow) error {
		steps, st := rowState(d, r)
		Contribution(d, steps, st, +1, funnel)
		return nil
	})
	if err != nil {
		return err
	}
	return store.AddFunnel(ctx, tx, FunnelRows(funnel))
}
