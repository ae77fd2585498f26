package journeys

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"sort"
	"time"

	"github.com/hookstream/hookstream/store"
	"gonum.org/v1/gonum/stat/distuv"
)

// Predictions for unfinished instances (issue 12, item 5): how likely an
// instance standing at its current step is to complete, and how long it
// will stand there, learnt from the journey's other instances. The method
// is in docs/journeys.md, "Predictions"; in short:
//
//   - Every instance of the training period is cut into spells: the time
//     it stood at each current step (the furthest step reached, as Derive
//     says), from reaching it until it reached a later one (progress: its
//     current step changed, or it completed or failed) or, still standing
//     there at the reference time, censored then.
//   - An instance at step s that has waited t there is compared with the
//     spells at s that also lasted at least t (a landmark set). From them:
//     the time to its next step by Kaplan–Meier (every spell ends in
//     progress or is censored: failing is a step too, so there is no
//     competing risk), and its chance of completing by the Aalen–Johansen
//     cumulative incidence of completion, with failing as the competing
//     outcome and instances that have not ended (in progress, abandoned)
//     censored at the reference time.
//
// The reference time ("now") is the latest progress of any instance of the
// journey, not the wall clock: the data's own clock, so a refold of old
// events, or a test, predicts the same.

// DefaultMinComparable is the fewest comparable instances a prediction is
// made from; with fewer, the prediction says there is not enough history.
const DefaultMinComparable = 30

// DefaultTraining is how far back from the reference time instances are
// learnt from (by when they entered).
const DefaultTraining = 30 * 24 * time.Hour

// PredictOptions tune a prediction.
type PredictOptions struct {
	Training      time.Duration // learn from instances that entered this long before the reference time (default 30 days)
	Horizon       time.Duration // completion within this long from the reference time (0: eventually, as far as the history shows)
	MinComparable int           // fewest comparable instances to predict from (default DefaultMinComparable)
}

func (o PredictOptions) withDefaults() PredictOptions {
	o.Training = cmp.Or(o.Training, DefaultTraining)
	o.MinComparable = cmp.Or(o.MinComparable, DefaultMinComparable)
	return o
}

// TrainingPeriod is what a prediction was learnt from: the instances that
// entered in (From, To], as they stood at To.
type TrainingPeriod struct {
	From      time.Time `json:"from"`
	To        time.Time `json:"to"`
	Instances int       `json:"instances"`
}

// Prediction is what the history of a journey says about one unfinished
// instance (in progress or abandoned) at its current step.
type Prediction struct {
	Step string `json:"step"` // the current step, the prediction's condition
	// AsOf is the reference time: the latest progress of any instance of
	// the journey. WaitingSeconds is how long the instance has stood at
	// Step by then (since it reached it).
	AsOf           time.Time      `json:"as_of"`
	WaitingSeconds float64        `json:"waiting_seconds"`
	Training       TrainingPeriod `json:"training"`
	// AtStep is how many training instances stood at Step; Comparable how
	// many of them were still standing there, without progress, after
	// waiting as long as this one has: what the prediction is learnt from.
	AtStep        int    `json:"at_step"`
	Comparable    int    `json:"comparable"`
	MinComparable int    `json:"min_comparable"`
	Enough        bool   `json:"enough_history"`
	Note          string `json:"note,omitempty"` // why there is no prediction, when there is not enough history
	// WithinSeconds is the horizon of Completion (absent: eventually, as
	// far as the training period shows).
	WithinSeconds *float64 `json:"within_seconds,omitempty"`
	// Completion is the probability that the instance completes, given
	// its step and how long it has waited there, with a 95% interval.
	// CompletionOnArrival is the same for an instance that has just
	// reached the step: the difference is what the wait says.
	Completion          *Conversion `json:"completion,omitempty"`
	CompletionOnArrival *Conversion `json:"completion_on_arrival,omitempty"`
	Next                *NextStep   `json:"next_step,omitempty"`
}

// NextStep is when, and to which step, an instance leaves its current
// step.
type NextStep struct {
	// AtStep is the time instances stood at the step, from reaching it to
	// their next step (Kaplan–Meier over every training instance that
	// stood there); Remaining the time left for one that has already
	// waited as long as this one.
	AtStep    Median `json:"time_at_step"`
	Remaining Median `json:"remaining"`
	// Steps are where comparable instances went next (completing or
	// failing included), likeliest first, each with its probability by the
	// end of the history (Aalen–Johansen); what the probabilities leave to
	// 1 is still waiting at the end of the history.
	Steps []StepChance `json:"steps"`
}

