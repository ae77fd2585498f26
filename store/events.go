package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Event is one stored Dwolla event as the processor derived it from a stream
// entry: the envelope's routing fields, what the topic catalogue says about
// the topic, when it was received, and the raw body. It is what folding
// steps (windows, journeys) receive.
type Event struct {
	ID            string // lower-cased Dwolla event id
	Topic         string
	Family        string // topic family from the catalogue; "" for an unknown topic
	Outcome       string // "success" | "failure" | ""
	Terminal      bool
	ResourceType  string // customers, transfers, funding-sources, ...
	ResourceID    string // lower-cased
	CustomerID    string // lower-cased, "" when the event has no customer link
	CorrelationID string
	Created       time.Time // event time
	Received      time.Time // when the receiver got it
	Source        string    // webhook | reconcile | replay
	Body          []byte    // raw signed body

	Partition int    // partition stream it came through
	EntryID   string // its stream entry id
}

// Lag is the delivery lag: received minus created.
func (e *Event) Lag() time.Duration { return e.Received.Sub(e.Created) }

// insertEvents inserts a batch in one statement: the columns travel as arrays
// and unnest turns them back into rows, so a batch of any size is one round
// trip with one parse. NULLIF keeps absent values NULL.
const insertEvents = `
INSERT INTO events (id, topic, family, outcome, terminal, resource_type, resource_id, customer_id,
                    correlation_id, created, received_at, source, body)
SELECT id, topic, NULLIF(family, ''), NULLIF(outcome, ''), terminal, NULLIF(rtype, ''), NULLIF(rid, ''),
       NULLIF(cid, ''), NULLIF(corr, ''), created, received, source, body
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bool[], $6::text[], $7::text[], $8::text[],
            $9::text[], $10::timestamptz[], $11::timestamptz[], $12::text[], $13::bytea[])
     AS u(id, topic, family, outcome, terminal, rtype, rid, cid, corr, created, received, source, body)
ON CONFLICT (id) DO NOTHING
RETURNING id`

// InsertEvents stores evs in tx, skipping ids already stored (the exact,
// unbounded dedup), and reports for each event whether this call inserted
// it. An id repeated within evs is inserted once: its first occurrence is
// the new one.
func InsertEvents(ctx context.Context, tx pgx.Tx, evs []Event) ([]bool, error) {
	n := len(evs)
	var (
		ids, topics, families, outcomes = make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		terminal                        = make([]bool, n)
		rtypes, rids, cids, corrs       = make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		created, received               = make([]time.Time, n), make([]time.Time, n)
		sources                         = make([]string, n)
		bodies                          = make([][]byte, n)
	)
	for i := range evs {
		e := &evs[i]
		ids[i], topics[i], families[i], outcomes[i], terminal[i] = e.ID, e.Topic, e.Family, e.Outcome, e.Terminal
		rtypes[i], rids[i], cids[i], corrs[i] = e.ResourceType, e.ResourceID, e.CustomerID, e.CorrelationID
		created[i], received[i], sources[i], bodies[i] = e.Created, e.Received, e.Source, e.Body
	}
	rows, err := tx.Query(ctx, insertEvents, ids, topics, families, outcomes, terminal, rtypes, rids, cids, corrs,
		created, received, sources, bodies)
	if err != nil {
		return nil, err
	}
	inserted := make(map[string]struct{}, n)
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, err
		}
		inserted[id] = struct{}{}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	out := make([]bool, n)
	for i := range evs {
		if _, ok := inserted[evs[i].ID]; ok {
			out[i] = true
			delete(inserted, evs[i].ID) // a repeat within the batch is not new
		}
	}
	return out, nil
}

// IsDataError reports whether err is PostgreSQL rejecting the data itself
// (SQLSTATE class 22, data exception, or 23, integrity constraint
// violation): retrying the same rows cannot succeed, so the rows that cause
// it are poison. Everything else (connection loss, timeouts, serialization
// failures, a missing table) is about the database, not the data.
func IsDataError(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return false
	}
	return strings.HasPrefix(pgErr.Code, "22") || strings.HasPrefix(pgErr.Code, "23")
}

// Printable makes s storable in a text or jsonb column: invalid UTF-8 and
// NUL (which PostgreSQL text cannot hold) become U+FFFD.
func Printable(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if strings.IndexByte(s, 0) >= 0 {
		s = strings.ReplaceAll(s, "\x00", "\uFFFD")
	}
	return s
}

// Querier is what both a pool and a transaction offer.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// eventColumns are the columns eachEvent reads: everything but the body.
const eventColumns = `id, topic, coalesce(family, ''), coalesce(outcome, ''), terminal, coalesce(resource_type, ''),
       coalesce(resource_id, ''), coalesce(customer_id, ''), coalesce(correlation_id, ''), created, received_at, source`

