package journeys

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/hookstream/hookstream/store"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Counters of facts (an instance's conflict, its un-abandonment) are made
// once the transaction that recorded the fact commits (TxEnded): a batch
// that is rolled back and retried records it again, and must not count it
// twice. Counters of work (cache lookups, rows read, writes retried) count
// work as it is done, which a retried batch does again.
var (
	conflictsTotal   = metrics.NewCounter(`hookstream_journeys_conflicts_total`)
	unabandonedTotal = metrics.NewCounter(`hookstream_journeys_unabandoned_total`)
	cacheHitsTotal   = metrics.NewCounter(`hookstream_journeys_cache_hits_total`)
	cacheMissesTotal = metrics.NewCounter(`hookstream_journeys_cache_misses_total`)
	foldRetriesTotal = metrics.NewCounter(`hookstream_journeys_write_conflicts_total`)
	rowsReadTotal    = metrics.NewCounter(`hookstream_journeys_rows_read_total`)
	cacheResetsTotal = metrics.NewCounter(`hookstream_journeys_cache_resets_total`)
)

// DefaultCacheMB is the memory a Fold's cache of instances takes by
// default: an instance takes about 250 bytes (encoded row and key,
// measured over the simulator's instances), so some 500,000.
const DefaultCacheMB = 128

// Fold is the journeys folding step: the processor calls Fold in each
// batch's transaction with the newly inserted events only, and TxEnded
// once that transaction ended (process.TxWatcher). Whoever runs Fold must
// report every transaction's end that way: what the transaction wrote is
// cached, and what it recorded counted, only once it is known to have
// committed.
//
// It keeps the instances it read or wrote in a cache, as they were
// committed, so an instance that progresses again is not read back from
// PostgreSQL. A cached row may be stale; every write of an instance checks
// the version it was read at (the id of the transaction that last wrote
// it, never reused), so an instance another fold or the abandoner changed
// meanwhile is read again. A stale row can only lack reaches, never hold
// more, except after a rebuild, which can remove them (and which a fold
// trusting such a row would not notice, since it writes nothing): every
// rebuild counts itself in journey_epoch, and a fold that finds the count
// changed empties the cache first. The cache is also emptied whenever a
// transaction does not commit or cannot begin: PostgreSQL restarting or
// failing over ends transactions, and a commit it lost must not stay
// cached.
type Fold struct {
	set   *Set
	cache *instanceCache // nil: no cache

	mu      sync.Mutex
	era     era              // what the cache holds rows of
	pending map[pgx.Tx]txDid // what transactions in flight did: cached and counted once they commit

	dims dims // entry topics by number, for the funnel deltas

	hits, misses, resets, retried atomic.Int64
	conflicts, unabandoned        atomic.Int64
}

// era names the contents of the cache: the journey_epoch its rows belong to,
// and how many times it was emptied. A transaction may cache rows only if
// the era it started in is still the cache's: not after a rebuild, and not
// after a reset (a failed transaction) even if the epoch read afterwards is
// the same again.
type era struct {
	epoch, resets int64
}

// noCache is the era of a transaction that must not use the cache.
var noCache = era{epoch: -2}

// txDid is what one transaction did that only counts once it commits: the
// rows it wrote (and the era it wrote them in), and the facts it recorded.
type txDid struct {
	era                    era
	rows                   []*Row
	conflicts, unabandoned int
}

// NewFold returns the journeys folding step for set, caching instances in
// up to cacheMB megabytes (at least 32; 0: no cache).
func NewFold(set *Set, cacheMB int) *Fold {
	f := &Fold{set: set, pending: map[pgx.Tx]txDid{}, era: era{epoch: -1}}
	if cacheMB > 0 {
		f.cache = newInstanceCache(cacheMB << 20)
	}
	return f
}

// Name names the step in logs and errors.
func (f *Fold) Name() string { return "journeys" }

// Set is the fold's definitions.
func (f *Fold) Set() *Set { return f.set }

// TxEnded learns how tx ended. If it committed, what it recorded is counted
// and the rows it wrote go into the cache (unless a rebuild has been seen
// since it read the epoch); if not, both are forgotten and the cache is
// emptied (see Fold). A transaction whose commit outcome is unknown (the
// connection or the deadline went during COMMIT) is reported as not
// committed: if it did commit, its facts are recorded but not counted, so
// the counters may miss a fact, never count one twice.
func (f *Fold) TxEnded(tx pgx.Tx, committed bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	w := f.pending[tx]
	delete(f.pending, tx)
	if committed {
		conflictsTotal.Add(w.conflicts)
		unabandonedTotal.Add(w.unabandoned)
		f.conflicts.Add(int64(w.conflicts))
		f.unabandoned.Add(int64(w.unabandoned))
	}
	if f.cache == nil {
		return
	}
	if !committed {
		f.resetLocked(-1)
		return
	}
	if w.era != f.era || w.era == noCache {
		return
	}
	var buf []byte
	for _, r := range w.rows {
		buf = f.cache.put(r, buf)
	}
}

