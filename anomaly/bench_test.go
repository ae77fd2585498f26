package anomaly

import (
	"testing"
	"time"
)

// benchScore scores one 5m series with a daily cycle, one point per
// iteration: ns/op is the cost per point per series.
func benchScore(b *testing.B, name string) {
	step := 5 * time.Minute
	vals := series(14*288, step, 3, daily(step))
	d, err := New(name)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		v := vals[i%len(vals)].Value
		if i%997 == 500 {
			v += 80 // an occasional spike, so reasons get written too
		}
		d.Score(Point{Time: t0.Add(time.Duration(i) * step), Value: v})
	}
}

func BenchmarkScoreRobustZ(b *testing.B)     { benchScore(b, "robust-z") }
func BenchmarkScoreSeasonal(b *testing.B)    { benchScore(b, "seasonal") }
func BenchmarkScoreHoltWinters(b *testing.B) { benchScore(b, "holt-winters") }
func BenchmarkScoreEnsemble(b *testing.B)    { benchScore(b, "ensemble") }
