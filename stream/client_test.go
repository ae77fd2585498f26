package stream_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookstream/hookstream/internal/testenv"
	"github.com/hookstream/hookstream/stream"
	"github.com/redis/go-redis/v9"
)

func TestNewClientSingleRedis(t *testing.T) {
	t.Parallel()
	rdb, err := stream.NewClient(testenv.RedisURL(), time.Second, 3)
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	c, ok := rdb.(*redis.Client)
	if !ok {
		t.Fatalf("a single Redis gave a %T, want *redis.Client", rdb)
	}
	if err := c.Ping(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	if o := c.Options(); o.MaxRetries != 0 || // -1 asked: none (go-redis keeps it as 0)
		o.ReadTimeout != time.Second || o.PoolSize < 3 {
		t.Fatalf("options not tuned: retries %d, read timeout %s, pool %d", o.MaxRetries, o.ReadTimeout, o.PoolSize)
	}
}

// A Redis that cannot be asked (down at start) is taken as a single Redis,
// with the URL's TLS and database kept.
func TestNewClientUnreachableIsSingle(t *testing.T) {
	t.Parallel()
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	rdb, err := stream.NewClient("rediss://"+addr+"/3", time.Second, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	c, ok := rdb.(*redis.Client)
	if !ok || c.Options().TLSConfig == nil || c.Options().DB != 3 {
		t.Fatalf("got %T; want a single TLS client of database 3", rdb)
	}
}

func TestNewClientCluster(t *testing.T) {
	t.Parallel()
	_, addrs := testenv.StartRedisClusterNodes(t)
	for _, url := range []string{
		"redis://" + addrs[1],                           // one node: cluster mode detected
		addrs[0] + "," + addrs[2],                       // a list of addresses
		"redis://" + addrs[2] + ", redis://" + addrs[0], // a list of URLs
	} {
		rdb, err := stream.NewClient(url, 2*time.Second, 2)
		if err != nil {
			t.Fatalf("%s: %v", url, err)
		}
		if _, ok := rdb.(*redis.ClusterClient); !ok {
			t.Fatalf("%s gave a %T, want *redis.ClusterClient", url, rdb)
		}
		checkClusterHelpers(t, rdb)
		rdb.Close()
	}
	if _, err := stream.NewClient("redis://"+addrs[0]+"/2", time.Second, 1); err == nil || !strings.Contains(err.Error(), "only database 0") {
		t.Fatalf("a cluster node with /2: %v; want an error naming the database", err)
	}
}

// checkClusterHelpers writes keys spread over every master, reads them back
// with GetKeys, and removes them with DeleteKeys, which must find them all.
func checkClusterHelpers(t *testing.T, rdb redis.UniversalClient) {
	t.Helper()
	ctx := context.Background()
	ns := testenv.Name("cl")
	var keys []string
	for i := range 60 {
		k := fmt.Sprintf("%s:k%d", ns, i)
		keys = append(keys, k)
		if err := rdb.Set(ctx, k, i, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	// The keys must sit on every master, or scanning one would pass too.
	var masters atomic.Int32
	rdb.(*redis.ClusterClient).ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error {
		if n, _ := node.DBSize(ctx).Result(); n > 0 {
			masters.Add(1)
		}
		return nil
	})
	if masters.Load() != 3 {
		t.Fatalf("the keys are on %d of the 3 masters", masters.Load())
	}
	vals, err := stream.GetKeys(ctx, rdb, append(keys, ns+":missing"))
	if err != nil {
		t.Fatal(err)
	}
	if vals[7] != "7" || vals[60] != nil {
		t.Fatalf("GetKeys: %v", vals)
	}
	n, err := stream.DeleteKeys(ctx, rdb, ns+":*")
	if err != nil || n != 60 {
		t.Fatalf("DeleteKeys removed %d keys (%v); want all 60, on every master", n, err)
	}
	if left, err := rdb.Exists(ctx, keys[0]).Result(); err != nil || left != 0 {
		t.Fatalf("%s left after DeleteKeys: %d %v", keys[0], left, err)
	}
}

func TestNewClientBadURLs(t *testing.T) {
	t.Parallel()
	f := func(url, want string) {
		t.Helper()
		_, err := stream.NewClient(url, time.Second, 1)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("NewClient(%q): %v; want an error with %q", url, err, want)
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Fatalf("the error shows the password: %v", err)
		}
	}
	f("http://127.0.0.1:6379", "expected redis://")
	f("redis://:s3cret@127.0.0.1:xx", "expected redis://")
	f("redis://127.0.0.1:7000,", "node 2 is empty")
	f("redis://127.0.0.1:7000,127.0.0.1", "node \"127.0.0.1\"")
	f("redis://:s3cret@127.0.0.1:7000/1,127.0.0.1:7001", "only database 0")
	f("rediss://127.0.0.1:7000,redis://127.0.0.1:7001", "mixes redis:// and rediss://")
}

func TestNewClientClusterListTLS(t *testing.T) {
	t.Parallel()
	rdb, err := stream.NewClient("rediss://u:p@127.0.0.1:7000,127.0.0.1:7001", time.Second, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	c, ok := rdb.(*redis.ClusterClient)
	if !ok {
		t.Fatalf("got %T", rdb)
	}
	if o := c.Options(); o.TLSConfig == nil || o.Username != "u" || o.Password != "p" || len(o.Addrs) != 2 {
		t.Fatalf("cluster options: TLS %v, user %q, addrs %v", o.TLSConfig != nil, o.Username, o.Addrs)
	}
}
