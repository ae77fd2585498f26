package windows

import (
	"fmt"
	"time"

	"github.com/DataDog/sketches-go/ddsketch"
	"github.com/DataDog/sketches-go/ddsketch/mapping"
	ddstore "github.com/DataDog/sketches-go/ddsketch/store"
	"github.com/axiomhq/hyperloglog"
	"github.com/dgryski/go-metro"
	"github.com/hookstream/hookstream/dwolla"
	"github.com/hookstream/hookstream/store"
)

// LagAccuracy is the delivery-lag sketch's relative accuracy: a quantile it
// reports is within 1% of the true value at that rank (DDSketch's
// guarantee), however many windows were merged.
const LagAccuracy = 0.01

// DistinctError is the customers sketch's standard error: HyperLogLog++ at
// precision 14 (exact below a few hundred customers, in its sparse form);
// 2% is 2.5 standard errors.
const DistinctError = 0.0081

var lagMapping = func() mapping.IndexMapping {
	m, err := mapping.NewLogarithmicMapping(LagAccuracy)
	if err != nil {
		panic(err)
	}
	return m
}()

// Agg is the aggregate of one window and dimension value. Every part is a
// merge that is the same in any order: Merge(a, b) = Merge(b, a), and
// folding events one at a time equals merging their aggregates.
type Agg struct {
	Count     int64   // events
	Successes int64   // events whose topic ends a lifecycle successfully
	Failures  int64   // events whose topic ends one in failure (failed, cancelled, suspended, ...)
	Terminal  int64   // events whose topic is terminal
	LagSumMs  float64 // sum of delivery lag (received − created), ms
	Lag       *ddsketch.DDSketch
	Customers *hyperloglog.Sketch
}

// NewAgg is an empty aggregate.
func NewAgg() *Agg {
	return &Agg{
		Lag:       ddsketch.NewDDSketch(lagMapping, ddstore.NewSparseStore(), ddstore.NewSparseStore()),
		Customers: hyperloglog.New14(),
	}
}

// Add folds one event in.
func (a *Agg) Add(ev *store.Event) {
	p := newPoint(ev)
	a.add(&p)
}

// point is what one event adds to each window it is in, computed once per
// event rather than once per window (8 windows per event in a fold).
type point struct {
	outcome  dwolla.Outcome
	terminal bool
	lagMs    float64
	lagSign  int8 // 1: positive store, -1: negative store, 0: zero
	lagIndex int
	custHash uint64
	hasCust  bool
}

// hllSeed is the seed hyperloglog.Insert hashes with; hashing once here and
// inserting the hash gives the same sketch.
const hllSeed = 1337

func newPoint(ev *store.Event) point {
	p := point{outcome: dwolla.Outcome(ev.Outcome), terminal: ev.Terminal}
	p.lagMs = float64(ev.Lag().Microseconds()) / 1000
	switch min := lagMapping.MinIndexableValue(); {
	case p.lagMs > min:
		p.lagSign, p.lagIndex = 1, lagMapping.Index(p.lagMs)
	case p.lagMs < -min:
		p.lagSign, p.lagIndex = -1, lagMapping.Index(-p.lagMs)
	}
	if ev.CustomerID != "" {
		p.custHash, p.hasCust = metro.Hash64Str(ev.CustomerID, hllSeed), true
	}
	return p
}

func (a *Agg) add(p *point) {
	a.Count++
	switch p.outcome {
	case dwolla.OutcomeSuccess:
		a.Successes++
	case dwolla.OutcomeFailure:
		a.Failures++
	}
	if p.terminal {
		a.Terminal++
	}
	a.LagSumMs += p.lagMs
	switch p.lagSign {
	case 1:
		a.Lag.GetPositiveValueStore().Add(p.lagIndex)
	case -1:
		a.Lag.GetNegativeValueStore().Add(p.lagIndex)
	default:
		// |lag| below the sketch's smallest trackable value. AddWithCount
		// fails only for a negative count or a value beyond the sketch's
		// range, never for (0, 1).
		_ = a.Lag.AddWithCount(0, 1)
	}
	if p.hasCust {
		a.Customers.InsertHash(p.custHash)
	}
}

// Merge adds o into a.
func (a *Agg) Merge(o *Agg) error {
	a.Count += o.Count
	a.Successes += o.Successes
	a.Failures += o.Failures
	a.Terminal += o.Terminal
	a.LagSumMs += o.LagSumMs
	// A read that needs no sketch leaves them nil (see fromRowWith).
	if a.Lag != nil && o.Lag != nil {
		if err := a.Lag.MergeWith(o.Lag); err != nil {
			return fmt.Errorf("merge lag sketches: %w", err)
		}
	}
	if a.Customers != nil && o.Customers != nil {
		if err := a.Customers.Merge(o.Customers); err != nil {
			return fmt.Errorf("merge customer sketches: %w", err)
		}
	}
	return nil
}

// LagQuantile is the delivery lag at quantile q (0..1), in ms; ok is false
// for an empty window.
func (a *Agg) LagQuantile(q float64) (ms float64, ok bool) {
	if a.Lag.IsEmpty() {
		return 0, false
	}
	v, err := a.Lag.GetValueAtQuantile(q)
	return v, err == nil
}

// Distinct is the estimated number of distinct customers.
func (a *Agg) Distinct() uint64 { return a.Customers.Estimate() }