// Median is a Kaplan–Meier median in seconds with its 95% interval (from
// the log-log Greenwood band). Nil fields: beyond the longest wait seen
// (fewer than half have moved on by then, or the band never reaches 1/2).
type Median struct {
	Seconds     *float64 `json:"median_seconds"`
	LowSeconds  *float64 `json:"low_seconds"`
	HighSeconds *float64 `json:"high_seconds"`
}

// StepChance is the probability of one next step.
type StepChance struct {
	Step        string  `json:"step"`
	Probability float64 `json:"probability"`
}

// spell is the time one instance stood at one current step.
type spell struct {
	wait    float64 // seconds at the step: until progress (left), or until the reference time
	left    bool
	next    int     // with left: the position of the step it went to
	fate    float64 // seconds from reaching the step until the instance ended, or until the reference time
	outcome int8    // how the instance ended: 0 not by the reference time, 1 completed, 2 failed
}

// walk replays an instance's reaches up to asOf (later ones ignored) in
// time order, each distinct time derived as Derive would with the reaches
// up to it. It calls fn with every spell, in order (the last one, still
// open at asOf, censored), and returns the first time the instance ended
// (completed or failed: later changes, such as a completed transfer
// returned, are not looked at) and its status then; zero and "" when it
// had not ended by asOf.
func (d *Definition) walk(stepAt []*time.Time, asOf time.Time, fn func(step int, start time.Time, sp spell)) (time.Time, string) {
	n := min(len(stepAt), len(d.Steps))
	times := make([]time.Time, 0, n)
	for _, t := range stepAt[:n] {
		if t != nil && !t.After(asOf) {
			times = append(times, *t)
		}
	}
	slices.SortFunc(times, func(a, b time.Time) int { return a.Compare(b) })
	times = slices.CompactFunc(times, func(a, b time.Time) bool { return a.Equal(b) })
	reaches := make([]Reach, n)
	cur, start := -1, time.Time{}
	var open []spell // the spells so far; fate filled in at the end
	var starts []time.Time
	var steps []int
	flush := func(end time.Time, status string) (time.Time, string) {
		if fn != nil {
			for i := range open {
				sp := &open[i]
				switch status {
				case Completed:
					sp.outcome, sp.fate = 1, end.Sub(starts[i]).Seconds()
				case Failed:
					sp.outcome, sp.fate = 2, end.Sub(starts[i]).Seconds()
				default:
					sp.fate = asOf.Sub(starts[i]).Seconds()
				}
				fn(steps[i], starts[i], *sp)
			}
		}
		return end, status
	}
	for _, t := range times {
		for i, at := range stepAt[:n] {
			if at != nil && at.Equal(t) {
				reaches[i] = Reach{At: t, Event: "x"}
			}
		}
		st := d.Derive(reaches, false)
		if st.Status == InProgress && st.Current == cur {
			continue
		}
		if cur >= 0 {
			open = append(open, spell{wait: t.Sub(start).Seconds(), left: true, next: st.Current})
			starts, steps = append(starts, start), append(steps, cur)
		}
		if st.Status != InProgress {
			return flush(t, st.Status)
		}
		cur, start = st.Current, t
	}
	if cur >= 0 {
		open = append(open, spell{wait: asOf.Sub(start).Seconds()})
		starts, steps = append(starts, start), append(steps, cur)
	}
	return flush(time.Time{}, "")
}

// Model is what the instances of one journey that entered in a training
// period say, as they stood at its end (AsOf).
type Model struct {
	d        *Definition
	opts     PredictOptions
	training TrainingPeriod
	// completed is how many training instances had completed by AsOf:
	// completed / Instances is the base rate a backtest compares with.
	completed int
	// spells at each step position, by fate (for the completion
	// estimates) and by wait (for the time to the next step).
	byFate, byWait [][]spell
}

// entered is the earliest reach at or before asOf (false: none).
func entered(stepAt []*time.Time, asOf time.Time) (time.Time, bool) {
	var e time.Time
	ok := false
	for _, t := range stepAt {
		if t != nil && !t.After(asOf) && (!ok || t.Before(e)) {
			e, ok = *t, true
		}
	}
	return e, ok
}

// learn builds d's model from instances' reach times (step_at), as they
// stood at asOf; only those that entered in (asOf − Training, asOf] are
// learnt from.
func learn(d *Definition, rows [][]*time.Time, asOf time.Time, opts PredictOptions) *Model {
	return learnStep(d, rows, asOf, opts, -1)
}

