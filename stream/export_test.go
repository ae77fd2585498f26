package stream

// SetPerPartition switches a producer to Redis Cluster grouping, so the
// external tests can run it against a single server.
func SetPerPartition(p *Producer, v bool) { p.perPartition = v }
