package journeys

import (
	"context"
	"fmt"
	"time"

	"github.com/hookstream/hookstream/anomaly/stats"
	"github.com/hookstream/hookstream/store"
)

// Comparing two cohorts of a journey ("did this week convert better than
// last week, or is it noise?"): each step's overall conversion (reached /
// entered) in both, with Wilson intervals, a two-proportion test, and
// Holm-adjusted p-values because every step is a question of its own.

// Alpha is the level at which a comparison calls a difference significant
// (after the Holm adjustment).
const Alpha = 0.05

// Period is a cohort's range and its totals.
type Period struct {
	From       time.Time `json:"from"`
	To         time.Time `json:"to"`
	Entered    int64     `json:"entered"`
	Completed  int64     `json:"completed"`
	Failed     int64     `json:"failed"`
	Abandoned  int64     `json:"abandoned"`
	InProgress int64     `json:"in_progress"`
}

// StepShare is one step's conversion in one period.
type StepShare struct {
	Reached    int64      `json:"reached"`
	Conversion Conversion `json:"conversion"` // reached / entered, with its 95% Wilson interval
}

// StepComparison compares one step (or the journey's completion) between
// the periods.
type StepComparison struct {
	Step     string    `json:"step"`
	Optional bool      `json:"optional,omitempty"`
	A        StepShare `json:"a"`
	B        StepShare `json:"b"`
	Diff     float64   `json:"diff"` // B's rate − A's
	Z        float64   `json:"z"`
	// P is the two-sided p-value of the difference on its own; PAdjusted
	// is P after Holm's correction over every row of the comparison, and
	// Significant says PAdjusted < Alpha.
	P           float64 `json:"p"`
	PAdjusted   float64 `json:"p_adjusted"`
	Significant bool    `json:"significant"`
}

// FunnelComparison is CompareFunnels' answer.
type FunnelComparison struct {
	Journey    string           `json:"journey"`
	A          Period           `json:"a"`
	B          Period           `json:"b"`
	Steps      []StepComparison `json:"steps"` // every step, then "(completed)": the journey's completion
	Alpha      float64          `json:"alpha"`
	Correction string           `json:"correction"`
}

// CompareFunnels compares the cohorts of d that entered in [aFrom, aTo) and
// [bFrom, bTo) (whole UTC days, as Funnel reads them).
func CompareFunnels(ctx context.Context, db store.Querier, d *Definition, aFrom, aTo, bFrom, bTo time.Time) (FunnelComparison, error) {
	fa, err := Funnel(ctx, db, d, aFrom, aTo)
	if err != nil {
		return FunnelComparison{}, fmt.Errorf("period a: %w", err)
	}
	fb, err := Funnel(ctx, db, d, bFrom, bTo)
	if err != nil {
		return FunnelComparison{}, fmt.Errorf("period b: %w", err)
	}
	period := func(f FunnelReport) Period {
		return Period{From: f.From, To: f.To, Entered: f.Entered, Completed: f.Completed, Failed: f.Failed, Abandoned: f.Abandoned, InProgress: f.InProgress}
	}
	c := FunnelComparison{Journey: d.Name, A: period(fa), B: period(fb), Alpha: Alpha, Correction: "holm", Steps: []StepComparison{}}
	row := func(step string, optional bool, xa, xb int64) StepComparison {
		t := stats.TwoProportions(xa, fa.Entered, xb, fb.Entered)
		return StepComparison{Step: step, Optional: optional, A: StepShare{xa, Wilson(xa, fa.Entered)}, B: StepShare{xb, Wilson(xb, fb.Entered)},
			Diff: t.Diff, Z: t.Z, P: t.P}
	}
	for i, s := range fa.Steps {
		c.Steps = append(c.Steps, row(s.Step, s.Optional, s.Reached, fb.Steps[i].Reached))
	}
	c.Steps = append(c.Steps, row("(completed)", false, fa.Completed, fb.Completed))
	ps := make([]float64, len(c.Steps))
	for i := range c.Steps {
		ps[i] = c.Steps[i].P
	}
	for i, p := range stats.Holm(ps) {
		c.Steps[i].PAdjusted, c.Steps[i].Significant = p, p < Alpha
	}
	return c, nil
}
