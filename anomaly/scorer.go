package anomaly

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/hookstream/hookstream/internal/periodic"
	"github.com/hookstream/hookstream/store"
	"github.com/hookstream/hookstream/stream"
	"github.com/hookstream/hookstream/windows"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
)

// Scorer scores the watched series as their windows close: every closed
// window once (with several processors, one scores at a time: an advisory
// lock, and a cursor per series moved in the same transaction as the
// scores), and a closed window again when late events raise its revision.
// Detectors live in memory; after a restart, or when another process
// scored meanwhile, a series' detector is warmed up from the stored window
// history (detectors are online, so replaying the history gives the state
// they had), never learnt from zero.
type Scorer struct {
	DB      *pgxpool.Pool
	Windows windows.Config // as the processors fold them
	Watch   *Watch
	// Redis and Stream, when set, get an announcement per anomaly found
	// (the live feed's "anomaly" messages, alerts), after the commit.
	Redis  redis.UniversalClient
	Stream string
	// History is how many windows warm a detector up (default 2000);
	// Batch the most windows of one series scored per tick (default 1440);
	// Revisions how far back (in windows) revised windows are looked for
	// (default 96); Every how often it runs (default 5s).
	History, Batch, Revisions int
	Every                     time.Duration
	Logger                    *slog.Logger

	mu   sync.Mutex
	live map[string]*tracked // by series instance
	// groups are each series' groups known when its windows before until
	// were scored, so a tick reads only the new windows' groups.
	groups map[string]knownGroups
	// revs are the revisions of closed windows seen by the last tick that
	// committed, by clock: a tick looks for revised windows to score
	// again only where a revision rose since.
	revs map[string]map[time.Time]int32
}

// knownGroups are a series' groups with events in its history before
// until.
type knownGroups struct {
	until  time.Time
	groups []string
}

// tick is one Tick's view: the cursors read at its start, those it moves,
// and the revisions of each clock's recent closed windows.
type tick struct {
	cursors map[string]time.Time
	moved   map[string]time.Time
	revs    map[string]map[time.Time]int32
	revFrom map[string]time.Time // where each clock's revs were read from
	groups  map[string]knownGroups
}

// tracked is a detector and how far it has been fed.
type tracked struct {
	d        Detector
	fedUntil time.Time // the end of the last window fed
	fed      int       // windows fed, warm-up included
}

func (s *Scorer) defaults() {
	s.History = cmp.Or(s.History, 2000)
	s.Batch = cmp.Or(s.Batch, 1440)
	s.Revisions = cmp.Or(s.Revisions, 96)
	s.Every = cmp.Or(s.Every, 5*time.Second)
	s.Logger = cmp.Or(s.Logger, slog.Default())
	s.Windows = s.Windows.WithDefaults()
}

// Run scores every Every until ctx ends.
func (s *Scorer) Run(ctx context.Context) {
	s.defaults()
	periodic.Run(ctx, s.Every, s.Logger, "anomaly scoring", func(ctx context.Context) error {
		_, err := s.Tick(ctx)
		return err
	})
}

// Tick scores what closed since the last tick and reports how many windows
// it scored (0 when another process holds the lock).
func (s *Scorer) Tick(ctx context.Context) (int, error) {
	s.defaults()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.live == nil {
		s.live = map[string]*tracked{}
	}
	if s.groups == nil {
		s.groups, s.revs = map[string]knownGroups{}, map[string]map[time.Time]int32{}
	}
	var recs []Record
	var tk *tick
	err := pgx.BeginFunc(ctx, s.DB, func(tx pgx.Tx) error {
		recs = recs[:0]
		got, err := store.TryLock(ctx, tx, store.AnomalyLock)
		if err != nil || !got {
			return err
		}
		closed, err := closedUntil(ctx, tx)
		if err != nil {
			return err
		}
		tk = &tick{moved: map[string]time.Time{}, revs: map[string]map[time.Time]int32{}, revFrom: map[string]time.Time{}, groups: map[string]knownGroups{}}
		if tk.cursors, err = readCursors(ctx, tx); err != nil {
			return err
		}
		for _, sc := range s.Watch.Series {
			r, err := s.score(ctx, tx, tk, sc, closed[sc.clock()])
			if err != nil {
				return fmt.Errorf("score %s: %w", sc.Name, err)
			}
			recs = append(recs, r...)
		}
		if err := writeCursors(ctx, tx, tk.moved); err != nil {
			return err
		}
		return insertRecords(ctx, tx, recs)
	})
	if err != nil {
		// The detectors were fed what did not commit: warm them up again.
		clear(s.live)
		clear(s.groups)
		clear(s.revs)
		return 0, err
	}
	if tk != nil {
		maps.Copy(s.groups, tk.groups)
		for clock, revs := range tk.revs {
			s.revs[clock] = revs
		}
	}
	s.announce(ctx, recs)
	return len(recs), nil
}