// learnStep is learn keeping only the spells at step position only (-1:
// every step).
func learnStep(d *Definition, rows [][]*time.Time, asOf time.Time, opts PredictOptions, only int) *Model {
	opts = opts.withDefaults()
	m := &Model{d: d, opts: opts, training: TrainingPeriod{From: asOf.Add(-opts.Training), To: asOf},
		byFate: make([][]spell, len(d.Steps)), byWait: make([][]spell, len(d.Steps))}
	for _, r := range rows {
		if e, ok := entered(r, asOf); !ok || !e.After(m.training.From) {
			continue
		}
		m.training.Instances++
		_, status := d.walk(r, asOf, func(step int, _ time.Time, sp spell) {
			if only < 0 || step == only {
				m.byFate[step] = append(m.byFate[step], sp)
			}
		})
		if status == Completed {
			m.completed++
		}
	}
	for i, sps := range m.byFate {
		sort.SliceStable(sps, func(a, b int) bool { return sps[a].fate < sps[b].fate })
		m.byWait[i] = slices.Clone(sps)
		sort.SliceStable(m.byWait[i], func(a, b int) bool { return m.byWait[i][a].wait < m.byWait[i][b].wait })
	}
	return m
}

// BaseRate is the share of the training instances that had completed by
// the reference time (what the journey's funnel calls its completion).
func (m *Model) BaseRate() float64 {
	if m.training.Instances == 0 {
		return 0
	}
	return float64(m.completed) / float64(m.training.Instances)
}

// Training is what m was learnt from.
func (m *Model) Training() TrainingPeriod { return m.training }

// comparable keeps the spells of sps that had lasted at least t seconds
// without progress (progress at exactly t is before the landmark; a spell
// censored at t is still standing there), in sps's order.
func comparable(sps []spell, t float64) []spell {
	out := make([]spell, 0, len(sps))
	for _, sp := range sps {
		if sp.wait > t || (!sp.left && sp.wait >= t) {
			out = append(out, sp)
		}
	}
	return out
}

// Predict predicts for an instance with these reach times (step_at) as of
// the model's reference time; nil when it is not unfinished then (it has
// ended, or reached nothing).
func (m *Model) Predict(stepAt []*time.Time) *Prediction {
	step, since := -1, time.Time{}
	_, status := m.d.walk(stepAt, m.training.To, func(s int, start time.Time, sp spell) {
		if !sp.left {
			step, since = s, start
		}
	})
	if status != "" || step < 0 {
		return nil
	}
	return m.predict(step, m.training.To.Sub(since).Seconds(), true)
}

// completionAmong is the probability of completing within horizon seconds
// of the landmark (+Inf: eventually) among spells (sorted by fate) that
// have waited t seconds at their step.
func completionAmong(sps []spell, t, horizon float64) Conversion {
	times, causes := make([]float64, len(sps)), make([]int, len(sps))
	for i, sp := range sps {
		times[i], causes[i] = sp.fate-t, int(sp.outcome)
	}
	f, v := cumulativeIncidenceSorted(times, causes, 1).At(horizon)
	return wilsonEffective(f, v, len(sps))
}

// predict is the prediction for an instance at step position s that has
// waited t seconds there; full adds the completion on arrival and the next
// step (a backtest needs only the completion).
func (m *Model) predict(s int, t float64, full bool) *Prediction {
	p := &Prediction{Step: m.d.Steps[s].Name, AsOf: m.training.To, WaitingSeconds: t, Training: m.training,
		AtStep: len(m.byFate[s]), MinComparable: m.opts.MinComparable}
	horizon := math.Inf(1)
	if m.opts.Horizon > 0 {
		h := m.opts.Horizon.Seconds()
		p.WithinSeconds, horizon = &h, h
	}
	byFate := comparable(m.byFate[s], t)
	p.Comparable = len(byFate)
	if p.Comparable < m.opts.MinComparable {
		p.Note = fmt.Sprintf("not enough history: of the %d instances that entered in the %s before %s and stood at %s, %d waited there as long as this one (%s) without progress; at least %d are needed",
			p.AtStep, fmtDays(m.opts.Training), p.AsOf.Format(time.RFC3339), p.Step, p.Comparable,
			time.Duration(t*float64(time.Second)).Round(time.Second), m.opts.MinComparable)
		return p
	}
	p.Enough = true
	c := completionAmong(byFate, t, horizon)
	p.Completion = &c
	if !full {
		return p
	}
	if all := m.byFate[s]; len(all) >= m.opts.MinComparable {
		c0 := completionAmong(all, 0, horizon)
		p.CompletionOnArrival = &c0
	}
	byWait := comparable(m.byWait[s], t)
	waits, left := make([]float64, len(byWait)), make([]bool, len(byWait))
	next := make([]int, len(byWait))
	for i, sp := range byWait {
		waits[i], left[i] = sp.wait-t, sp.left
		if sp.left {
			next[i] = sp.next + 1
		}
	}
	p.Next = &NextStep{AtStep: kaplanMeierSorted(waitsOf(m.byWait[s])).median(), Remaining: kaplanMeierSorted(waits, left).median(), Steps: []StepChance{}}
	for cause, f := range incidenceByCause(waits, next) {
		p.Next.Steps = append(p.Next.Steps, StepChance{Step: m.d.Steps[cause-1].Name, Probability: f})
	}
	slices.SortFunc(p.Next.Steps, func(a, b StepChance) int {
		return cmp.Or(cmp.Compare(b.Probability, a.Probability), cmp.Compare(m.d.Index(a.Step), m.d.Index(b.Step)))
	})
	return p
}

