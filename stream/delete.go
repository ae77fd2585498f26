package stream

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// DeleteKeys removes every key matching pattern, such as Keys.Pattern() of a
// namespace, with SCAN and UNLINK in pages: never KEYS or FLUSH, so it is safe
// on a Redis that others share. On a Redis Cluster it scans every master. It
// returns how many keys it removed.
func DeleteKeys(ctx context.Context, rdb redis.UniversalClient, pattern string) (int, error) {
	_, cluster := rdb.(*redis.ClusterClient)
	var n counter
	err := ScanKeys(ctx, rdb, pattern, 1000, func(ctx context.Context, node redis.Cmdable, keys []string) error {
		if err := unlinkPage(ctx, node, keys, cluster); err != nil {
			return fmt.Errorf("unlink keys matching %q: %w", pattern, err)
		}
		n.add(len(keys))
		return nil
	})
	return n.get(), err
}
