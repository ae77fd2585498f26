package anomaly

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/hookstream/hookstream/store"
	"github.com/hookstream/hookstream/windows"
	"github.com/jackc/pgx/v5"
)

// Record is one scored window of one watched series: a row of anomalies.
type Record struct {
	Series   string    `json:"series"`
	Start    time.Time `json:"start"`
	Window   string    `json:"window"`
	Revision int32     `json:"revision"` // the window's revision scored (0: as it closed)
	Value    float64   `json:"value"`
	Expected *float64  `json:"expected"` // null while the detector cannot say
	Low      *float64  `json:"low"`
	High     *float64  `json:"high"`
	Score    float64   `json:"score"`
	Anomaly  bool      `json:"anomaly"` // score at or above the series' threshold
	Reason   string    `json:"reason"`
	ScoredAt time.Time `json:"scored_at"`
}

func optional(v float64) *float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return &v
}

func sizeOf(window string) int32 {
	d, _ := time.ParseDuration(window)
	return int32(d / time.Second)
}

// insertRecords stores recs in tx; a record already stored (the same
// series, window and revision) is left as it is.
func insertRecords(ctx context.Context, tx pgx.Tx, recs []Record) error {
	if len(recs) == 0 {
		return nil
	}
	n := len(recs)
	series, starts, sizes, revs := make([]string, n), make([]time.Time, n), make([]int32, n), make([]int32, n)
	values, expected, lows, highs, scores := make([]float64, n), make([]*float64, n), make([]*float64, n), make([]*float64, n), make([]float64, n)
	found, reasons := make([]bool, n), make([]string, n)
	for i, r := range recs {
		series[i], starts[i], sizes[i], revs[i] = r.Series, r.Start, sizeOf(r.Window), r.Revision
		values[i], expected[i], lows[i], highs[i], scores[i] = r.Value, r.Expected, r.Low, r.High, r.Score
		found[i], reasons[i] = r.Anomaly, store.Printable(r.Reason)
	}
	_, err := tx.Exec(ctx, `INSERT INTO anomalies (series, start, size_s, revision, value, expected, low, high, score, anomaly, reason)
SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::int[], $4::int[], $5::float8[], $6::float8[], $7::float8[], $8::float8[], $9::float8[], $10::bool[], $11::text[])
ON CONFLICT DO NOTHING`, series, starts, sizes, revs, values, expected, lows, highs, scores, found, reasons)
	if err != nil {
		return fmt.Errorf("store anomaly scores: %w", err)
	}
	return nil
}

// readCursors reads how far every watched series has been scored.
func readCursors(ctx context.Context, q store.Querier) (map[string]time.Time, error) {
	rows, err := q.Query(ctx, `SELECT name, scored_until FROM anomaly_cursors`)
	if err != nil {
		return nil, fmt.Errorf("read the anomaly cursors: %w", err)
	}
	out := map[string]time.Time{}
	var name string
	var until time.Time
	_, err = pgx.ForEachRow(rows, []any{&name, &until}, func() error {
		out[name] = until.UTC()
		return nil
	})
	return out, err
}

// writeCursors moves the cursors of the series in moved.
func writeCursors(ctx context.Context, tx pgx.Tx, moved map[string]time.Time) error {
	if len(moved) == 0 {
		return nil
	}
	names, untils := make([]string, 0, len(moved)), make([]time.Time, 0, len(moved))
	for n, t := range moved {
		names, untils = append(names, n), append(untils, t)
	}
	_, err := tx.Exec(ctx, `INSERT INTO anomaly_cursors (name, scored_until) SELECT * FROM unnest($1::text[], $2::timestamptz[])
ON CONFLICT (name) DO UPDATE SET scored_until = excluded.scored_until`, names, untils)
	if err != nil {
		return fmt.Errorf("move the anomaly cursors: %w", err)
	}
	return nil
}

// windowRevisions are the highest revisions of the closed windows of sc's
// clock and size starting at or after from that were revised at all.
func windowRevisions(ctx context.Context, q store.Querier, sc *SeriesConfig, from time.Time) (map[time.Time]int32, error) {
	rows, err := q.Query(ctx, `SELECT start, max(revision) FROM window_aggs WHERE basis = $1 AND size_s = $2 AND start >= $3 AND revision > 0 GROUP BY start`,
		string(sc.query.Basis), int32(sc.size/time.Second), from)
	return revisionsByStart(rows, err, "read window revisions")
}

