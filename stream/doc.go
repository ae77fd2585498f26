// Package stream is hookstream's Redis Streams plumbing: partition keys, the
// atomic dedup-and-append step, and (later) the consumer-group runner. It knows
// nothing of HTTP, PostgreSQL or what an event means beyond its id.
//
// Every key of partition p carries the hash tag {p} (for example
// "hs:{7}:events" and "hs:{7}:seen:<id>"), so the keys one Lua script touches
// always share a Redis Cluster slot and the same code runs on a cluster.
package stream
