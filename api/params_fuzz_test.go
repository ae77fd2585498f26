package api

import (
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// FuzzParams feeds arbitrary query strings to the parameter readers every
// route uses: none panics, a bad parameter is refused naming it, and what
// is accepted is within its bounds (limits in range, from before to,
// durations positive); a cursor this API made decodes to what it holds.
//
// go test ./api -run '^$' -fuzz FuzzParams -fuzztime 30s
func FuzzParams(f *testing.F) {
	for _, seed := range []string{
		"", "limit=10", "limit=-1", "limit=99999999999999999999", "from=2025-06-01&to=2025-06-02",
		"from=2025-06-02&to=2025-06-01", "from=now-1h", "window=5m", "window=0s", "window=-5m",
		"topics=a,,b", "topic=a&topic=b", "cursor=" + encodeCursor("events", map[string]any{"t": 1, "id": "x"}),
		"cursor=%ff%fe", "cursor=eyJrIjoiZXZlbnRzIiwiYXQiOm51bGx9", "period=2025-06-01..2025-06-02", "period=..",
		"state=firing", "state=%00", "bogus=1", "limit=1%00", strings.Repeat("a", 300) + "=1",
	} {
		f.Add(seed)
	}
	allowed := []string{"limit", "from", "to", "window", "topics", "cursor", "period", "state", "topic"}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, raw string) {
		u := &url.URL{RawQuery: raw}
		p := readParams(u, allowed...)
		limit := p.intIn("limit", 100, 1, 1000)
		from, to := p.timeRange(now, 24*time.Hour)
		window := p.duration("window")
		topics := p.list("topics")
		state := p.choice("state", "firing", "firing", "resolved", "all")
		var at map[string]any
		hasCursor := p.cursor("events", &at)
		pf, pt := p.period("period")
		if p.err != nil {
			var pe *paramError
			if !errors.As(p.err, &pe) || pe.param == "" || pe.detail == "" {
				t.Fatalf("%q: error %v does not name the parameter and what is wrong", raw, p.err)
			}
			return
		}
		if limit < 1 || limit > 1000 {
			t.Fatalf("%q: limit %d accepted", raw, limit)
		}
		if !from.Before(to) {
			t.Fatalf("%q: from %s not before to %s accepted", raw, from, to)
		}
		if u.Query().Get("window") != "" && window <= 0 {
			t.Fatalf("%q: window %s accepted", raw, window)
		}
		for _, tp := range topics {
			if tp == "" || tp != strings.TrimSpace(tp) {
				t.Fatalf("%q: topic %q in the list", raw, tp)
			}
		}
		if state != "firing" && state != "resolved" && state != "all" {
			t.Fatalf("%q: state %q accepted", raw, state)
		}
		_ = hasCursor
		if strings.TrimSpace(u.Query().Get("period")) != "" && pt.Before(pf) {
			t.Fatalf("%q: period %s..%s accepted", raw, pf, pt)
		}
	})
}

// FuzzCursorRoundTrip: a cursor the API made is read back as made, and by
// no other listing.
func FuzzCursorRoundTrip(f *testing.F) {
	f.Add("events", int64(1767225600000), "evt-1")
	f.Add("dlq", int64(0), "")
	f.Fuzz(func(t *testing.T, kind string, n int64, id string) {
		if kind == "" || !utf8.ValidString(kind) {
			return // kinds are the API's own constants
		}
		if strings.ContainsRune(id, 0) {
			return // keys come from PostgreSQL text, which holds no NUL (a cursor with one is refused)
		}
		type key struct {
			N  int64  `json:"n"`
			ID string `json:"id"`
		}
		c := encodeCursor(kind, key{n, id})
		p := readParams(&url.URL{RawQuery: url.Values{"cursor": {c}}.Encode()}, "cursor")
		var got key
		if !p.cursor(kind, &got) || p.err != nil {
			t.Fatalf("cursor of %q refused: %v", kind, p.err)
		}
		if got.N != n || (utf8.ValidString(id) && got.ID != id) { // keys come from PostgreSQL text: UTF-8
			t.Fatalf("cursor gave %+v, made from %d %q", got, n, id)
		}
		other := readParams(&url.URL{RawQuery: url.Values{"cursor": {c}}.Encode()}, "cursor")
		if other.cursor(kind+"x", &got) || other.err == nil {
			t.Fatalf("a %q cursor was accepted by another listing", kind)
		}
	})
}
