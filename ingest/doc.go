// Package ingest is the webhook receiver: it verifies a Dwolla webhook's
// signature, validates just enough of the body to route it, and stores it once
// in its partition stream before answering 2xx.
//
// The hot path is: read the capped body, check the HMAC against every
// configured secret, parse id/topic/created/links, then hand the entry to the
// group committer, which folds all concurrent requests into one pipelined
// Redis round trip of the atomic dedup-and-append script (stream.Producer).
// When Redis is unreachable the batch goes to an fsync'd local spool instead,
// and a drainer replays the spool through the same atomic step once Redis is
// back, so an outage loses nothing and duplicates nothing.
//
// It is not the processor: nothing here touches PostgreSQL except the
// readiness report.
package ingest