// score scores sc's windows closed since its cursor, and its revised ones.
func (s *Scorer) score(ctx context.Context, tx pgx.Tx, tk *tick, sc *SeriesConfig, closed time.Time) ([]Record, error) {
	if closed.IsZero() {
		return nil, nil // nothing closed yet
	}
	until := tk.cursors[sc.Name]
	if until.IsZero() {
		// A series newly watched starts at the windows closing from now on
		// (its detectors warm up on the history before).
		tk.moved[sc.Name] = closed
		return nil, nil
	}
	recs, err := s.revised(ctx, tx, tk, sc, until)
	if err != nil {
		return nil, err
	}
	if !until.Before(closed) {
		return recs, nil
	}
	to := closed
	if limit := until.Add(time.Duration(s.Batch) * sc.size); limit.Before(to) {
		to = limit
	}
	// Every group seen in the history or now, so a group that fell silent
	// is scored at zero: the history's groups read once, then the new
	// windows' added.
	var groups []string
	if k, ok := s.groups[sc.Name]; ok && k.until.Equal(until) {
		fresh, err := s.readGroups(ctx, tx, sc, until, to)
		if err != nil {
			return nil, err
		}
		groups = k.groups
		for _, g := range fresh {
			if !slices.Contains(groups, g) {
				groups = append(slices.Clip(groups), g)
			}
		}
		slices.Sort(groups)
	} else if groups, err = s.readGroups(ctx, tx, sc, until.Add(-time.Duration(s.History)*sc.size), to); err != nil {
		return nil, err
	}
	tk.groups[sc.Name] = knownGroups{until: to, groups: groups}
	points, err := s.points(ctx, tx, sc, groups, until, to)
	if err != nil {
		return nil, err
	}
	trs, err := s.trackers(ctx, tx, sc, groups, until)
	if err != nil {
		return nil, err
	}
	for _, g := range groups {
		name, tr := sc.instanceName(g), trs[g]
		for _, p := range points[g] {
			if sc.undefined(p) {
				continue
			}
			recs = append(recs, s.record(sc, name, tr, p))
		}
		tr.fedUntil = to
	}
	tk.moved[sc.Name] = to
	return recs, nil
}

func (s *Scorer) record(sc *SeriesConfig, name string, tr *tracked, p windows.Point) Record {
	res := tr.d.Score(Point{Time: p.Start, Value: p.Value})
	tr.fed++
	r := Record{Series: name, Start: p.Start, Window: windows.FormatSize(sc.size), Revision: p.Revision, Value: p.Value,
		Expected: optional(res.Expected), Low: optional(res.Low), High: optional(res.High), Score: res.Score, Reason: res.Reason}
	if tr.fed <= sc.MinHistory {
		r.Score, r.Reason = 0, fmt.Sprintf("warming up: %d of %d windows of history (min_history)", tr.fed, sc.MinHistory)
	}
	r.Anomaly = r.Score >= sc.Threshold
	return r
}

// trackers are the detectors of sc's groups, fed up to until: those in
// memory when they are, else fresh ones warmed up on the history (one read
// for all of them).
func (s *Scorer) trackers(ctx context.Context, tx pgx.Tx, sc *SeriesConfig, groups []string, until time.Time) (map[string]*tracked, error) {
	out := make(map[string]*tracked, len(groups))
	var cold []string
	for _, g := range groups {
		if tr := s.live[sc.instanceName(g)]; tr != nil && tr.fedUntil.Equal(until) {
			out[g] = tr
		} else {
			cold = append(cold, g)
		}
	}
	if len(cold) == 0 {
		return out, nil
	}
	warmed, err := s.warm(ctx, tx, sc, cold, until)
	if err != nil {
		return nil, err
	}
	for g, tr := range warmed {
		s.live[sc.instanceName(g)] = tr
		out[g] = tr
	}
	return out, nil
}

