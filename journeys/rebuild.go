package journeys

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hookstream/hookstream/store"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// DefaultRebuildBatch is how many instances a rebuild derives and writes at
// a time by default.
const DefaultRebuildBatch = 10_000

// rebuildEventPage is how many events a rebuild reads at a time.
const rebuildEventPage = 2_000

// RebuildOptions narrow and tune a Rebuild.
type RebuildOptions struct {
	// Subject, when set, rebuilds only that subject's instance.
	Subject string
	// Batch is how many instances are derived and written per statement
	// (default DefaultRebuildBatch). It bounds what a rebuild holds in
	// memory, together with one page of events, however many instances
	// the journey has.
	Batch int
}

// Rebuild refolds journey: it recomputes the journey's instances (only
// opts.Subject's, when given) and their funnel aggregates from the events
// table, in tx, discarding what folding derived. It is the repair after a
// definition change, a bug, or events recovered by reconciliation, and
// what "hookstream refold --journey" runs; it returns the number of
// instances written. Instances are derived from their events alone, so a
// rebuild of what was folded changes nothing. Abandonment is not judged
// again: an instance stays abandoned when its deadline did not move, and
// the abandoner judges the others on the watermark.
//
// It works subject by subject, in batches of opts.Batch instances: events
// are read ordered by subject, and each batch of instances is derived,
// written and added to the funnel before the next is read.
func (f *Fold) Rebuild(ctx context.Context, tx pgx.Tx, journey string, opts RebuildOptions) (int, error) {
	r, err := f.rebuild(ctx, tx, journey, opts)
	return r.instances, err
}

// RebuildEach rebuilds journey name (every journey of the fold's set when
// name is "") from the stored events, in one transaction per journey, and
// calls done after each one commits with the instances written and the time
// it took: "hookstream refold --journey".
func (f *Fold) RebuildEach(ctx context.Context, db *pgxpool.Pool, name string, opts RebuildOptions, done func(journey string, instances int, took time.Duration)) error {
	if _, ok := f.set.Get(name); name != "" && !ok {
		return fmt.Errorf("no journey %q", name)
	}
	for _, d := range f.set.Journeys {
		if name != "" && d.Name != name {
			continue
		}
		var n int
		start := time.Now()
		err := pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
			var err error
			n, err = f.Rebuild(ctx, tx, d.Name, opts)
			return err
		})
		if err != nil {
			return fmt.Errorf("refold journey %s: %w", d.Name, err)
		}
		done(d.Name, n, time.Since(start))
	}
	return nil
}

// rebuildRun is one rebuild in progress.
type rebuildRun struct {
	d    *Definition
	tx   pgx.Tx
	only string // RebuildOptions.Subject

	batch  []rebuilding        // derived from events, not yet written (one subject after another)
	lo     *string             // the last subject of the previous batch (nil: none yet)
	funnel map[FunnelKey]int64 // the batch's funnel contributions

	instances, batches, maxHeld int // what it did, for tests
}

// rebuilding is one instance's reaches, merged from its events so far.
type rebuilding struct {
	subject string
	steps   []Reach
}

