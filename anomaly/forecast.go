package anomaly

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/hookstream/hookstream/store"
	"github.com/hookstream/hookstream/windows"
)

// Forecasts: the next windows of a watched series, from the Holt-Winters
// model the detectors use (additive level, damped trend and time-of-day
// season), learnt from the closed windows, with 80% and 95% intervals that
// widen with the horizon. Backtest replays the history to say how good
// those forecasts were, beside a seasonal-naive forecast.

// z80 is the half-width, in standard errors, of an 80% interval.
const z80 = 1.281552

// ErrNoSeries is what Forecasts' and Backtest's error matches (errors.Is)
// when the series asked for is not watched.
var ErrNoSeries = errors.New("no such watched series")

// ErrHorizon is what their error matches when the horizon asks for no
// window or too many.
var ErrHorizon = errors.New("horizon out of range")

// ForecastPoint is one future window: the expected value and the intervals
// it should fall in 80 and 95 times in 100.
type ForecastPoint struct {
	Start    time.Time `json:"start"`
	Expected float64   `json:"expected"`
	Low80    float64   `json:"low_80"`
	High80   float64   `json:"high_80"`
	Low95    float64   `json:"low_95"`
	High95   float64   `json:"high_95"`
}

// Forecast is one series instance's forecast.
type Forecast struct {
	Series string `json:"series"` // the instance (volume/family=transfer)
	Metric string `json:"metric"`
	Window string `json:"window"`
	Method string `json:"method"`
	// Learnt is how many windows the model learnt from, the last ending
	// at LearntUntil (where the closed windows end: the first forecast
	// window starts there).
	Learnt      int             `json:"windows_learnt"`
	LearntUntil time.Time       `json:"learnt_until"`
	Points      []ForecastPoint `json:"points"`
	// Note says why there are no points (too little history).
	Note string `json:"note,omitempty"`
}

// ForecastQuery selects what Forecasts forecasts.
type ForecastQuery struct {
	// Series is a watched series (every instance of it), one instance
	// (volume/family=transfer), or "" for every watched series.
	Series  string
	Horizon time.Duration // how far ahead (default 6h); at least one window
	// History is how many closed windows the model learns from (default:
	// a week's worth, at least 2000 and at most 20000).
	History int
}

// hwMethod names the forecasting model in answers.
const hwMethod = "holt-winters (additive, damped trend, daily season)"

// maxForecastPoints bounds one instance's forecast.
const maxForecastPoints = 5000

// Forecasts forecasts the watched series q selects, from the windows closed
// so far.
func Forecasts(ctx context.Context, db store.Querier, wcfg windows.Config, w *Watch, q ForecastQuery) ([]Forecast, error) {
	wcfg = wcfg.WithDefaults()
	q.Horizon = cmp.Or(q.Horizon, 6*time.Hour)
	sel, err := w.selectSeries(q.Series)
	if err != nil {
		return nil, err
	}
	closed, err := closedUntil(ctx, db)
	if err != nil {
		return nil, err
	}
	out := []Forecast{}
	for _, s := range sel {
		steps, err := s.sc.horizonSteps(q.Horizon)
		if err != nil {
			return nil, err
		}
		until := closed[s.sc.clock()]
		hist, err := s.history(ctx, db, wcfg, until, historyOf(q.History, s.sc.size))
		if err != nil {
			return nil, err
		}
		for _, g := range hist.groups {
			f := Forecast{Series: s.sc.instanceName(g), Metric: s.sc.Metric, Window: s.sc.Window, Method: hwMethod, LearntUntil: until, Points: []ForecastPoint{}}
			if until.IsZero() {
				f.Note = "no " + s.sc.Window + " window has closed yet"
				out = append(out, f)
				continue
			}
			m := newForecaster(s.sc)
			for _, p := range hist.points[g] {
				if !s.sc.undefined(p) {
					m.feed(Point{Time: p.Start, Value: p.Value})
				}
			}
			f.Learnt = m.fed
			if !m.ready() {
				f.Note = fmt.Sprintf("too little history: %d windows learnt, %d needed for an interval", m.fed, hwMinHistory+1)
				out = append(out, f)
				continue
			}
			for i := range steps {
				f.Points = append(f.Points, m.point(until.Add(time.Duration(i)*s.sc.size)))
			}
			out = append(out, f)
		}
	}
	return out, nil
}

