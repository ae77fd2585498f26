package anomaly_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hookstream/hookstream/anomaly"
)

// abandon records n instances of journey abandoned by watermarks spread
// over the hour from at.
func (s *scoring) abandon(t *testing.T, journey string, at time.Time, n int) {
	t.Helper()
	for i := range n {
		s.n++
		wm := at.Add(time.Duration(i) * time.Hour / time.Duration(n))
		if _, err := s.DB.Exec(context.Background(), `INSERT INTO journey_instances (journey, subject, step_at, step_event, status, current_step, entered_at, last_at, deadline, abandoned_at)
VALUES ($1, $2, ARRAY[$3::timestamptz], ARRAY['e'], 'abandoned', 'created', $3, $3, $4, $4)`, journey, fmt.Sprint("s", s.n), wm.Add(-24*time.Hour), wm); err != nil {
			t.Fatal(err)
		}
	}
}

// A series of source journeys counts the abandonments per journey and
// window; an hour when many more instances are abandoned than usual is an
// anomaly; the series can be forecast like any other.
func TestAbandonmentSeries(t *testing.T) {
	t.Parallel()
	s := newScoring(t)
	ctx := context.Background()
	var err error
	if s.watch, err = anomaly.ParseWatch([]byte(`series: [{name: abandoned, source: journeys, metric: abandoned, window: 1h, group_by: journey, min_history: 24}]`), s.wf.Config()); err != nil {
		t.Fatal(err)
	}
	hours := func(from, to int, spikeAt int) {
		for h := from; h < to; h++ {
			at := day0.Add(time.Duration(h) * time.Hour)
			n := 18 + s.rng.IntN(5)
			if h == spikeAt {
				n += 60
			}
			s.abandon(t, "onboarding", at, n)
			s.abandon(t, "verification", at, 4+s.rng.IntN(3))
		}
		s.traffic(t, day0.Add(time.Duration(from)*time.Hour), day0.Add(time.Duration(to)*time.Hour), time.Time{}, 0)
	}
	hours(0, 6*24, -1)
	if _, err := s.scorer().Tick(ctx); err != nil {
		t.Fatal(err)
	}
	spike := 7*24 + 12
	hours(6*24, 8*24, spike)
	for {
		n, err := s.scorer().Tick(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
	}
	recs := s.records(t)
	scored := map[string]int{}
	found := map[string][]time.Time{}
	for _, r := range recs {
		scored[r.Series]++
		if r.Anomaly {
			found[r.Series] = append(found[r.Series], r.Start)
		}
		if r.Series == "abandoned/journey=onboarding" && r.Start.Equal(day0.Add(50*time.Hour+6*24*time.Hour)) && r.Value < 18 {
			t.Errorf("an hour counted %v abandonments", r.Value)
		}
	}
	if scored["abandoned/journey=onboarding"] < 40 || scored["abandoned/journey=verification"] < 40 {
		t.Fatalf("scored %v", scored)
	}
	spikeAt := day0.Add(time.Duration(spike) * time.Hour)
	if f := found["abandoned/journey=onboarding"]; len(f) == 0 || !f[0].Equal(spikeAt) && !f[len(f)-1].Equal(spikeAt) {
		t.Errorf("the hour of many abandonments (%s) was not found: %v", spikeAt.Format(time.RFC3339), f)
	}
	for _, at := range found["abandoned/journey=onboarding"] {
		if !at.Equal(spikeAt) {
			t.Logf("onboarding: also %s", at.Format(time.RFC3339))
		}
	}
	if n := len(found["abandoned/journey=verification"]); n > 2 {
		t.Errorf("verification, without any change, raised %d anomalies in two days", n)
	}

	fcs, err := anomaly.Forecasts(ctx, s.DB, s.wf.Config(), s.watch, anomaly.ForecastQuery{Series: "abandoned/journey=verification", Horizon: 3 * time.Hour})
	if err != nil || len(fcs) != 1 || len(fcs[0].Points) != 3 {
		t.Fatalf("forecast: %+v, %v", fcs, err)
	}
	if p := fcs[0].Points[0]; p.Low95 > 5 || p.High95 < 5 {
		t.Errorf("verification abandons 4 to 6 an hour; the forecast says %+v", p)
	}

	for _, bad := range []string{
		`series: [{name: a, source: journeys, metric: count, window: 1h}]`,
		`series: [{name: a, source: journeys, metric: abandoned, window: 2h}]`,
		`series: [{name: a, source: journeys, metric: abandoned, window: 1h, group_by: topic}]`,
		`series: [{name: a, source: journeys, metric: abandoned, window: 1h, filter: topic=x}]`,
		`series: [{name: a, source: events, metric: count, window: 1h}]`,
	} {
		if _, err := anomaly.ParseWatch([]byte(bad), s.wf.Config()); err == nil {
			t.Errorf("accepted %s", bad)
		}
	}
}
