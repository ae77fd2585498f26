package windows

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hookstream/hookstream/store"
	"github.com/jackc/pgx/v5"
)

// The SQL of the window tables (window_aggs, window_marks, window_cursors,
// window_closes; migrations/00003_windows.sql). Only this package reads or
// writes them.

// aggRow is one row of window_aggs.
type aggRow struct {
	Basis      string
	SizeS      int32
	Start      time.Time
	Dim, Value string
	Count      int64
	Successes  int64
	Failures   int64
	Terminal   int64
	LagSumMs   float64
	Lag        []byte
	Customers  []byte
	Late       int64
	Revision   int32
	ClosedAt   *time.Time
}

// Cursor says every window of one clock and size ending at or before
// ClosedUntil is closed (the zero time: none is).
type Cursor struct {
	Basis       Basis
	Size        time.Duration
	ClosedUntil time.Time
}

// shareCursors takes the windows lock shared until tx ends (no window
// closes while tx folds into it) and reads every cursor.
func shareCursors(ctx context.Context, tx pgx.Tx) ([]Cursor, error) {
	if err := store.Lock(ctx, tx, store.WindowsLock, false); err != nil {
		return nil, fmt.Errorf("take the windows lock: %w", err)
	}
	return ReadCursors(ctx, tx)
}

// lockCursors takes the windows lock exclusively until tx ends (every fold
// in flight has committed, none starts) and reads every cursor.
func lockCursors(ctx context.Context, tx pgx.Tx) ([]Cursor, error) {
	if err := store.Lock(ctx, tx, store.WindowsLock, true); err != nil {
		return nil, fmt.Errorf("take the windows lock: %w", err)
	}
	return ReadCursors(ctx, tx)
}

// ReadCursors reads every close cursor without locking, ordered by clock
// and size (none before the closer first ran).
func ReadCursors(ctx context.Context, q store.Querier) ([]Cursor, error) {
	rows, err := q.Query(ctx, `SELECT basis, size_s, closed_until FROM window_cursors ORDER BY basis, size_s`)
	if err != nil {
		return nil, fmt.Errorf("read window cursors: %w", err)
	}
	cursors, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Cursor, error) {
		var c Cursor
		var sizeS int32
		var until infinityTime
		err := r.Scan(&c.Basis, &sizeS, &until)
		c.Size, c.ClosedUntil = time.Duration(sizeS)*time.Second, until.t
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("read window cursors: %w", err)
	}
	return cursors, nil
}

// closedUntilOf reads the close cursor of (basis, sizeS) without locking it
// (the zero time when nothing closed yet).
func closedUntilOf(ctx context.Context, q store.Querier, basis string, sizeS int32) (time.Time, error) {
	var until infinityTime
	err := q.QueryRow(ctx, `SELECT closed_until FROM window_cursors WHERE basis = $1 AND size_s = $2`, basis, sizeS).Scan(&until)
	if errors.Is(err, pgx.ErrNoRows) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("read window cursor: %w", err)
	}
	return until.t, nil
}

// ensureCursor creates the cursor of (basis, sizeS) if it is missing, with
// nothing closed.
func ensureCursor(ctx context.Context, q store.Querier, basis string, sizeS int32) error {
	_, err := q.Exec(ctx, `INSERT INTO window_cursors (basis, size_s, closed_until) VALUES ($1, $2, '-infinity') ON CONFLICT DO NOTHING`, basis, sizeS)
	if err != nil {
		return fmt.Errorf("create window cursor: %w", err)
	}
	return nil
}

// infinityTime scans a timestamptz that may be ±infinity (as the zero time).
type infinityTime struct{ t time.Time }

func (p *infinityTime) Scan(src any) error {
	switch v := src.(type) {
	case time.Time:
		p.t = v.UTC()
	default:
		p.t = time.Time{} // NULL, -infinity, infinity
	}
	return nil
}

// rowKey is the row of k with only its key columns set.
func rowKey(k Key) aggRow {
	return aggRow{Basis: string(k.Basis), SizeS: int32(k.Size / time.Second), Start: k.Start, Dim: k.Dim, Value: k.Value}
}

// keyOf is the key of a stored row.
func keyOf(r *aggRow) Key {
	return Key{Basis: Basis(r.Basis), Size: time.Duration(r.SizeS) * time.Second, Start: r.Start.UTC(), Dim: r.Dim, Value: r.Value}
}