// eachEvent streams the events matching where (with args) to fn, without
// their bodies; fn's Event is reused between calls.
func eachEvent(ctx context.Context, q Querier, where string, args []any, fn func(*Event) error) error {
	rows, err := q.Query(ctx, `SELECT `+eventColumns+` FROM events WHERE `+where, args...)
	if err != nil {
		return fmt.Errorf("read events: %w", err)
	}
	defer rows.Close()
	var e Event
	for rows.Next() {
		if err := rows.Scan(&e.ID, &e.Topic, &e.Family, &e.Outcome, &e.Terminal, &e.ResourceType, &e.ResourceID,
			&e.CustomerID, &e.CorrelationID, &e.Created, &e.Received, &e.Source); err != nil {
			return fmt.Errorf("read event: %w", err)
		}
		if err := fn(&e); err != nil {
			return err
		}
	}
	return rows.Err()
}

// EachEvent calls fn with every stored event whose column ("created" or
// "received_at") is in [from, to), streaming them (a range may hold
// millions).
func EachEvent(ctx context.Context, q Querier, column string, from, to time.Time, fn func(*Event) error) error {
	if column != "created" && column != "received_at" {
		return fmt.Errorf("EachEvent: unknown column %q", column)
	}
	return eachEvent(ctx, q, column+` >= $1 AND `+column+` < $2`, []any{from, to}, fn)
}

// EventsBySubject calls fn with every stored event of topics that has a
// subject in column (only subject's, when given), grouped by subject: all
// of one subject's events come one after another. It reads through a
// cursor, page events at a time, and calls fn between reads, so fn may use
// tx (to write a batch) and memory stays bounded however many events there
// are. fn's Event carries the routing fields and the event time only, and
// is reused between calls.
// Journey refolds read this way: a subject's instance is derived from all of
// its events at once.
func EventsBySubject(ctx context.Context, tx pgx.Tx, topics []string, column, subject string, page int, fn func(*Event) error) error {
	switch column {
	case "customer_id", "resource_id", "correlation_id":
	default:
		return fmt.Errorf("events by subject: unknown column %q", column)
	}
	where, args := `topic = ANY($1) AND `+column+` IS NOT NULL`, []any{topics}
	if subject != "" {
		where += ` AND ` + column + ` = $2`
		args = append(args, subject)
	}
	const cursor = `events_by_subject`
	if _, err := tx.Exec(ctx, `DECLARE `+cursor+` NO SCROLL CURSOR FOR
SELECT id, topic, coalesce(customer_id, ''), coalesce(resource_id, ''), coalesce(correlation_id, ''), created
FROM events WHERE `+where+` ORDER BY `+column, args...); err != nil {
		return fmt.Errorf("read events by subject: %w", err)
	}
	fetch := `FETCH FORWARD ` + strconv.Itoa(page) + ` FROM ` + cursor
	buf := make([]Event, page)
	for {
		rows, err := tx.Query(ctx, fetch)
		if err != nil {
			return fmt.Errorf("read events by subject: %w", err)
		}
		n := 0
		for rows.Next() {
			e := &buf[n]
			if err := rows.Scan(&e.ID, &e.Topic, &e.CustomerID, &e.ResourceID, &e.CorrelationID, &e.Created); err != nil {
				rows.Close()
				return fmt.Errorf("read events by subject: %w", err)
			}
			n++
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("read events by subject: %w", err)
		}
		for i := range n {
			if err := fn(&buf[i]); err != nil {
				return err
			}
		}
		if n < page {
			break
		}
	}
	if _, err := tx.Exec(ctx, `CLOSE `+cursor); err != nil {
		return fmt.Errorf("read events by subject: %w", err)
	}
	return nil
}

// EventsByID calls fn with the stored events ids name, oldest first, without
// their bodies.
func EventsByID(ctx context.Context, q Querier, ids []string, fn func(*Event) error) error {
	return eachEvent(ctx, q, `id = ANY($1) ORDER BY created, id`, []any{ids}, fn)
}

// EventRange selects stored events by event time and topic: the one filter
// that "hookstream refold" and every refolding step share.
type EventRange struct {
	From, To time.Time // created in [From, To)
	Topics   []string  // empty: every topic
}

// rangeWhere is EventRange's condition on $1 (From), $2 (To) and $3 (Topics).
const rangeWhere = `created >= $1 AND created < $2 AND (coalesce(cardinality($3::text[]), 0) = 0 OR topic = ANY($3))`

func (r EventRange) args() []any { return []any{r.From, r.To, r.Topics} }

// Count is the number of stored events in the range.
func (r EventRange) Count(ctx context.Context, q Querier) (int64, error) {
	var n int64
	if err := q.QueryRow(ctx, `SELECT count(*) FROM events WHERE `+rangeWhere, r.args()...).Scan(&n); err != nil {
		return 0, fmt.Errorf("count events in range: %w", err)
	}
	return n, nil
}

// DistinctTopics are the topics of the stored events in the range.
func (r EventRange) DistinctTopics(ctx context.Context, q Querier) ([]string, error) {
	rows, err := q.Query(ctx, `SELECT DISTINCT topic FROM events WHERE `+rangeWhere, r.args()...)
	if err != nil {
		return nil, fmt.Errorf("read the topics of events in range: %w", err)
	}
	topics, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("read the topics of events in range: %w", err)
	}
	return topics, nil
}

