package query

import (
	"context"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/hookstream/hookstream/journey"
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
	if n == 0 {
		return Conversion{}
	}
	const z = 1.959963984540054
	p, fn := float64(x)/float64(n), float64(n)
	den := 1 + z*z/fn
	mid := (p + z*z/(2*fn)) / den
	half := z * math.Sqrt(p*(1-p)/fn+z*z/(4*fn*fn)) / den
	return Conversion{Rate: p, Low: math.Max(0, mid-half), High: math.Min(1, mid+half)}
}

// FunnelStep is one step of a funnel.
type FunnelStep struct {
	Step         string     `json:"step"`
	Optional     bool       `json:"optional"`
	Reached      int64      `json:"reached"`
	FromPrevious Conversion `json:"from_previous"` // reached / reached the step before
	Overall      Conversion `json:"overall"`       // reached / entered
	// Time from the step before to this one, over instances that reached
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

// Funnel is how the instances of a journey that entered in [From, To) (the
// cohort) went through its steps.
type Funnel struct {
	Journey    string       `json:"journey"`
	From       time.Time    `json:"from"`
	To         time.Time    `json:"to"`
	Entered    int64        `json:"entered"`
	InProgress int64        `json:"in_progress"`
	Completed  int64        `json:"completed"`
	Failed     int64        `json:"failed"`
	Abandoned  int64        `json:"abandoned"`
	Steps      []FunnelStep `json:"steps"`
}

// QueryFunnel computes the funnel of journey d for the cohort that entered
// in [from, to): two aggregate scans of the cohort's rows.
func QueryFunnel(ctx context.Context, db store.Querier, d *journey.Definition, from, to time.Time) (Funnel, error) {
	f := Funnel{Journey: d.Name, From: from, To: to}
	if !from.Before(to) {
		return f, fmt.Errorf("empty range: from %s is not before to %s", from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	n := len(d.Steps)
	cols := []string{"count(*)"}
	for i := 1; i <= n; i++ {
		cols = append(cols, fmt.Sprintf("count(step_at[%d])", i))
	}
	for i := 2; i <= n; i++ {
		gap := fmt.Sprintf("extract(epoch FROM step_at[%d] - step_at[%d])", i, i-1)
		cols = append(cols, fmt.Sprintf("percentile_cont(0.5) WITHIN GROUP (ORDER BY %s)", gap),
			fmt.Sprintf("percentile_cont(0.9) WITHIN GROUP (ORDER BY %s)", gap))
	}
	vals := make([]any, len(cols))
	counts := make([]int64, n+1)
	for i := 0; i <= n; i++ {
		vals[i] = &counts[i]
	}
	quant := make([]*float64, 2*(n-1))
	for i := range quant {
		vals[n+1+i] = &quant[i]
	}
	err := db.QueryRow(ctx, `SELECT `+strings.Join(cols, ", ")+` FROM journey_instances
		WHERE journey = $1 AND entered_at >= $2 AND entered_at < $3`, d.Name, from, to).Scan(vals...)
	if err != nil {
		return f, fmt.Errorf("funnel of %s: %w", d.Name, err)
	}
	f.Entered = counts[0]
	for i, s := range d.Steps {
		fs := FunnelStep{Step: s.Name, Optional: s.Optional, Reached: counts[i+1], Overall: Wilson(counts[i+1], f.Entered)}
		if i == 0 {
			fs.FromPrevious = Wilson(counts[1], f.Entered)
		} else {
			fs.FromPrevious = Wilson(min(counts[i+1], counts[i]), counts[i])
			fs.MedianSeconds, fs.P90Seconds = quant[2*(i-1)], quant[2*(i-1)+1]
		}
		f.Steps = append(f.Steps, fs)
	}
	rows, err := db.Query(ctx, `SELECT coalesce(current_step, ''), status, count(*) FROM journey_instances
		WHERE journey = $1 AND entered_at >= $2 AND entered_at < $3 GROUP BY 1, 2`, d.Name, from, to)
	if err != nil {
		return f, fmt.Errorf("funnel of %s: %w", d.Name, err)
	}
	defer rows.Close()
	for rows.Next() {
		var step, status string
		var c int64
		if err := rows.Scan(&step, &status, &c); err != nil {
			return f, err
		}
		switch status {
		case journey.InProgress:
			f.InProgress += c
		case journey.Completed:
			f.Completed += c
		case journey.Failed:
			f.Failed += c
		case journey.Abandoned:
			f.Abandoned += c
		}
		i := d.Index(step)
		if i < 0 {
			continue
		}
		switch status {
		case journey.InProgress:
			f.Steps[i].InFlight += c
		case journey.Completed:
			f.Steps[i].Completed += c
		case journey.Failed:
			f.Steps[i].Failed += c
		case journey.Abandoned:
			f.Steps[i].Abandoned += c
		}
	}
	return f, rows.Err()
}