// incidenceByCause is the cumulative incidence of every cause at the end
// (times in increasing order; cause 0: censored): one pass of
// cumulativeIncidenceSorted for all causes at once.
func incidenceByCause(times []float64, causes []int) map[int]float64 {
	out := map[int]float64{}
	atRisk, s := len(times), 1.0
	for i := 0; i < len(times); {
		j, d := i, 0
		for ; j < len(times) && times[j] == times[i]; j++ {
			if causes[j] != 0 {
				out[causes[j]] += s / float64(atRisk)
				d++
			}
		}
		s *= 1 - float64(d)/float64(atRisk)
		atRisk -= j - i
		i = j
	}
	return out
}

func waitsOf(sps []spell) ([]float64, []bool) {
	w, l := make([]float64, len(sps)), make([]bool, len(sps))
	for i, sp := range sps {
		w[i], l[i] = sp.wait, sp.left
	}
	return w, l
}

func fmtDays(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%d days", d/(24*time.Hour))
	}
	return d.String()
}

// LoadModel learns d's model from the instances that entered in the
// training period before the reference time: the latest progress of any
// instance of d (zero when d has none: then the model knows nothing). One
// statement reads both.
func LoadModel(ctx context.Context, db store.Querier, d *Definition, opts PredictOptions) (*Model, error) {
	return loadModel(ctx, db, d, opts, -1)
}

