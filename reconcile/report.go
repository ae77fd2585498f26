package reconcile

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/hookstream/hookstream/store"
	"github.com/jackc/pgx/v5"
)

// ErrNotFound is a run id that does not exist.
var ErrNotFound = errors.New("not found")

const runColumns = `id, started_at, finished_at, status, since, until, high_water, pages, api_calls, compared, missing,
	recovered, in_flight, dead_lettered,
	(SELECT count(*) FROM reconcile_gaps g WHERE g.run_id = reconcile_runs.id AND g.outcome = 'failed'),
	errors, error, holder, audit, repair`

func scanRun(row pgx.Row) (Run, error) {
	var (
		r             Run
		finished, hw  *time.Time
		audit, repair []byte
	)
	if err := row.Scan(&r.ID, &r.StartedAt, &finished, &r.Status, &r.Since, &r.Until, &hw, &r.Pages, &r.APICalls, &r.Compared,
		&r.Missing, &r.Recovered, &r.InFlight, &r.DeadLettered, &r.Unrecovered, &r.Errors, &r.Error, &r.Holder, &audit, &repair); err != nil {
		return r, err
	}
	r.StartedAt, r.Since, r.Until = r.StartedAt.UTC(), r.Since.UTC(), r.Until.UTC()
	if finished != nil {
		r.FinishedAt = finished.UTC()
		r.DurationMS = float64(r.FinishedAt.Sub(r.StartedAt).Microseconds()) / 1000
	}
	if hw != nil {
		r.HighWater = hw.UTC()
	}
	if audit != nil {
		r.Audit = &Audit{}
		if err := json.Unmarshal(audit, r.Audit); err != nil {
			return r, fmt.Errorf("run %d: audit: %w", r.ID, err)
		}
	}
	if repair != nil {
		r.Repair = &Repair{}
		if err := json.Unmarshal(repair, r.Repair); err != nil {
			return r, fmt.Errorf("run %d: repair: %w", r.ID, err)
		}
	}
	return r, nil
}

// Runs lists the latest limit runs, newest first.
func Runs(ctx context.Context, q store.Querier, limit int) ([]Run, error) {
	rows, err := q.Query(ctx, `SELECT `+runColumns+` FROM reconcile_runs ORDER BY id DESC LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("list reconciliation runs: %w", err)
	}
	defer rows.Close()
	out := []Run{}
	for rows.Next() {
		r, err := scanRun(rows)
		if err != nil {
			return nil, fmt.Errorf("list reconciliation runs: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// GetRun reads one run.
func GetRun(ctx context.Context, q store.Querier, id int64) (Run, error) {
	r, err := scanRun(q.QueryRow(ctx, `SELECT `+runColumns+` FROM reconcile_runs WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return r, fmt.Errorf("reconciliation run %d: %w", id, ErrNotFound)
	}
	return r, err
}

// ReportRow is one topic on one day (UTC) of the comparison.
type ReportRow struct {
	Day   string `json:"day"` // YYYY-MM-DD
	Topic string `json:"topic"`
	// AtDwolla is every event Dwolla has that hookstream knows of: those
	// stored, and those found missing and not stored since.
	AtDwolla int64 `json:"at_dwolla"`
	Stored   int64 `json:"stored"`
	// ByWebhook and ByReconcile split Stored by how the events arrived.
	ByWebhook   int64 `json:"by_webhook"`
	ByReconcile int64 `json:"by_reconcile"`
	// Missing are the events reconciliation found missing (once each,
	// however many runs saw them), not counting those the receiver had
	// already taken (in flight to the processors then); Recovered those of
	// them stored since;
	// Unrecovered those still not stored.
	Missing     int64 `json:"missing"`
	Recovered   int64 `json:"recovered"`
	Unrecovered int64 `json:"unrecovered"`
}

// Report is the comparison over a range of days.
type Report struct {
	From  string      `json:"from"`
	To    string      `json:"to"` // inclusive
	Rows  []ReportRow `json:"rows"`
	Total ReportRow   `json:"total"`
	// Covered is the event time the complete runs compared within the
	// range: days outside it were never compared (their Missing is 0 for
	// want of looking, not proof).
	Covered []Span `json:"covered"`
}

// Span is a range of event time.
type Span struct {
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
}

