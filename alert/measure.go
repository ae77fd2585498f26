package alert

import (
	"errors"

	"context"
	"fmt"
	"github.com/redis/go-redis/v9"
	"time"

	"github.com/hookstream/hookstream/store"
	"github.com/hookstream/hookstream/stream"
	"github.com/hookstream/hookstream/windows"
)

// sample is one label set of a rule as measured at an evaluation.
type sample struct {
	Labels   map[string]string // the measured labels (group, series); the rule's own are added
	Value    float64
	Holds    bool
	Expected *Range  // anomaly: the expected range
	Score    float64 // anomaly
	Window   string  // anomaly: the series' window size
}

// measurer measures the rules of one evaluation.
type measurer struct {
	e   *Evaluator
	q   store.Querier
	now time.Time
}

func (m *measurer) measure(ctx context.Context, r *Rule) ([]sample, error) {
	switch r.Kind {
	case KindThreshold:
		return m.threshold(ctx, r)
	case KindAnomaly:
		return m.anomaly(ctx, r)
	case KindOperational:
		v, err := m.signal(ctx, r.Signal)
		if err != nil {
			return nil, err
		}
		return []sample{{Value: v, Holds: r.Op.Holds(v, *r.Value)}}, nil
	}
	return nil, fmt.Errorf("rule %s: kind %q", r.Name, r.Kind)
}

// threshold reads the rule's metric over the open window (the one holding
// now) and the one before it, the last complete one, per group. An upper
// bound (> or >=) holds when either window crosses it: a partial window
// that already crossed it has crossed it, and the complete one keeps the
// alert from resolving just because a new window opened. Any other
// comparison is judged on the complete window only: a partial window is
// always low.
func (m *measurer) threshold(ctx context.Context, r *Rule) ([]sample, error) {
	q := r.Query
	size := q.Window
	open := windows.Start(m.now, size)
	q.From, q.To = open.Add(-size), open.Add(size)
	res, err := windows.QueryMetrics(ctx, m.q, m.e.wcfg, q)
	if err != nil {
		return nil, err
	}
	type pair struct{ prev, open float64 }
	values := map[string]*pair{}
	for _, p := range res.Points {
		v := values[p.Group]
		if v == nil {
			v = &pair{}
			values[p.Group] = v
		}
		if p.Start.Equal(open) {
			v.open = p.Value
		} else {
			v.prev = p.Value
		}
	}
	grouped := q.GroupBy != "" && q.GroupBy != "none"
	if !grouped && len(values) == 0 {
		values[""] = &pair{} // no events at all: the metric is 0
	}
	upper := r.Op == ">" || r.Op == ">="
	out := make([]sample, 0, len(values))
	for _, g := range sortedFingerprints(values) {
		v := values[g]
		s := sample{Value: v.prev, Holds: r.Op.Holds(v.prev, *r.Value)}
		if upper && r.Op.Holds(v.open, *r.Value) && (!s.Holds || v.open > v.prev) {
			s.Value, s.Holds = v.open, true
		}
		if grouped {
			s.Labels = map[string]string{q.GroupBy: g}
		}
		out = append(out, s)
	}
	return out, nil
}

// anomalyLookback bounds how far back the latest score of a series is
// looked for: a series not scored for a day has no current anomaly.
const anomalyLookback = 24 * time.Hour