func (f *Fold) rebuild(ctx context.Context, tx pgx.Tx, journey string, opts RebuildOptions) (*rebuildRun, error) {
	r := &rebuildRun{tx: tx, only: opts.Subject, funnel: map[FunnelKey]int64{}}
	d, ok := f.set.Get(journey)
	if !ok {
		return r, fmt.Errorf("no journey %q", journey)
	}
	r.d = d
	size := opts.Batch
	if size <= 0 {
		size = DefaultRebuildBatch
	}
	// Exclusively: folds in flight commit first (so the events read below
	// include theirs), new ones and the abandoner wait.
	if err := store.Lock(ctx, tx, store.JourneysLock, true); err != nil {
		return r, err
	}
	// Counted, so processors empty their caches of the instances this
	// rewrites (it may remove reaches, which nothing else does).
	if err := bumpEpoch(ctx, tx); err != nil {
		return r, err
	}
	if opts.Subject == "" {
		if err := deleteFunnel(ctx, tx, journey); err != nil {
			return r, err
		}
	} else if old, ok, err := getRow(ctx, tx, journey, opts.Subject); err != nil {
		return r, err
	} else if ok {
		oldSteps, oldSt := rowState(d, &old)
		Contribution(d, oldSteps, oldSt, -1, r.funnel)
	}
	var topics []string
	for _, s := range d.Steps {
		topics = append(topics, s.Topics...)
	}
	err := store.EventsBySubject(ctx, tx, topics, subjectColumns[d.Subject], opts.Subject, rebuildEventPage, func(e *store.Event) error {
		subject := d.subjectOf(e)
		if subject == "" {
			return nil
		}
		if n := len(r.batch); n == 0 || r.batch[n-1].subject != subject {
			// A new subject: the last one has all its events.
			if n >= size {
				if err := r.flush(ctx, false); err != nil {
					return err
				}
			}
			r.batch = append(r.batch, rebuilding{subject: subject, steps: make([]Reach, len(d.Steps))})
		}
		d.mergeEvent(r.batch[len(r.batch)-1].steps, e)
		return nil
	})
	if err != nil {
		return r, err
	}
	return r, r.flush(ctx, true)
}

// flush writes the batch: it deletes the stored instances of the subjects
// from the previous batch's last (exclusive) to this batch's last
// (inclusive; the final batch: to the end), which takes away those that no
// event derives any more, and writes the batch's instances and funnel
// contributions.
func (r *rebuildRun) flush(ctx context.Context, final bool) error {
	d := r.d
	span := subjectSpan{lo: r.lo, only: r.only}
	if !final {
		hi := r.batch[len(r.batch)-1].subject
		span.hi = &hi
	}
	keep := make([]string, len(r.batch))
	for i := range r.batch {
		keep[i] = r.batch[i].subject
	}
	abandoned, err := deleteSpan(ctx, r.tx, d.Name, span, keep)
	if err != nil {
		return err
	}
	rows := make([]Row, 0, len(r.batch))
	for _, in := range r.batch {
		st := d.Derive(in.steps, false)
		var abandonedAt *time.Time
		// Still abandoned when nothing moved: the same deadline, still open.
		if old, ok := abandoned[in.subject]; ok && st.Status == InProgress && st.Deadline != nil && st.Deadline.Equal(old[0]) {
			st = d.Derive(in.steps, true)
			at := old[1]
			abandonedAt = &at
		}
		Contribution(d, in.steps, st, +1, r.funnel)
		rows = append(rows, rowOf(d, in.subject, in.steps, st, abandonedAt))
	}
	slices.SortFunc(rows, func(a, b Row) int { return strings.Compare(a.Subject, b.Subject) })
	if err := upsertRows(ctx, r.tx, rows); err != nil {
		return err
	}
	if err := addFunnel(ctx, r.tx, funnelRows(r.funnel)); err != nil {
		return err
	}
	clear(r.funnel)
	r.instances += len(rows)
	r.batches++
	r.maxHeld = max(r.maxHeld, len(r.batch))
	r.lo = span.hi
	r.batch = r.batch[:0]
	return nil
}

// Refold rebuilds every journey that the topics of events created in
// [from, to) advance ("hookstream refold --from"); idempotent.
func (f *Fold) Refold(ctx context.Context, tx pgx.Tx, from, to time.Time, topics []string) error {
	seen, err := (store.EventRange{From: from, To: to, Topics: topics}).DistinctTopics(ctx, tx)
	if err != nil {
		return err
	}
	todo := map[string]bool{}
	for _, t := range seen {
		for _, d := range f.set.ForTopic(t) {
			todo[d.Name] = true
		}
	}
	for _, d := range f.set.Journeys {
		if todo[d.Name] {
			if _, err := f.Rebuild(ctx, tx, d.Name, RebuildOptions{}); err != nil {
				return err
			}
		}
	}
	return nil
}