// horizonSteps is how many of sc's windows cover horizon.
func (sc *SeriesConfig) horizonSteps(horizon time.Duration) (int, error) {
	steps := int((horizon + sc.size - 1) / sc.size)
	if steps < 1 || steps > maxForecastPoints {
		return 0, fmt.Errorf("%w: %s is %d windows of %s; give from one window to %d", ErrHorizon, horizon, steps, sc.Window, maxForecastPoints)
	}
	return steps, nil
}

func historyOf(n int, size time.Duration) int {
	if n > 0 {
		return n
	}
	return min(max(int(7*day/size), 2000), 20000)
}

// selected is one watched series, and the one group of it asked for ("":
// every group).
type selected struct {
	sc    *SeriesConfig
	group string
	one   bool
}

// selectSeries resolves a series name: "" (all), a watched series, or one
// instance of a grouped one (volume/family=transfer).
func (w *Watch) selectSeries(name string) ([]selected, error) {
	if name == "" {
		out := make([]selected, len(w.Series))
		for i, sc := range w.Series {
			out[i] = selected{sc: sc}
		}
		return out, nil
	}
	base, inst, isInst := strings.Cut(name, "/")
	for _, sc := range w.Series {
		if sc.Name != base {
			continue
		}
		if !isInst || inst == "" {
			return []selected{{sc: sc}}, nil
		}
		dim, val, ok := strings.Cut(inst, "=")
		if sc.GroupBy == "" || !ok || dim != sc.GroupBy {
			if sc.GroupBy == "" {
				return nil, fmt.Errorf("%w: %s is one series (it has no group_by), so name it without /%s", ErrNoSeries, base, inst)
			}
			return nil, fmt.Errorf("%w: name one series of %s as %s/%s=<value>", ErrNoSeries, base, base, sc.GroupBy)
		}
		return []selected{{sc: sc, group: val, one: true}}, nil
	}
	names := make([]string, len(w.Series))
	for i, sc := range w.Series {
		names[i] = sc.Name
	}
	return nil, fmt.Errorf("%w %q; watched: %s", ErrNoSeries, name, strings.Join(names, ", "))
}

// clock is the key of a series' window cursor.
func (s *SeriesConfig) clock() string { return string(s.query.Basis) + "/" + s.size.String() }

// closedUntil is where each clock and size's closed windows end.
func closedUntil(ctx context.Context, db store.Querier) (map[string]time.Time, error) {
	cursors, err := windows.ReadCursors(ctx, db)
	if err != nil {
		return nil, err
	}
	closed := map[string]time.Time{}
	for _, c := range cursors {
		closed[string(c.Basis)+"/"+c.Size.String()] = c.ClosedUntil
	}
	return closed, nil
}

// seriesHistory is a selected series' closed windows, by group.
type seriesHistory struct {
	groups []string
	points map[string][]windows.Point
	from   time.Time
}

// history reads the n closed windows before until (fewer when the windows
// start later) of every group selected.
func (s selected) history(ctx context.Context, db store.Querier, wcfg windows.Config, until time.Time, n int) (seriesHistory, error) {
	h := seriesHistory{groups: []string{s.group}}
	if until.IsZero() {
		if !s.one && s.sc.GroupBy != "" {
			h.groups = nil
		}
		return h, nil
	}
	h.from = until.Add(-time.Duration(n) * s.sc.size)
	first, err := firstWindow(ctx, db, s.sc)
	if err != nil {
		return h, err
	}
	if first.After(h.from) {
		h.from = first
	}
	if !h.from.Before(until) {
		if !s.one && s.sc.GroupBy != "" {
			h.groups = nil
		}
		return h, nil
	}
	if !s.one && s.sc.GroupBy != "" {
		if h.groups, err = readGroups(ctx, db, wcfg, s.sc, h.from, until); err != nil {
			return h, err
		}
	}
	h.points, err = readPoints(ctx, db, wcfg, s.sc, h.groups, h.from, until)
	return h, err
}

