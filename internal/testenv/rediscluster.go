package testenv

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// StartRedisCluster starts a private three-master Redis Cluster on free
// loopback ports, for tests that prove the code runs unchanged on a cluster.
// It returns a cluster client; the servers stop when the test ends.
func StartRedisCluster(t testing.TB) *redis.ClusterClient {
	t.Helper()
	rdb, _ := StartRedisClusterNodes(t)
	return rdb
}

// StartRedisClusterNodes is StartRedisCluster that also returns the
// masters' host:port addresses, for tests that hand the cluster to a
// process by URL.
func StartRedisClusterNodes(t testing.TB) (*redis.ClusterClient, []string) {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redis-server not found on PATH: %v", err)
	}
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		t.Fatalf("redis-cli not found on PATH: %v", err)
	}
	var addrs []string
	for i := range 3 {
		dir := filepath.Join(t.TempDir(), "node"+strconv.Itoa(i))
		port := FreePort(t)
		cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
			"--cluster-enabled", "yes", "--cluster-config-file", filepath.Join(t.TempDir(), "nodes.conf"),
			"--dir", t.TempDir(), "--logfile", dir+".log")
		if err := cmd.Start(); err != nil {
			t.Fatalf("start cluster node: %v", err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		waitPing(t, addr)
		addrs = append(addrs, addr)
	}
	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.Command(cli, args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs})
	t.Cleanup(func() { rdb.Close() })
	deadline := time.Now().Add(15 * time.Second)
	for {
		info, err := rdb.ClusterInfo(context.Background()).Result()
		if err == nil && strings.Contains(info, "cluster_state:ok") {
			// Every node must agree before slots are usable from any of them.
			ok := true
			for _, a := range addrs {
				n := redis.NewClient(&redis.Options{Addr: a})
				s, err := n.ClusterInfo(context.Background()).Result()
				n.Close()
				ok = ok && err == nil && strings.Contains(s, "cluster_state:ok")
			}
			if ok {
				return rdb, addrs
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("cluster not ok after 15s: %v %s", err, info)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func waitPing(t testing.TB, addr string) {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for c.Ping(context.Background()).Err() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("redis-server at %s did not answer in 10s", addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