// resetLocked empties the cache, which then holds rows of epoch.
func (f *Fold) resetLocked(epoch int64) {
	f.cache.c.Reset()
	f.era = era{epoch: epoch, resets: f.era.resets + 1}
	f.resets.Add(1)
	cacheResetsTotal.Inc()
}

// checkEpoch reads journey_epoch (after the journeys lock, so no rebuild is
// in flight, and in a statement of its own, so its snapshot is taken after
// the lock was granted) and empties the cache if a rebuild happened since
// it was filled. It returns the era this transaction works in: noCache if
// the transaction is not READ COMMITTED, where the snapshot may predate the
// lock and a rebuild that committed while this fold waited for it.
func (f *Fold) checkEpoch(ctx context.Context, tx pgx.Tx) (era, error) {
	if f.cache == nil {
		return noCache, nil
	}
	e, readCommitted, err := readEpoch(ctx, tx)
	if err != nil {
		return noCache, err
	}
	if !readCommitted {
		return noCache, nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if e != f.era.epoch {
		f.resetLocked(e)
	}
	return f.era, nil
}

// FoldStats count what the fold's cache and optimistic writes did, and
// what its committed transactions recorded.
type FoldStats struct {
	CacheHits, CacheMisses int64 // instances taken from the cache, and looked up in PostgreSQL
	CacheResets            int64 // times the cache was emptied (a rebuild, a failed transaction)
	Retried                int64 // writes another writer's change made fail, folded again
	Conflicts              int64 // new conflicts recorded by transactions that committed
	Unabandoned            int64 // instances un-abandoned by transactions that committed
}

// Stats returns the fold's counts so far.
func (f *Fold) Stats() FoldStats {
	return FoldStats{CacheHits: f.hits.Load(), CacheMisses: f.misses.Load(), CacheResets: f.resets.Load(), Retried: f.retried.Load(),
		Conflicts: f.conflicts.Load(), Unabandoned: f.unabandoned.Load()}
}

type instKey struct{ journey, subject string }

// reaches collects, per instance, the earliest reach of each step in evs.
func (f *Fold) reaches(evs []store.Event) map[instKey][]Reach {
	acc := map[instKey][]Reach{}
	for i := range evs {
		e := &evs[i]
		for _, d := range f.set.ForTopic(e.Topic) {
			subj := d.subjectOf(e)
			if subj == "" {
				continue
			}
			k := instKey{d.Name, subj}
			r := acc[k]
			if r == nil {
				r = make([]Reach, len(d.Steps))
				acc[k] = r
			}
			d.mergeEvent(r, e)
		}
	}
	return acc
}

// subjectOf is the instance of d that e belongs to ("" for none).
func (d *Definition) subjectOf(e *store.Event) string {
	return SubjectOf(d.Subject, e.CustomerID, e.ResourceID, e.CorrelationID)
}

// mergeEvent merges e's reach into the steps (as long as d's) it reaches.
func (d *Definition) mergeEvent(steps []Reach, e *store.Event) {
	cand := Reach{At: e.Created.UTC(), Event: e.ID, Topic: e.Topic}
	for _, idx := range d.StepsFor(e.Topic) {
		if cand.Earlier(steps[idx]) {
			steps[idx] = cand
		}
	}
}

func compareKeys(a, b instKey) int {
	if c := strings.Compare(a.journey, b.journey); c != 0 {
		return c
	}
	return strings.Compare(a.subject, b.subject)
}

// Fold merges evs into their instances: each instance is taken from the
// cache or read (without locks), the reached steps merged (earliest reach
// wins), the state derived again, and the row written only if it is still
// at the version read (new ones: only if nobody created them meanwhile);
// the few that another fold, the abandoner or a rebuild changed in between
// are read again and folded again. A row lock per instance would be a
// write of its own. Progress on an abandoned instance un-abandons it; a new
// conflict is recorded.
func (f *Fold) Fold(ctx context.Context, tx pgx.Tx, evs []store.Event) error {
	acc := f.reaches(evs)
	if len(acc) == 0 {
		return nil
	}
	if err := store.Lock(ctx, tx, store.JourneysLock, false); err != nil {
		return err
	}
	txEra, err := f.checkEpoch(ctx, tx)
	if err != nil {
		return err
	}
	pending := make([]instKey, 0, len(acc))
	for k := range acc {
		pending = append(pending, k)
	}
	slices.SortFunc(pending, compareKeys) // concurrent folds write rows in one order
	var recs []Record
	funnel := make(map[fkey]int64, 64)
	var written []*Row
	for attempt := 0; len(pending) > 0; attempt++ {
		if attempt == 20 {
			return &pgconn.PgError{Code: "40001", Message: fmt.Sprintf("journey instances kept changing under the fold (%d left)", len(pending))}
		}
		current, err := f.current(ctx, tx, pending, attempt == 0 && txEra != noCache, txEra)
		if err != nil {
			return err
		}
		changes := make(map[instKey]*folded, len(pending))
		var updates, inserts []Row
		for _, k := range pending {
			d, _ := f.set.Get(k.journey)
			row := current[k]
			if row == nil {
				row = &Row{Journey: k.journey, Subject: k.subject}
			}
			c, ok := f.change(d, k, row, acc[k])
			if !ok {
				continue // nothing new (an earlier or equal reach was already known)
			}
			changes[k] = c
			if current[k] != nil {
				c.row.Version = row.Version
				updates = append(updates, c.row)
			} else {
				inserts = append(inserts, c.row)
			}
		}
		// New rows first: an insert waits only for another fold's insert
		// or update of the same key, an update only for another fold's
		// update (inserts in flight are invisible to it), so with both
		// statements in key order two folds' first attempts cannot wait
		// for each other. A later attempt updates after this attempt's
		// writes and can deadlock; PostgreSQL then aborts one transaction
		// and the processor retries its batch.
		inserted, err := insertNewRows(ctx, tx, inserts)
		if err != nil {
			return err
		}
		updated, err := updateRows(ctx, tx, updates)
		if err != nil {
			return err
		}
		var retry []instKey
		for _, k := range pending {
			c := changes[k]
			if c == nil {
				continue
			}
			v, ok := updated[k]
			if !ok {
				v, ok = inserted[k]
			}
			if !ok {
				retry = append(retry, k)
				if f.cache != nil {
					f.cache.del(k, nil)
				}
				continue
			}
			c.row.Version = v
			written = append(written, &c.row)
			for _, x := range c.funnel {
				funnel[x.k] += x.n
			}
			recs = append(recs, c.recs...)
		}
		foldRetriesTotal.Add(len(retry))
		f.retried.Add(int64(len(retry)))
		pending = retry
	}
	if err := addFunnel(ctx, tx, f.dims.rows(funnel)); err != nil {
		return err
	}
	if err := insertRecords(ctx, tx, recs); err != nil {
		return err
	}
	f.remember(tx, txEra, written, recs)
	return nil
}

// remember keeps what tx did until TxEnded says whether it committed: the
// rows it wrote (to cache, if it may) and the records it made (to count).
func (f *Fold) remember(tx pgx.Tx, txEra era, written []*Row, recs []Record) {
	cache := f.cache != nil && txEra != noCache && len(written) > 0
	if !cache && len(recs) == 0 {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	w := f.pending[tx]
	if cache {
		w.era, w.rows = txEra, append(w.rows, written...)
	}
	for _, r := range recs {
		switch r.Kind {
		case RecordUnabandoned:
			w.unabandoned++
		case RecordConflict:
			w.conflicts++
		}
	}
	f.pending[tx] = w
}

// current returns the committed rows of keys (nil where none): from the
// cache when useCache is true and it has them, the others read from
// PostgreSQL and cached (if the cache is still in txEra).
func (f *Fold) current(ctx context.Context, tx pgx.Tx, keys []instKey, useCache bool, txEra era) (map[instKey]*Row, error) {
	rows := make(map[instKey]*Row, len(keys))
	var js, ss []string
	var buf []byte
	hits := 0
	for _, k := range keys {
		if useCache && f.cache != nil {
			var r *Row
			var ok bool
			if r, buf, ok = f.cache.get(k, buf); ok {
				rows[k] = r
				hits++
				continue
			}
		}
		js, ss = append(js, k.journey), append(ss, k.subject)
	}
	if f.cache != nil {
		cacheHitsTotal.Add(hits)
		cacheMissesTotal.Add(len(js))
		f.hits.Add(int64(hits))
		f.misses.Add(int64(len(js)))
	}
	if len(js) == 0 {
		return rows, nil
	}
	found, err := readRows(ctx, tx, js, ss)
	if err != nil {
		return nil, err
	}
	rowsReadTotal.Add(len(found))
	for i := range found {
		rows[instKey{found[i].Journey, found[i].Subject}] = &found[i]
	}
	if f.cache != nil {
		// Committed rows: what this transaction does next does not change that.
		f.mu.Lock()
		if f.era == txEra && txEra != noCache {
			for i := range found {
				buf = f.cache.put(&found[i], buf)
			}
		}
		f.mu.Unlock()
	}
	return rows, nil
}

// folded is what folding new reaches into one instance changes.
type folded struct {
	row    Row
	funnel []fdelta
	recs   []Record
}

// change merges reaches into the instance row (as read) and returns the
// row to write, its funnel deltas and its records; ok is false when
// nothing changes.
func (f *Fold) change(d *Definition, k instKey, row *Row, reaches []Reach) (*folded, bool) {
	oldSteps, oldSt := rowState(d, row)
	steps := slices.Clone(oldSteps)
	if !Merge(&steps, reaches) {
		return nil, false
	}
	out := &folded{}
	out.funnel = f.dims.deltas(d, oldSteps, oldSt, -1, make([]fdelta, 0, 16))
	oldConflict := ""
	if row.Conflict != nil {
		oldConflict = *row.Conflict
	}
	st := d.Derive(steps, false)
	abandonedAt := row.AbandonedAt
	// Only progress clears an abandonment: a later step time, or an end.
	// An earlier reach of a known step, or a late old event, is no
	// progress: the instance stays abandoned.
	if abandonedAt != nil {
		if st.LastAt.After(oldSt.LastAt) || st.Status == Completed || st.Status == Failed {
			out.recs = append(out.recs, Record{Journey: k.journey, Subject: k.subject, Kind: RecordUnabandoned, Step: stepName(d, st.Current),
				Detail: "progress after the instance was abandoned"})
			abandonedAt = nil
		} else {
			st = d.Derive(steps, true)
		}
	}
	if st.Conflict != "" && st.Conflict != oldConflict {
		out.recs = append(out.recs, Record{Journey: k.journey, Subject: k.subject, Kind: RecordConflict, Step: stepName(d, st.Current), Detail: st.Conflict})
	}
	out.funnel = f.dims.deltas(d, steps, st, +1, out.funnel)
	out.row = rowOf(d, k.subject, steps, st, abandonedAt)
	return out, true
}

func stepName(d *Definition, i int) string {
	if i < 0 || i >= len(d.Steps) {
		return ""
	}
	return d.Steps[i].Name
}

// ReachesOf reads a stored row's steps. Only the earliest reach's topic is
// stored (the entry topic); the others' topics are not needed.
func ReachesOf(r *Row) []Reach {
	out := make([]Reach, len(r.StepAt))
	first := -1
	for i := range r.StepAt {
		if r.StepAt[i] != nil && i < len(r.StepEvent) && r.StepEvent[i] != nil {
			out[i] = Reach{At: r.StepAt[i].UTC(), Event: *r.StepEvent[i]}
			if first < 0 || out[i].Earlier(out[first]) {
				first = i
			}
		}
	}
	if first >= 0 && r.EntryTopic != nil {
		out[first].Topic = *r.EntryTopic
	}
	return out
}

// rowOf is the row for an instance's steps and derived state.
func rowOf(d *Definition, subject string, steps []Reach, st State, abandonedAt *time.Time) Row {
	row := Row{Journey: d.Name, Subject: subject, Status: st.Status, EnteredAt: st.EnteredAt, LastAt: st.LastAt,
		Deadline: st.Deadline, AbandonedAt: abandonedAt}
	row.StepAt, row.StepEvent = make([]*time.Time, len(steps)), make([]*string, len(steps))
	ats, evs := make([]time.Time, len(steps)), make([]string, len(steps)) // one allocation each, not one per step
	for i := range steps {
		if steps[i].Reached() {
			ats[i], evs[i] = steps[i].At, steps[i].Event
			row.StepAt[i], row.StepEvent[i] = &ats[i], &evs[i]
		}
	}
	if st.Current >= 0 {
		name := d.Steps[st.Current].Name
		row.CurrentStep = &name
	}
	if st.Conflict != "" {
		c := st.Conflict
		row.Conflict = &c
	}
	if st.EntryTopic != "" {
		t := st.EntryTopic
		row.EntryTopic = &t
	}
	if st.Status == Abandoned && abandonedAt == nil {
		row.Status = InProgress
	}
	return row
}
