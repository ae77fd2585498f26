package ingest

// Counters is a snapshot of this process's receiver counters (all receivers
// in the process together), for status lines.
type Counters struct {
	Stored, Duplicates, Spooled, Rejected, Overloaded, Failed uint64
	Drained                                                   uint64 // spooled entries replayed into Redis
	Batches                                                   uint64 // group commits (round trips or spool writes)
}

// MeanBatch is the average number of requests per group commit.
func (c Counters) MeanBatch() float64 {
	if c.Batches == 0 {
		return 0
	}
	return float64(c.Stored+c.Duplicates+c.Spooled+c.Failed) / float64(c.Batches)
}

// Received is every request that got an answer other than a rejection.
func (c Counters) Received() uint64 { return c.Stored + c.Duplicates + c.Spooled }

// Sub returns the counter increase since prev.
func (c Counters) Sub(prev Counters) Counters {
	return Counters{
		Stored: c.Stored - prev.Stored, Duplicates: c.Duplicates - prev.Duplicates, Spooled: c.Spooled - prev.Spooled,
		Rejected: c.Rejected - prev.Rejected, Overloaded: c.Overloaded - prev.Overloaded, Failed: c.Failed - prev.Failed,
		Drained: c.Drained - prev.Drained, Batches: c.Batches - prev.Batches,
	}
}

// ReadCounters reads the current counters.
func ReadCounters() Counters {
	return Counters{
		Stored:     reqStored.Get(),
		Duplicates: reqDuplicate.Get(),
		Spooled:    reqSpooled.Get(),
		Rejected:   reqNoSig.Get() + reqBadSig.Get() + reqBadRequest.Get() + reqTooLarge.Get() + reqMethod.Get(),
		Overloaded: reqOverloaded.Get(),
		Failed:     reqFailed.Get(),
		Drained:    spoolDrainStored.Get() + spoolDrainDup.Get(),
		Batches:    batchesTotal.Get(),
	}
}
