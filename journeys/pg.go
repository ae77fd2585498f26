package journeys

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/hookstream/hookstream/store"
	"github.com/jackc/pgx/v5"
)

// The journey tables in PostgreSQL: journey_instances (one row per
// instance), journey_funnel (additive aggregates per cohort day),
// journey_records (what happened to an instance) and journey_epoch (the
// number of rebuilds). The statements on them are here; outside this
// package only the process benchmark touches them (to seed and count
// instances).

// Row is one stored instance: a row of journey_instances.
type Row struct {
	Journey, Subject string
	StepAt           []*time.Time
	StepEvent        []*string
	Status           string
	CurrentStep      *string
	EnteredAt        time.Time
	LastAt           time.Time
	Deadline         *time.Time
	AbandonedAt      *time.Time
	Conflict         *string
	EntryTopic       *string
	// Version is the id of the transaction that last wrote the row (see
	// writeVersion): what a fold read, and what its write checks.
	Version int64
}

// writeVersion is the version every write of a journey_instances row sets:
// the writing transaction's id. Unlike a counter it is never reused, not
// even after a rebuild deletes a row and creates it again, so a version
// remembered from long ago (Fold's cache) can never match a row that
// changed since.
const writeVersion = `pg_current_xact_id()::text::bigint`

// checkAt is check_at for a row written with deadline dl over a row whose
// check_at was old: the earlier of the two while in progress, so it stays
// at or before the deadline and, when the deadline only moves later (most
// progress), unchanged, which keeps the update HOT (no index touched).
func checkAt(old, dl, status string) string {
	return `CASE WHEN ` + status + ` = 'in_progress' AND ` + dl + ` IS NOT NULL THEN
    CASE WHEN ` + old + ` IS NULL OR ` + dl + ` < ` + old + ` THEN ` + dl + ` ELSE ` + old + ` END END`
}

const rowColumns = `journey, subject, step_at, step_event, status, current_step, entered_at, last_at, deadline, abandoned_at, conflict, entry_topic, version`

// rowColumnsOfJ is rowColumns qualified by the table alias j.
var rowColumnsOfJ = func() string {
	cols := strings.Split(rowColumns, ",")
	for i, c := range cols {
		cols[i] = "j." + strings.TrimSpace(c)
	}
	return strings.Join(cols, ", ")
}()

// rowFields are the scan targets of rowColumns in r.
func rowFields(r *Row) []any {
	return []any{&r.Journey, &r.Subject, &r.StepAt, &r.StepEvent, &r.Status, &r.CurrentStep, &r.EnteredAt, &r.LastAt,
		&r.Deadline, &r.AbandonedAt, &r.Conflict, &r.EntryTopic, &r.Version}
}

func scanRow(r pgx.CollectableRow) (Row, error) {
	var j Row
	err := r.Scan(rowFields(&j)...)
	return j, err
}

// rowArrays are rows as the columns the write statements take. The per-step
// arrays travel as array literals (rows of different journeys have
// different lengths, which a 2-D array cannot hold).
type rowArrays struct {
	js, ss, at, ev, status []string
	cur, conflict, entry   []*string
	entered, last          []time.Time
	deadline, abandoned    []*time.Time
	version                []int64
}

func toArrays(rows []Row) rowArrays {
	n := len(rows)
	a := rowArrays{js: make([]string, n), ss: make([]string, n), at: make([]string, n), ev: make([]string, n), status: make([]string, n),
		cur: make([]*string, n), conflict: make([]*string, n), entry: make([]*string, n), entered: make([]time.Time, n), last: make([]time.Time, n),
		deadline: make([]*time.Time, n), abandoned: make([]*time.Time, n), version: make([]int64, n)}
	for i, j := range rows {
		a.js[i], a.ss[i], a.status[i], a.cur[i], a.conflict[i], a.entry[i] = j.Journey, j.Subject, j.Status, j.CurrentStep, j.Conflict, j.EntryTopic
		a.entered[i], a.last[i], a.deadline[i], a.abandoned[i], a.version[i] = j.EnteredAt, j.LastAt, j.Deadline, j.AbandonedAt, j.Version
		a.at[i], a.ev[i] = timeArrayLiteral(j.StepAt), textArrayLiteral(j.StepEvent)
	}
	return a
}