// warm is a fresh detector for each of groups fed the History windows
// before until.
func (s *Scorer) warm(ctx context.Context, tx pgx.Tx, sc *SeriesConfig, groups []string, until time.Time) (map[string]*tracked, error) {
	out := make(map[string]*tracked, len(groups))
	for _, g := range groups {
		d, err := New(sc.Detector)
		if err != nil {
			return nil, err
		}
		out[g] = &tracked{d: d, fedUntil: until}
	}
	from := until.Add(-time.Duration(s.History) * sc.size)
	first, err := firstWindow(ctx, tx, sc)
	if err != nil {
		return nil, err
	}
	if first.After(from) {
		from = first // no history before the first window ever folded
	}
	if !from.Before(until) {
		return out, nil
	}
	points, err := s.points(ctx, tx, sc, groups, from, until)
	if err != nil {
		return nil, err
	}
	for g, tr := range out {
		for _, p := range points[g] {
			if sc.undefined(p) {
				continue
			}
			tr.d.Score(Point{Time: p.Start, Value: p.Value})
			tr.fed++
		}
	}
	return out, nil
}

// firstWindow is the start of the first window of sc's clock and size
// (the zero time when there is none).
func firstWindow(ctx context.Context, db store.Querier, sc *SeriesConfig) (time.Time, error) {
	var t *time.Time
	err := db.QueryRow(ctx, `SELECT min(start) FROM window_aggs WHERE basis = $1 AND size_s = $2`, string(sc.query.Basis), int32(sc.size/time.Second)).Scan(&t)
	if err != nil || t == nil {
		return time.Time{}, err
	}
	return windows.Start(*t, sc.size), nil
}

// groups are the values of sc's group_by with events in [from, to), or
// [""] for a series without one.
func (s *Scorer) readGroups(ctx context.Context, tx pgx.Tx, sc *SeriesConfig, from, to time.Time) ([]string, error) {
	return readGroups(ctx, tx, s.Windows, sc, from, to)
}

func readGroups(ctx context.Context, db store.Querier, wcfg windows.Config, sc *SeriesConfig, from, to time.Time) ([]string, error) {
	if sc.Source == SourceJourneys {
		return abandonedGroups(ctx, db, sc, from, to)
	}
	if sc.GroupBy == "" {
		return []string{""}, nil
	}
	q := sc.query
	q.Metric, q.SkipEmpty = windows.MetricCount, true
	// A long range reads the largest windows inside it (the groups, not
	// the values: the fewest rows) and the windows of sc's size at its
	// ends: the same groups.
	parts := [][2]time.Time{{from, to}}
	largest := wcfg.Sizes[len(wcfg.Sizes)-1]
	if in, out := windows.Start(from.Add(largest-time.Nanosecond), largest), windows.Start(to, largest); q.Window != largest && out.Sub(in) > 2*largest {
		parts = [][2]time.Time{{from, in}, {in, out}, {out, to}}
	}
	var groups []string
	for i, part := range parts {
		q.From, q.To, q.Window = part[0], part[1], sc.query.Window
		if len(parts) == 3 && i == 1 {
			q.Window = largest
		}
		if !q.From.Before(q.To) {
			continue
		}
		res, err := windows.QueryMetrics(ctx, db, wcfg, q)
		if err != nil {
			return nil, err
		}
		groups = append(groups, res.Groups...)
	}
	slices.Sort(groups)
	return slices.Compact(groups), nil
}

// points are sc's values for each group in [from, to), every window (empty
// ones as zero), in time order.
func (s *Scorer) points(ctx context.Context, tx pgx.Tx, sc *SeriesConfig, groups []string, from, to time.Time) (map[string][]windows.Point, error) {
	return readPoints(ctx, tx, s.Windows, sc, groups, from, to)
}

func readPoints(ctx context.Context, db store.Querier, wcfg windows.Config, sc *SeriesConfig, groups []string, from, to time.Time) (map[string][]windows.Point, error) {
	if sc.Source == SourceJourneys {
		return abandonedPoints(ctx, db, sc, groups, from, to)
	}
	q := sc.query
	q.From, q.To = from, to
	if sc.GroupBy != "" {
		if len(groups) == 0 {
			return nil, nil
		}
		q.Filter = map[string][]string{sc.GroupBy: groups}
	}
	res, err := windows.QueryMetrics(ctx, db, wcfg, q)
	if err != nil {
		return nil, err
	}
	out := map[string][]windows.Point{}
	for _, p := range res.Points {
		out[p.Group] = append(out[p.Group], p)
	}
	return out, nil
}

