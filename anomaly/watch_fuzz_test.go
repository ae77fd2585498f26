package anomaly_test

import (
	"os"
	"testing"

	"github.com/hookstream/hookstream/anomaly"
	"github.com/hookstream/hookstream/windows"
)

// FuzzParseWatch: a watched-series file, however malformed, is accepted
// as series or refused with an error; ParseWatch never panics and says
// the same of the same bytes.
//
// go test ./anomaly -run '^$' -fuzz FuzzParseWatch -fuzztime 30s
func FuzzParseWatch(f *testing.F) {
	def, err := os.ReadFile("watch.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(def)
	for _, s := range []string{
		"", "series: []", "series: [~]", "series: [{name: v, metric: count, window: 5m}]",
		"series: [{name: v, metric: count, window: 7m, group_by: family}]",
		"series: [{name: v, metric: count, window: 5m, min_history: -1}]",
		"series: [{name: a, source: journeys, metric: abandoned, window: 1h, group_by: journey}]", "{",
	} {
		f.Add([]byte(s))
	}
	wcfg := windows.Config{}.WithDefaults()
	f.Fuzz(func(t *testing.T, b []byte) {
		w, err := anomaly.ParseWatch(b, wcfg)
		_, err2 := anomaly.ParseWatch(b, wcfg)
		if (err == nil) != (err2 == nil) || (err != nil && err.Error() != err2.Error()) {
			t.Fatalf("two parses of the same bytes disagree: %v / %v", err, err2)
		}
		if err == nil && (w == nil || len(w.Series) == 0) {
			t.Fatalf("accepted without series: %q", b)
		}
		if err != nil && err.Error() == "" {
			t.Fatal("an empty error")
		}
	})
}
