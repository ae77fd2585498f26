package stream

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// AnnounceMaxLen bounds every announcement stream (dead letters, window
// closes, abandoned journeys) to about this many entries.
const AnnounceMaxLen = 100_000

// Announce appends one entry per record (field/value pairs) to the
// announcement stream key in a single pipelined round trip, trimming it to
// about AnnounceMaxLen entries.
//
// Announcements are best effort by contract: each one mirrors a row that a
// PostgreSQL transaction has already committed, and the table is the record,
// so a reader that misses an entry finds the row. Callers log the error and go
// on; they never fail the work the announcement describes.
func Announce(ctx context.Context, rdb redis.Cmdable, key string, records [][]string) error {
	if rdb == nil || len(records) == 0 {
		return nil
	}
	_, err := rdb.Pipelined(ctx, func(pipe redis.Pipeliner) error {
		for _, r := range records {
			pipe.XAdd(ctx, &redis.XAddArgs{Stream: key, MaxLen: AnnounceMaxLen, Approx: true, Values: r})
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("announce %d entries on %s: %w", len(records), key, err)
	}
	return nil
}

// AnnounceWithin appends one entry to the announcement stream key and trims
// entries older than keep (by their ids, which are Redis's clock, against
// this process's clock; approximately, so Redis trims whole nodes). Unlike
// Announce, what it keeps is bounded by time, so a reader can be told how
// far back it can resume. The contract is Announce's: best effort.
func AnnounceWithin(ctx context.Context, rdb redis.Cmdable, key string, keep time.Duration, values []string) (string, error) {
	if rdb == nil {
		return "", nil
	}
	minID := strconv.FormatInt(time.Now().Add(-keep).UnixMilli(), 10)
	id, err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: key, MinID: minID, Approx: true, Values: values}).Result()
	if err != nil {
		return "", fmt.Errorf("announce on %s: %w", key, err)
	}
	return id, nil
}
