package api

import (
	"cmp"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hookstream/hookstream/internal/cli"
)

// params reads a request's query parameters. It refuses a parameter the
// route does not take (a misspelt filter must not silently widen an
// answer), and the first bad parameter wins: later reads return zero
// values and err reports it.
type params struct {
	q   url.Values
	err error
}

func readParams(u *url.URL, allowed ...string) *params {
	p := &params{q: u.Query()}
	for name, vs := range p.q {
		if name == "" {
			p.err = badParam("(unnamed)", "a parameter without a name (\"=value\" or a stray \"&=\"); write name=value")
			return p
		}
		if !slices.Contains(allowed, name) {
			p.err = badParam(name, "unknown parameter; this route takes "+cmp.Or(strings.Join(allowed, ", "), "none"))
			return p
		}
		if len(vs) > 1 {
			p.err = badParam(name, "given more than once; give one value (lists are comma-separated)")
			return p
		}
	}
	return p
}

func (p *params) fail(name, detail string) {
	if p.err == nil {
		p.err = badParam(name, detail)
	}
}

func (p *params) str(name string) string {
	if p.err != nil {
		return ""
	}
	return strings.TrimSpace(p.q.Get(name))
}

// list is a comma-separated list, empty items dropped.
func (p *params) list(name string) []string {
	var out []string
	for _, v := range strings.Split(p.str(name), ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

func (p *params) time(name string) time.Time {
	s := p.str(name)
	if s == "" {
		return time.Time{}
	}
	t, err := cli.ParseTime(s)
	if err != nil {
		p.fail(name, err.Error())
	}
	return t
}

func (p *params) duration(name string) time.Duration {
	s := p.str(name)
	if s == "" {
		return 0
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		p.fail(name, strconv.Quote(s)+" is not a duration; use 1m, 5m, 1h…")
	}
	return d
}

// intIn is an integer in [lo, hi], def when absent.
func (p *params) intIn(name string, def, lo, hi int) int {
	s := p.str(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < lo || n > hi {
		p.fail(name, strconv.Quote(s)+" is not a whole number from "+strconv.Itoa(lo)+" to "+strconv.Itoa(hi))
		return def
	}
	return n
}

// choice is one of choices, def when absent.
func (p *params) choice(name, def string, choices ...string) string {
	s := p.str(name)
	if s == "" {
		return def
	}
	if !slices.Contains(choices, s) {
		p.fail(name, strconv.Quote(s)+" is not one of "+strings.Join(choices, ", "))
		return def
	}
	return s
}

// cursor decodes an opaque page cursor of kind into v (a pointer); it
// reports whether one was given.
func (p *params) cursor(kind string, v any) bool {
	s := p.str("cursor")
	if s == "" {
		return false
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	var c struct {
		Kind string          `json:"k"`
		At   json.RawMessage `json:"at"`
	}
	if err == nil {
		err = json.Unmarshal(b, &c)
	}
	if err == nil && c.Kind != kind {
		p.fail("cursor", "this cursor belongs to another listing ("+c.Kind+"); pass the next_cursor of this one")
		return false
	}
	if err == nil && strings.Contains(string(c.At), `\u0000`) {
		// No key this API gives holds a NUL (PostgreSQL's text cannot).
		err = errors.New("NUL in a cursor")
	}
	if err == nil {
		err = json.Unmarshal(c.At, v)
	}
	if err != nil {
		p.fail("cursor", "not a cursor this API gave; pass next_cursor from the previous page unchanged")
		return false
	}
	return true
}

// encodeCursor makes the opaque cursor of kind holding v.
func encodeCursor(kind string, v any) string {
	at, _ := json.Marshal(v)
	b, _ := json.Marshal(struct {
		Kind string          `json:"k"`
		At   json.RawMessage `json:"at"`
	}{kind, at})
	return base64.RawURLEncoding.EncodeToString(b)
}

// period reads a FROM..TO parameter (required).
func (p *params) period(name string) (from, to time.Time) {
	s := p.str(name)
	if p.err != nil {
		return
	}
	from, to, err := cli.ParsePeriod(s)
	if err != nil {
		p.fail(name, err.Error())
	}
	return from, to
}

// timeRange reads from and to: to defaults to now, from to to minus def.
func (p *params) timeRange(now time.Time, def time.Duration) (from, to time.Time) {
	from, to = p.time("from"), p.time("to")
	if to.IsZero() {
		to = now
	}
	if from.IsZero() {
		from = to.Add(-def)
	}
	if p.err == nil && !from.Before(to) {
		p.fail("from", from.Format(time.RFC3339)+" is not before to "+to.Format(time.RFC3339))
	}
	return from, to
}

// page cuts items, read with a limit one higher than asked, to limit, and
// gives the cursor of the next page (nil when there is none): the key of
// the last item kept.
func page[T any](items []T, limit int, kind string, key func(T) any) ([]T, *string) {
	if len(items) <= limit {
		return items, nil
	}
	next := encodeCursor(kind, key(items[limit-1]))
	return items[:limit], &next
}
