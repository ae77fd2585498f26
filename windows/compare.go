package windows

import (
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/hookstream/hookstream/anomaly/stats"
	"github.com/hookstream/hookstream/store"
)

// Comparing one series over two periods ("were there really more transfer
// failures this week?"): counts as Poisson rates per hour with the exact
// conditional test; the failure ratio as two proportions.

// MetricComparison is CompareMetric's answer.
type MetricComparison struct {
	Metric Metric              `json:"metric"`
	Basis  Basis               `json:"basis"`
	Filter map[string][]string `json:"filter,omitempty"`
	A      MetricPeriod        `json:"a"`
	B      MetricPeriod        `json:"b"`
	// Test is "poisson-rates" (counts: rates per hour, exact conditional
	// test) or "two-proportions" (failure_ratio: failures of terminal
	// events, pooled z-test).
	Test string `json:"test"`
	// Ratio is B's rate over A's (counts) and Diff B's ratio minus A's
	// (failure_ratio); P the two-sided p-value; Significant says P < 0.05.
	Ratio       float64 `json:"ratio,omitempty"`
	Diff        float64 `json:"diff,omitempty"`
	P           float64 `json:"p"`
	Significant bool    `json:"significant"`
}

// MetricPeriod is one period's total.
type MetricPeriod struct {
	From  time.Time `json:"from"`
	To    time.Time `json:"to"`
	Hours float64   `json:"hours"`
	Total int64     `json:"total"`          // events counted (failures, for failure_ratio)
	Of    int64     `json:"of,omitempty"`   // failure_ratio: terminal events
	Rate  float64   `json:"rate"`           // per hour (counts) or the ratio
	Low   float64   `json:"low,omitempty"`  // failure_ratio: 95% Wilson interval
	High  float64   `json:"high,omitempty"` //
}

// Comparable are the metrics CompareMetric compares.
var Comparable = []Metric{MetricCount, MetricSuccesses, MetricFailures, MetricTerminal, MetricLate, MetricFailureRatio}

// CompareMetric compares q's metric (one series: q's filter, no grouping)
// over [aFrom, aTo) and [bFrom, bTo), each a whole number of q's windows.
func CompareMetric(ctx context.Context, db store.Querier, cfg Config, q MetricQuery, aFrom, aTo, bFrom, bTo time.Time) (MetricComparison, error) {
	if !slices.Contains(Comparable, q.Metric) {
		return MetricComparison{}, paramError("metric", string(q.Metric), "cannot be compared; use count, successes, failures, terminal or late (rates) or failure_ratio (proportions)")
	}
	if q.GroupBy != "" && q.GroupBy != "none" {
		return MetricComparison{}, paramError("group-by", q.GroupBy, "a comparison is of one series; select it with --filter")
	}
	c := MetricComparison{Metric: q.Metric, Basis: q.Basis, Filter: q.Filter}
	total := func(m Metric, from, to time.Time) (int64, error) {
		r := q
		r.Metric, r.From, r.To, r.SkipEmpty = m, from, to, true
		res, err := QueryMetrics(ctx, db, cfg, r)
		if err != nil {
			return 0, err
		}
		var n float64
		for _, p := range res.Points {
			n += p.Value
		}
		return int64(n), nil
	}
	period := func(from, to time.Time) (MetricPeriod, error) {
		p := MetricPeriod{From: from.UTC(), To: to.UTC(), Hours: to.Sub(from).Hours()}
		var err error
		if q.Metric == MetricFailureRatio {
			if p.Total, err = total(MetricFailures, from, to); err == nil {
				p.Of, err = total(MetricTerminal, from, to)
			}
			if p.Of > 0 {
				p.Rate = float64(p.Total) / float64(p.Of)
				_, p.Low, p.High = stats.Wilson(p.Total, p.Of)
			}
			return p, err
		}
		p.Total, err = total(q.Metric, from, to)
		p.Rate = float64(p.Total) / p.Hours
		return p, err
	}
	var err error
	if c.A, err = period(aFrom, aTo); err != nil {
		return c, fmt.Errorf("period a: %w", err)
	}
	if c.B, err = period(bFrom, bTo); err != nil {
		return c, fmt.Errorf("period b: %w", err)
	}
	if c.Basis == "" {
		c.Basis = EventTime
	}
	if q.Metric == MetricFailureRatio {
		t := stats.TwoProportions(c.A.Total, c.A.Of, c.B.Total, c.B.Of)
		c.Test, c.Diff, c.P = "two-proportions", t.Diff, t.P
	} else {
		t := stats.PoissonRates(c.A.Total, c.A.Hours, c.B.Total, c.B.Hours)
		c.Test, c.Ratio, c.P = "poisson-rates", t.Ratio, t.P
		if math.IsInf(c.Ratio, 0) {
			c.Ratio = 0 // none in period a: no ratio (JSON has no infinity)
		}
	}
	c.Significant = c.P < 0.05
	return c, nil
}