// sketches says which of a row's sketches a read needs: decoding them is
// most of what reading a row costs, and most metrics need neither.
type sketches struct{ lag, customers bool }

var allSketches = sketches{lag: true, customers: true}

// fromRowWith is a stored row's aggregate with only the sketches need
// names (the others nil: Merge skips them, and the metrics that read them
// must not be asked).
func fromRowWith(r *aggRow, need sketches) (*Agg, error) {
	if need == allSketches {
		return fromRow(r)
	}
	a := &Agg{Count: r.Count, Successes: r.Successes, Failures: r.Failures, Terminal: r.Terminal, LagSumMs: r.LagSumMs}
	if need.lag || need.customers {
		fresh := NewAgg()
		var lag, customers []byte
		if need.lag {
			a.Lag, lag = fresh.Lag, r.Lag
		}
		if need.customers {
			a.Customers, customers = fresh.Customers, r.Customers
		}
		if err := a.DecodeSketches(lag, customers); err != nil {
			return nil, err
		}
	}
	return a, nil
}

// fromRow is a stored row's aggregate.
func fromRow(r *aggRow) (*Agg, error) {
	a := NewAgg()
	a.Count, a.Successes, a.Failures, a.Terminal, a.LagSumMs = r.Count, r.Successes, r.Failures, r.Terminal, r.LagSumMs
	if err := a.DecodeSketches(r.Lag, r.Customers); err != nil {
		return nil, err
	}
	return a, nil
}

// toRow writes a's values into r.
func (a *Agg) toRow(r *aggRow) error {
	lag, cust, err := a.EncodeSketches()
	if err != nil {
		return err
	}
	r.Count, r.Successes, r.Failures, r.Terminal, r.LagSumMs = a.Count, a.Successes, a.Failures, a.Terminal, a.LagSumMs
	r.Lag, r.Customers = lag, cust
	return nil
}

// keyArrays are the key columns of rows, as arrays.
func keyArrays(rows []aggRow) (bases []string, sizes []int32, starts []time.Time, dims, values []string) {
	n := len(rows)
	bases, sizes, starts, dims, values = make([]string, n), make([]int32, n), make([]time.Time, n), make([]string, n), make([]string, n)
	for i, r := range rows {
		bases[i], sizes[i], starts[i], dims[i], values[i] = r.Basis, r.SizeS, r.Start, r.Dim, r.Value
	}
	return
}

// aggColumns are the columns scanAggRow reads.
const aggColumns = `basis, size_s, start, dim, value, count, successes, failures, terminal, lag_sum_ms, lag, customers, late, revision, closed_at`

func scanAggRow(r pgx.CollectableRow) (aggRow, error) {
	var w aggRow
	err := r.Scan(&w.Basis, &w.SizeS, &w.Start, &w.Dim, &w.Value, &w.Count, &w.Successes, &w.Failures, &w.Terminal,
		&w.LagSumMs, &w.Lag, &w.Customers, &w.Late, &w.Revision, &w.ClosedAt)
	w.Start = w.Start.UTC()
	return w, err
}

// lockAggRows makes sure a row exists for every key of keys (in the order
// given, which must be sorted, so concurrent folds lock in the same order)
// and returns them locked FOR UPDATE until tx ends.
func lockAggRows(ctx context.Context, tx pgx.Tx, keys []aggRow) ([]aggRow, error) {
	b, s, st, d, v := keyArrays(keys)
	if _, err := tx.Exec(ctx, `
INSERT INTO window_aggs (basis, size_s, start, dim, value)
SELECT * FROM unnest($1::text[], $2::int[], $3::timestamptz[], $4::text[], $5::text[])
ON CONFLICT DO NOTHING`, b, s, st, d, v); err != nil {
		return nil, fmt.Errorf("create window rows: %w", err)
	}
	rows, err := tx.Query(ctx, `
SELECT w.basis, w.size_s, w.start, w.dim, w.value, w.count, w.successes, w.failures, w.terminal, w.lag_sum_ms,
       w.lag, w.customers, w.late, w.revision, w.closed_at
FROM window_aggs w
JOIN unnest($1::text[], $2::int[], $3::timestamptz[], $4::text[], $5::text[]) WITH ORDINALITY AS k(basis, size_s, start, dim, value, n)
  ON (w.basis, w.size_s, w.dim, w.value, w.start) = (k.basis, k.size_s, k.dim, k.value, k.start)
ORDER BY k.n
FOR UPDATE OF w`, b, s, st, d, v)
	if err != nil {
		return nil, fmt.Errorf("lock window rows: %w", err)
	}
	locked, err := pgx.CollectRows(rows, scanAggRow)
	if err != nil {
		return nil, fmt.Errorf("lock window rows: %w", err)
	}
	return locked, nil
}