// Span is the earliest and latest column ("created" or "received_at") of
// the stored events in the range; ok is false when it holds none.
func (r EventRange) Span(ctx context.Context, q Querier, column string) (first, last time.Time, ok bool, err error) {
	if column != "created" && column != "received_at" {
		return first, last, false, fmt.Errorf("EventRange.Span: unknown column %q", column)
	}
	var lo, hi *time.Time
	if err := q.QueryRow(ctx, `SELECT min(`+column+`), max(`+column+`) FROM events WHERE `+rangeWhere, r.args()...).Scan(&lo, &hi); err != nil {
		return first, last, false, fmt.Errorf("read the span of events in range: %w", err)
	}
	if lo == nil {
		return first, last, false, nil
	}
	return *lo, *hi, true, nil
}

// EventKey is an event's place in the newest-first order of ListEvents:
// by event time, then id.
type EventKey struct {
	Created time.Time
	ID      string
}

// EventFilter selects the stored events ListEvents lists. Zero fields do
// not filter.
type EventFilter struct {
	Topics     []string
	CustomerID string
	ResourceID string
	From, To   time.Time // created in [From, To)
	After      *EventKey // continue after this event (the last of the previous page)
	Limit      int       // at most this many (default 100)
}

// ListEvents lists the stored events that match f, newest first (by event
// time, then id), without their bodies. Pages are keyset pages: passing the
// last event of one page as f.After gives the next, with no event repeated
// or skipped however many are stored meanwhile. Each filter uses its own
// index ((topic, created), (customer_id, created), (resource_id, created)
// or (created)), so a page costs the same at any depth.
func ListEvents(ctx context.Context, q Querier, f EventFilter) ([]Event, error) {
	var conds []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	switch len(f.Topics) {
	case 0:
	case 1:
		conds = append(conds, "topic = "+arg(f.Topics[0]))
	default:
		conds = append(conds, "topic = ANY("+arg(f.Topics)+"::text[])")
	}
	if f.CustomerID != "" {
		conds = append(conds, "customer_id = "+arg(f.CustomerID))
	}
	if f.ResourceID != "" {
		conds = append(conds, "resource_id = "+arg(f.ResourceID))
	}
	if !f.From.IsZero() {
		conds = append(conds, "created >= "+arg(f.From))
	}
	if !f.To.IsZero() {
		conds = append(conds, "created < "+arg(f.To))
	}
	if f.After != nil {
		// The first condition lets every (x, created) index bound its scan;
		// the second is the exact keyset.
		at := arg(f.After.Created)
		conds = append(conds, "created <= "+at, "(created, id) < ("+at+", "+arg(f.After.ID)+")")
	}
	where := "true"
	if len(conds) > 0 {
		where = strings.Join(conds, " AND ")
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	where += " ORDER BY created DESC, id DESC LIMIT " + arg(limit)
	var out []Event
	err := eachEvent(ctx, q, where, args, func(e *Event) error {
		out = append(out, *e)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list events: %w", err)
	}
	return out, nil
}

// StoredEvent is one stored event in full: Event with its body, and when
// PostgreSQL stored it.
type StoredEvent struct {
	Event
	StoredAt time.Time
}

// ErrNoEvent is what GetEvent's error matches (errors.Is) when no event
// has the id.
var ErrNoEvent = errors.New("no such event")

// GetEvent reads the stored event id (lower-cased, as stored), body included.
func GetEvent(ctx context.Context, q Querier, id string) (StoredEvent, error) {
	var s StoredEvent
	e := &s.Event
	err := q.QueryRow(ctx, `SELECT `+eventColumns+`, stored_at, body FROM events WHERE id = $1`, strings.ToLower(id)).Scan(
		&e.ID, &e.Topic, &e.Family, &e.Outcome, &e.Terminal, &e.ResourceType, &e.ResourceID,
		&e.CustomerID, &e.CorrelationID, &e.Created, &e.Received, &e.Source, &s.StoredAt, &e.Body)
	if errors.Is(err, pgx.ErrNoRows) {
		return s, fmt.Errorf("event %q: %w", id, ErrNoEvent)
	}
	if err != nil {
		return s, fmt.Errorf("read event %q: %w", id, err)
	}
	return s, nil
}

// EventBodies reads the bodies of the stored events ids name (those that
// exist), by id.
func EventBodies(ctx context.Context, q Querier, ids []string) (map[string][]byte, error) {
	rows, err := q.Query(ctx, `SELECT id, body FROM events WHERE id = ANY($1)`, ids)
	if err != nil {
		return nil, fmt.Errorf("read event bodies: %w", err)
	}
	defer rows.Close()
	out := make(map[string][]byte, len(ids))
	for rows.Next() {
		var id string
		var body []byte
		if err := rows.Scan(&id, &body); err != nil {
			return nil, fmt.Errorf("read event bodies: %w", err)
		}
		out[id] = body
	}
	return out, rows.Err()
}