// checkAtNew is check_at for a row inserted with deadline dl and status st.
var checkAtNew = checkAt("NULL", "dl", "st")

// insertSelect is the INSERT ... SELECT of rows from the twelve arrays
// $1..$12 (all but the version, which the write sets).
var insertSelect = `
INSERT INTO journey_instances (` + rowColumns + `, check_at, updated_at)
SELECT j, s, a::timestamptz[], e::text[], st, cur, ent, lst, dl, ab, cf, et, ` + writeVersion + `, ` + checkAtNew + `, now()
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::timestamptz[], $8::timestamptz[],
            $9::timestamptz[], $10::timestamptz[], $11::text[], $12::text[]) AS u(j, s, a, e, st, cur, ent, lst, dl, ab, cf, et)`

// upsertRows writes rows whole (insert or overwrite), in one statement.
func upsertRows(ctx context.Context, tx pgx.Tx, rows []Row) error {
	if len(rows) == 0 {
		return nil
	}
	a := toArrays(rows)
	_, err := tx.Exec(ctx, insertSelect+`
ON CONFLICT (journey, subject) DO UPDATE SET step_at = excluded.step_at, step_event = excluded.step_event, status = excluded.status,
  current_step = excluded.current_step, entered_at = excluded.entered_at, last_at = excluded.last_at, deadline = excluded.deadline,
  abandoned_at = excluded.abandoned_at, conflict = excluded.conflict, entry_topic = excluded.entry_topic,
  version = `+writeVersion+`, check_at = excluded.check_at, updated_at = now()`,
		a.js, a.ss, a.at, a.ev, a.status, a.cur, a.entered, a.last, a.deadline, a.abandoned, a.conflict, a.entry)
	if err != nil {
		return fmt.Errorf("write journey instances: %w", err)
	}
	return nil
}

// collectVersions reads (journey, subject, version) rows.
func collectVersions(rows pgx.Rows) (map[instKey]int64, error) {
	out := map[instKey]int64{}
	defer rows.Close()
	for rows.Next() {
		var k instKey
		var v int64
		if err := rows.Scan(&k.journey, &k.subject, &v); err != nil {
			return nil, err
		}
		out[k] = v
	}
	return out, rows.Err()
}

// readRows returns the existing rows of (journey, subject) keys, without
// locking them (writes check their version instead).
func readRows(ctx context.Context, tx pgx.Tx, journeys, subjects []string) ([]Row, error) {
	rows, err := tx.Query(ctx, `
SELECT `+rowColumnsOfJ+`
FROM journey_instances j
JOIN unnest($1::text[], $2::text[]) AS k(journey, subject) ON (j.journey, j.subject) = (k.journey, k.subject)`, journeys, subjects)
	if err != nil {
		return nil, fmt.Errorf("read journey instances: %w", err)
	}
	return pgx.CollectRows(rows, scanRow)
}

// insertNewRows inserts rows (sorted by key) that did not exist when read,
// and returns the version of each key it inserted: a key missing from the
// result was created by someone else meanwhile.
func insertNewRows(ctx context.Context, tx pgx.Tx, rows []Row) (map[instKey]int64, error) {
	if len(rows) == 0 {
		return nil, nil
	}
	a := toArrays(rows)
	res, err := tx.Query(ctx, insertSelect+`
ON CONFLICT (journey, subject) DO NOTHING
RETURNING journey, subject, version`, a.js, a.ss, a.at, a.ev, a.status, a.cur, a.entered, a.last, a.deadline, a.abandoned, a.conflict, a.entry)
	if err != nil {
		return nil, fmt.Errorf("insert journey instances: %w", err)
	}
	return collectVersions(res)
}

