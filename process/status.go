package process

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/hookstream/hookstream/journeys"
	"github.com/hookstream/hookstream/store"
	"github.com/hookstream/hookstream/stream"
	"github.com/hookstream/hookstream/windows"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
)

// Status is the state of a namespace's pipeline as "hookstream status" shows
// it: the streams and the group, the pause switch, the dead letters, the
// running processors, the watermark, how far windows are closed, and the
// journeys. Each part that could not be read is left empty and says why in
// Errors, so a report is still useful while PostgreSQL is down.
type Status struct {
	Namespace  string                   `json:"namespace"`
	Group      string                   `json:"group"`
	Paused     bool                     `json:"paused"`
	Partitions []stream.PartitionStatus `json:"partitions"`
	Total      stream.PartitionStatus   `json:"total"`
	DLQOpen    int64                    `json:"dlq_open"` // -1 when it cannot be told
	DLQStream  int64                    `json:"dlq_stream_length"`
	Processors []Heartbeat              `json:"processors"`
	// Consumers is every consumer of the group on every partition, by
	// partition then name: what it holds pending and how long since it
	// last read or claimed. A processor that died keeps its consumers, with
	// their pending entries, until a survivor takes the entries over and
	// the idle consumers are removed.
	Consumers []ConsumerStatus `json:"consumers"`
	// The event-time watermark (zero when it cannot be told: paused, or a
	// partition with entries waiting never folded) and, per basis and window
	// size ("event/1m0s"), where closing has got to.
	Watermark    time.Time            `json:"event_watermark,omitempty"`
	ClosedUntil  map[string]time.Time `json:"windows_closed_until,omitempty"`
	JourneyCount map[string]int64     `json:"journey_instances_by_status,omitempty"`
	// Errors names each part that could not be read ("dead_letters",
	// "windows", ...) with the reason.
	Errors      map[string]string `json:"errors,omitempty"`
	GeneratedAt time.Time         `json:"generated_at"`
}

// ConsumerStatus is one consumer of the group on one partition stream.
type ConsumerStatus struct {
	Partition int           `json:"partition"`
	Consumer  string        `json:"consumer"`
	Pending   int64         `json:"pending"`
	Idle      time.Duration `json:"idle_ns"`
}

func (s *Status) fail(part string, err error) {
	if s.Errors == nil {
		s.Errors = map[string]string{}
	}
	s.Errors[part] = err.Error()
}

// ReadStatus gathers the Status of the namespace of keys for group. Redis is
// required; db may be nil (PostgreSQL unreachable), and then the parts that
// live there carry an error. wcfg must be the windows configuration the
// processors run with, so the watermark is judged as they judge it.
func ReadStatus(ctx context.Context, rdb redis.UniversalClient, db *pgxpool.Pool, keys stream.Keys, group string, wcfg windows.Config) (Status, error) {
	st := Status{Namespace: keys.Namespace, Group: group, DLQOpen: -1, GeneratedAt: time.Now().UTC()}
	var err error
	if st.Partitions, err = stream.NewGroup(rdb, keys, group).Status(ctx); err != nil {
		return st, err
	}
	for _, p := range st.Partitions {
		st.Total.Length += p.Length
		st.Total.Pending += p.Pending
		st.Total.Lag += max(p.Lag, 0)
		st.Total.OldestAge = max(st.Total.OldestAge, p.OldestAge)
	}
	if st.Consumers, err = readConsumers(ctx, rdb, keys, group, st.Partitions); err != nil {
		st.fail("consumers", err)
	}
	if st.Paused, err = IsPaused(ctx, rdb, keys, group); err != nil {
		return st, err
	}
	if st.DLQStream, err = rdb.XLen(ctx, keys.DLQ()).Result(); err != nil {
		st.fail("dlq_stream", fmt.Errorf("read the length of %s: %w", keys.DLQ(), err))
	}
	if st.Processors, err = Heartbeats(ctx, rdb, keys); err != nil {
		st.fail("processors", err)
	}
	if st.Processors == nil {
		st.Processors = []Heartbeat{}
	}
	if db == nil {
		st.fail("postgresql", fmt.Errorf("not connected"))
		return st, nil
	}
	if st.DLQOpen, err = store.OpenDeadLetters(ctx, db); err != nil {
		st.DLQOpen = -1
		st.fail("dead_letters", err)
	}
	wm, ok, err := NewCloser(rdb, db, keys, group, wcfg, nil).Watermark(ctx, windows.EventTime)
	switch {
	case err != nil:
		st.fail("watermark", err)
	case ok:
		st.Watermark = wm
	}
	if cursors, err := windows.ReadCursors(ctx, db); err != nil {
		st.fail("windows", err)
	} else {
		st.ClosedUntil = map[string]time.Time{}
		for _, c := range cursors {
			if !c.ClosedUntil.IsZero() {
				st.ClosedUntil[string(c.Basis)+"/"+c.Size.String()] = c.ClosedUntil
			}
		}
	}
	if st.JourneyCount, err = journeys.CountByStatus(ctx, db); err != nil {
		st.fail("journeys", err)
	}
	return st, nil
}

// readConsumers lists the consumers of group on each partition whose group
// exists, in one pipeline (split by node on a cluster).
func readConsumers(ctx context.Context, rdb redis.UniversalClient, keys stream.Keys, group string, parts []stream.PartitionStatus) ([]ConsumerStatus, error) {
	cmds := make([]*redis.XInfoConsumersCmd, len(parts))
	_, _ = rdb.Pipelined(ctx, func(pipe redis.Pipeliner) error {
		for i, p := range parts {
			if p.GroupReady {
				cmds[i] = pipe.XInfoConsumers(ctx, keys.Stream(p.Partition), group)
			}
		}
		return nil
	})
	out := []ConsumerStatus{}
	for i, c := range cmds {
		if c == nil {
			continue
		}
		cs, err := c.Result()
		if err != nil {
			return out, fmt.Errorf("read the consumers of %s: %w", keys.Stream(parts[i].Partition), err)
		}
		for _, x := range cs {
			out = append(out, ConsumerStatus{Partition: parts[i].Partition, Consumer: x.Name, Pending: x.Pending, Idle: x.Idle})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Partition != out[j].Partition {
			return out[i].Partition < out[j].Partition
		}
		return out[i].Consumer < out[j].Consumer
	})
	return out, nil
}