// forecaster is a Holt-Winters model fed a series, forecasting from the
// last point fed.
type forecaster struct {
	hw  *holtWinters
	fed int
	// lower and upper bound the metric's values: every window metric is at
	// least 0, a ratio at most 1.
	lower, upper float64
	// mult[k-1] is the variance of the k-step forecast error in units of
	// the one-step variance (Hyndman et al., ETS(A,Ad,A), class 1); damp[k]
	// is φ + φ² + … + φᵏ.
	mult, damp []float64
}

func newForecaster(sc *SeriesConfig) *forecaster {
	f := &forecaster{hw: newHoltWinters(), upper: math.Inf(1)}
	if windows.Metric(sc.Metric) == windows.MetricFailureRatio {
		f.upper = 1
	}
	return f
}

func (f *forecaster) feed(p Point) {
	k := f.hw.steps.observe(p.Time)
	f.hw.update(p, k)
	f.fed++
}

// ready says whether the model has residuals enough for an interval.
func (f *forecaster) ready() bool { return f.hw.residues >= hwMinHistory && f.hw.width > 0 }

// ahead is how many steps t is after the last point fed.
func (f *forecaster) ahead(t time.Time) int {
	return max(1, int((t.Sub(f.hw.steps.last)+f.hw.width/2)/f.hw.width))
}

// variance is the k-step error variance multiplier.
func (f *forecaster) variance(k int) float64 {
	for len(f.mult) < k {
		j := len(f.mult) // the multiplier for j+1 steps adds c_j², j ≥ 1
		if j == 0 {
			f.mult = append(f.mult, 1)
			continue
		}
		c := hwAlpha + hwAlpha*hwBeta*f.damped(j)
		if m := len(f.hw.season); m > 0 && j%m == 0 {
			c += hwGamma * (1 - hwAlpha)
		}
		f.mult = append(f.mult, f.mult[j-1]+c*c)
	}
	return f.mult[k-1]
}

// damped is φ + φ² + … + φᵏ, with k capped as holtWinters.forecast caps
// it.
func (f *forecaster) damped(k int) float64 {
	k = min(k, 288)
	for len(f.damp) <= k {
		n := len(f.damp)
		if n == 0 {
			f.damp = append(f.damp, 0)
			continue
		}
		f.damp = append(f.damp, f.damp[n-1]+math.Pow(hwPhi, float64(n)))
	}
	return f.damp[k]
}

// point forecasts the window starting at t: what holtWinters.forecast
// gives, with the damping sums kept rather than summed again per point.
func (f *forecaster) point(t time.Time) ForecastPoint {
	k := f.ahead(t)
	mean := f.hw.level + f.damped(k)*f.hw.trend
	if i := f.hw.slot(t); i >= 0 && f.hw.seen[i] {
		mean += f.hw.season[i]
	}
	se := meanAbsToSigma * f.hw.dev * math.Sqrt(f.variance(k))
	clamp := func(v float64) float64 { return max(f.lower, min(f.upper, v)) }
	return ForecastPoint{Start: t, Expected: clamp(mean),
		Low80: clamp(mean - z80*se), High80: clamp(mean + z80*se),
		Low95: clamp(mean - z95*se), High95: clamp(mean + z95*se)}
}

// BacktestQuery selects what Backtest replays.
type BacktestQuery struct {
	Series  string        // as ForecastQuery's
	Days    int           // origins over the last Days days of closed windows (default 7)
	Horizon time.Duration // each origin forecasts this far (default 6h)
	// History is how many windows before the first origin the models
	// learn from first (default as ForecastQuery's).
	History int
}