// writeAggRows overwrites the value columns of rows (already locked).
func writeAggRows(ctx context.Context, tx pgx.Tx, rows []aggRow) error {
	n := len(rows)
	b, s, st, d, v := keyArrays(rows)
	count, succ, fail, term, late := make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
	lagSum := make([]float64, n)
	lag, cust := make([][]byte, n), make([][]byte, n)
	rev := make([]int32, n)
	closed := make([]*time.Time, n)
	for i, r := range rows {
		count[i], succ[i], fail[i], term[i], late[i] = r.Count, r.Successes, r.Failures, r.Terminal, r.Late
		lagSum[i], lag[i], cust[i], rev[i], closed[i] = r.LagSumMs, r.Lag, r.Customers, r.Revision, r.ClosedAt
	}
	_, err := tx.Exec(ctx, `
UPDATE window_aggs w SET count = u.count, successes = u.succ, failures = u.fail, terminal = u.term, lag_sum_ms = u.lag_sum,
       lag = u.lag, customers = u.cust, late = u.late, revision = u.rev, closed_at = u.closed, updated_at = now()
FROM unnest($1::text[], $2::int[], $3::timestamptz[], $4::text[], $5::text[], $6::bigint[], $7::bigint[], $8::bigint[],
            $9::bigint[], $10::float8[], $11::bytea[], $12::bytea[], $13::bigint[], $14::int[], $15::timestamptz[])
     AS u(basis, size_s, start, dim, value, count, succ, fail, term, lag_sum, lag, cust, late, rev, closed)
WHERE (w.basis, w.size_s, w.dim, w.value, w.start) = (u.basis, u.size_s, u.dim, u.value, u.start)`,
		b, s, st, d, v, count, succ, fail, term, lagSum, lag, cust, late, rev, closed)
	if err != nil {
		return fmt.Errorf("write window rows: %w", err)
	}
	return nil
}

// aggRowsIn returns the rows of basis and size (0: every size) with start
// in [from, to), locked FOR UPDATE when the caller will rewrite them.
func aggRowsIn(ctx context.Context, q store.Querier, basis string, sizeS int32, from, to time.Time, forUpdate bool) ([]aggRow, error) {
	lock := ""
	if forUpdate {
		lock = ` ORDER BY basis COLLATE "C", size_s, dim COLLATE "C", value COLLATE "C", start FOR UPDATE`
	}
	rows, err := q.Query(ctx, `SELECT `+aggColumns+`
FROM window_aggs WHERE basis = $1 AND ($2 = 0 OR size_s = $2) AND start >= $3 AND start < $4`+lock, basis, sizeS, from, to)
	if err != nil {
		return nil, fmt.Errorf("read window rows: %w", err)
	}
	out, err := pgx.CollectRows(rows, scanAggRow)
	if err != nil {
		return nil, fmt.Errorf("read window rows: %w", err)
	}
	return out, nil
}

// aggRowsFor returns the rows of one clock, size and dimension (only
// values, when given) with start in [from, to), with the sketches need
// names (the others are not read: nil).
func aggRowsFor(ctx context.Context, q store.Querier, basis string, sizeS int32, dim string, values []string, from, to time.Time, need sketches) ([]aggRow, error) {
	var out []aggRow
	err := eachAggRowFor(ctx, q, basis, sizeS, dim, values, from, to, need, func(r *aggRow) error {
		out = append(out, *r)
		return nil
	})
	return out, err
}

