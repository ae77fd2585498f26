package stream

import (
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// NewClient opens a Redis client for url tuned for a role that handles
// failures itself: a short dial timeout, timeout on every read and write, no
// hidden retries (the spool, the processor's retries and the stream's
// pending entries are the retries), and a pool of at least poolSize
// connections.
func NewClient(url string, timeout time.Duration, poolSize int) (*redis.Client, error) {
	opt, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("parse Redis URL %q: %w; expected redis://[user:pass@]host:port/db", url, err)
	}
	opt.DialTimeout = 500 * time.Millisecond
	opt.ReadTimeout = timeout
	opt.WriteTimeout = timeout
	opt.MaxRetries = -1
	opt.PoolSize = max(opt.PoolSize, poolSize)
	return redis.NewClient(opt), nil
}