// Accuracy is how good one method's forecasts were.
type Accuracy struct {
	Method string `json:"method"`
	// Forecasts is how many (origin, window ahead) pairs had an actual
	// value to compare with.
	Forecasts int     `json:"forecasts"`
	MAE       float64 `json:"mae"`
	// MAPE is the mean absolute percentage error over the actual values
	// that are not zero (MAPEOf of them; null when none); SMAPE the
	// symmetric one over every pair (0 when both are zero), in percent,
	// from 0 to 200.
	MAPE   *float64 `json:"mape"`
	MAPEOf int      `json:"mape_of"`
	SMAPE  float64  `json:"smape"`
	// Coverage80 and Coverage95 are the shares of actual values inside the
	// 80% and 95% intervals: well calibrated intervals give 0.80 and 0.95.
	Coverage80 float64 `json:"coverage_80"`
	Coverage95 float64 `json:"coverage_95"`

	absErr, ape, sape float64
	in80, in95        int
}

func (a *Accuracy) add(actual float64, p ForecastPoint) {
	a.Forecasts++
	e := math.Abs(actual - p.Expected)
	a.absErr += e
	if actual != 0 {
		a.ape += e / math.Abs(actual)
		a.MAPEOf++
	}
	if d := math.Abs(actual) + math.Abs(p.Expected); d > 0 {
		a.sape += 2 * e / d
	}
	if actual >= p.Low80 && actual <= p.High80 {
		a.in80++
	}
	if actual >= p.Low95 && actual <= p.High95 {
		a.in95++
	}
}

func (a *Accuracy) merge(b *Accuracy) {
	a.Forecasts += b.Forecasts
	a.absErr += b.absErr
	a.ape += b.ape
	a.MAPEOf += b.MAPEOf
	a.sape += b.sape
	a.in80 += b.in80
	a.in95 += b.in95
}

func (a *Accuracy) finish() {
	if a.Forecasts == 0 {
		return
	}
	n := float64(a.Forecasts)
	a.MAE, a.SMAPE = a.absErr/n, 100*a.sape/n
	a.Coverage80, a.Coverage95 = float64(a.in80)/n, float64(a.in95)/n
	if a.MAPEOf > 0 {
		m := 100 * a.ape / float64(a.MAPEOf)
		a.MAPE = &m
	}
}

// Backtest is how the forecasts of one series instance would have done.
type Backtest struct {
	Series  string    `json:"series"`
	Metric  string    `json:"metric"`
	Window  string    `json:"window"`
	Horizon string    `json:"horizon"`
	From    time.Time `json:"from"` // the first origin
	To      time.Time `json:"to"`   // the end of the last window compared
	Origins int       `json:"origins"`
	Model   Accuracy  `json:"model"`
	// SeasonalNaive forecasts each window as the same window a day
	// earlier (a week for none: the previous window when the series has no
	// daily season), its intervals from the spread of those differences.
	SeasonalNaive Accuracy `json:"seasonal_naive"`
	// Skill is 1 - MAE(model)/MAE(seasonal naive): above 0 the model is
	// better; null when the seasonal naive made no error.
	Skill *float64 `json:"mae_skill"`
	Note  string   `json:"note,omitempty"`
}

// Backtest replays each selected series instance: from every window of
// the last Days days as an origin, the model (learnt only from the windows
// before the origin: forecasts are online) and a seasonal-naive forecast
// forecast the windows up to Horizon ahead, and are compared with what
// those windows turned out to be.
func Backtests(ctx context.Context, db store.Querier, wcfg windows.Config, w *Watch, q BacktestQuery) ([]Backtest, error) {
	wcfg = wcfg.WithDefaults()
	q.Days = cmp.Or(q.Days, 7)
	q.Horizon = cmp.Or(q.Horizon, 6*time.Hour)
	if q.Days < 1 || q.Days > 60 {
		return nil, fmt.Errorf("days %d: give from 1 to 60", q.Days)
	}
	sel, err := w.selectSeries(q.Series)
	if err != nil {
		return nil, err
	}
	closed, err := closedUntil(ctx, db)
	if err != nil {
		return nil, err
	}
	out := []Backtest{}
	for _, s := range sel {
		steps, err := s.sc.horizonSteps(q.Horizon)
		if err != nil {
			return nil, err
		}
		until := closed[s.sc.clock()]
		span := time.Duration(q.Days) * day
		origins := until.Add(-span)
		hist, err := s.history(ctx, db, wcfg, until, int(span/s.sc.size)+historyOf(q.History, s.sc.size))
		if err != nil {
			return nil, err
		}
		for _, g := range hist.groups {
			bt := replay(s.sc, hist.points[g], origins, until, steps)
			bt.Series, bt.Horizon = s.sc.instanceName(g), windows.FormatSize(time.Duration(steps)*s.sc.size)
			out = append(out, bt)
		}
	}
	return out, nil
}

