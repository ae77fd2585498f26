package journeys

import (
	"testing"
	"time"
)

func TestArrayLiteralsQuoteEverything(t *testing.T) {
	a, b := `plain`, `with "quote" and \backslash`
	if got, want := textArrayLiteral([]*string{&a, nil, &b}), `{"plain",NULL,"with \"quote\" and \\backslash"}`; got != want {
		t.Errorf("text literal %s, want %s", got, want)
	}
	// Not plain ASCII: NUL and invalid UTF-8 become U+FFFD (PostgreSQL text
	// holds neither), other characters pass as they are.
	c := "a\x00b\xffc ü\t"
	if got, want := textArrayLiteral([]*string{&c}), "{\"a\uFFFDb\uFFFDc ü\t\"}"; got != want {
		t.Errorf("text literal %q, want %q", got, want)
	}
	ts := time.Date(2026, 11, 28, 10, 0, 0, 123456000, time.FixedZone("x", 3600))
	if got, want := timeArrayLiteral([]*time.Time{nil, &ts}), `{NULL,"2026-11-28 09:00:00.123456Z"}`; got != want {
		t.Errorf("time literal %s, want %s", got, want)
	}
}
