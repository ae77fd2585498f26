package journeys

import (
	"fmt"
	"testing"
	"time"
)

// TestCachedRowsDecodeAsEncoded: a row read back from the instance cache is
// the row that was put in, nil fields and unreached steps included.
func TestCachedRowsDecodeAsEncoded(t *testing.T) {
	at := func(s string) *time.Time { v, _ := time.Parse(time.RFC3339Nano, s); return &v }
	str := func(s string) *string { return &s }
	rows := []Row{
		{Journey: "bank_transfer", Subject: "tr-1", Status: InProgress, CurrentStep: str("created"), EnteredAt: *at("2026-11-01T10:00:00.123456Z"),
			LastAt: *at("2026-11-01T10:00:00.123456Z"), Deadline: at("2026-11-08T10:00:00.123456Z"), EntryTopic: str("customer_bank_transfer_created"),
			StepAt: []*time.Time{at("2026-11-01T10:00:00.123456Z"), nil, nil}, StepEvent: []*string{str("e-1"), nil, nil}, Version: 7781},
		{Journey: "onboarding", Subject: "c\x00ü", Status: Abandoned, EnteredAt: *at("1969-12-31T23:59:59.5Z"), LastAt: *at("2026-01-01T00:00:00Z"),
			AbandonedAt: at("2026-02-01T00:00:00Z"), Conflict: str("skipped steps: verified"), StepAt: []*time.Time{}, StepEvent: []*string{}},
	}
	c := newInstanceCache(32 << 20)
	for i := range rows {
		c.put(&rows[i], nil)
		got, _, ok := c.get(instKey{rows[i].Journey, rows[i].Subject}, nil)
		if !ok {
			t.Fatalf("row %d not cached", i)
		}
		if want, have := fmt.Sprintf("%+v", describe(&rows[i])), fmt.Sprintf("%+v", describe(got)); want != have {
			t.Fatalf("row %d:\nput %s\ngot %s", i, want, have)
		}
	}
	c.del(instKey{"onboarding", "c\x00ü"}, nil)
	if _, _, ok := c.get(instKey{"onboarding", "c\x00ü"}, nil); ok {
		t.Fatal("deleted row still cached")
	}
	if _, err := decodeRow(instKey{}, []byte{1, 2, 3}); err == nil {
		t.Fatal("a corrupt entry decoded")
	}
}

// describe spells a row out with its pointers followed.
func describe(r *Row) string {
	opt := func(s *string) string {
		if s == nil {
			return "<nil>"
		}
		return *s
	}
	optT := func(t *time.Time) string {
		if t == nil {
			return "<nil>"
		}
		return t.UTC().Format(time.RFC3339Nano)
	}
	out := fmt.Sprintf("%s/%s v%d %s cur=%s in=%s last=%s dl=%s ab=%s cf=%s et=%s", r.Journey, r.Subject, r.Version, r.Status, opt(r.CurrentStep),
		optT(&r.EnteredAt), optT(&r.LastAt), optT(r.Deadline), optT(r.AbandonedAt), opt(r.Conflict), opt(r.EntryTopic))
	for i := range r.StepAt {
		out += " [" + optT(r.StepAt[i]) + " " + opt(r.StepEvent[i]) + "]"
	}
	return out
}

// TestFunnelDeltasByNumberMatchContribution: the fold's numeric keys give
// the same rows as Contribution's, for cohorts on either side of 1970 and
// of midnight.
func TestFunnelDeltasByNumberMatchContribution(t *testing.T) {
	d, _ := Default().Get("bank_transfer")
	var ds dims
	for _, at := range []string{"1969-12-31T23:59:59.5Z", "1969-12-31T00:00:00Z", "1970-01-01T00:00:00Z", "2026-11-28T23:59:59.999999Z", "2026-11-29T00:00:00Z"} {
		t0, _ := time.Parse(time.RFC3339Nano, at)
		steps := []Reach{{At: t0, Event: "a", Topic: "bank_transfer_created"}, {At: t0.Add(90 * time.Second), Event: "b", Topic: "bank_transfer_completed"}, {}, {}, {}}
		st := d.Derive(steps, false)
		want := map[FunnelKey]int64{}
		Contribution(d, steps, st, 1, want)
		sums := map[fkey]int64{}
		for _, x := range ds.deltas(d, steps, st, 1, nil) {
			sums[x.k] += x.n
		}
		if w, g := fmt.Sprint(funnelRows(want)), fmt.Sprint(ds.rows(sums)); w != g {
			t.Fatalf("entered %s:\nContribution %s\nby number    %s", at, w, g)
		}
	}
}
