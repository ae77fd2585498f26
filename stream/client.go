package stream

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	neturl "net/url"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// NewClient opens a Redis client for url tuned for a role that handles
// failures itself: a short dial timeout, timeout on every read and write, no
// hidden retries (the spool, the processor's retries and the stream's
// pending entries are the retries), and a pool of at least poolSize
// connections (per node on a cluster).
//
// url is one of:
//
//   - redis://[user:pass@]host:port[/db] (rediss:// for TLS): one Redis, or
//     any node of a Redis Cluster. NewClient asks the server (INFO cluster)
//     and returns a *redis.ClusterClient seeded with that node when
//     cluster_enabled is 1. When the server cannot be asked (down at start)
//     it is taken as a single Redis: list two or more nodes to state a
//     cluster regardless.
//   - a comma-separated list of node URLs or host:port addresses: a Redis
//     Cluster seeded with them. Credentials and TLS come from the first
//     URL of the list; bare addresses share them.
//
// Single-node behaviour does not depend on the probe: a single Redis gets
// the same *redis.Client it always did.
func NewClient(url string, timeout time.Duration, poolSize int) (redis.UniversalClient, error) {
	if strings.Contains(url, ",") {
		copt, err := parseClusterList(url)
		if err != nil {
			return nil, err
		}
		return newCluster(copt, timeout, poolSize), nil
	}
	opt, err := parseURL(url)
	if err != nil {
		return nil, fmt.Errorf("parse Redis URL %q: %w; expected redis://[user:pass@]host:port/db, rediss:// for TLS, or a comma-separated list of cluster nodes", redact(url), err)
	}
	opt.DialTimeout = 500 * time.Millisecond
	opt.ReadTimeout = timeout
	opt.WriteTimeout = timeout
	opt.MaxRetries = -1
	opt.PoolSize = max(opt.PoolSize, poolSize)
	cluster, err := clusterEnabled(opt)
	if err != nil {
		slog.Default().Debug("cannot ask Redis whether it is a cluster; using it as a single Redis", "addr", opt.Addr, "err", err)
	}
	if !cluster {
		return redis.NewClient(opt), nil
	}
	if opt.DB != 0 {
		return nil, fmt.Errorf("redis URL %q names database %d, but %s is a Redis Cluster node and a cluster has only database 0; drop /%d from the URL", redact(url), opt.DB, opt.Addr, opt.DB)
	}
	return newCluster(&redis.ClusterOptions{
		Addrs: []string{opt.Addr}, Username: opt.Username, Password: opt.Password,
		TLSConfig: opt.TLSConfig, ClientName: opt.ClientName, PoolSize: opt.PoolSize,
	}, timeout, poolSize), nil
}

// clusterEnabled asks a server whether it runs in cluster mode, on a
// connection of its own: database 0, since a cluster node refuses SELECT.
func clusterEnabled(opt *redis.Options) (bool, error) {
	probe := *opt
	probe.DB, probe.PoolSize, probe.MinIdleConns = 0, 1, 0
	rdb := redis.NewClient(&probe)
	defer rdb.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	info, err := rdb.Info(ctx, "cluster").Result()
	if err != nil {
		return false, err
	}
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "cluster_enabled:"); ok {
			return v == "1", nil
		}
	}
	return false, nil
}

// newCluster tunes cluster options as NewClient tunes a single client's.
func newCluster(copt *redis.ClusterOptions, timeout time.Duration, poolSize int) *redis.ClusterClient {
	copt.DialTimeout = 500 * time.Millisecond
	copt.ReadTimeout = timeout
	copt.WriteTimeout = timeout
	// MOVED and ASK redirects (a slot migrating, a failover) are followed:
	// they are the cluster's routing, not a hidden retry of a failed command.
	copt.MaxRetries = -1
	copt.PoolSize = max(copt.PoolSize, poolSize)
	return redis.NewClusterClient(copt)
}

// parseClusterList reads a comma-separated list of node URLs or addresses.
func parseClusterList(list string) (*redis.ClusterOptions, error) {
	copt := &redis.ClusterOptions{}
	var tlsConf *tls.Config
	seenURL := false
	for i, part := range strings.Split(list, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			return nil, fmt.Errorf("redis URL list %q: node %d is empty; expected comma-separated redis://host:port URLs or host:port addresses", redact(list), i+1)
		}
		if !strings.Contains(part, "://") {
			if _, _, err := net.SplitHostPort(part); err != nil {
				return nil, fmt.Errorf("redis URL list %q: node %q: %w; expected redis://host:port or host:port", redact(list), part, err)
			}
			copt.Addrs = append(copt.Addrs, part)
			continue
		}
		opt, err := parseURL(part)
		if err != nil {
			return nil, fmt.Errorf("redis URL list %q: node %q: %w; expected redis://host:port or host:port", redact(list), redact(part), err)
		}
		if opt.DB != 0 {
			return nil, fmt.Errorf("redis URL list %q names database %d, but a Redis Cluster has only database 0; drop /%d from the URL", redact(list), opt.DB, opt.DB)
		}
		if !seenURL {
			seenURL = true
			copt.Username, copt.Password, copt.ClientName, copt.PoolSize = opt.Username, opt.Password, opt.ClientName, opt.PoolSize
			tlsConf = opt.TLSConfig
		} else if (opt.TLSConfig != nil) != (tlsConf != nil) {
			return nil, errors.New("redis URL list " + redact(list) + " mixes redis:// and rediss:// nodes; a cluster is reached with TLS on every node or on none")
		}
		copt.Addrs = append(copt.Addrs, opt.Addr)
	}
	copt.TLSConfig = tlsConf
	return copt, nil
}

// redact hides the password of a Redis URL (or of each URL of a list) for
// error messages.
func redact(s string) string {
	parts := strings.Split(s, ",")
	for i, p := range parts {
		scheme, rest, ok := strings.Cut(p, "://")
		if !ok {
			continue
		}
		at := strings.LastIndex(rest, "@")
		if at < 0 {
			continue
		}
		user, _, hasPass := strings.Cut(rest[:at], ":")
		if hasPass {
			parts[i] = scheme + "://" + user + ":xxxxx" + rest[at:]
		}
	}
	return strings.Join(parts, ",")
}

// parseURL is redis.ParseURL with the URL left out of its errors (it may
// hold a password; the callers name the URL redacted).
func parseURL(s string) (*redis.Options, error) {
	opt, err := redis.ParseURL(s)
	if ue, ok := errors.AsType[*neturl.Error](err); ok {
		err = ue.Err
	}
	return opt, err
}