// scoredRevisions are the highest revisions scored of series's windows
// starting in [from, to).
func scoredRevisions(ctx context.Context, q store.Querier, series string, from, to time.Time) (map[time.Time]int32, error) {
	rows, err := q.Query(ctx, `SELECT start, max(revision) FROM anomalies WHERE series = $1 AND start >= $2 AND start < $3 GROUP BY start`, series, from, to)
	return revisionsByStart(rows, err, "read scored revisions")
}

// revisionsByStart collects (start, revision) rows by start.
func revisionsByStart(rows pgx.Rows, err error, what string) (map[time.Time]int32, error) {
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	out := map[time.Time]int32{}
	var start time.Time
	var rev int32
	_, err = pgx.ForEachRow(rows, []any{&start, &rev}, func() error {
		out[start.UTC()] = rev
		return nil
	})
	return out, err
}

// Key is a record's place in the order List lists: newest window first,
// then by series and revision.
type Key struct {
	Start    time.Time `json:"t"`
	Series   string    `json:"s"`
	Revision int32     `json:"r"`
}

// Filter selects the records List lists.
type Filter struct {
	// Series is one instance (volume/family=transfer); a watched series'
	// name (volume), meaning it and every group of it, as forecasts read
	// it; a prefix ending in "/" (volume/, every group); "" every series.
	Series   string
	From, To time.Time
	MinScore float64
	Only     bool // only anomalies (score at or above their series' threshold)
	After    *Key
	Limit    int // default 100
}

// List reads scored windows, newest first.
func List(ctx context.Context, q store.Querier, f Filter) ([]Record, error) {
	var conds []string
	var args []any
	arg := func(v any) string { args = append(args, v); return "$" + strconv.Itoa(len(args)) }
	switch {
	case strings.HasSuffix(f.Series, "/"):
		conds = append(conds, "starts_with(series, "+arg(f.Series)+")")
	case strings.Contains(f.Series, "/"):
		conds = append(conds, "series = "+arg(f.Series))
	case f.Series != "":
		// instance names are <series> or <series>/<dim>=<value>
		a := arg(f.Series)
		conds = append(conds, "(series = "+a+" OR starts_with(series, "+a+" || '/'))")
	}
	if !f.From.IsZero() {
		conds = append(conds, "start >= "+arg(f.From))
	}
	if !f.To.IsZero() {
		conds = append(conds, "start < "+arg(f.To))
	}
	if f.MinScore > 0 {
		conds = append(conds, "score >= "+arg(f.MinScore))
	}
	if f.Only {
		conds = append(conds, "anomaly")
	}
	if f.After != nil {
		at := arg(f.After.Start)
		conds = append(conds, "start <= "+at, "(start, series, revision) < ("+at+", "+arg(f.After.Series)+", "+arg(f.After.Revision)+")")
	}
	where := "true"
	if len(conds) > 0 {
		where = strings.Join(conds, " AND ")
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	rows, err := q.Query(ctx, `SELECT series, start, size_s, revision, value, expected, low, high, score, anomaly, reason, scored_at
FROM anomalies WHERE `+where+` ORDER BY start DESC, series DESC, revision DESC LIMIT `+arg(limit), args...)
	if err != nil {
		return nil, fmt.Errorf("read anomalies: %w", err)
	}
	out := []Record{}
	for rows.Next() {
		var r Record
		var size int32
		if err := rows.Scan(&r.Series, &r.Start, &size, &r.Revision, &r.Value, &r.Expected, &r.Low, &r.High, &r.Score, &r.Anomaly, &r.Reason, &r.ScoredAt); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read anomalies: %w", err)
		}
		r.Start, r.ScoredAt = r.Start.UTC(), r.ScoredAt.UTC()
		r.Window = windows.FormatSize(time.Duration(size) * time.Second)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read anomalies: %w", err)
	}
	return out, nil
}