// loadModel is LoadModel; with only ≥ 0, it reads (and learns from) only
// the instances that reached step position only, which are all its spells
// can come from, and counts the others.
func loadModel(ctx context.Context, db store.Querier, d *Definition, opts PredictOptions, only int) (*Model, error) {
	opts = opts.withDefaults()
	rows, err := db.Query(ctx, `
WITH w AS (SELECT max(last_at) AS at, max(last_at) - make_interval(secs => $2) AS since FROM journey_instances WHERE journey = $1),
c AS (SELECT count(j.*) AS n FROM w LEFT JOIN journey_instances j ON j.journey = $1 AND j.entered_at > w.since AND j.entered_at <= w.at)
SELECT w.at, c.n, j.step_at FROM w CROSS JOIN c LEFT JOIN journey_instances j
  ON j.journey = $1 AND j.entered_at > w.since AND j.entered_at <= w.at AND ($3::int = 0 OR j.step_at[$3::int] IS NOT NULL)`,
		d.Name, opts.Training.Seconds(), only+1)
	if err != nil {
		return nil, fmt.Errorf("read the journey's history: %w", err)
	}
	defer rows.Close()
	var asOf *time.Time
	var n int
	var hist [][]*time.Time
	for rows.Next() {
		var stepAt []*time.Time
		if err := rows.Scan(&asOf, &n, &stepAt); err != nil {
			return nil, fmt.Errorf("read the journey's history: %w", err)
		}
		if stepAt != nil {
			hist = append(hist, stepAt)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read the journey's history: %w", err)
	}
	var at time.Time
	if asOf != nil {
		at = asOf.UTC()
	}
	m := learnStep(d, hist, at, opts, only)
	if only >= 0 {
		m.training.Instances, m.completed = n, -1 // the base rate is not known
	}
	return m, nil
}

// predictRow is the prediction Instance adds to an unfinished instance:
// learnt from the instances that reached its current step only.
func predictRow(ctx context.Context, db store.Querier, d *Definition, r *Row) (*Prediction, error) {
	if (r.Status != InProgress && r.Status != Abandoned) || r.CurrentStep == nil || d.Index(*r.CurrentStep) < 0 {
		return nil, nil
	}
	m, err := loadModel(ctx, db, d, PredictOptions{}, d.Index(*r.CurrentStep))
	if err != nil {
		return nil, err
	}
	return m.Predict(r.StepAt), nil
}

// z95 is the standard normal quantile of a two-sided 95% interval.
var z95 = distuv.UnitNormal.Quantile(0.975)

// wilsonEffective is a 95% Wilson score interval for an estimated
// proportion p with variance v, on its effective sample size p(1−p)/v
// (Dorey and Korn's device for Kaplan–Meier estimates): without
// censoring, p = x/n and v = p(1−p)/n, and this is exactly Wilson(x, n).
// The effective size is at most n (the instances the estimate is from),
// and n when v is 0 (p is 0 or 1).
func wilsonEffective(p, v float64, n int) Conversion {
	if n <= 0 {
		return Conversion{}
	}
	p = math.Min(1, math.Max(0, p))
	ne := float64(n)
	if v > 0 && p > 0 && p < 1 {
		ne = math.Min(ne, p*(1-p)/v)
	}
	z := z95
	den := 1 + z*z/ne
	mid := (p + z*z/(2*ne)) / den
	half := z * math.Sqrt(p*(1-p)/ne+z*z/(4*ne*ne)) / den
	return Conversion{Rate: p, Low: math.Max(0, mid-half), High: math.Min(1, mid+half)}
}

// SurvivalStep is the Kaplan–Meier estimate at one event time.
type SurvivalStep struct {
	Time   float64 // an event time
	AtRisk int     // still under observation just before it
	Events int     // events at it
	S      float64 // survival just after it
	SE     float64 // Greenwood standard error of S
}

// Survival is a Kaplan–Meier estimate: the steps at the event times.
type Survival struct {
	Steps []SurvivalStep
	N     int
}

// KaplanMeier is the product-limit estimate of the survival function from
// times, each ending in the event (events[i]) or censored there; a
// censoring at an event's time counts as after it (still at risk). Its
// standard errors are Greenwood's.
func KaplanMeier(times []float64, events []bool) Survival {
	idx := make([]int, len(times))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return times[idx[a]] < times[idx[b]] })
	t, e := make([]float64, len(times)), make([]bool, len(times))
	for i, j := range idx {
		t[i], e[i] = times[j], events[j]
	}
	return kaplanMeierSorted(t, e)
}

// kaplanMeierSorted is KaplanMeier of times already in increasing order.
func kaplanMeierSorted(times []float64, events []bool) Survival {
	out := Survival{N: len(times)}
	atRisk, s, green := len(times), 1.0, 0.0
	for i := 0; i < len(times); {
		j, d := i, 0
		for ; j < len(times) && times[j] == times[i]; j++ {
			if events[j] {
				d++
			}
		}
		if d > 0 {
			s *= 1 - float64(d)/float64(atRisk)
			se := 0.0
			if atRisk > d {
				green += float64(d) / (float64(atRisk) * float64(atRisk-d))
				se = s * math.Sqrt(green)
			}
			out.Steps = append(out.Steps, SurvivalStep{Time: times[i], AtRisk: atRisk, Events: d, S: s, SE: se})
		}
		atRisk -= j - i
		i = j
	}
	return out
}

// At is the estimated survival at t (after the events at t).
func (s Survival) At(t float64) float64 {
	i := sort.Search(len(s.Steps), func(i int) bool { return s.Steps[i].Time > t })
	if i == 0 {
		return 1
	}
	return s.Steps[i-1].S
}

// Median is the smallest event time at which the estimated survival is
// 1/2 or less (false when it never is: more than half outlast the
// longest time seen).
func (s Survival) Median() (float64, bool) {
	for _, st := range s.Steps {
		if st.S <= 0.5 {
			return st.Time, true
		}
	}
	return 0, false
}

// band is the 95% log-log interval of S at a step.
func (st SurvivalStep) band() (low, high float64) {
	if st.S <= 0 || st.S >= 1 || st.SE == 0 {
		return st.S, st.S
	}
	theta := math.Log(-math.Log(st.S))
	se := st.SE / (st.S * math.Abs(math.Log(st.S)))
	return math.Exp(-math.Exp(theta + z95*se)), math.Exp(-math.Exp(theta - z95*se))
}

