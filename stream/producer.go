package stream

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// appendScript stores a batch of events, each at most once: for every event
// whose id its partition has not seen, it XADDs the entry to the partition
// stream and marks the id seen with the new entry id, in one atomic step, so
// an id is never marked seen without being stored. Batching many events into
// one call matters: Redis's per-call Lua overhead is larger than the XADD
// itself (docs/benchmarks.md).
//
// KEYS holds one (stream, seen marker) pair per event. ARGV[1] is the seen TTL
// in seconds, ARGV[2] the number of fields per entry (f), ARGV[3..f+2] the
// field names, then f values per event. It returns, per event, the entry id
// prefixed "+" when stored now or "=" when the event was already stored.
var appendScript = redis.NewScript(`
local ttl = ARGV[1]
local f = tonumber(ARGV[2])
local out = {}
local args = {}
for j = 1, f do args[2*j-1] = ARGV[2+j] end
local base = 2 + f
for i = 1, #KEYS, 2 do
  local seen = KEYS[i+1]
  local prev = redis.call('GET', seen)
  if prev then
    out[#out+1] = '=' .. prev
  else
    for j = 1, f do args[2*j] = ARGV[base+j] end
    local id = redis.call('XADD', KEYS[i], '*', unpack(args))
    redis.call('SET', seen, id, 'EX', ttl)
    out[#out+1] = '+' .. id
  end
  base = base + f
end
return out
`)

// Entry is one event on its way into a partition stream.
type Entry struct {
	Partition int
	ID        string   // dedup key: the lower-cased Dwolla event id
	Fields    []string // field/value pairs stored in the stream entry (even length)
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
//
// On a single Redis server one script call carries the whole batch. On Redis
// Cluster a script may only touch keys of one slot, so there the batch is
// split by partition (each partition's keys share the hash tag {p}).
type Producer struct {
	rdb          redis.UniversalClient
	keys         Keys
	ttl          string
	perPartition bool
}

// NewProducer returns a producer writing under keys; seenTTL is how long an
// event id is remembered for dedup (Dwolla retries for 72 h).
func NewProducer(rdb redis.UniversalClient, keys Keys, seenTTL time.Duration) *Producer {
	secs := int64(seenTTL / time.Second)
	if secs < 1 {
		secs = 1
	}
	_, cluster := rdb.(*redis.ClusterClient)
	return &Producer{rdb: rdb, keys: keys, ttl: strconv.FormatInt(secs, 10), perPartition: cluster}
}

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
	// Group into script calls: one group, or one per partition on a cluster;
	// arrival order is kept within a group.
	var groups [][]int
	var index map[int]int // partition -> group, on a cluster
	if p.perPartition {
		index = make(map[int]int)
	}
	for i := range entries {
		pt := entries[i].Partition
		if pt < 0 || pt >= p.keys.Partitions {
			res[i] = Result{Err: fmt.Errorf("partition %d out of range [0,%d); was the partition count changed?", pt, p.keys.Partitions)}
			continue
		}
		g := 0
		if p.perPartition {
			var ok bool
			if g, ok = index[pt]; !ok {
				g = len(groups)
				index[pt] = g
			}
		}
		if g == len(groups) {
			groups = append(groups, nil)
		}
		groups[g] = append(groups[g], i)
	}
	pipe := p.rdb.Pipeline()
	var cmds []*redis.Cmd
	var calls [][]int
	for _, g := range groups {
		for _, run := range splitByShape(entries, g) {
			cmds = append(cmds, p.evalRun(ctx, pipe, entries, run))
			calls = append(calls, run)
		}
	}
	if len(cmds) == 0 {
		return nil
	}
	_, err := pipe.Exec(ctx)
	if err != nil && !isReplyError(err) {
		return err // transport failure: nothing below is meaningful
	}
	for c, cmd := range cmds {
		vals, err := cmd.StringSlice()
		if err == nil && len(vals) != len(calls[c]) {
			err = fmt.Errorf("append script returned %d results for %d events", len(vals), len(calls[c]))
		}
		if err != nil {
			if isNoScript(err) {
				return err
			}
			for _, i := range calls[c] {
				res[i] = Result{Err: err}
			}
			continue
		}
		for k, i := range calls[c] {
			v := vals[k]
			res[i] = Result{EntryID: v[1:], Duplicate: v[0] == '='}
		}
	}
	return nil
}

// evalRun queues one script call for the entries of run, which share their
// field names.
func (p *Producer) evalRun(ctx context.Context, pipe redis.Pipeliner, entries []Entry, run []int) *redis.Cmd {
	first := &entries[run[0]]
	nf := len(first.Fields) / 2
	keys := make([]string, 0, 2*len(run))
	args := make([]any, 0, 2+nf+nf*len(run))
	args = append(args, p.ttl, nf)
	for j := range nf {
		args = append(args, first.Fields[2*j])
	}
	for _, i := range run {
		e := &entries[i]
		keys = append(keys, p.keys.Stream(e.Partition), p.keys.Seen(e.Partition, e.ID))
		for j := range nf {
			args = append(args, e.Fields[2*j+1])
		}
	}
	return appendScript.EvalSha(ctx, pipe, keys, args...)
}

// splitByShape splits the indexes of one partition into runs of entries with
// the same field names, so one script call can share them. A receiver's
// entries all have one shape, so this is normally a single run.
func splitByShape(entries []Entry, idx []int) [][]int {
	var runs [][]int
	start := 0
	for k := 1; k <= len(idx); k++ {
		if k == len(idx) || !sameNames(entries[idx[start]].Fields, entries[idx[k]].Fields) {
			runs = append(runs, idx[start:k])
			start = k
		}
	}
	return runs
}

func sameNames(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for j := 0; j < len(a); j += 2 {
		if a[j] != b[j] {
			return false
		}
	}
	return true
}

// isNoScript reports that Redis does not have the script cached (it
// restarted, or SCRIPT FLUSH), however go-redis delivers it.
func isNoScript(err error) bool {
	return errors.Is(err, redis.ErrNoScript) || redis.HasErrorPrefix(err, "NOSCRIPT")
}

// isReplyError tells a Redis error reply (the server answered, e.g. NOSCRIPT or
// OOM) from a transport failure.
func isReplyError(err error) bool {
	var re redis.Error
	return errors.As(err, &re) && !errors.Is(err, context.DeadlineExceeded)
}
