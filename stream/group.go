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

// Message is one stream entry delivered to a consumer of a group.
type Message struct {
	Partition int
	ID        string         // stream entry id, "<ms>-<seq>"
	Values    map[string]any // nil when the entry was trimmed or deleted while pending
	// Deliveries is how many times the group has delivered the entry,
	// this delivery included (1 for a first delivery).
	Deliveries int64
}

// Deleted reports whether the entry vanished (trimmed) while it was pending:
// there is nothing to process, only an acknowledgement to make.
func (m Message) Deleted() bool { return m.Values == nil }

// Group is one consumer group over every partition stream of a namespace.
// It is Redis plumbing only: reading, claiming, acknowledging, trimming and
// reporting; what a consumer does with an entry is the caller's business.
type Group struct {
	rdb  redis.UniversalClient
	keys Keys
	name string
}

// NewGroup returns the consumer group name over the partitions of keys.
func NewGroup(rdb redis.UniversalClient, keys Keys, name string) *Group {
	return &Group{rdb: rdb, keys: keys, name: name}
}

// Name is the group's name.
func (g *Group) Name() string { return g.name }

// Keys are the group's key names.
func (g *Group) Keys() Keys { return g.keys }

// Ensure creates the group on every partition stream (and the stream, if it
// does not exist yet), starting at the stream's first entry so nothing
// appended before the first processor started is missed.
func (g *Group) Ensure(ctx context.Context) error {
	for p := range g.keys.Partitions {
		err := g.rdb.XGroupCreateMkStream(ctx, g.keys.Stream(p), g.name, "0").Err()
		if err != nil && !redis.HasErrorPrefix(err, "BUSYGROUP") {
			return fmt.Errorf("create consumer group %q on %s: %w", g.name, g.keys.Stream(p), err)
		}
	}
	return nil
}

// Read returns up to count new entries per partition for consumer, waiting
// up to block when there are none (block < 0: do not wait). partitions must
// share a hash slot on Redis Cluster; there, call Read once per partition.
func (g *Group) Read(ctx context.Context, consumer string, partitions []int, count int64, block time.Duration) ([]Message, error) {
	return g.read(ctx, consumer, partitions, ">", count, block)
}

// ReadOwnPending returns the entries already delivered to consumer and not yet
// acknowledged (after a restart under the same consumer name), oldest first.
func (g *Group) ReadOwnPending(ctx context.Context, consumer string, partitions []int, count int64) ([]Message, error) {
	msgs, err := g.read(ctx, consumer, partitions, "0", count, -1)
	if err != nil || len(msgs) == 0 {
		return msgs, err
	}
	return msgs, g.fillDeliveries(ctx, consumer, msgs)
}

func (g *Group) read(ctx context.Context, consumer string, partitions []int, start string, count int64, block time.Duration) ([]Message, error) {
	streams := make([]string, 2*len(partitions))
	for i, p := range partitions {
		streams[i] = g.keys.Stream(p)
		streams[len(partitions)+i] = start
	}
	res, err := g.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{
		Group: g.name, Consumer: consumer, Streams: streams, Count: count, Block: block,
	}).Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		if redis.HasErrorPrefix(err, "NOGROUP") {
			return nil, fmt.Errorf("read group %q: %w (run the processor once, or Group.Ensure, to create it)", g.name, err)
		}
		return nil, fmt.Errorf("read group %q: %w", g.name, err)
	}
	var out []Message
	for _, s := range res {
		p, ok := g.partitionOf(s.Stream)
		if !ok {
			return nil, fmt.Errorf("read group %q: unexpected stream %q", g.name, s.Stream)
		}
		for _, m := range s.Messages {
			out = append(out, Message{Partition: p, ID: m.ID, Values: m.Values, Deliveries: 1})
		}
	}
	return out, nil
}

func (g *Group) partitionOf(key string) (int, bool) {
	// "<ns>:{<p>}:events"
	open := strings.LastIndexByte(key, '{')
	end := strings.LastIndexByte(key, '}')
	if open < 0 || end < open {
		return 0, false
	}
	p, err := strconv.Atoi(key[open+1 : end])
	if err != nil || p < 0 || p >= g.keys.Partitions || g.keys.Stream(p) != key {
		return 0, false
	}
	return p, true
}