// median is the median with its 95% interval: from the first time the
// lower band of the survival reaches 1/2 to the first time the upper one
// does (Brookmeyer and Crowley's interval, as R's survfit reports it).
func (s Survival) median() Median {
	var m Median
	at := func(x float64) *float64 { return &x }
	if v, ok := s.Median(); ok {
		m.Seconds = at(v)
	}
	for _, st := range s.Steps {
		low, high := st.band()
		if m.LowSeconds == nil && low <= 0.5 {
			m.LowSeconds = at(st.Time) // the lower band reaches 1/2 first
		}
		if m.HighSeconds == nil && high <= 0.5 {
			m.HighSeconds = at(st.Time)
		}
	}
	return m
}

// Incidence is an Aalen–Johansen estimate of the cumulative incidence of
// one cause among competing ones: the probability of ending by that cause
// by a time, when ending by another cause stops it from happening and
// censoring only hides what happens.
type Incidence struct {
	times  []float64 // event times (any cause), increasing
	atRisk []int
	d, dk  []int     // events of any cause, and of this one
	sPrev  []float64 // overall Kaplan–Meier survival just before
	f      []float64 // cumulative incidence just after
}

// CumulativeIncidence estimates the cumulative incidence of cause from
// times and causes (0: censored; another value: that cause).
func CumulativeIncidence(times []float64, causes []int, cause int) Incidence {
	idx := make([]int, len(times))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return times[idx[a]] < times[idx[b]] })
	t, c := make([]float64, len(times)), make([]int, len(times))
	for i, j := range idx {
		t[i], c[i] = times[j], causes[j]
	}
	return cumulativeIncidenceSorted(t, c, cause)
}

// cumulativeIncidenceSorted is CumulativeIncidence of times already in
// increasing order.
func cumulativeIncidenceSorted(times []float64, causes []int, cause int) Incidence {
	var in Incidence
	atRisk, s, f := len(times), 1.0, 0.0
	for i := 0; i < len(times); {
		j, d, dk := i, 0, 0
		for ; j < len(times) && times[j] == times[i]; j++ {
			if causes[j] != 0 {
				d++
			}
			if causes[j] == cause {
				dk++
			}
		}
		if d > 0 {
			f += s * float64(dk) / float64(atRisk)
			in.times = append(in.times, times[i])
			in.atRisk, in.d, in.dk = append(in.atRisk, atRisk), append(in.d, d), append(in.dk, dk)
			in.sPrev, in.f = append(in.sPrev, s), append(in.f, f)
			s *= 1 - float64(d)/float64(atRisk)
		}
		atRisk -= j - i
		i = j
	}
	return in
}

// At is the cumulative incidence by t (events at t included) and its
// variance by the delta method (Marubini and Valsecchi's; without
// censoring it is the binomial p(1−p)/n).
func (in Incidence) At(t float64) (f, variance float64) {
	k := sort.Search(len(in.times), func(i int) bool { return in.times[i] > t })
	if k == 0 {
		return 0, 0
	}
	f = in.f[k-1]
	var a, b, c float64
	for j := range k {
		n, d, dk := float64(in.atRisk[j]), float64(in.d[j]), float64(in.dk[j])
		gap := f - in.f[j]
		if n > d {
			a += gap * gap * d / (n * (n - d))
		}
		b += in.sPrev[j] * in.sPrev[j] * dk * (n - dk) / (n * n * n)
		c += gap * in.sPrev[j] * dk / (n * n)
	}
	return f, math.Max(0, a+b-2*c)
}

// Backtests: how good the predictions are on the journey's own history.
// A cut-off T is chosen; the model learns only what was known at T (each
// instance as its reaches up to T make it: one that completed after T was
// in progress at T); every instance unfinished at T is given its
// probability of completing within the horizon; and that is scored against
// what happened by T + horizon.

// DefaultHorizon is a backtest's default horizon.
const DefaultHorizon = 72 * time.Hour

// BacktestOptions say what to backtest.
type BacktestOptions struct {
	At            time.Time     // the cut-off (zero: the journey's latest progress minus Horizon)
	Horizon       time.Duration // predict completion within this long after At (default 72h)
	Training      time.Duration // learn from instances that entered this long before At (default 30 days)
	MinComparable int           // as PredictOptions.MinComparable
}

