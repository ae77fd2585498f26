package nab

import (
	"fmt"
	"maps"
	"math"
	"slices"

	"github.com/hookstream/hookstream/anomaly"
)

// WindowedGaussian is NAB's windowed-Gaussian baseline
// (nab/detectors/gaussian/windowedGaussian_detector.py): the score of a
// value is one minus the Gaussian tail probability of its distance from the
// mean of a trailing window. The window grows to 6,400 values, refreshing
// mean and deviation at every value; once full, it slides by 100 values at
// a time and refreshes only then. The first value scores 0.
//
// Mean and deviation are summed the way numpy sums (pairwise, in blocks of
// eight), so scores equal NAB's to the last bit where it matters: NAB's
// threshold for this detector is 1.0, a score that is 1 only after rounding.
type WindowedGaussian struct {
	window, step []float64
	mean, std    float64
	scratch      []float64
}

// Window and step of NAB's windowed Gaussian ("tuned to give best
// performance on NAB").
const (
	gaussianWindow = 6400
	gaussianStep   = 100
)

// NewWindowedGaussian makes a fresh windowed-Gaussian detector.
func NewWindowedGaussian() anomaly.Detector {
	return &WindowedGaussian{mean: 0, std: 1}
}

// Score scores p against the window so far, then adds p to it.
func (d *WindowedGaussian) Score(p anomaly.Point) anomaly.Result {
	res := anomaly.Result{Expected: math.NaN(), Low: math.NaN(), High: math.NaN()}
	if len(d.window) > 0 {
		tail := normalProbability(p.Value, d.mean, d.std)
		res.Score = 1 - tail
		res.Expected = d.mean
		res.Low, res.High = d.mean-3*d.std, d.mean+3*d.std
		if res.Score > 0.997 {
			res.Reason = fmt.Sprintf("= %.4g, expected %.4g (%.4g–%.4g) from the mean and deviation of the last %d values",
				p.Value, d.mean, res.Low, res.High, len(d.window))
		}
	}
	if len(d.window) < gaussianWindow {
		d.window = append(d.window, p.Value)
		d.update()
	} else {
		d.step = append(d.step, p.Value)
		if len(d.step) == gaussianStep {
			d.window = append(d.window[:0], d.window[gaussianStep:]...)
			d.window = append(d.window, d.step...)
			d.step = d.step[:0]
			d.update()
		}
	}
	return res
}

// update is numpy.mean and numpy.std (population) of the window, with a
// zero deviation replaced by 1e-6 as NAB does.
func (d *WindowedGaussian) update() {
	n := float64(len(d.window))
	d.mean = pairwiseSum(d.window) / n
	d.scratch = slices.Grow(d.scratch[:0], len(d.window))[:len(d.window)]
	for i, v := range d.window {
		x := v - d.mean
		d.scratch[i] = x * x
	}
	d.std = math.Sqrt(pairwiseSum(d.scratch) / n)
	if d.std == 0 {
		d.std = 0.000001
	}
}

// normalProbability is the probability of a sample beyond x (on x's side of
// the mean): the Q-function, written as NAB writes it.
func normalProbability(x, mean, std float64) float64 {
	if x < mean {
		x = 2*mean - x // the Gaussian is symmetric: flip to the upper tail
	}
	z := (x - mean) / std
	return 0.5 * math.Erfc(z/math.Sqrt2)
}

// pairwiseSum sums as numpy's pairwise_sum for float64 does (numpy's
// add.reduce over a contiguous array): plainly below 8 values, in eight
// interleaved accumulators up to 128, else the two halves (cut at a
// multiple of 8) recursively.
func pairwiseSum(a []float64) float64 {
	n := len(a)
	switch {
	case n < 8:
		res := 0.0
		for _, v := range a {
			res += v
		}
		return res
	case n <= 128:
		var r [8]float64
		copy(r[:], a[:8])
		i := 8
		for ; i < n-n%8; i += 8 {
			for j := range r {
				r[j] += a[i+j]
			}
		}
		res := ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
		for ; i < n; i++ {
			res += a[i]
		}
		return res
	default:
		n2 := n / 2
		n2 -= n2 % 8
		return pairwiseSum(a[:n2]) + pairwiseSum(a[n2:])
	}
}

// baselines are NAB's baselines that this package implements, by the name
// the CLI selects them with.
var baselines = map[string]anomaly.Factory{
	"windowed-gaussian": NewWindowedGaussian,
}

// Baseline is the NAB baseline called name ("windowed-gaussian").
func Baseline(name string) (anomaly.Factory, bool) {
	f, ok := baselines[name]
	return f, ok
}

// BaselineNames lists the baselines, sorted.
func BaselineNames() []string {
	return slices.Sorted(maps.Keys(baselines))
}