// anomaly reads the latest scored window of every series instance the rule
// watches: the condition holds while that window is anomalous (its score at
// or above min_score, or the series' own threshold when min_score is 0).
func (m *measurer) anomaly(ctx context.Context, r *Rule) ([]sample, error) {
	rows, err := m.q.Query(ctx, `SELECT DISTINCT ON (series) series, size_s, value, low, high, score, anomaly
		FROM anomalies WHERE start >= $1 ORDER BY series, start DESC, revision DESC`, m.now.Add(-anomalyLookback))
	if err != nil {
		return nil, fmt.Errorf("read the latest anomaly scores: %w", err)
	}
	defer rows.Close()
	var out []sample
	for rows.Next() {
		var (
			series    string
			size      int32
			value     float64
			low, high *float64
			score     float64
			anomalous bool
		)
		if err := rows.Scan(&series, &size, &value, &low, &high, &score, &anomalous); err != nil {
			return nil, fmt.Errorf("read the latest anomaly scores: %w", err)
		}
		if !r.MatchesSeries(series) {
			continue
		}
		s := sample{Labels: map[string]string{"series": series}, Value: value, Score: score,
			Window: windows.FormatSize(time.Duration(size) * time.Second)}
		if r.MinScore > 0 {
			s.Holds = score >= r.MinScore
		} else {
			s.Holds = anomalous
		}
		if low != nil && high != nil {
			s.Expected = &Range{Low: *low, High: *high}
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// spoolReportFresh is how recent a receiver's spool report must be to
// count: receivers report every few seconds, and one that stopped
// reporting has stopped.
const spoolReportFresh = time.Minute

// signal measures an operational signal.
func (m *measurer) signal(ctx context.Context, s Signal) (float64, error) {
	rdb, keys := m.e.rdb, m.e.keys
	switch s {
	case SignalDeadLetters:
		n, err := store.OpenDeadLetters(ctx, m.q)
		return float64(n), err
	case SignalConsumerLag, SignalOldestPendingAge:
		if rdb == nil {
			return 0, fmt.Errorf("signal %s: no Redis connection", s)
		}
		parts, err := stream.NewGroup(rdb, keys, "process").Status(ctx)
		if err != nil {
			return 0, fmt.Errorf("signal %s: %w", s, err)
		}
		var lag int64
		var oldest time.Duration
		for _, p := range parts {
			lag += max(p.Lag, 0)
			oldest = max(oldest, p.OldestAge)
		}
		if s == SignalConsumerLag {
			return float64(lag), nil
		}
		return oldest.Seconds(), nil
	case SignalIngestRejections, SignalIngest503s:
		if rdb == nil {
			return 0, fmt.Errorf("signal %s: no Redis connection", s)
		}
		field := stream.IngestRejected
		if s == SignalIngest503s {
			field = stream.IngestUnavailable
		}
		minute := m.now.Unix() / 60
		prev, err1 := rdb.HGet(ctx, keys.IngestMinute(minute-1), field).Int64()
		cur, err2 := rdb.HGet(ctx, keys.IngestMinute(minute), field).Int64()
		for _, err := range []error{err1, err2} {
			if err != nil && !isNil(err) {
				return 0, fmt.Errorf("signal %s: %w", s, err)
			}
		}
		// The last complete minute, or the current one once it is worse.
		return float64(max(prev, cur)), nil
	case SignalSpoolDepth:
		if rdb == nil {
			return 0, fmt.Errorf("signal %s: no Redis connection", s)
		}
		reports, err := rdb.HGetAll(ctx, keys.IngestSpool()).Result()
		if err != nil {
			return 0, fmt.Errorf("signal %s: %w", s, err)
		}
		var depth int64
		for _, rep := range reports {
			if n, at, ok := stream.ParseSpoolReport(rep); ok && m.now.Sub(at) <= spoolReportFresh {
				depth += n
			}
		}
		return float64(depth), nil
	case SignalJourneysAbandoned:
		var n int64
		err := m.q.QueryRow(ctx, `SELECT count(*) FROM journey_instances WHERE abandoned_at >= $1 AND status = 'abandoned'`,
			m.now.Add(-time.Hour)).Scan(&n)
		if err != nil {
			return 0, fmt.Errorf("signal %s: %w", s, err)
		}
		return float64(n), nil
	case SignalReconcileGaps, SignalSubscriptionPaused:
		// The last complete reconciliation; none yet (not configured): 0.
		col := `(SELECT count(*) FROM reconcile_gaps g WHERE g.run_id = reconcile_runs.id AND g.outcome = 'failed')`
		if s == SignalSubscriptionPaused {
			col = `coalesce((audit->>'paused')::int, 0)`
		}
		var n int64
		err := m.q.QueryRow(ctx, `SELECT coalesce((SELECT `+col+` FROM reconcile_runs WHERE status = 'complete'
			ORDER BY id DESC LIMIT 1), 0)`).Scan(&n)
		if err != nil {
			return 0, fmt.Errorf("signal %s: %w", s, err)
		}
		return float64(n), nil
	}
	return 0, fmt.Errorf("signal %q: unknown", s)
}

func isNil(err error) bool { return errors.Is(err, redis.Nil) }
