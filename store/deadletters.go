package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// DeadLetter is a stream entry the processor gave up on, with why. Body is
// the entry's raw body byte for byte; Fields its other fields, printable.
type DeadLetter struct {
	ID          int64             `json:"id"`
	Stream      string            `json:"stream"`
	EntryID     string            `json:"entry_id"`
	EventID     string            `json:"event_id,omitempty"`
	Reason      string            `json:"reason"`
	Deliveries  int64             `json:"deliveries"`
	Fields      map[string]string `json:"fields"`
	Body        []byte            `json:"-"`
	DeadAt      time.Time         `json:"dead_at"`
	ReplayedAt  *time.Time        `json:"replayed_at,omitempty"`
	DiscardedAt *time.Time        `json:"discarded_at,omitempty"`
}

// State is "open", "replayed" or "discarded".
func (d *DeadLetter) State() string {
	switch {
	case d.ReplayedAt != nil:
		return "replayed"
	case d.DiscardedAt != nil:
		return "discarded"
	}
	return "open"
}

// InsertDeadLetters records dls in tx. A letter for a stream entry that is
// already recorded (the same entry dead-lettered again after a crash before
// its acknowledgement) is skipped. It returns the letters it added, with
// their ids.
func InsertDeadLetters(ctx context.Context, tx pgx.Tx, dls []DeadLetter) ([]DeadLetter, error) {
	if len(dls) == 0 {
		return nil, nil
	}
	n := len(dls)
	streams, entries, events, reasons, fields := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	deliveries := make([]int64, n)
	bodies := make([][]byte, n)
	for i, d := range dls {
		f := make(map[string]string, len(d.Fields))
		for k, v := range d.Fields {
			f[Printable(k)] = Printable(v)
		}
		js, err := json.Marshal(f)
		if err != nil {
			return nil, fmt.Errorf("encode dead letter fields: %w", err)
		}
		streams[i], entries[i], events[i], reasons[i], fields[i] = d.Stream, d.EntryID, Printable(d.EventID), Printable(d.Reason), string(js)
		deliveries[i], bodies[i] = d.Deliveries, d.Body
	}
	rows, err := tx.Query(ctx, `
INSERT INTO dead_letters (stream, entry_id, event_id, reason, deliveries, fields, body)
SELECT s, e, NULLIF(ev, ''), r, d, f::jsonb, b
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int[], $6::text[], $7::bytea[]) AS u(s, e, ev, r, d, f, b)
ON CONFLICT (stream, entry_id) DO NOTHING
RETURNING id, stream, entry_id`, streams, entries, events, reasons, deliveries, fields, bodies)
	if err != nil {
		return nil, err
	}
	type added struct {
		id            int64
		stream, entry string
	}
	got, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (added, error) {
		var a added
		err := r.Scan(&a.id, &a.stream, &a.entry)
		return a, err
	})
	if err != nil {
		return nil, err
	}
	ids := make(map[[2]string]int64, len(got))
	for _, a := range got {
		ids[[2]string{a.stream, a.entry}] = a.id
	}
	var out []DeadLetter
	for _, d := range dls {
		if id, ok := ids[[2]string{d.Stream, d.EntryID}]; ok {
			d.ID = id
			delete(ids, [2]string{d.Stream, d.EntryID})
			out = append(out, d)
		}
	}
	return out, nil
}

const deadLetterColumns = `id, stream, entry_id, coalesce(event_id, ''), reason, deliveries, fields, coalesce(body, ''::bytea),
dead_at, replayed_at, discarded_at`

func scanDeadLetter(r pgx.CollectableRow) (DeadLetter, error) {
	var d DeadLetter
	err := r.Scan(&d.ID, &d.Stream, &d.EntryID, &d.EventID, &d.Reason, &d.Deliveries, &d.Fields, &d.Body,
		&d.DeadAt, &d.ReplayedAt, &d.DiscardedAt)
	return d, err
}

// ListDeadLetters returns dead letters newest first; state is "open",
// "replayed", "discarded" or "" for all.
func ListDeadLetters(ctx context.Context, q Querier, state string, limit int) ([]DeadLetter, error) {
	return ListDeadLettersBefore(ctx, q, state, 0, limit)
}

