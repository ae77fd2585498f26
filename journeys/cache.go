package journeys

import (
	"encoding/binary"
	"errors"
	"time"

	"github.com/VictoriaMetrics/fastcache"
)

// instanceCache keeps committed instance rows in memory so that an instance
// that progresses again is not read back from PostgreSQL. Rows are kept
// encoded in fastcache's off-heap chunks, not as Go values: a cache of
// hundreds of thousands of rows full of pointers made the garbage collector
// the fold's largest cost.
type instanceCache struct {
	c *fastcache.Cache
}

func newInstanceCache(maxBytes int) *instanceCache {
	return &instanceCache{c: fastcache.New(maxBytes)}
}

func cacheKey(dst []byte, k instKey) []byte {
	dst = append(dst, k.journey...)
	dst = append(dst, 0)
	return append(dst, k.subject...)
}

// get returns the cached row of k, if any.
func (c *instanceCache) get(k instKey, buf []byte) (*Row, []byte, bool) {
	key := cacheKey(buf[:0], k)
	v, ok := c.c.HasGet(key[len(key):], key)
	if !ok {
		return nil, key, false
	}
	r, err := decodeRow(k, v)
	if err != nil { // cannot happen for what put wrote; a miss then
		return nil, v, false
	}
	return r, v, true
}

// put caches r (as committed at r.Version).
func (c *instanceCache) put(r *Row, buf []byte) []byte {
	key := cacheKey(buf[:0], instKey{r.Journey, r.Subject})
	v := encodeRow(key[len(key):], r)
	c.c.Set(key, v)
	return v
}

func (c *instanceCache) del(k instKey, buf []byte) []byte {
	key := cacheKey(buf[:0], k)
	c.c.Del(key)
	return key
}

// The encoding: version, status, current step, entered, last, deadline,
// abandoned, conflict, entry topic, then the steps (time, event). Times are
// microseconds since the epoch (PostgreSQL's precision); an optional value
// is a presence byte first.

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendOptString(b []byte, s *string) []byte {
	if s == nil {
		return append(b, 0)
	}
	return appendString(append(b, 1), *s)
}

func appendOptTime(b []byte, t *time.Time) []byte {
	if t == nil {
		return append(b, 0)
	}
	return binary.AppendVarint(append(b, 1), t.UnixMicro())
}

func encodeRow(b []byte, r *Row) []byte {
	b = binary.AppendVarint(b, r.Version)
	b = appendString(b, r.Status)
	b = appendOptString(b, r.CurrentStep)
	b = binary.AppendVarint(b, r.EnteredAt.UnixMicro())
	b = binary.AppendVarint(b, r.LastAt.UnixMicro())
	b = appendOptTime(b, r.Deadline)
	b = appendOptTime(b, r.AbandonedAt)
	b = appendOptString(b, r.Conflict)
	b = appendOptString(b, r.EntryTopic)
	b = binary.AppendUvarint(b, uint64(len(r.StepAt)))
	for i, at := range r.StepAt {
		var ev *string
		if i < len(r.StepEvent) {
			ev = r.StepEvent[i]
		}
		if at == nil || ev == nil {
			b = append(b, 0)
			continue
		}
		b = binary.AppendVarint(append(b, 1), at.UnixMicro())
		b = appendString(b, *ev)
	}
	return b
}

var errCorrupt = errors.New("journey cache: corrupt entry")

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err, d.b = errCorrupt, nil
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err, d.b = errCorrupt, nil
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) present() bool {
	if len(d.b) == 0 {
		d.err = errCorrupt
		return false
	}
	p := d.b[0] == 1
	d.b = d.b[1:]
	return p
}

func (d *decoder) string() string {
	n := d.uvarint()
	if uint64(len(d.b)) < n {
		d.err, d.b = errCorrupt, nil
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

func (d *decoder) optString() *string {
	if !d.present() {
		return nil
	}
	s := d.string()
	return &s
}

func (d *decoder) time() time.Time { return time.UnixMicro(d.varint()).UTC() }

func (d *decoder) optTime() *time.Time {
	if !d.present() {
		return nil
	}
	t := d.time()
	return &t
}

func decodeRow(k instKey, b []byte) (*Row, error) {
	d := &decoder{b: b}
	r := &Row{Journey: k.journey, Subject: k.subject}
	r.Version = d.varint()
	r.Status = d.string()
	r.CurrentStep = d.optString()
	r.EnteredAt = d.time()
	r.LastAt = d.time()
	r.Deadline = d.optTime()
	r.AbandonedAt = d.optTime()
	r.Conflict = d.optString()
	r.EntryTopic = d.optString()
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		return nil, errCorrupt
	}
	r.StepAt, r.StepEvent = make([]*time.Time, n), make([]*string, n)
	ats, evs := make([]time.Time, n), make([]string, n) // one allocation each, not one per step
	for i := range r.StepAt {
		if d.present() {
			ats[i], evs[i] = d.time(), d.string()
			r.StepAt[i], r.StepEvent[i] = &ats[i], &evs[i]
		}
	}
	if d.err != nil || len(d.b) != 0 {
		return nil, errCorrupt
	}
	return r, nil
}