// revised scores again the closed windows of the last Revisions windows
// before until whose revision rose since they were scored: each with a
// detector warmed up on the history before it, recorded as a row of its
// own.
func (s *Scorer) revised(ctx context.Context, tx pgx.Tx, tk *tick, sc *SeriesConfig, until time.Time) ([]Record, error) {
	if sc.Source == SourceJourneys {
		return nil, nil // abandonments have no revisions (see journeys.go)
	}
	from := until.Add(-time.Duration(s.Revisions) * sc.size)
	if rose, err := s.revisionRose(ctx, tx, tk, sc, from, until); err != nil || !rose {
		return nil, err
	}
	q := sc.query
	q.From, q.To, q.SkipEmpty = from, until, true
	res, err := windows.QueryMetrics(ctx, tx, s.Windows, q)
	if err != nil {
		return nil, err
	}
	var recs []Record
	byGroup := map[string][]windows.Point{}
	for _, p := range res.Points {
		if p.Revision > 0 && p.Closed {
			byGroup[p.Group] = append(byGroup[p.Group], p)
		}
	}
	for _, g := range slices.Sorted(maps.Keys(byGroup)) {
		name := sc.instanceName(g)
		scored, err := scoredRevisions(ctx, tx, name, from, until)
		if err != nil {
			return nil, err
		}
		for _, p := range byGroup[g] {
			if sc.undefined(p) {
				continue
			}
			prev, ok := scored[p.Start]
			if !ok || prev >= p.Revision {
				continue // never scored (before the series was watched), or scored as it is
			}
			warmed, err := s.warm(ctx, tx, sc, []string{g}, p.Start)
			if err != nil {
				return nil, err
			}
			tr := warmed[g]
			r := s.record(sc, name, tr, p)
			r.Reason = fmt.Sprintf("revision %d (late events): %s", p.Revision, r.Reason)
			recs = append(recs, r)
		}
	}
	return recs, nil
}

// revisionRose says whether a closed window of sc's clock in [from, until)
// has a revision higher than the last committed tick saw (when it did not,
// whatever it revised then has been scored again). The revisions are read
// once a tick per clock, from a little before the earliest series' range.
func (s *Scorer) revisionRose(ctx context.Context, tx pgx.Tx, tk *tick, sc *SeriesConfig, from, until time.Time) (bool, error) {
	clock := sc.clock()
	revs, ok := tk.revs[clock]
	if !ok || from.Before(tk.revFrom[clock]) {
		read := from.Add(-time.Duration(s.Revisions) * sc.size)
		var err error
		if revs, err = windowRevisions(ctx, tx, sc, read); err != nil {
			return false, err
		}
		tk.revs[clock], tk.revFrom[clock] = revs, read
	}
	seen := s.revs[clock]
	for start, rev := range revs {
		if !start.Before(from) && start.Before(until) && rev > seen[start] {
			return true, nil
		}
	}
	return false, nil
}

// announce publishes the anomalies found, best effort: the table is the
// record.
func (s *Scorer) announce(ctx context.Context, recs []Record) {
	if s.Redis == nil || s.Stream == "" {
		return
	}
	var out [][]string
	for _, r := range recs {
		if r.Anomaly {
			b, _ := json.Marshal(r)
			out = append(out, []string{"anomaly", string(b)})
		}
	}
	if err := stream.Announce(ctx, s.Redis, s.Stream, out); err != nil && !errors.Is(err, context.Canceled) {
		s.Logger.Warn("anomalies are recorded but not announced; the anomalies table has them", "err", err, "anomalies", len(out))
	}
}

// DecodeAnnouncement reads an anomaly announcement.
func DecodeAnnouncement(values map[string]any) (Record, error) {
	raw, ok := values["anomaly"].(string)
	if !ok {
		return Record{}, errors.New("anomaly entry without an anomaly field")
	}
	var r Record
	err := json.Unmarshal([]byte(raw), &r)
	return r, err
}
