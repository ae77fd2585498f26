package stream

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// DeleteKeys removes every key matching pattern, such as Keys.Pattern() of a
// namespace, with SCAN and UNLINK in pages: never KEYS or FLUSH, so it is safe
// on a Redis that others share. It returns how many keys it removed.
func DeleteKeys(ctx context.Context, rdb redis.UniversalClient, pattern string) (int, error) {
	iter := rdb.Scan(ctx, 0, pattern, 1000).Iterator()
	batch := make([]string, 0, 1000)
	n := 0
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := rdb.Unlink(ctx, batch...).Err(); err != nil {
			return fmt.Errorf("unlink keys matching %q: %w", pattern, err)
		}
		n += len(batch)
		batch = batch[:0]
		return nil
	}
	for iter.Next(ctx) {
		batch = append(batch, iter.Val())
		if len(batch) == cap(batch) {
			if err := flush(); err != nil {
				return n, err
			}
		}
	}
	if err := iter.Err(); err != nil {
		return n, fmt.Errorf("scan keys matching %q: %w", pattern, err)
	}
	return n, flush()
}