// MakeReport compares, per topic and UTC day in [from, to] (days), what
// Dwolla has with what hookstream stored, from the events table and the
// gaps reconciliation found.
func MakeReport(ctx context.Context, q store.Querier, from, to time.Time) (Report, error) {
	from, to = from.UTC().Truncate(24*time.Hour), to.UTC().Truncate(24*time.Hour)
	if to.Before(from) {
		return Report{}, fmt.Errorf("report: to %s is before from %s", to.Format(time.DateOnly), from.Format(time.DateOnly))
	}
	end := to.Add(24 * time.Hour)
	rep := Report{From: from.Format(time.DateOnly), To: to.Format(time.DateOnly), Rows: []ReportRow{}, Covered: []Span{}}
	type key struct{ day, topic string }
	rows := map[key]*ReportRow{}
	row := func(day time.Time, topic string) *ReportRow {
		k := key{day.UTC().Format(time.DateOnly), topic}
		if rows[k] == nil {
			rows[k] = &ReportRow{Day: k.day, Topic: topic}
		}
		return rows[k]
	}
	stored, err := q.Query(ctx, `SELECT date_trunc('day', created AT TIME ZONE 'UTC'), topic, source = 'reconcile', count(*)
		FROM events WHERE created >= $1 AND created < $2 GROUP BY 1, 2, 3`, from, end)
	if err != nil {
		return rep, fmt.Errorf("report: count the stored events: %w", err)
	}
	for stored.Next() {
		var (
			day   time.Time
			topic string
			rec   bool
			n     int64
		)
		if err := stored.Scan(&day, &topic, &rec, &n); err != nil {
			stored.Close()
			return rep, fmt.Errorf("report: count the stored events: %w", err)
		}
		r := row(day, topic)
		r.Stored += n
		if rec {
			r.ByReconcile += n
		} else {
			r.ByWebhook += n
		}
	}
	stored.Close()
	if err := stored.Err(); err != nil {
		return rep, err
	}
	gaps, err := q.Query(ctx, `SELECT date_trunc('day', g.created AT TIME ZONE 'UTC'), g.topic,
			count(*), count(*) FILTER (WHERE EXISTS (SELECT 1 FROM events e WHERE e.id = g.event_id))
		FROM (SELECT DISTINCT ON (event_id) event_id, topic, created FROM reconcile_gaps
		      WHERE created >= $1 AND created < $2 AND outcome NOT IN ('dry_run', 'in_flight') ORDER BY event_id) g
		GROUP BY 1, 2`, from, end)
	if err != nil {
		return rep, fmt.Errorf("report: count the gaps: %w", err)
	}
	for gaps.Next() {
		var (
			day              time.Time
			topic            string
			missing, storedN int64
		)
		if err := gaps.Scan(&day, &topic, &missing, &storedN); err != nil {
			gaps.Close()
			return rep, fmt.Errorf("report: count the gaps: %w", err)
		}
		r := row(day, topic)
		r.Missing, r.Recovered, r.Unrecovered = missing, storedN, missing-storedN
	}
	gaps.Close()
	if err := gaps.Err(); err != nil {
		return rep, err
	}
	for _, r := range rows {
		r.AtDwolla = r.Stored + r.Unrecovered
		rep.Rows = append(rep.Rows, *r)
		t := &rep.Total
		t.AtDwolla += r.AtDwolla
		t.Stored += r.Stored
		t.ByWebhook += r.ByWebhook
		t.ByReconcile += r.ByReconcile
		t.Missing += r.Missing
		t.Recovered += r.Recovered
		t.Unrecovered += r.Unrecovered
	}
	sort.Slice(rep.Rows, func(i, j int) bool {
		if rep.Rows[i].Day != rep.Rows[j].Day {
			return rep.Rows[i].Day < rep.Rows[j].Day
		}
		return rep.Rows[i].Topic < rep.Rows[j].Topic
	})
	rep.Total.Day, rep.Total.Topic = "", "all"
	cov, err := q.Query(ctx, `SELECT greatest(since, $1), least(until, $2) FROM reconcile_runs
		WHERE status = 'complete' AND since < $2 AND until > $1 ORDER BY since`, from, end)
	if err != nil {
		return rep, fmt.Errorf("report: read the runs' windows: %w", err)
	}
	defer cov.Close()
	for cov.Next() {
		var s Span
		if err := cov.Scan(&s.From, &s.To); err != nil {
			return rep, err
		}
		s.From, s.To = s.From.UTC(), s.To.UTC()
		if n := len(rep.Covered); n > 0 && !s.From.After(rep.Covered[n-1].To) {
			if s.To.After(rep.Covered[n-1].To) {
				rep.Covered[n-1].To = s.To
			}
			continue
		}
		rep.Covered = append(rep.Covered, s)
	}
	return rep, cov.Err()
}
