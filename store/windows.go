package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// WindowRow is one row of window_aggs.
type WindowRow struct {
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

// WindowCursor says every window of (Basis, SizeS) ending at or before
// ClosedUntil is closed.
type WindowCursor struct {
	Basis       string
	SizeS       int32
	ClosedUntil time.Time
}

// ShareWindowCursors reads every cursor, holding them FOR SHARE until tx
// ends, so no window closes while tx folds into it.
func ShareWindowCursors(ctx context.Context, tx pgx.Tx) ([]WindowCursor, error) {
	rows, err := tx.Query(ctx, `SELECT basis, size_s, closed_until FROM window_cursors FOR SHARE`)
	if err != nil {
		return nil, fmt.Errorf("read window cursors: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (WindowCursor, error) {
		var c WindowCursor
		err := r.Scan(&c.Basis, &c.SizeS, &c.ClosedUntil)
		return c, err
	})
}

// keyArrays are the key columns of rows, as arrays.
func keyArrays(rows []WindowRow) (bases []string, sizes []int32, starts []time.Time, dims, values []string) {
	n := len(rows)
	bases, sizes, starts, dims, values = make([]string, n), make([]int32, n), make([]time.Time, n), make([]string, n), make([]string, n)
	for i, r := range rows {
		bases[i], sizes[i], starts[i], dims[i], values[i] = r.Basis, r.SizeS, r.Start, r.Dim, r.Value
	}
	return
}

// LockWindowRows makes sure a row exists for every key of keys (in the
// order given, which must be sorted, so concurrent folds lock in the same
// order) and returns them locked FOR UPDATE until tx ends.
func LockWindowRows(ctx context.Context, tx pgx.Tx, keys []WindowRow) ([]WindowRow, error) {
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
	return pgx.CollectRows(rows, scanWindowRow)
}

func scanWindowRow(r pgx.CollectableRow) (WindowRow, error) {
	var w WindowRow
	err := r.Scan(&w.Basis, &w.SizeS, &w.Start, &w.Dim, &w.Value, &w.Count, &w.Successes, &w.Failures, &w.Terminal,
		&w.LagSumMs, &w.Lag, &w.Customers, &w.Late, &w.Revision, &w.ClosedAt)
	w.Start = w.Start.UTC()
	return w, err
}

// WriteWindowRows overwrites the value columns of rows (already locked).
func WriteWindowRows(ctx context.Context, tx pgx.Tx, rows []WindowRow) error {
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

// WindowMark is one partition's progress on one clock.
type WindowMark struct {
	Basis     string
	Partition int32
	MaxTime   time.Time
	SeenAt    time.Time
}

// AdvanceWindowMarks raises each partition's largest time seen (never
// lowers it) and records when it was seen.
func AdvanceWindowMarks(ctx context.Context, tx pgx.Tx, marks []WindowMark) error {
	n := len(marks)
	b, p, mt, seen := make([]string, n), make([]int32, n), make([]time.Time, n), make([]time.Time, n)
	for i, m := range marks {
		b[i], p[i], mt[i], seen[i] = m.Basis, m.Partition, m.MaxTime, m.SeenAt
	}
	_, err := tx.Exec(ctx, `
INSERT INTO window_marks (basis, partition, max_time, seen_at)
SELECT * FROM unnest($1::text[], $2::int[], $3::timestamptz[], $4::timestamptz[])
ON CONFLICT (basis, partition) DO UPDATE
SET max_time = greatest(window_marks.max_time, excluded.max_time), seen_at = greatest(window_marks.seen_at, excluded.seen_at)`,
		b, p, mt, seen)
	if err != nil {
		return fmt.Errorf("advance window watermarks: %w", err)
	}
	return nil
}

// ReadWindowMarks returns every partition's progress on basis.
func ReadWindowMarks(ctx context.Context, q Querier, basis string) ([]WindowMark, error) {
	rows, err := q.Query(ctx, `SELECT basis, partition, max_time, seen_at FROM window_marks WHERE basis = $1`, basis)
	if err != nil {
		return nil, fmt.Errorf("read window watermarks: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (WindowMark, error) {
		var m WindowMark
		err := r.Scan(&m.Basis, &m.Partition, &m.MaxTime, &m.SeenAt)
		return m, err
	})
}

// WindowClose is a closed window's record.
type WindowClose struct {
	Basis     string    `json:"basis"`
	SizeS     int32     `json:"size_s"`
	Start     time.Time `json:"start"`
	ClosedAt  time.Time `json:"closed_at"`
	Watermark time.Time `json:"watermark"`
	Count     int64     `json:"count"`
}
