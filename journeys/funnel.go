package journeys

import (
	"context"
	"math"
	"slices"
	"sync"
	"time"

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
	if st.Current < 0 && st.EnteredAt.IsZero() {
		return // a placeholder: no step reached
	}
	day := st.EnteredAt.UTC().Truncate(24 * time.Hour)
	eachAggregate(d, steps, st, func(kind int8, step, bucket int) {
		name := ""
		if step >= 0 {
			name = d.Steps[step].Name
		}
		into[FunnelKey{Journey: d.Name, Day: day, Dim: st.EntryTopic, Kind: kindNames[kind], Step: name, Bucket: bucket}] += sign
	})
}

// Kinds by number (fkey): entered, reached, gap, then the statuses.
var kindNames = []string{KindEntered, KindReached, KindGap, InProgress, Completed, Failed, Abandoned}

const (
	kindEntered int8 = iota
	kindReached
	kindGap
)

func statusKind(status string) int8 {
	for i := int8(3); int(i) < len(kindNames); i++ {
		if kindNames[i] == status {
			return i
		}
	}
	panic("journey: unknown status " + status)
}

// eachAggregate calls fn with each aggregate an instance with steps and
// state (not a placeholder) counts in: its kind, step (-1: none) and gap
// bucket.
func eachAggregate(d *Definition, steps []Reach, st State, fn func(kind int8, step, bucket int)) {
	fn(kindEntered, -1, 0)
	for i, r := range steps {
		if i >= len(d.Steps) || !r.Reached() {
			continue
		}
		fn(kindReached, i, 0)
		if p := d.Previous(i); p >= 0 && p < len(steps) && steps[p].Reached() {
			fn(kindGap, i, GapBucket(max(r.At.Sub(steps[p].At), 0)))
		}
	}
	if st.Current >= 0 {
		fn(statusKind(st.Status), st.Current, 0)
	}
}

// fkey is a FunnelKey by number, cheap to hash and copy: the fold sums
// thousands of deltas per batch.
type fkey struct {
	d      *Definition
	day    int32 // days since the epoch
	dim    int32 // entry topic, by dims
	kind   int8
	step   int16 // -1: none
	bucket int32
}

type fdelta struct {
	k fkey
	n int64
}

// dims numbers entry topics for fkey; safe for concurrent use.
type dims struct {
	mu    sync.RWMutex
	ids   map[string]int32
	names []string
}

func (t *dims) id(s string) int32 {
	t.mu.RLock()
	id, ok := t.ids[s]
	t.mu.RUnlock()
	if ok {
		return id
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if id, ok := t.ids[s]; ok {
		return id
	}
	if t.ids == nil {
		t.ids = map[string]int32{}
	}
	id = int32(len(t.names))
	t.ids[s] = id
	t.names = append(t.names, s)
	return id
}

func (t *dims) name(id int32) string {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.names[id]
}

// deltas appends to out what Contribution adds to its map, by number.
func (t *dims) deltas(d *Definition, steps []Reach, st State, sign int64, out []fdelta) []fdelta {
	if st.Current < 0 && st.EnteredAt.IsZero() {
		return out // a placeholder: no step reached
	}
	day, dim := int32(st.EnteredAt.Unix()/86400), t.id(st.EntryTopic)
	if st.EnteredAt.Unix() < 0 && st.EnteredAt.Unix()%86400 != 0 {
		day-- // floor, before 1970
	}
	eachAggregate(d, steps, st, func(kind int8, step, bucket int) {
		out = append(out, fdelta{fkey{d: d, day: day, dim: dim, kind: kind, step: int16(step), bucket: int32(bucket)}, sign})
	})
	return out
}

// rows turns summed deltas into rows, as funnelRows does.
func (t *dims) rows(sums map[fkey]int64) []funnelDelta {
	out := make([]funnelDelta, 0, len(sums))
	for k, n := range sums { // fkeys and FunnelKeys correspond one to one
		if n == 0 {
			continue
		}
		step := ""
		if k.step >= 0 {
			step = k.d.Steps[k.step].Name
		}
		out = append(out, funnelDelta{Journey: k.d.Name, Day: time.Unix(int64(k.day)*86400, 0).UTC(), Dim: t.name(k.dim),
			Kind: kindNames[k.kind], Step: step, Bucket: k.bucket, N: n})
	}
	return sortfunnelRows(out)
}

// funnelRows turns deltas into rows for an additive upsert, without zeros,
// in key order (concurrent folds lock rows in one order).
func funnelRows(deltas map[FunnelKey]int64) []funnelDelta {
	out := make([]funnelDelta, 0, len(deltas))
	for k, n := range deltas {
		if n != 0 {
			out = append(out, funnelDelta{Journey: k.Journey, Day: k.Day, Dim: k.Dim, Kind: k.Kind, Step: k.Step, Bucket: int32(k.Bucket), N: n})
		}
	}
	return sortfunnelRows(out)
}

// sortfunnelRows puts rows in key order.
func sortfunnelRows(out []funnelDelta) []funnelDelta {
	slices.SortFunc(out, func(a, b funnelDelta) int {
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
func rowState(d *Definition, r *Row) ([]Reach, State) {
	steps := ReachesOf(r)
	st := d.Derive(steps, r.AbandonedAt != nil)
	return steps, st
}

// RebuildFunnel recomputes journey d's funnel aggregates from its
// instances, in tx (for instances written by other means than the fold).
func RebuildFunnel(ctx context.Context, tx pgx.Tx, d *Definition) error {
	if err := deleteFunnel(ctx, tx, d.Name); err != nil {
		return err
	}
	funnel := map[FunnelKey]int64{}
	err := eachRow(ctx, tx, d.Name, func(r *Row) error {
		steps, st := rowState(d, r)
		Contribution(d, steps, st, +1, funnel)
		return nil
	})
	if err != nil {
		return err
	}
	return addFunnel(ctx, tx, funnelRows(funnel))
}
