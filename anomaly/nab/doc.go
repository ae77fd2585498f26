// Package nab measures anomaly detectors the way the Numenta Anomaly
// Benchmark (NAB v1.1) does: it reads NAB's layout (data/<category>/<file>.csv
// and labels/combined_windows.json), runs a fresh detector online over every
// file, and scores the anomaly scores with NAB's rules: probationary period,
// scaled-sigmoid credit for the earliest detection in a window, distance-
// scaled false positives, one threshold per profile swept over the whole
// corpus, and normalisation between the null and the perfect detector.
//
// It also holds NAB's windowed-Gaussian baseline, implemented as NAB does,
// so hookstream's detectors are compared with a number NAB publishes.
//
// It is an evaluation harness, not a detector library: hookstream's own
// detectors live in package anomaly, and nothing here registers with it.
package nab