// Claim takes over, for consumer, entries of partition p that another
// consumer has held unacknowledged for at least minIdle (it died, or is
// stuck), scanning the whole pending list from its start. It also returns
// the ids of pending entries that no longer exist in the stream (trimmed or
// deleted while pending; Redis drops them from the pending list as it
// reports them). On an error it still returns what it claimed before it:
// those entries are this consumer's now.
func (g *Group) Claim(ctx context.Context, consumer string, p int, minIdle time.Duration, count int64) (msgs []Message, deleted []string, err error) {
	start := "0-0"
	for {
		got, next, del, err := g.rdb.XAutoClaimWithDeleted(ctx, &redis.XAutoClaimArgs{
			Stream: g.keys.Stream(p), Group: g.name, Consumer: consumer, MinIdle: minIdle, Start: start, Count: count,
		}).Result()
		if err != nil {
			err = fmt.Errorf("claim idle entries of %s: %w", g.keys.Stream(p), err)
			break
		}
		deleted = append(deleted, del...)
		for _, m := range got {
			msgs = append(msgs, Message{Partition: p, ID: m.ID, Values: m.Values})
		}
		if next == "0-0" || int64(len(msgs)) >= count {
			break
		}
		start = next
	}
	if len(msgs) > 0 {
		if ferr := g.fillDeliveries(ctx, consumer, msgs); ferr != nil && err == nil {
			err = ferr
		}
	}
	return msgs, deleted, err
}

