package journeys_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hookstream/hookstream/journeys"
	"github.com/hookstream/hookstream/store"
)

// Two cohorts that differ in verification (75% against 50%) differ
// significantly at that step and at completion, and not at entry; two that
// do not differ are not called different.
func TestCompareFunnelsTellsARealDifferenceFromNoise(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	f := journeys.NewFold(journeys.Default(), 0)
	day := func(d int) time.Time { return time.Date(2025, 6, 2+d, 0, 0, 0, 0, time.UTC) } // cohorts are whole days
	cohort := func(d, n, verified int) {
		var evs []store.Event
		for i := range n {
			c := fmt.Sprintf("c%d-%d", d, i)
			at := day(d).Add(10*time.Hour + time.Duration(i)*time.Second)
			evs = append(evs, customerEvent(c+"-created", "customer_created", c, at))
			if i < verified {
				evs = append(evs, customerEvent(c+"-verified", "customer_verified", c, at.Add(time.Minute)))
			}
		}
		insertEvents(t, e.db, evs...)
		if err := foldTx(ctx, e.db, f, evs); err != nil {
			t.Fatal(err)
		}
	}
	cohort(0, 200, 150)
	cohort(1, 200, 100)
	cohort(2, 200, 97)
	d := mustGet(f, "customer_verification")
	rows := func(c journeys.FunnelComparison) map[string]journeys.StepComparison {
		m := map[string]journeys.StepComparison{}
		for _, s := range c.Steps {
			if s.PAdjusted < s.P || s.PAdjusted > 1 {
				t.Fatalf("%s: adjusted p %g below its p %g", s.Step, s.PAdjusted, s.P)
			}
			m[s.Step] = s
		}
		return m
	}
	c, err := journeys.CompareFunnels(ctx, e.db, d, day(0), day(1), day(1), day(2))
	if err != nil {
		t.Fatal(err)
	}
	if c.A.Entered != 200 || c.B.Entered != 200 || c.Correction != "holm" || len(c.Steps) != len(d.Steps)+1 {
		t.Fatalf("comparison %+v", c)
	}
	r := rows(c)
	if v := r["verified"]; !v.Significant || v.A.Reached != 150 || v.B.Reached != 100 || v.Diff != -0.25 || v.A.Conversion.Rate != 0.75 {
		t.Fatalf("verified: %+v", v)
	}
	if v := r["(completed)"]; !v.Significant || v.A.Reached != 150 {
		t.Fatalf("completion: %+v", v)
	}
	if v := r["created"]; v.Significant || v.P != 1 {
		t.Fatalf("created: %+v", v)
	}
	same, err := journeys.CompareFunnels(ctx, e.db, d, day(1), day(2), day(2), day(3))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range same.Steps {
		if s.Significant {
			t.Fatalf("100 of 200 against 97 of 200 called different at %s: %+v", s.Step, s)
		}
	}
}
