package stream

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// appendScript stores an event at most once: if the partition has not seen the
// id, it XADDs the entry and marks the id seen with the new entry id, in one
// atomic step, so an id is never marked seen without being stored. It returns
// {1, entryID} for a new event and {0, entryID} for a duplicate.
//
// KEYS[1] seen marker, KEYS[2] partition stream; ARGV[1] seen TTL in seconds,
// ARGV[2..] the entry's field/value pairs.
var appendScript = redis.NewScript(`
local prev = redis.call('GET', KEYS[1])
if prev then return {0, prev} end
local id = redis.call('XADD', KEYS[2], '*', unpack(ARGV, 2))
redis.call('SET', KEYS[1], id, 'EX', ARGV[1])
return {1, id}
`)

// Entry is one event on its way into a partition stream.
type Entry struct {
	Partition int
	ID        string   // dedup key: the lower-cased Dwolla event id
	Fields    []string // field/value pairs stored in the stream entry
}

// Result is the outcome of appending one Entry.
type Result struct {
	EntryID   string // the stream entry id that holds the event
	Duplicate bool   // the event was already stored; nothing was written
	Err       error  // this entry failed (the others in its batch may not have)
}

// Producer appends entries with the atomic dedup step. AppendBatch sends a
// whole batch in one pipelined round trip; callers that serve many concurrent
// requests group them into batches (see ingest's group commit).
type Producer struct {
	rdb  redis.UniversalClient
	keys Keys
	ttl  string
}

// NewProducer returns a producer writing under keys; seenTTL is how long an
// event id is remembered for dedup (Dwolla retries for 72 h).
func NewProducer(rdb redis.UniversalClient, keys Keys, seenTTL time.Duration) *Producer {
	secs := int64(seenTTL / time.Second)
	if secs < 1 {
		secs = 1
	}
	return &Producer{rdb: rdb, keys: keys, ttl: strconv.FormatInt(secs, 10)}
}

// Keys returns the key names the producer writes to.
func (p *Producer) Keys() Keys { return p.keys }

// Load makes sure Redis has the script cached, so pipelined EVALSHA succeeds.
func (p *Producer) Load(ctx context.Context) error {
	return appendScript.Load(ctx, p.rdb).Err()
}

// AppendBatch runs the dedup-and-append step for every entry in one pipeline
// and fills res (len(res) must equal len(entries)). The returned error is set
// when the round trip itself failed (Redis unreachable, timeout): then no
// result can be trusted and the caller must keep the entries elsewhere; entries
// may or may not have been stored, and a retry is safe because of the dedup.
func (p *Producer) AppendBatch(ctx context.Context, entries []Entry, res []Result) error {
	err := p.appendOnce(ctx, entries, res)
	if err != nil && isNoScript(err) {
		// Redis restarted or SCRIPT FLUSH: load and retry once; dedup makes it safe.
		if lerr := p.Load(ctx); lerr != nil {
			return fmt.Errorf("reload append script: %w", lerr)
		}
		err = p.appendOnce(ctx, entries, res)
	}
	return err
}

func (p *Producer) appendOnce(ctx context.Context, entries []Entry, res []Result) error {
	cmds := make([]*redis.Cmd, len(entries))
	pipe := p.rdb.Pipeline()
	for i := range entries {
		e := &entries[i]
		args := make([]any, 0, 1+len(e.Fields))
		args = append(args, p.ttl)
		for _, f := range e.Fields {
			args = append(args, f)
		}
		cmds[i] = appendScript.EvalSha(ctx, pipe, []string{p.keys.Seen(e.Partition, e.ID), p.keys.Stream(e.Partition)}, args...)
	}
	_, err := pipe.Exec(ctx)
	if err != nil && !isReplyError(err) {
		return err // transport failure: nothing below is meaningful
	}
	for i, c := range cmds {
		res[i] = parseResult(c)
		if res[i].Err != nil && isNoScript(res[i].Err) {
			return res[i].Err
		}
	}
	return nil
}

func parseResult(c *redis.Cmd) Result {
	v, err := c.Slice()
	if err != nil {
		return Result{Err: err}
	}
	if len(v) != 2 {
		return Result{Err: fmt.Errorf("append script returned %d values, want 2", len(v))}
	}
	n, _ := v[0].(int64)
	id, _ := v[1].(string)
	return Result{EntryID: id, Duplicate: n == 0}
}

func isNoScript(err error) bool {
	return err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT")
}

// isReplyError tells a Redis error reply (the server answered, e.g. NOSCRIPT or
// OOM) from a transport failure.
func isReplyError(err error) bool {
	var re redis.Error
	return errors.As(err, &re) && !errors.Is(err, context.DeadlineExceeded)
}