// replay backtests one instance's points (every window, in order): origins
// are the windows from origins to until.
func replay(sc *SeriesConfig, points []windows.Point, origins, until time.Time, steps int) Backtest {
	bt := Backtest{Metric: sc.Metric, Window: sc.Window, From: origins, To: until,
		Model: Accuracy{Method: hwMethod}, SeasonalNaive: Accuracy{Method: "seasonal naive (the same window a day before)"}}
	size := sc.size
	actual := make(map[int64]float64, len(points))
	for _, p := range points {
		if !sc.undefined(p) {
			actual[p.Start.Unix()/int64(size/time.Second)] = p.Value
		}
	}
	m := newForecaster(sc)
	sn := newSeasonalNaive(size, m.upper)
	for _, p := range points {
		if !p.Start.Before(origins) {
			bt.Origins++
			if m.ready() {
				for i := range steps {
					t := p.Start.Add(time.Duration(i) * size)
					if !t.Before(until) {
						break
					}
					v, ok := actual[t.Unix()/int64(size/time.Second)]
					if !ok {
						continue
					}
					if f, ok := sn.point(t, actual); ok {
						bt.Model.add(v, m.point(t))
						bt.SeasonalNaive.add(v, f)
					}
				}
			}
		}
		if !sc.undefined(p) {
			m.feed(Point{Time: p.Start, Value: p.Value})
			sn.feed(p.Start, p.Value, actual)
		}
	}
	bt.Model.finish()
	bt.SeasonalNaive.finish()
	if bt.SeasonalNaive.MAE > 0 {
		s := 1 - bt.Model.MAE/bt.SeasonalNaive.MAE
		bt.Skill = &s
	}
	if bt.Model.Forecasts == 0 {
		bt.Note = "nothing to compare: too little history before the origins, or no closed windows in them"
	}
	return bt
}

// seasonalNaive forecasts a window as the same window one season (a day)
// before, with the spread of the seasonal differences seen so far.
type seasonalNaive struct {
	size   time.Duration
	period int64 // windows in a season
	sumSq  float64
	n      int
	last   int64 // the index of the last window fed
	upper  float64
}

func newSeasonalNaive(size time.Duration, upper float64) *seasonalNaive {
	p := int64(1)
	if size <= day/2 {
		p = int64(day / size)
	}
	return &seasonalNaive{size: size, period: p, upper: upper}
}

func (s *seasonalNaive) index(t time.Time) int64 { return t.Unix() / int64(s.size/time.Second) }

// feed learns from the window at t: its difference from a season before.
func (s *seasonalNaive) feed(t time.Time, v float64, actual map[int64]float64) {
	i := s.index(t)
	s.last = i
	if prev, ok := actual[i-s.period]; ok {
		s.sumSq += (v - prev) * (v - prev)
		s.n++
	}
}

// point forecasts the window at t from the last season fed before it.
func (s *seasonalNaive) point(t time.Time, actual map[int64]float64) (ForecastPoint, bool) {
	if s.n < hwMinHistory {
		return ForecastPoint{}, false
	}
	i := s.index(t)
	h := i - s.last // steps ahead, ≥ 1
	seasons := (h-1)/s.period + 1
	v, ok := actual[i-seasons*s.period]
	if !ok {
		return ForecastPoint{}, false
	}
	se := math.Sqrt(s.sumSq/float64(s.n)) * math.Sqrt(float64(seasons))
	clamp := func(x float64) float64 { return max(0, min(s.upper, x)) }
	return ForecastPoint{Start: t, Expected: v, Low80: clamp(v - z80*se), High80: clamp(v + z80*se),
		Low95: clamp(v - z95*se), High95: clamp(v + z95*se)}, true
}
