package anomaly

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hookstream/hookstream/store"
	"github.com/hookstream/hookstream/windows"
)

// Series of source journeys: journey instances abandoned per window, one
// series for every journey or (group_by: journey) one per journey. A
// window counts the instances abandoned by a watermark inside it; it is
// scored once the event-time windows of its size have closed past it (the
// abandoner runs on the same watermark, ahead of the windows' allowed
// lateness). An instance that resumes after its window was scored leaves
// the count lower than scored: not re-scored (no revision number counts
// resumptions).

// The sources of watched series.
const (
	SourceWindows  = "windows"
	SourceJourneys = "journeys"
)

// MetricAbandoned is the one metric of source journeys.
const MetricAbandoned = "abandoned"

// journeySeries validates a series of source journeys.
func (s *SeriesConfig) journeySeries(wcfg windows.Config) error {
	if s.Metric != MetricAbandoned {
		return fmt.Errorf("metric %q: source journeys has one metric, abandoned", s.Metric)
	}
	if s.Basis != "" && s.Basis != string(windows.EventTime) {
		return fmt.Errorf("basis %q: journeys are abandoned on event time; leave basis out", s.Basis)
	}
	if s.GroupBy != "" && s.GroupBy != "journey" {
		return fmt.Errorf("group_by %q: source journeys groups by journey only", s.GroupBy)
	}
	if !slices.Contains(wcfg.Sizes, s.size) {
		return fmt.Errorf("window %s: not one of the window sizes %v (its windows' closing says when a window of abandonments is complete)", s.Window, fmtDurations(wcfg.Sizes))
	}
	s.query = windows.MetricQuery{Window: s.size, Basis: windows.EventTime, Metric: MetricAbandoned, GroupBy: s.GroupBy}
	if s.Filter != "" {
		dim, vals, ok := strings.Cut(s.Filter, "=")
		if !ok || dim != "journey" || vals == "" {
			return fmt.Errorf("filter %q: source journeys filters by journey=name[,name...] only", s.Filter)
		}
		s.query.Filter = map[string][]string{"journey": strings.Split(vals, ",")}
	}
	return nil
}

func fmtDurations(ds []time.Duration) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = windows.FormatSize(d)
	}
	return out
}

// journeyFilter is the journeys a query of sc covers (nil: all).
func (s *SeriesConfig) journeyFilter(groups []string) []string {
	if s.GroupBy != "" {
		return groups
	}
	return s.query.Filter["journey"]
}

// abandonedGroups are the journeys with abandonments in [from, to), or [""]
// for a series without group_by.
func abandonedGroups(ctx context.Context, db store.Querier, sc *SeriesConfig, from, to time.Time) ([]string, error) {
	if sc.GroupBy == "" {
		return []string{""}, nil
	}
	rows, err := db.Query(ctx, `SELECT DISTINCT journey FROM journey_instances
WHERE abandoned_at >= $1 AND abandoned_at < $2 AND ($3::text[] IS NULL OR journey = ANY($3)) ORDER BY 1`, from, to, sc.query.Filter["journey"])
	if err != nil {
		return nil, fmt.Errorf("read the journeys abandoned: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var j string
		if err := rows.Scan(&j); err != nil {
			return nil, err
		}
		out = append(out, j)
	}
	return out, rows.Err()
}

// abandonedPoints are the abandonments of each group in every window of
// [from, to) (none as zero), in time order.
func abandonedPoints(ctx context.Context, db store.Querier, sc *SeriesConfig, groups []string, from, to time.Time) (map[string][]windows.Point, error) {
	if sc.GroupBy != "" && len(groups) == 0 {
		return nil, nil
	}
	sizeS := int64(sc.size / time.Second)
	rows, err := db.Query(ctx, `SELECT journey, floor(extract(epoch FROM abandoned_at) / $3)::bigint, count(*) FROM journey_instances
WHERE abandoned_at >= $1 AND abandoned_at < $2 AND ($4::text[] IS NULL OR journey = ANY($4)) GROUP BY 1, 2`, from, to, sizeS, sc.journeyFilter(groups))
	if err != nil {
		return nil, fmt.Errorf("count the journeys abandoned: %w", err)
	}
	defer rows.Close()
	counts := map[string]map[int64]int64{}
	for rows.Next() {
		var j string
		var b, n int64
		if err := rows.Scan(&j, &b, &n); err != nil {
			return nil, err
		}
		if sc.GroupBy == "" {
			j = ""
		}
		if counts[j] == nil {
			counts[j] = map[int64]int64{}
		}
		counts[j][b] += n
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	out := map[string][]windows.Point{}
	for _, g := range groups {
		for t := windows.Start(from, sc.size); t.Before(to); t = t.Add(sc.size) {
			n := counts[g][t.Unix()/sizeS]
			out[g] = append(out[g], windows.Point{Start: t, Group: g, Value: float64(n), Count: n, Closed: true})
		}
	}
	return out, nil
}