// updateRows overwrites rows (sorted by key) that are still at the version
// they were read at, and returns the new version of each key it wrote: a
// key missing from the result was changed (or deleted) by someone else
// meanwhile.
func updateRows(ctx context.Context, tx pgx.Tx, rows []Row) (map[instKey]int64, error) {
	if len(rows) == 0 {
		return nil, nil
	}
	a := toArrays(rows)
	res, err := tx.Query(ctx, `
UPDATE journey_instances w SET step_at = u.a::timestamptz[], step_event = u.e::text[], status = u.st, current_step = u.cur,
  entered_at = u.ent, last_at = u.lst, deadline = u.dl, abandoned_at = u.ab, conflict = u.cf, entry_topic = u.et,
  version = `+writeVersion+`, check_at = `+checkAt("w.check_at", "u.dl", "u.st")+`, updated_at = now()
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::timestamptz[], $8::timestamptz[],
            $9::timestamptz[], $10::timestamptz[], $11::text[], $12::text[], $13::bigint[]) AS u(j, s, a, e, st, cur, ent, lst, dl, ab, cf, et, v)
WHERE (w.journey, w.subject) = (u.j, u.s) AND w.version = u.v
RETURNING w.journey, w.subject, w.version`, a.js, a.ss, a.at, a.ev, a.status, a.cur, a.entered, a.last, a.deadline, a.abandoned, a.conflict, a.entry, a.version)
	if err != nil {
		return nil, fmt.Errorf("update journey instances: %w", err)
	}
	return collectVersions(res)
}

// timeArrayLiteral writes ts as a PostgreSQL array literal (NULL for nil).
func timeArrayLiteral(ts []*time.Time) string {
	var b strings.Builder
	b.Grow(2 + 35*len(ts))
	var tmp [40]byte
	b.WriteByte('{')
	for i, t := range ts {
		if i > 0 {
			b.WriteByte(',')
		}
		if t == nil {
			b.WriteString("NULL")
			continue
		}
		b.WriteByte('"')
		b.Write(t.UTC().AppendFormat(tmp[:0], "2006-01-02 15:04:05.999999Z07:00"))
		b.WriteByte('"')
	}
	b.WriteByte('}')
	return b.String()
}

// textArrayLiteral writes ss as a PostgreSQL array literal, quoting every
// element (NULL for nil).
func textArrayLiteral(ss []*string) string {
	var b strings.Builder
	n := 2
	for _, s := range ss {
		n += 5
		if s != nil {
			n += len(*s)
		}
	}
	b.Grow(n)
	b.WriteByte('{')
	for i, s := range ss {
		if i > 0 {
			b.WriteByte(',')
		}
		if s == nil {
			b.WriteString("NULL")
			continue
		}
		b.WriteByte('"')
		if plainASCII(*s) {
			b.WriteString(*s)
		} else {
			for _, r := range store.Printable(*s) {
				if r == '"' || r == '\\' {
					b.WriteByte('\\')
				}
				b.WriteRune(r)
			}
		}
		b.WriteByte('"')
	}
	b.WriteByte('}')
	return b.String()
}

// plainASCII reports whether s can go into a quoted array element as it
// is: printable ASCII without quotes or backslashes (event ids are).
func plainASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// Record is something that happened to an instance (a row of
// journey_records).
type Record struct {
	ID      int64     `json:"id"`
	Journey string    `json:"journey"`
	Subject string    `json:"subject"`
	Kind    string    `json:"kind"` // abandoned | unabandoned | conflict
	Step    string    `json:"step,omitempty"`
	Detail  string    `json:"detail,omitempty"`
	At      time.Time `json:"at"`
}

// Kinds of Record.
const (
	RecordAbandoned   = "abandoned"
	RecordUnabandoned = "unabandoned"
	RecordConflict    = "conflict"
)

// insertRecords records what happened.
func insertRecords(ctx context.Context, q store.Querier, recs []Record) error {
	if len(recs) == 0 {
		return nil
	}
	n := len(recs)
	j, s, k, st, d := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	for i, r := range recs {
		j[i], s[i], k[i], st[i], d[i] = r.Journey, r.Subject, r.Kind, r.Step, store.Printable(r.Detail)
	}
	_, err := q.Exec(ctx, `INSERT INTO journey_records (journey, subject, kind, step, detail)
		SELECT j, s, k, NULLIF(st, ''), NULLIF(d, '') FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[]) AS u(j, s, k, st, d)`,
		j, s, k, st, d)
	if err != nil {
		return fmt.Errorf("record journey changes: %w", err)
	}
	return nil
}