// BacktestReport is how the predictions made at a cut-off fared.
type BacktestReport struct {
	Journey        string    `json:"journey"`
	At             time.Time `json:"at"`
	HorizonSeconds float64   `json:"horizon_seconds"`
	// LatestProgress is the journey's latest progress: what happened is
	// known up to it (nil: the journey has no instances).
	LatestProgress *time.Time     `json:"latest_progress"`
	Training       TrainingPeriod `json:"training"`
	// BaseRate is the share of the training instances that had completed
	// at the cut-off: the prediction that knows nothing of an instance.
	BaseRate float64 `json:"base_rate"`
	// All scores every instance unfinished (in progress or abandoned) at
	// the cut-off, those without enough history given the base rate;
	// Predicted only those with enough history.
	All       Score `json:"all"`
	Predicted Score `json:"predicted"`
	// Calibration bins the instances with enough history by their
	// predicted probability.
	Calibration []CalibrationBin `json:"calibration"`
	Steps       []StepScore      `json:"steps"`
	Note        string           `json:"note,omitempty"`
}

// Score is how a set of predictions fared.
type Score struct {
	Instances int `json:"instances"`
	Completed int `json:"completed"` // completed within the horizon
	// Brier is the mean squared difference between the predicted
	// probability and what happened (1 completed, 0 not); BrierBaseRate
	// the same for the base rate; Skill = 1 − Brier/BrierBaseRate (above
	// 0: better than the base rate; nil when the base rate scores 0).
	Brier         float64  `json:"brier"`
	BrierBaseRate float64  `json:"brier_base_rate"`
	Skill         *float64 `json:"skill"`
	// BrierHindsight is the score of the share that actually completed,
	// o(1 − o): the best one number for every instance could do, known
	// only afterwards; SkillHindsight is measured against it.
	BrierHindsight float64  `json:"brier_hindsight"`
	SkillHindsight *float64 `json:"skill_hindsight"`
}

// CalibrationBin is the instances whose predicted probability fell in
// [From, To) (the last bin includes 1): how many, their mean prediction,
// and the share that completed (95% Wilson interval). Calibrated
// predictions have Observed near MeanPredicted.
type CalibrationBin struct {
	From          float64    `json:"from"`
	To            float64    `json:"to"`
	Instances     int        `json:"instances"`
	MeanPredicted float64    `json:"mean_predicted"`
	Observed      Conversion `json:"observed"`
}

// StepScore is the backtest of the instances at one current step at the
// cut-off.
type StepScore struct {
	Step          string  `json:"step"`
	Instances     int     `json:"instances"`
	Predicted     int     `json:"predicted"`
	Completed     int     `json:"completed"`
	MeanPredicted float64 `json:"mean_predicted"`
	Brier         float64 `json:"brier"`
	BrierBaseRate float64 `json:"brier_base_rate"`
}

// Backtest backtests d's predictions at a cut-off: two statements, the
// journey's latest progress and the instances that entered by the cut-off
// and were in the training period or unfinished at it.
func Backtest(ctx context.Context, db store.Querier, d *Definition, o BacktestOptions) (BacktestReport, error) {
	o.Horizon = cmp.Or(o.Horizon, DefaultHorizon)
	o.Training = cmp.Or(o.Training, DefaultTraining)
	if o.Horizon < 0 || o.Training < 0 {
		return BacktestReport{}, fmt.Errorf("the horizon (%s) and the training period (%s) must be positive", o.Horizon, o.Training)
	}
	rep := BacktestReport{Journey: d.Name, At: o.At, HorizonSeconds: o.Horizon.Seconds(), Calibration: []CalibrationBin{}, Steps: []StepScore{}}
	var latest *time.Time
	if err := db.QueryRow(ctx, `SELECT max(last_at) FROM journey_instances WHERE journey = $1`, d.Name).Scan(&latest); err != nil {
		return rep, fmt.Errorf("read the journey's latest progress: %w", err)
	}
	if latest == nil {
		rep.Note = "no instances of " + d.Name + ": nothing to backtest"
		return rep, nil
	}
	end := latest.UTC()
	at := o.At
	if at.IsZero() {
		at = end.Add(-o.Horizon)
	}
	if at.Add(o.Horizon).After(end) {
		return rep, fmt.Errorf("a cut-off at %s with a horizon of %s ends after the journey's latest progress (%s): what happened is not known yet; use an earlier cut-off or a shorter horizon",
			at.UTC().Format(time.RFC3339), o.Horizon, end.Format(time.RFC3339))
	}
	rows, err := db.Query(ctx, `SELECT step_at FROM journey_instances
		WHERE journey = $1 AND entered_at <= $2 AND (entered_at > $3 OR status IN ('in_progress', 'abandoned') OR last_at > $2)`,
		d.Name, at, at.Add(-o.Training))
	if err != nil {
		return rep, fmt.Errorf("read the journey's history: %w", err)
	}
	var hist [][]*time.Time
	for rows.Next() {
		var stepAt []*time.Time
		if err := rows.Scan(&stepAt); err != nil {
			rows.Close()
			return rep, fmt.Errorf("read the journey's history: %w", err)
		}
		hist = append(hist, stepAt)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return rep, fmt.Errorf("read the journey's history: %w", err)
	}
	return backtest(d, hist, at.UTC(), end, o), nil
}

