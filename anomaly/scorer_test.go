package anomaly_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/hookstream/hookstream/anomaly"
	"github.com/hookstream/hookstream/internal/testenv"
	"github.com/hookstream/hookstream/store"
	"github.com/hookstream/hookstream/windows"
	"github.com/jackc/pgx/v5"
)

// scoring is a pipeline whose windows a test folds and closes on its own
// clock, and the watched series over it.
type scoring struct {
	*testenv.Pipeline
	wf     *windows.Fold
	closer *windows.Closer
	clock  time.Time
	watch  *anomaly.Watch
	rng    *rand.Rand
	n      int
}

var day0 = time.Date(2025, 6, 2, 0, 0, 0, 0, time.UTC)

func newScoring(t *testing.T) *scoring {
	return newScoringWith(t, windows.Config{Sizes: []time.Duration{5 * time.Minute, time.Hour}, Dims: []string{windows.DimFamily}, Delay: time.Second, Idle: time.Hour})
}

func newScoringWith(t testing.TB, cfg windows.Config) *scoring {
	t.Helper()
	p := testenv.NewPipeline(t, 1)
	wf, err := windows.NewFold(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s := &scoring{Pipeline: p, wf: wf, clock: day0, rng: rand.New(rand.NewPCG(7, 7))}
	wf.WithClock(func() time.Time { return s.clock })
	s.closer = &windows.Closer{DB: p.DB, Partitions: 1, Config: wf.Config(), Now: func() time.Time { return s.clock }}
	if s.watch, err = anomaly.ParseWatch([]byte(`series: [{name: vol, metric: count, window: 5m, group_by: family, min_history: 20}]`), wf.Config()); err != nil {
		t.Fatal(err)
	}
	return s
}

// traffic folds a steady count (about 12 transfer events a 5m window, and
// extra in the window at spike) in [from, to), then closes what it can.
func (s *scoring) traffic(t *testing.T, from, to time.Time, spike time.Time, extra int) {
	t.Helper()
	var evs []store.Event
	for w := from; w.Before(to); w = w.Add(5 * time.Minute) {
		n := 10 + s.rng.IntN(5)
		if w.Equal(spike) {
			n += extra
		}
		for i := range n {
			s.n++
			at := w.Add(time.Duration(i) * time.Second)
			evs = append(evs, store.Event{ID: fmt.Sprint("e", s.n), Topic: "customer_transfer_created", Family: "transfer", Created: at, Received: at, Source: "webhook", Body: []byte("{}")})
		}
	}
	s.fold(t, evs)
	s.clock = to.Add(time.Minute)
	if _, err := s.closer.Tick(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func (s *scoring) fold(t testing.TB, evs []store.Event) {
	t.Helper()
	ctx := context.Background()
	var used pgx.Tx
	err := pgx.BeginFunc(ctx, s.DB, func(tx pgx.Tx) error {
		used = tx
		if _, err := store.InsertEvents(ctx, tx, evs); err != nil {
			return err
		}
		return s.wf.Fold(ctx, tx, evs)
	})
	s.wf.TxEnded(used, err == nil)
	if err != nil {
		t.Fatal(err)
	}
}

func (s *scoring) scorer() *anomaly.Scorer {
	return &anomaly.Scorer{DB: s.DB, Windows: s.wf.Config(), Watch: s.watch}
}

func (s *scoring) records(t *testing.T) []anomaly.Record {
	t.Helper()
	recs, err := anomaly.List(context.Background(), s.DB, anomaly.Filter{Limit: 100_000})
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// A watched series is scored window by window as windows close, each
// closed window once, whoever scores; a spike is found, with what was
// expected; a restarted scorer warms up and scores as the first would
// have; a late event's revision is scored again, as a row of its own.
func TestScoringClosedWindows(t *testing.T) {
	t.Parallel()
	s := newScoring(t)
	ctx := context.Background()
	s.traffic(t, day0, day0.Add(24*time.Hour), time.Time{}, 0)
	first := s.scorer()
	if n, err := first.Tick(ctx); err != nil || n != 0 {
		t.Fatalf("the first tick scores nothing (the series starts being watched now): %d, %v", n, err)
	}
	spike := day0.Add(30 * time.Hour)
	s.traffic(t, day0.Add(24*time.Hour), day0.Add(36*time.Hour), spike, 60)

	// Two scorers at once (as in two processors): every closed window
	// scored exactly once.
	second := s.scorer()
	var wg sync.WaitGroup
	for _, sc := range []*anomaly.Scorer{first, second} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 3 {
				if _, err := sc.Tick(ctx); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	recs := s.records(t)
	seen := map[time.Time]int{}
	var found []anomaly.Record
	for _, r := range recs {
		seen[r.Start]++
		if r.Series != "vol/family=transfer" || r.Revision != 0 || r.Window != "5m" {
			t.Fatalf("record %+v", r)
		}
		if r.Anomaly {
			found = append(found, r)
		}
	}
	// Windows of [24h, 36h) closed up to the watermark (36h - 1s; 5m windows
	// close with their lateness).
	if len(seen) < 130 {
		t.Fatalf("%d windows scored, want the ~140 closed", len(seen))
	}
	for start, n := range seen {
		if n != 1 {
			t.Fatalf("window %s scored %d times", start, n)
		}
	}
	if len(found) == 0 || !found[len(found)-1].Start.Equal(spike) {
		t.Fatalf("anomalies %+v; want the spike at %s first", found, spike)
	}
	sp := found[len(found)-1]
	if sp.Value < 70 || sp.Expected == nil || *sp.Expected > 20 || sp.Reason == "" {
		t.Fatalf("the spike's record %+v", sp)
	}
	if len(found) > 3 {
		t.Fatalf("%d anomalies in a day and a half of steady traffic with one spike: %+v", len(found), found)
	}

	// A scorer started afresh (a restart) scores the next windows as a
	// detector fed the whole series would: it warms up on the history.
	s.traffic(t, day0.Add(36*time.Hour), day0.Add(40*time.Hour), time.Time{}, 0)
	if _, err := s.scorer().Tick(ctx); err != nil {
		t.Fatal(err)
	}
	res, err := windows.QueryMetrics(ctx, s.DB, s.wf.Config(), windows.MetricQuery{Window: 5 * time.Minute, Metric: windows.MetricCount, GroupBy: "family",
		Filter: map[string][]string{"family": {"transfer"}}, From: day0, To: day0.Add(40 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	byStart := map[time.Time]anomaly.Record{}
	for _, r := range s.records(t) {
		byStart[r.Start] = r
	}
	d, _ := anomaly.New(anomaly.LiveDetector) // what watched series use unless told otherwise
	checked := 0
	for i, p := range res.Points {
		got := d.Score(anomaly.Point{Time: p.Start, Value: p.Value})
		if r, ok := byStart[p.Start]; ok && p.Start.After(day0.Add(36*time.Hour)) && i >= 20 {
			if math.Abs(r.Score-got.Score) > 1e-12 {
				t.Fatalf("window %s: the restarted scorer scored %v, a detector fed the whole series %v", p.Start, r.Score, got.Score)
			}
			checked++
		}
	}
	if checked < 40 {
		t.Fatalf("only %d windows after the restart compared", checked)
	}

	// A late event revises a closed window: scored again, as revision 1.
	late := day0.Add(38*time.Hour + 5*time.Minute)
	s.fold(t, []store.Event{{ID: "late", Topic: "customer_transfer_created", Family: "transfer", Created: late, Received: s.clock, Source: "webhook", Body: []byte("{}")}})
	n, err := s.scorer().Tick(ctx)
	if err != nil || n != 1 {
		t.Fatalf("after a late event: %d scored (%v), want the revised window", n, err)
	}
	revs, err := anomaly.List(ctx, s.DB, anomaly.Filter{From: late, To: late.Add(time.Minute)})
	if err != nil || len(revs) != 2 || revs[0].Revision != 1 || revs[1].Revision != 0 {
		t.Fatalf("the revised window's records: %+v %v", revs, err)
	}
}