// readRecords returns the records of one instance, oldest first.
func readRecords(ctx context.Context, q store.Querier, journey, subject string) ([]Record, error) {
	rows, err := q.Query(ctx, `SELECT id, journey, subject, kind, coalesce(step, ''), coalesce(detail, ''), at
		FROM journey_records WHERE journey = $1 AND subject = $2 ORDER BY id`, journey, subject)
	if err != nil {
		return nil, fmt.Errorf("read journey records: %w", err)
	}
	recs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Record, error) {
		var j Record
		err := r.Scan(&j.ID, &j.Journey, &j.Subject, &j.Kind, &j.Step, &j.Detail, &j.At)
		return j, err
	})
	if err != nil {
		return nil, fmt.Errorf("read journey records: %w", err)
	}
	return recs, nil
}

// abandonRows looks at up to limit in-progress instances whose check_at is
// before watermark: those whose deadline is before it too are marked
// abandoned and returned; the others progressed since check_at was set, and
// their check_at moves forward to their deadline. checked is how many it
// looked at (fewer than limit: none are left).
func abandonRows(ctx context.Context, q store.Querier, watermark time.Time, limit int) (abandoned []Row, checked int, err error) {
	rows, err := q.Query(ctx, `
WITH due AS (
  SELECT journey, subject FROM journey_instances WHERE status = 'in_progress' AND check_at < $1
  ORDER BY check_at LIMIT $2 FOR UPDATE SKIP LOCKED
), later AS (
  UPDATE journey_instances j SET check_at = j.deadline
  FROM due WHERE (j.journey, j.subject) = (due.journey, due.subject) AND NOT coalesce(j.deadline < $1, false)
  RETURNING `+rowColumnsOfJ+`
), gone AS (
  UPDATE journey_instances j SET status = 'abandoned', abandoned_at = $1, check_at = NULL, version = `+writeVersion+`, updated_at = now()
  FROM due WHERE (j.journey, j.subject) = (due.journey, due.subject) AND j.deadline < $1
  RETURNING `+rowColumnsOfJ+`
)
SELECT true, * FROM gone UNION ALL SELECT false, * FROM later`, watermark, limit)
	if err != nil {
		return nil, 0, fmt.Errorf("abandon journeys: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		checked++
		var j Row
		var gone bool
		if err := rows.Scan(append([]any{&gone}, rowFields(&j)...)...); err != nil {
			return nil, 0, fmt.Errorf("abandon journeys: %w", err)
		}
		if gone {
			abandoned = append(abandoned, j)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("abandon journeys: %w", err)
	}
	return abandoned, checked, nil
}

// getRow returns one instance.
func getRow(ctx context.Context, q store.Querier, journey, subject string) (Row, bool, error) {
	rows, err := q.Query(ctx, `SELECT `+rowColumns+` FROM journey_instances WHERE journey = $1 AND subject = $2`, journey, subject)
	if err != nil {
		return Row{}, false, fmt.Errorf("read journey instance: %w", err)
	}
	j, err := pgx.CollectRows(rows, scanRow)
	if err != nil {
		return Row{}, false, fmt.Errorf("read journey instance: %w", err)
	}
	if len(j) == 0 {
		return Row{}, false, nil
	}
	return j[0], true, nil
}

// listRows returns instances of journey (of status, if given) that entered
// in [from, to), newest first then by subject descending, after the one
// after names (when given).
func listRows(ctx context.Context, q store.Querier, journey, status string, from, to time.Time, after *InstanceKey, limit int) ([]Row, error) {
	sql := `SELECT ` + rowColumns + ` FROM journey_instances
		WHERE journey = $1 AND ($2 = '' OR status = $2) AND entered_at >= $3 AND entered_at < $4`
	args := []any{journey, status, from, to, limit}
	if after != nil {
		sql += ` AND entered_at <= $6 AND (entered_at, subject) < ($6, $7)`
		args = append(args, after.EnteredAt, after.Subject)
	}
	rows, err := q.Query(ctx, sql+` ORDER BY entered_at DESC, subject DESC LIMIT $5`, args...)
	if err != nil {
		return nil, fmt.Errorf("list journey instances: %w", err)
	}
	out, err := pgx.CollectRows(rows, scanRow)
	if err != nil {
		return nil, fmt.Errorf("list journey instances: %w", err)
	}
	return out, nil
}

// eachRow calls fn with every instance of journey, streaming them.
func eachRow(ctx context.Context, q store.Querier, journey string, fn func(*Row) error) error {
	rows, err := q.Query(ctx, `SELECT `+rowColumns+` FROM journey_instances WHERE journey = $1`, journey)
	if err != nil {
		return fmt.Errorf("read journey instances: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var j Row
		if err := rows.Scan(rowFields(&j)...); err != nil {
			return fmt.Errorf("read journey instance: %w", err)
		}
		if err := fn(&j); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read journey instances: %w", err)
	}
	return nil
}

// subjectSpan is a range of the subjects of one journey that a rebuild
// batch rewrites: after lo (nil: from the first) up to and including hi
// (nil: to the last); only, when set, narrows it to that one subject.
type subjectSpan struct {
	lo, hi *string
	only   string
}

// deleteSpan deletes the instances of journey in span, before a rebuild
// writes them again (or, for subjects no event derives any more, for
// good). It returns the deadline and abandoned_at of the deleted instances
// that were abandoned, by subject, for the subjects in keep only: a rebuild
// keeps them abandoned when nothing moved.
func deleteSpan(ctx context.Context, tx pgx.Tx, journey string, span subjectSpan, keep []string) (map[string][2]time.Time, error) {
	// The bounds are written into the statement only when present, so that
	// every variant is an index range scan of (journey, subject).
	where, args := `journey = $1`, []any{journey, keep}
	bound := func(cond string, v any) {
		args = append(args, v)
		where += ` AND subject ` + cond + ` $` + strconv.Itoa(len(args))
	}
	if span.lo != nil {
		bound(">", *span.lo)
	}
	if span.hi != nil {
		bound("<=", *span.hi)
	}
	if span.only != "" {
		bound("=", span.only)
	}
	rows, err := tx.Query(ctx, `
WITH gone AS (DELETE FROM journey_instances WHERE `+where+` RETURNING subject, deadline, abandoned_at)
SELECT subject, deadline, abandoned_at FROM gone
WHERE abandoned_at IS NOT NULL AND deadline IS NOT NULL AND subject = ANY($2)`, args...)
	if err != nil {
		return nil, fmt.Errorf("delete journey instances to rebuild: %w", err)
	}
	defer rows.Close()
	out := map[string][2]time.Time{}
	for rows.Next() {
		var s string
		var d, a time.Time
		if err := rows.Scan(&s, &d, &a); err != nil {
			return nil, fmt.Errorf("delete journey instances to rebuild: %w", err)
		}
		out[s] = [2]time.Time{d, a}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("delete journey instances to rebuild: %w", err)
	}
	return out, nil
}

// readEpoch returns the number of journeys rebuilds so far (read after
// the journeys lock, so no rebuild is in flight), and whether the
// transaction is READ COMMITTED (only then is this statement's snapshot
// newer than the lock).
func readEpoch(ctx context.Context, q store.Querier) (n int64, readCommitted bool, err error) {
	err = q.QueryRow(ctx, `SELECT n, current_setting('transaction_isolation') = 'read committed' FROM journey_epoch`).Scan(&n, &readCommitted)
	if err != nil {
		return 0, false, fmt.Errorf("read the journeys epoch: %w", err)
	}
	return n, readCommitted, nil
}

// bumpEpoch counts a rebuild, in its transaction.
func bumpEpoch(ctx context.Context, tx pgx.Tx) error {
	if _, err := tx.Exec(ctx, `UPDATE journey_epoch SET n = n + 1`); err != nil {
		return fmt.Errorf("count the rebuild: %w", err)
	}
	return nil
}

// funnelDelta is an additive change to one funnel aggregate.
type funnelDelta struct {
	Journey string
	Day     time.Time
	Dim     string
	Kind    string
	Step    string
	Bucket  int32
	N       int64
}

// addFunnel applies deltas (sorted by key) with one additive upsert.
func addFunnel(ctx context.Context, tx pgx.Tx, deltas []funnelDelta) error {
	if len(deltas) == 0 {
		return nil
	}
	n := len(deltas)
	j, k, s, dim := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	d := make([]time.Time, n)
	b := make([]int32, n)
	c := make([]int64, n)
	for i, x := range deltas {
		j[i], d[i], dim[i], k[i], s[i], b[i], c[i] = x.Journey, x.Day, x.Dim, x.Kind, x.Step, x.Bucket, x.N
	}
	_, err := tx.Exec(ctx, `
INSERT INTO journey_funnel (journey, day, dim, kind, step, bucket, n)
SELECT * FROM unnest($1::text[], $2::date[], $3::text[], $4::text[], $5::text[], $6::int[], $7::bigint[])
ON CONFLICT (journey, day, dim, kind, step, bucket) DO UPDATE SET n = journey_funnel.n + excluded.n`, j, d, dim, k, s, b, c)
	if err != nil {
		return fmt.Errorf("update funnel aggregates: %w", err)
	}
	return nil
}

// funnelSum is one summed funnel aggregate.
type funnelSum struct {
	Dim        string // "" unless broken down
	Kind, Step string
	Bucket     int32
	N          int64
}

// sumFunnel sums the aggregates of journey's cohorts that entered on days
// in [from, to), by entry topic when byDim.
func sumFunnel(ctx context.Context, q store.Querier, journey string, from, to time.Time, byDim bool) ([]funnelSum, error) {
	dim := "''"
	if byDim {
		dim = "dim"
	}
	rows, err := q.Query(ctx, `SELECT `+dim+`, kind, step, bucket, sum(n)::bigint FROM journey_funnel
		WHERE journey = $1 AND day >= $2::date AND day < $3::date GROUP BY 1, 2, 3, 4 HAVING sum(n) <> 0`, journey, from, to)
	if err != nil {
		return nil, fmt.Errorf("read funnel aggregates: %w", err)
	}
	sums, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (funnelSum, error) {
		var f funnelSum
		err := r.Scan(&f.Dim, &f.Kind, &f.Step, &f.Bucket, &f.N)
		return f, err
	})
	if err != nil {
		return nil, fmt.Errorf("read funnel aggregates: %w", err)
	}
	return sums, nil
}

// deleteFunnel deletes journey's funnel aggregates (for a rebuild).
func deleteFunnel(ctx context.Context, tx pgx.Tx, journey string) error {
	if _, err := tx.Exec(ctx, `DELETE FROM journey_funnel WHERE journey = $1`, journey); err != nil {
		return fmt.Errorf("delete funnel aggregates: %w", err)
	}
	return nil
}

// countByStatus sums the status aggregates of every journey's funnel: the
// instances in each status, without reading them.
func countByStatus(ctx context.Context, q store.Querier) (map[string]int64, error) {
	rows, err := q.Query(ctx, `SELECT kind, sum(n)::bigint FROM journey_funnel
		WHERE kind IN ('in_progress', 'completed', 'failed', 'abandoned') GROUP BY 1`)
	if err != nil {
		return nil, fmt.Errorf("count journey instances by status: %w", err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var k string
		var n int64
		if err := rows.Scan(&k, &n); err != nil {
			return nil, fmt.Errorf("count journey instances by status: %w", err)
		}
		out[k] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("count journey instances by status: %w", err)
	}
	return out, nil
}

// subjectColumns are the events columns each kind of subject is read from.
var subjectColumns = map[Subject]string{SubjectCustomer: "customer_id", SubjectResource: "resource_id", SubjectCorrelation: "correlation_id"}

// eventsByID returns the stored events ids name (without bodies), oldest
// first: what an instance report shows of the events that built it.
func eventsByID(ctx context.Context, q store.Querier, ids []string) ([]InstanceEvent, error) {
	evs := []InstanceEvent{}
	err := store.EventsByID(ctx, q, ids, func(e *store.Event) error {
		evs = append(evs, InstanceEvent{ID: e.ID, Topic: e.Topic, Created: e.Created.UTC(), Received: e.Received.UTC()})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read the instance's events: %w", err)
	}
	return evs, nil
}
