package stream

import (
	"hash/fnv"
	"strconv"
	"strings"
	"time"
)

// DefaultPartitions is how many partition streams a namespace has unless configured.
const DefaultPartitions = 16

// Keys names the Redis keys of one namespace. The zero value is not usable; use NewKeys.
type Keys struct {
	Namespace  string
	Partitions int
	streams    []string
	seenPrefix []string
}

// NewKeys returns the key names for namespace ns with p partitions.
func NewKeys(ns string, p int) Keys {
	if p <= 0 {
		p = DefaultPartitions
	}
	k := Keys{Namespace: ns, Partitions: p, streams: make([]string, p), seenPrefix: make([]string, p)}
	for i := range p {
		tag := ns + ":{" + strconv.Itoa(i) + "}:"
		k.streams[i] = tag + "events"
		k.seenPrefix[i] = tag + "seen:"
	}
	return k
}

// Stream is the partition's event stream.
func (k Keys) Stream(p int) string { return k.streams[p] }

// Seen is the dedup marker of event id in partition p. It holds the stream
// entry id the event was stored under and expires after the seen TTL.
func (k Keys) Seen(p int, id string) string { return k.seenPrefix[p] + id }

// Partition maps a partition key (customer id, else resource id) to a
// partition. FNV-1a: stable across processes, versions and languages.
func (k Keys) Partition(key string) int {
	h := fnv.New32a()
	h.Write([]byte(key))
	return int(h.Sum32() % uint32(k.Partitions))
}

// Pattern matches every key of the namespace (for tests and tooling that clean up).
func (k Keys) Pattern() string { return k.Namespace + ":*" }

// DLQ is the dead-letter stream: one entry per entry the processor gave up
// on, for the live feed and alerts (the dead_letters table is the record).
func (k Keys) DLQ() string { return k.Namespace + ":dlq" }

// Control is the switch key of a role's operational control (for example
// Control("process") holds "paused" while processing is paused).
func (k Keys) Control(role string) string { return k.Namespace + ":control:" + role }

// Heartbeat is the key where a running processor publishes its state; it
// expires when the processor stops publishing.
func (k Keys) Heartbeat(consumer string) string { return k.Namespace + ":heartbeat:" + consumer }

// HeartbeatPattern matches every heartbeat key of the namespace.
func (k Keys) HeartbeatPattern() string { return k.Namespace + ":heartbeat:*" }

// WindowsClosed is the stream where window close records are published,
// for the live feed and the anomaly detectors.
func (k Keys) WindowsClosed() string { return k.Namespace + ":windows:closed" }

// JourneysAbandoned is the stream where abandoned journey instances are
// announced, for alerts and the live feed.
func (k Keys) JourneysAbandoned() string { return k.Namespace + ":journeys:abandoned" }

// Stored is the stream where processors announce the events they have just
// stored, one entry per committed batch, for the live feed.
func (k Keys) Stored() string { return k.Namespace + ":events:stored" }

// Anomalies is the stream where the anomaly scorer announces the anomalies
// it finds, for the live feed and alerts.
func (k Keys) Anomalies() string { return k.Namespace + ":anomalies" }

// Alerts is the stream where the alert evaluator announces alert state
// changes, for the live feed.
func (k Keys) Alerts() string { return k.Namespace + ":alerts" }

// IngestMinute is the hash where receivers count, per minute (Unix
// minutes), the webhooks they rejected and answered 503, for alerts.
func (k Keys) IngestMinute(minute int64) string {
	return k.Namespace + ":ingest:minute:" + strconv.FormatInt(minute, 10)
}

// The fields of an IngestMinute hash.
const (
	IngestRejected    = "rejected"    // webhooks rejected: bad signature, bad body, too large
	IngestUnavailable = "unavailable" // webhooks answered 503
)

// IngestSpool is the hash where each receiver reports its spool depth
// under its instance name (see SpoolReport), for alerts.
func (k Keys) IngestSpool() string { return k.Namespace + ":ingest:spool" }

// SpoolReport is a receiver's spool report: its depth at a time.
func SpoolReport(depth int64, at time.Time) string {
	return strconv.FormatInt(depth, 10) + " " + strconv.FormatInt(at.Unix(), 10)
}

// ParseSpoolReport reads a SpoolReport.
func ParseSpoolReport(s string) (depth int64, at time.Time, ok bool) {
	d, u, found := strings.Cut(s, " ")
	n, err1 := strconv.ParseInt(d, 10, 64)
	unix, err2 := strconv.ParseInt(u, 10, 64)
	if !found || err1 != nil || err2 != nil {
		return 0, time.Time{}, false
	}
	return n, time.Unix(unix, 0).UTC(), true
}