// Touch resets the idle time of msgs, pending for consumer, without
// raising their delivery counts (XCLAIM … JUSTID to itself), so that a
// consumer holding a slow batch does not see it claimed by others.
func (g *Group) Touch(ctx context.Context, consumer string, msgs []Message) error {
	byPart := map[int][]string{}
	for _, m := range msgs {
		byPart[m.Partition] = append(byPart[m.Partition], m.ID)
	}
	_, err := g.rdb.Pipelined(ctx, func(pipe redis.Pipeliner) error {
		for p, ids := range byPart {
			pipe.XClaimJustID(ctx, &redis.XClaimArgs{Stream: g.keys.Stream(p), Group: g.name, Consumer: consumer, MinIdle: 0, Messages: ids})
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("keep %d held entries: %w", len(msgs), err)
	}
	return nil
}

// IsNoGroup reports whether err says the group (or its stream) does not
// exist, as after a Redis restart without persistence; Ensure recreates it.
func IsNoGroup(err error) bool {
	return redis.HasErrorPrefix(err, "NOGROUP")
}

// isNoSuchKey reports the error XINFO gives for a stream that does not exist
// ("ERR no such key").
func isNoSuchKey(err error) bool { return redis.HasErrorPrefix(err, "no such key") }

// fillDeliveries sets the delivery counts of msgs, all pending for consumer.
func (g *Group) fillDeliveries(ctx context.Context, consumer string, msgs []Message) error {
	byPart := map[int][]int{}
	for i, m := range msgs {
		byPart[m.Partition] = append(byPart[m.Partition], i)
	}
	for p, idx := range byPart {
		lo, hi := msgs[idx[0]].ID, msgs[idx[0]].ID
		for _, i := range idx[1:] {
			if CompareIDs(msgs[i].ID, lo) < 0 {
				lo = msgs[i].ID
			}
			if CompareIDs(msgs[i].ID, hi) > 0 {
				hi = msgs[i].ID
			}
		}
		ents, err := g.rdb.XPendingExt(ctx, &redis.XPendingExtArgs{
			Stream: g.keys.Stream(p), Group: g.name, Start: lo, End: hi, Count: int64(len(idx)) * 4, Consumer: consumer,
		}).Result()
		if err != nil {
			return fmt.Errorf("read delivery counts of %s: %w", g.keys.Stream(p), err)
		}
		count := make(map[string]int64, len(ents))
		for _, e := range ents {
			count[e.ID] = e.RetryCount
		}
		for _, i := range idx {
			if n, ok := count[msgs[i].ID]; ok {
				msgs[i].Deliveries = n
			} else {
				msgs[i].Deliveries = 1
			}
		}
	}
	return nil
}

// Ack acknowledges msgs, one pipelined round trip for all partitions.
func (g *Group) Ack(ctx context.Context, msgs []Message) error {
	if len(msgs) == 0 {
		return nil
	}
	byPart := map[int][]string{}
	for _, m := range msgs {
		byPart[m.Partition] = append(byPart[m.Partition], m.ID)
	}
	_, err := g.rdb.Pipelined(ctx, func(pipe redis.Pipeliner) error {
		for p, ids := range byPart {
			pipe.XAck(ctx, g.keys.Stream(p), g.name, ids...)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("acknowledge %d entries: %w", len(msgs), err)
	}
	return nil
}

// Trim removes from partition p the entries older than cutoff, but never an
// entry the group has not acknowledged or not yet delivered: the trim point
// is the earliest of cutoff, the oldest pending entry and the first
// undelivered entry. It returns how many entries were removed.
func (g *Group) Trim(ctx context.Context, p int, cutoff time.Time) (int64, error) {
	key := g.keys.Stream(p)
	minID := strconv.FormatInt(cutoff.UnixMilli(), 10) + "-0"
	gi, err := g.info(ctx, p)
	if err != nil {
		return 0, err
	}
	if gi == nil {
		return 0, nil // no group yet: nothing has been processed, keep everything
	}
	if next := NextID(gi.LastDeliveredID); CompareIDs(next, minID) < 0 {
		minID = next
	}
	if gi.Pending > 0 {
		sum, err := g.rdb.XPending(ctx, key, g.name).Result()
		if err != nil {
			return 0, fmt.Errorf("read pending summary of %s: %w", key, err)
		}
		if sum.Count > 0 && CompareIDs(sum.Lower, minID) < 0 {
			minID = sum.Lower
		}
	}
	n, err := g.rdb.XTrimMinID(ctx, key, minID).Result()
	if err != nil {
		return 0, fmt.Errorf("trim %s to %s: %w", key, minID, err)
	}
	return n, nil
}

func (g *Group) info(ctx context.Context, p int) (*redis.XInfoGroup, error) {
	groups, err := g.rdb.XInfoGroups(ctx, g.keys.Stream(p)).Result()
	if err != nil {
		if isNoSuchKey(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("read groups of %s: %w", g.keys.Stream(p), err)
	}
	for i := range groups {
		if groups[i].Name == g.name {
			return &groups[i], nil
		}
	}
	return nil, nil
}

// delConsumerIfIdle removes a consumer only if it has nothing pending, in
// one atomic step: checking first and deleting after would drop the entries
// of a consumer that read in between (DELCONSUMER discards them from the
// pending list, and nothing would ever deliver them again).
var delConsumerIfIdle = redis.NewScript(`
local pending = redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2])
if #pending > 0 then return -1 end
return redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])`)

// RemoveIdleConsumers deletes from partition p's group the consumers other
// than keep that have nothing pending and have not read for at least idle.
// A consumer with pending entries is never removed. It returns the names
// removed.
func (g *Group) RemoveIdleConsumers(ctx context.Context, p int, idle time.Duration, keep string) ([]string, error) {
	key := g.keys.Stream(p)
	cs, err := g.rdb.XInfoConsumers(ctx, key, g.name).Result()
	if err != nil {
		return nil, fmt.Errorf("read consumers of %s: %w", key, err)
	}
	var removed []string
	for _, c := range cs {
		if c.Name == keep || c.Pending > 0 || c.Idle < idle {
			continue
		}
		n, err := delConsumerIfIdle.Run(ctx, g.rdb, []string{key}, g.name, c.Name).Int64()
		if err != nil {
			return removed, fmt.Errorf("remove consumer %q from %s: %w", c.Name, key, err)
		}
		if n == 0 {
			removed = append(removed, c.Name)
		}
	}
	return removed, nil
}

// PartitionStatus is one partition stream seen from the group.
type PartitionStatus struct {
	Partition  int           `json:"partition"`
	Stream     string        `json:"stream"`
	Length     int64         `json:"length"`
	Pending    int64         `json:"pending"`
	Lag        int64         `json:"lag"` // entries not yet delivered to the group (-1: Redis cannot tell)
	OldestAge  time.Duration `json:"oldest_pending_age_ns"`
	Consumers  int64         `json:"consumers"`
	LastAcked  string        `json:"last_delivered,omitempty"`
	GroupReady bool          `json:"group_exists"`
}

// Status reports every partition: length, pending, lag, oldest pending age
// and consumers. One pipelined round trip, plus one per partition with
// pending entries.
func (g *Group) Status(ctx context.Context) ([]PartitionStatus, error) {
	P := g.keys.Partitions
	lens := make([]*redis.IntCmd, P)
	groups := make([]*redis.XInfoGroupsCmd, P)
	_, _ = g.rdb.Pipelined(ctx, func(pipe redis.Pipeliner) error {
		for p := range P {
			lens[p] = pipe.XLen(ctx, g.keys.Stream(p))
			groups[p] = pipe.XInfoGroups(ctx, g.keys.Stream(p))
		}
		return nil
	})
	now := time.Now()
	out := make([]PartitionStatus, P)
	for p := range P {
		st := PartitionStatus{Partition: p, Stream: g.keys.Stream(p), Lag: -1}
		n, err := lens[p].Result()
		if err != nil {
			return nil, fmt.Errorf("length of %s: %w", st.Stream, err)
		}
		st.Length = n
		gs, err := groups[p].Result()
		if err != nil && !isNoSuchKey(err) {
			return nil, fmt.Errorf("groups of %s: %w", st.Stream, err)
		}
		for _, gi := range gs {
			if gi.Name != g.name {
				continue
			}
			st.GroupReady = true
			st.Pending, st.Consumers, st.LastAcked = gi.Pending, gi.Consumers, gi.LastDeliveredID
			st.Lag = gi.Lag
		}
		if st.Pending > 0 {
			sum, err := g.rdb.XPending(ctx, st.Stream, g.name).Result()
			if err != nil {
				return nil, fmt.Errorf("pending summary of %s: %w", st.Stream, err)
			}
			if t, ok := Received(sum.Lower, nil); ok {
				st.OldestAge = now.Sub(t)
			}
		}
		out[p] = st
	}
	return out, g.correctLag(ctx, out)
}

// correctLag sets the lag of a partition to 0 when no entry lies after the
// group's last delivered id, whatever Redis reported. Redis derives lag
// from a counter of entries read, which a replica promoted by a failover
// can hold wrong on Redis 7.0 (redis/redis#12898): the group then shows a
// lag that never drains although nothing is left to deliver. One XREVRANGE
// per partition that reports a lag.
func (g *Group) correctLag(ctx context.Context, parts []PartitionStatus) error {
	last := map[int]*redis.XMessageSliceCmd{}
	_, _ = g.rdb.Pipelined(ctx, func(pipe redis.Pipeliner) error {
		for i, st := range parts {
			if st.GroupReady && st.Lag != 0 && st.LastAcked != "" {
				last[i] = pipe.XRevRangeN(ctx, st.Stream, "+", "-", 1)
			}
		}
		return nil
	})
	for i, cmd := range last {
		msgs, err := cmd.Result()
		if err != nil {
			return fmt.Errorf("newest entry of %s: %w", parts[i].Stream, err)
		}
		if len(msgs) == 0 || CompareIDs(msgs[0].ID, parts[i].LastAcked) <= 0 {
			parts[i].Lag = 0
		}
	}
	return nil
}

// CompareIDs orders two stream entry ids ("<ms>-<seq>").
func CompareIDs(a, b string) int {
	am, as := splitID(a)
	bm, bs := splitID(b)
	switch {
	case am < bm:
		return -1
	case am > bm:
		return 1
	case as < bs:
		return -1
	case as > bs:
		return 1
	}
	return 0
}

// NextID is the smallest entry id after id.
func NextID(id string) string {
	ms, seq := splitID(id)
	if seq == ^uint64(0) {
		return strconv.FormatUint(ms+1, 10) + "-0"
	}
	return strconv.FormatUint(ms, 10) + "-" + strconv.FormatUint(seq+1, 10)
}

func splitID(id string) (ms, seq uint64) {
	a, b, _ := strings.Cut(id, "-")
	ms, _ = strconv.ParseUint(a, 10, 64)
	seq, _ = strconv.ParseUint(b, 10, 64)
	return ms, seq
}

// Ref identifies the message among all partitions ("<partition>/<entry id>").
func (m Message) Ref() string { return strconv.Itoa(m.Partition) + "/" + m.ID }
