package stream

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/redis/go-redis/v9"
)

// On a Redis Cluster a command without a key (SCAN) reaches one node, and a
// command with keys in different slots (MGET, UNLINK of many keys) fails with
// CROSSSLOT. The helpers here run such steps on a single Redis as they
// always did and, on a cluster, on every master / one key at a time.

// ScanKeys calls fn with each page of the keys matching pattern: SCAN on a
// single Redis, SCAN on every master of a cluster (fn may then run on
// several masters' pages at once). It stops at the first error.
func ScanKeys(ctx context.Context, rdb redis.UniversalClient, pattern string, count int64, fn func(ctx context.Context, node redis.Cmdable, keys []string) error) error {
	scan := func(ctx context.Context, node redis.Cmdable) error {
		var cursor uint64
		for {
			keys, next, err := node.Scan(ctx, cursor, pattern, count).Result()
			if err != nil {
				return fmt.Errorf("scan keys matching %q: %w", pattern, err)
			}
			if len(keys) > 0 {
				if err := fn(ctx, node, keys); err != nil {
					return err
				}
			}
			if next == 0 {
				return nil
			}
			cursor = next
		}
	}
	if c, ok := rdb.(*redis.ClusterClient); ok {
		return c.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error { return scan(ctx, node) })
	}
	return scan(ctx, rdb)
}

// GetKeys reads the string values of keys, nil where a key is missing:
// MGET on a single Redis, one GET per key in a pipeline on a cluster.
func GetKeys(ctx context.Context, rdb redis.UniversalClient, keys []string) ([]any, error) {
	if _, ok := rdb.(*redis.ClusterClient); !ok {
		return rdb.MGet(ctx, keys...).Result()
	}
	cmds := make([]*redis.StringCmd, len(keys))
	// Pipelined's own error is the first failed command's, which for a
	// missing key is redis.Nil: read each command's instead.
	_, _ = rdb.Pipelined(ctx, func(pipe redis.Pipeliner) error {
		for i, k := range keys {
			cmds[i] = pipe.Get(ctx, k)
		}
		return nil
	})
	out := make([]any, len(keys))
	for i, c := range cmds {
		v, err := c.Result()
		switch {
		case err == nil:
			out[i] = v
		case !errors.Is(err, redis.Nil):
			return nil, err
		}
	}
	return out, nil
}

// unlinkPage removes keys that one node returned from SCAN: one UNLINK on a
// single Redis, one UNLINK per key (in a pipeline) on a cluster node, where
// keys of different slots cannot share a command.
func unlinkPage(ctx context.Context, node redis.Cmdable, keys []string, cluster bool) error {
	if !cluster {
		return node.Unlink(ctx, keys...).Err()
	}
	_, err := node.Pipelined(ctx, func(pipe redis.Pipeliner) error {
		for _, k := range keys {
			pipe.Unlink(ctx, k)
		}
		return nil
	})
	return err
}

// counter is a count that ScanKeys callbacks on several masters add to.
type counter struct {
	mu sync.Mutex
	n  int
}

func (c *counter) add(n int) {
	c.mu.Lock()
	c.n += n
	c.mu.Unlock()
}

func (c *counter) get() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}