// backtest scores the predictions made at cut-off at (learnt from hist as
// it stood then) with what hist shows happened by at + horizon (known up
// to latest).
func backtest(d *Definition, hist [][]*time.Time, at, latest time.Time, o BacktestOptions) BacktestReport {
	o.Horizon = cmp.Or(o.Horizon, DefaultHorizon)
	rep := BacktestReport{Journey: d.Name, At: at, HorizonSeconds: o.Horizon.Seconds(), LatestProgress: &latest,
		Calibration: []CalibrationBin{}, Steps: []StepScore{}}
	m := learn(d, hist, at, PredictOptions{Training: o.Training, Horizon: o.Horizon, MinComparable: o.MinComparable})
	rep.Training, rep.BaseRate = m.training, m.BaseRate()
	until := at.Add(o.Horizon)
	type key struct {
		step int
		t    float64
	}
	memo := map[key]*Prediction{}
	bins := make([]acc, 10)
	steps := make([]acc, len(d.Steps))
	var all, predictedOnly acc
	for _, r := range hist {
		step, since := -1, time.Time{}
		if _, status := d.walk(r, at, func(s int, start time.Time, sp spell) {
			if !sp.left {
				step, since = s, start
			}
		}); status != "" || step < 0 {
			continue
		}
		ended, status := d.walk(r, latest, nil)
		y := 0.0
		if status == Completed && !ended.After(until) {
			y = 1
		}
		k := key{step, at.Sub(since).Seconds()}
		p, ok := memo[k]
		if !ok {
			p = m.predict(k.step, k.t, false)
			memo[k] = p
		}
		prob, accs := rep.BaseRate, []*acc{&all, &steps[step]}
		if p.Enough {
			prob = p.Completion.Rate
			accs = append(accs, &predictedOnly, &bins[min(9, int(prob*10))])
		}
		for _, a := range accs {
			a.add(prob, rep.BaseRate, y, p.Enough)
		}
	}
	if all.n == 0 {
		rep.Note = "no instance was unfinished at the cut-off: nothing to score"
		return rep
	}
	rep.All, rep.Predicted = all.score(), predictedOnly.score()
	for i, b := range bins {
		if b.n > 0 {
			rep.Calibration = append(rep.Calibration, CalibrationBin{From: float64(i) / 10, To: float64(i+1) / 10, Instances: b.n,
				MeanPredicted: b.sumP / float64(b.n), Observed: Wilson(int64(b.completed), int64(b.n))})
		}
	}
	for i, s := range steps {
		if s.n > 0 {
			n := float64(s.n)
			rep.Steps = append(rep.Steps, StepScore{Step: d.Steps[i].Name, Instances: s.n, Predicted: s.predicted, Completed: s.completed,
				MeanPredicted: s.sumP / n, Brier: s.brier / n, BrierBaseRate: s.brierBase / n})
		}
	}
	return rep
}

// acc accumulates a backtest's scores.
type acc struct {
	n, predicted, completed int
	sumP, brier, brierBase  float64
}

func (a *acc) add(p, base, y float64, predicted bool) {
	a.n++
	if predicted {
		a.predicted++
	}
	if y == 1 {
		a.completed++
	}
	a.sumP += p
	a.brier += (p - y) * (p - y)
	a.brierBase += (base - y) * (base - y)
}

func (a *acc) score() Score {
	s := Score{Instances: a.n, Completed: a.completed}
	if a.n == 0 {
		return s
	}
	n := float64(a.n)
	s.Brier, s.BrierBaseRate = a.brier/n, a.brierBase/n
	o := float64(a.completed) / n
	s.BrierHindsight = o * (1 - o)
	skill := func(ref float64) *float64 {
		if ref <= 0 {
			return nil
		}
		k := 1 - s.Brier/ref
		return &k
	}
	s.Skill, s.SkillHindsight = skill(s.BrierBaseRate), skill(s.BrierHindsight)
	return s
}