// eachAggRowFor calls fn with each row aggRowsFor returns, in no order,
// streaming them: a day of 1m windows over 50 topics is 72,000 rows. fn's
// row is reused between calls; it carries the key's start, dim and value,
// the counters, the sketches need names, late and revision.
func eachAggRowFor(ctx context.Context, q store.Querier, basis string, sizeS int32, dim string, values []string, from, to time.Time, need sketches, fn func(*aggRow) error) error {
	lag, customers := "lag", "customers"
	if !need.lag {
		lag = "NULL::bytea"
	}
	if !need.customers {
		customers = "NULL::bytea"
	}
	where := `basis = $1 AND size_s = $2 AND dim = $3 AND start >= $4 AND start < $5`
	args := []any{basis, sizeS, dim, from, to}
	if len(values) > 0 {
		where += ` AND value = ANY($6)`
		args = append(args, values)
	}
	rows, err := q.Query(ctx, `SELECT start, value, count, successes, failures, terminal, lag_sum_ms, `+lag+`, `+customers+`, late, revision
FROM window_aggs WHERE `+where, args...)
	if err != nil {
		return fmt.Errorf("read window aggregates: %w", err)
	}
	defer rows.Close()
	r := aggRow{Basis: basis, SizeS: sizeS, Dim: dim}
	for rows.Next() {
		if err := rows.Scan(&r.Start, &r.Value, &r.Count, &r.Successes, &r.Failures, &r.Terminal, &r.LagSumMs, &r.Lag, &r.Customers, &r.Late, &r.Revision); err != nil {
			return fmt.Errorf("read window aggregates: %w", err)
		}
		r.Start = r.Start.UTC()
		if err := fn(&r); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read window aggregates: %w", err)
	}
	return nil
}

// deleteAggRows deletes the rows with the keys of rows.
func deleteAggRows(ctx context.Context, tx pgx.Tx, rows []aggRow) error {
	if len(rows) == 0 {
		return nil
	}
	b, s, st, d, v := keyArrays(rows)
	_, err := tx.Exec(ctx, `
DELETE FROM window_aggs w USING unnest($1::text[], $2::int[], $3::timestamptz[], $4::text[], $5::text[]) AS k(basis, size_s, start, dim, value)
WHERE (w.basis, w.size_s, w.dim, w.value, w.start) = (k.basis, k.size_s, k.dim, k.value, k.start)`, b, s, st, d, v)
	if err != nil {
		return fmt.Errorf("delete window rows: %w", err)
	}
	return nil
}

// firstWindowStart is the earliest start of a window of (basis, sizeS).
func firstWindowStart(ctx context.Context, q store.Querier, basis string, sizeS int32) (time.Time, bool, error) {
	var t *time.Time
	err := q.QueryRow(ctx, `SELECT min(start) FROM window_aggs WHERE basis = $1 AND size_s = $2 AND dim = 'all'`,
		basis, sizeS).Scan(&t)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("find the first open window: %w", err)
	}
	if t == nil {
		return time.Time{}, false, nil
	}
	return t.UTC(), true, nil
}

// Mark is one partition's progress on one clock: the watermark's input.
type Mark struct {
	Basis     Basis
	Partition int32
	MaxTime   time.Time // the largest time it has folded
	SeenAt    time.Time // when it last folded; zero when written: the database's now()
}

// advanceMarks raises each partition's largest time seen (never lowers it)
// and records when it was seen (on the fold's clock: the database's unless
// a test gave one).
func advanceMarks(ctx context.Context, tx pgx.Tx, marks []Mark) error {
	n := len(marks)
	b, p, mt, seen := make([]string, n), make([]int32, n), make([]time.Time, n), make([]*time.Time, n)
	for i, m := range marks {
		b[i], p[i], mt[i] = string(m.Basis), m.Partition, m.MaxTime
		if !m.SeenAt.IsZero() {
			seen[i] = &marks[i].SeenAt
		}
	}
	_, err := tx.Exec(ctx, `
INSERT INTO window_marks (basis, partition, max_time, seen_at)
SELECT b, p, t, coalesce(s, now()) FROM unnest($1::text[], $2::int[], $3::timestamptz[], $4::timestamptz[]) AS u(b, p, t, s)
ON CONFLICT (basis, partition) DO UPDATE
SET max_time = greatest(window_marks.max_time, excluded.max_time), seen_at = greatest(window_marks.seen_at, excluded.seen_at)`,
		b, p, mt, seen)
	if err != nil {
		return fmt.Errorf("advance window watermarks: %w", err)
	}
	return nil
}