// ListDeadLettersBefore is ListDeadLetters from the letter before id on
// (0: from the newest): a keyset page, so walking pages by the last id of
// each repeats and skips nothing.
func ListDeadLettersBefore(ctx context.Context, q Querier, state string, before int64, limit int) ([]DeadLetter, error) {
	where := map[string]string{
		"":          "true",
		"open":      "replayed_at IS NULL AND discarded_at IS NULL",
		"replayed":  "replayed_at IS NOT NULL",
		"discarded": "discarded_at IS NOT NULL",
	}[state]
	if where == "" {
		return nil, fmt.Errorf("unknown dead letter state %q; use open, replayed, discarded or all", state)
	}
	rows, err := q.Query(ctx, `SELECT `+deadLetterColumns+` FROM dead_letters WHERE (`+where+`) AND ($2::bigint = 0 OR id < $2::bigint) ORDER BY id DESC LIMIT $1`, limit, before)
	if err != nil {
		return nil, fmt.Errorf("list dead letters: %w", err)
	}
	return pgx.CollectRows(rows, scanDeadLetter)
}

// EachOpenDeadLetterID pages through the ids of the dead letters open when it
// starts, oldest first: fn gets at most page ids at a time, each page one
// keyset query on the primary key, so any number of letters is walked in
// bounded memory (ListDeadLetters reads whole rows, bodies included). Letters
// recorded after it started are left out: a requeued event that fails again
// is not requeued again by the same walk. An error from fn stops the walk and
// is returned.
func EachOpenDeadLetterID(ctx context.Context, q Querier, page int, fn func(ids []int64) error) error {
	if page <= 0 {
		return fmt.Errorf("dead letter page size %d must be positive", page)
	}
	var upTo int64
	if err := q.QueryRow(ctx, `SELECT coalesce(max(id), 0) FROM dead_letters`).Scan(&upTo); err != nil {
		return fmt.Errorf("find the newest dead letter: %w", err)
	}
	for after := int64(0); ; {
		rows, err := q.Query(ctx, `SELECT id FROM dead_letters
WHERE id > $1 AND id <= $2 AND replayed_at IS NULL AND discarded_at IS NULL ORDER BY id LIMIT $3`, after, upTo, page)
		if err != nil {
			return fmt.Errorf("list open dead letter ids after %d: %w", after, err)
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return fmt.Errorf("list open dead letter ids after %d: %w", after, err)
		}
		if len(ids) == 0 {
			return nil
		}
		if err := fn(ids); err != nil {
			return err
		}
		if len(ids) < page {
			return nil
		}
		after = ids[len(ids)-1]
	}
}

// ErrNoDeadLetter is returned for an id that does not exist.
var ErrNoDeadLetter = errors.New("no such dead letter")

// ErrDeadLetterNotOpen is returned for an action on a dead letter that is
// no longer open (requeued or discarded already).
var ErrDeadLetterNotOpen = errors.New("dead letter not open")

// GetDeadLetter returns one dead letter.
func GetDeadLetter(ctx context.Context, q Querier, id int64) (DeadLetter, error) {
	rows, err := q.Query(ctx, `SELECT `+deadLetterColumns+` FROM dead_letters WHERE id = $1`, id)
	if err != nil {
		return DeadLetter{}, fmt.Errorf("read dead letter %d: %w", id, err)
	}
	d, err := pgx.CollectExactlyOneRow(rows, scanDeadLetter)
	if errors.Is(err, pgx.ErrNoRows) {
		return d, fmt.Errorf("dead letter %d: %w", id, ErrNoDeadLetter)
	}
	return d, err
}

// MarkDeadLetter sets a dead letter's replayed_at or discarded_at (state
// "replayed" or "discarded"). Only an open letter changes; it reports
// whether this one did.
func MarkDeadLetter(ctx context.Context, q Querier, id int64, state string) (bool, error) {
	col := map[string]string{"replayed": "replayed_at", "discarded": "discarded_at"}[state]
	if col == "" {
		return false, fmt.Errorf("cannot mark a dead letter %q", state)
	}
	tag, err := q.Exec(ctx, `UPDATE dead_letters SET `+col+` = now() WHERE id = $1 AND replayed_at IS NULL AND discarded_at IS NULL`, id)
	if err != nil {
		return false, fmt.Errorf("mark dead letter %d %s: %w", id, state, err)
	}
	return tag.RowsAffected() == 1, nil
}

// OpenDeadLetters counts the dead letters neither replayed nor discarded.
func OpenDeadLetters(ctx context.Context, q Querier) (int64, error) {
	var n int64
	err := q.QueryRow(ctx, `SELECT count(*) FROM dead_letters WHERE replayed_at IS NULL AND discarded_at IS NULL`).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count open dead letters: %w", err)
	}
	return n, nil
}