// FailureRatio is failures over terminal events (0 when none ended).
func (a *Agg) FailureRatio() float64 {
	if a.Terminal == 0 {
		return 0
	}
	return float64(a.Failures) / float64(a.Terminal)
}

// EncodeSketches serialises the two sketches for storage.
func (a *Agg) EncodeSketches() (lag, customers []byte, err error) {
	a.Lag.Encode(&lag, true)
	if customers, err = a.Customers.MarshalBinary(); err != nil {
		return nil, nil, fmt.Errorf("encode customer sketch: %w", err)
	}
	return lag, customers, nil
}

// DecodeSketches restores the sketches EncodeSketches wrote into a fresh
// aggregate (empty input: empty sketches). The decoded sketches replace
// a's: decoding into an empty sketch and merging would cost a merge.
func (a *Agg) DecodeSketches(lag, customers []byte) error {
	if len(lag) > 0 {
		s, err := ddsketch.DecodeDDSketch(lag, ddstore.SparseStoreConstructor, lagMapping)
		if err != nil {
			return fmt.Errorf("decode lag sketch: %w", err)
		}
		a.Lag = s
	}
	if len(customers) > 0 {
		hll := new(hyperloglog.Sketch)
		if err := hll.UnmarshalBinary(customers); err != nil {
			return fmt.Errorf("decode customer sketch: %w", err)
		}
		a.Customers = hll
	}
	return nil
}

// Assign calls fn with every key ev belongs to under cfg: for each clock,
// each size and each dimension (DimAll included). This is the definition
// of the aggregates; the processor folds only the base size (AssignBase)
// and rolls the larger sizes up from it.
func Assign(ev *store.Event, cfg *Config, fn func(Key)) { assign(ev, cfg, cfg.Sizes, fn) }

// AssignBase is Assign for the base (smallest) size only.
func AssignBase(ev *store.Event, cfg *Config, fn func(Key)) { assign(ev, cfg, cfg.Sizes[:1], fn) }

func assign(ev *store.Event, cfg *Config, sizes []time.Duration, fn func(Key)) {
	for _, b := range Bases {
		t := ev.Created
		if b == ReceivedTime {
			t = ev.Received
		}
		for _, size := range sizes {
			start := Start(t, size)
			fn(Key{Basis: b, Size: size, Start: start, Dim: DimAll})
			for _, d := range cfg.Dims {
				fn(Key{Basis: b, Size: size, Start: start, Dim: d, Value: Value(ev, d)})
			}
		}
	}
}

// Aggregate folds evs into aggregates for every key of every size (a
// recomputation from scratch).
func Aggregate(evs []store.Event, cfg *Config) map[Key]*Agg { return aggregate(evs, cfg, Assign) }

// AggregateBase folds evs into base-size aggregates (a batch's deltas).
func AggregateBase(evs []store.Event, cfg *Config) map[Key]*Agg {
	return aggregate(evs, cfg, AssignBase)
}

func aggregate(evs []store.Event, cfg *Config, assign func(*store.Event, *Config, func(Key))) map[Key]*Agg {
	out := map[Key]*Agg{}
	for i := range evs {
		ev := &evs[i]
		p := newPoint(ev)
		assign(ev, cfg, func(k Key) {
			a := out[k]
			if a == nil {
				a = NewAgg()
				out[k] = a
			}
			a.add(&p)
		})
	}
	return out
}

// RollUp merges aggregates of smaller windows into the windows of size
// that hold them.
func RollUp(in map[Key]*Agg, size time.Duration) (map[Key]*Agg, error) {
	out := map[Key]*Agg{}
	for k, a := range in {
		k.Start, k.Size = Start(k.Start, size), size
		o := out[k]
		if o == nil {
			o = NewAgg()
			out[k] = o
		}
		if err := o.Merge(a); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Diff says how two aggregates differ ("" when they agree): counters
// exactly, the lag sum up to float rounding (summation order), the lag
// sketch bucket by bucket (through its quantiles and count) and the
// customer estimate exactly. For checking folded state against a
// recomputation.
func Diff(a, b *Agg) string {
	if b == nil {
		return "missing"
	}
	if a.Count != b.Count || a.Successes != b.Successes || a.Failures != b.Failures || a.Terminal != b.Terminal {
		return fmt.Sprintf("counters %d/%d/%d/%d vs %d/%d/%d/%d", a.Count, a.Successes, a.Failures, a.Terminal,
			b.Count, b.Successes, b.Failures, b.Terminal)
	}
	if d := a.LagSumMs - b.LagSumMs; d > 1e-6*max(1, abs(a.LagSumMs)) || -d > 1e-6*max(1, abs(a.LagSumMs)) {
		return fmt.Sprintf("lag sum %f vs %f", a.LagSumMs, b.LagSumMs)
	}
	if a.Lag.GetCount() != b.Lag.GetCount() {
		return fmt.Sprintf("lag sketch count %v vs %v", a.Lag.GetCount(), b.Lag.GetCount())
	}
	for _, q := range []float64{0, 0.5, 0.9, 0.99, 1} {
		x, _ := a.LagQuantile(q)
		y, _ := b.LagQuantile(q)
		if x != y {
			return fmt.Sprintf("lag q%v %v vs %v", q, x, y)
		}
	}
	if a.Distinct() != b.Distinct() {
		return fmt.Sprintf("distinct customers %d vs %d", a.Distinct(), b.Distinct())
	}
	return ""
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}