// readMarks returns every partition's progress on basis.
func readMarks(ctx context.Context, q store.Querier, basis Basis) ([]Mark, error) {
	rows, err := q.Query(ctx, `SELECT basis, partition, max_time, seen_at FROM window_marks WHERE basis = $1`, string(basis))
	if err != nil {
		return nil, fmt.Errorf("read window watermarks: %w", err)
	}
	marks, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Mark, error) {
		var m Mark
		err := r.Scan(&m.Basis, &m.Partition, &m.MaxTime, &m.SeenAt)
		return m, err
	})
	if err != nil {
		return nil, fmt.Errorf("read window watermarks: %w", err)
	}
	return marks, nil
}

// CloseRecord is a closed window's record (a row of window_closes), as the
// closer writes and announces it.
type CloseRecord struct {
	Basis     Basis     `json:"basis"`
	SizeS     int32     `json:"size_s"`
	Start     time.Time `json:"start"`
	ClosedAt  time.Time `json:"closed_at"`
	Watermark time.Time `json:"watermark"`
	Count     int64     `json:"count"`
}

// closeWindows closes the windows of (basis, sizeS) starting in [from,
// until) at closedAt (the closer's clock, the one its watermark was judged
// on): marks their rows closed, writes one close record per window (also
// for windows without events when withEmpty), moves the cursor to until,
// and returns the records it wrote (a window closes once).
func closeWindows(ctx context.Context, tx pgx.Tx, basis string, sizeS int32, from, until, watermark, closedAt time.Time, withEmpty bool) ([]CloseRecord, error) {
	if _, err := tx.Exec(ctx, `UPDATE window_aggs SET closed_at = $5 WHERE basis = $1 AND size_s = $2 AND start >= $3 AND start < $4 AND closed_at IS NULL`,
		basis, sizeS, from, until, closedAt); err != nil {
		return nil, fmt.Errorf("mark windows closed: %w", err)
	}
	starts := `SELECT start FROM window_aggs WHERE basis = $1 AND size_s = $2 AND dim = 'all' AND start >= $3 AND start < $4`
	if withEmpty {
		starts = `SELECT generate_series($3::timestamptz, $4::timestamptz - make_interval(secs => $2), make_interval(secs => $2))`
	}
	rows, err := tx.Query(ctx, `
INSERT INTO window_closes (basis, size_s, start, watermark, count, closed_at)
SELECT $1, $2, g.start, $5, coalesce(a.count, 0), $6
FROM (`+starts+`) AS g(start)
LEFT JOIN window_aggs a ON a.basis = $1 AND a.size_s = $2 AND a.dim = 'all' AND a.value = '' AND a.start = g.start
ON CONFLICT DO NOTHING
RETURNING basis, size_s, start, closed_at, watermark, count`, basis, sizeS, from, until, watermark, closedAt)
	if err != nil {
		return nil, fmt.Errorf("write window close records: %w", err)
	}
	closes, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (CloseRecord, error) {
		var c CloseRecord
		err := r.Scan(&c.Basis, &c.SizeS, &c.Start, &c.ClosedAt, &c.Watermark, &c.Count)
		c.Start, c.ClosedAt, c.Watermark = c.Start.UTC(), c.ClosedAt.UTC(), c.Watermark.UTC()
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("write window close records: %w", err)
	}
	if _, err := tx.Exec(ctx, `UPDATE window_cursors SET closed_until = $3 WHERE basis = $1 AND size_s = $2`, basis, sizeS, until); err != nil {
		return nil, fmt.Errorf("move window cursor: %w", err)
	}
	return closes, nil
}

// pruneWindows deletes closed windows of (basis, sizeS) that started before
// before, in batches, and their close records.
func pruneWindows(ctx context.Context, q store.Querier, basis string, sizeS int32, before time.Time) (int64, error) {
	var total int64
	for {
		tag, err := q.Exec(ctx, `DELETE FROM window_aggs WHERE ctid IN (
			SELECT ctid FROM window_aggs WHERE basis = $1 AND size_s = $2 AND start < $3 AND closed_at IS NOT NULL LIMIT 5000)`,
			basis, sizeS, before)
		if err != nil {
			return total, fmt.Errorf("prune windows: %w", err)
		}
		total += tag.RowsAffected()
		if tag.RowsAffected() < 5000 {
			break
		}
	}
	if _, err := q.Exec(ctx, `DELETE FROM window_closes WHERE basis = $1 AND size_s = $2 AND start < $3`, basis, sizeS, before); err != nil {
		return total, fmt.Errorf("prune window close records: %w", err)
	}
	return total, nil
}
