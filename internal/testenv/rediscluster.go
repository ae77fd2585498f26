package testenv

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
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
	c := StartRedisClusterWith(t, RedisClusterOptions{})
	return c.Client, c.Addrs()
}

// RedisClusterOptions configure a private Redis Cluster of three masters.
type RedisClusterOptions struct {
	// Replicas is the number of replicas per master (redis-cli --cluster
	// create --cluster-replicas): 0, the default, starts 3 nodes, 1 starts 6.
	Replicas int
	// NodeTimeout is cluster-node-timeout: how long a master may not answer
	// before the others mark it failed and its replica takes over. Zero
	// keeps Redis's default (15 s); a failover test wants 1-2 s.
	NodeTimeout time.Duration
	// AppendFsync, when set, persists every node with an append-only file
	// fsync'd by this policy ("always", "everysec", "no"); empty starts the
	// nodes without persistence.
	AppendFsync string
}

// RedisCluster is a private Redis Cluster whose nodes a test may kill.
type RedisCluster struct {
	t      testing.TB
	Client *redis.ClusterClient // seeded with every node's address
	mu     sync.Mutex
	nodes  []*clusterProc
}

type clusterProc struct {
	addr string
	dir  string
	cmd  *exec.Cmd
	dead bool
}

// ClusterNode is one line of CLUSTER NODES.
type ClusterNode struct {
	ID       string
	Addr     string // host:port
	Master   bool
	MasterID string // the master a replica follows ("" for a master)
	Failed   bool   // flagged fail or fail? by the node asked
	Slots    []string
}

// StartRedisClusterWith starts a private Redis Cluster of three masters
// (and opts.Replicas replicas of each) on free loopback ports, and returns
// once every node answers cluster_state:ok and every replica's link to its
// master is up. The servers stop when the test ends.
func StartRedisClusterWith(t testing.TB, opts RedisClusterOptions) *RedisCluster {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redis-server not found on PATH: %v", err)
	}
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		t.Fatalf("redis-cli not found on PATH: %v", err)
	}
	c := &RedisCluster{t: t}
	t.Cleanup(func() {
		for _, n := range c.nodes {
			c.Kill(n.addr)
		}
	})
	for range 3 * (1 + opts.Replicas) {
		n := &clusterProc{dir: t.TempDir()}
		port := FreePort(t)
		n.addr = fmt.Sprintf("127.0.0.1:%d", port)
		args := []string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "",
			"--cluster-enabled", "yes", "--cluster-config-file", filepath.Join(n.dir, "nodes.conf"),
			"--dir", n.dir, "--logfile", filepath.Join(n.dir, "redis.log")}
		if opts.AppendFsync != "" {
			args = append(args, "--appendonly", "yes", "--appendfsync", opts.AppendFsync)
		} else {
			args = append(args, "--appendonly", "no")
		}
		if opts.NodeTimeout > 0 {
			// A replica may take over whatever the age of its last contact
			// with the master (validity factor 0): the test kills masters
			// on purpose and wants the failover, not a stuck cluster.
			args = append(args, "--cluster-node-timeout", strconv.FormatInt(opts.NodeTimeout.Milliseconds(), 10),
				"--cluster-replica-validity-factor", "0")
		}
		n.cmd = exec.Command(bin, args...)
		if err := n.cmd.Start(); err != nil {
			t.Fatalf("start cluster node: %v", err)
		}
		c.nodes = append(c.nodes, n)
		waitPing(t, n.addr)
	}
	args := append([]string{"--cluster", "create"}, c.Addrs()...)
	args = append(args, "--cluster-replicas", strconv.Itoa(opts.Replicas), "--cluster-yes")
	if out, err := exec.Command(cli, args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	c.Client = redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs()})
	t.Cleanup(func() { c.Client.Close() })
	// Every node must agree before slots are usable from any of them, and
	// every replica must hold its master's data before it can replace it.
	WaitFor(t, 30*time.Second, "the cluster to be ok on every node with every replica in sync", func() bool {
		if !c.OK() {
			return false
		}
		nodes, err := c.Nodes()
		if err != nil || len(nodes) != len(c.nodes) {
			return false
		}
		for _, n := range nodes {
			if !n.Master && !c.linkUp(n.Addr) {
				return false
			}
		}
		return true
	})
	return c
}

// Addrs is every node's host:port, in the order they were started (with
// replicas, redis-cli makes the first three the masters).
func (c *RedisCluster) Addrs() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, n := range c.nodes {
		out = append(out, n.addr)
	}
	return out
}

// Live is the host:port of every node not killed.
func (c *RedisCluster) Live() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, n := range c.nodes {
		if !n.dead {
			out = append(out, n.addr)
		}
	}
	return out
}

// ask runs fn on a plain client of one node.
func ask[T any](addr string, fn func(context.Context, *redis.Client) (T, error)) (T, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	n := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer n.Close()
	return fn(ctx, n)
}

// OK reports whether every live node answers cluster_state:ok.
func (c *RedisCluster) OK() bool {
	for _, a := range c.Live() {
		info, err := ask(a, func(ctx context.Context, n *redis.Client) (string, error) { return n.ClusterInfo(ctx).Result() })
		if err != nil || !strings.Contains(info, "cluster_state:ok") {
			return false
		}
	}
	return true
}

func (c *RedisCluster) linkUp(addr string) bool {
	info, err := ask(addr, func(ctx context.Context, n *redis.Client) (string, error) { return n.Info(ctx, "replication").Result() })
	return err == nil && strings.Contains(info, "master_link_status:up")
}

// Nodes is the cluster's topology as the first live node sees it (CLUSTER
// NODES).
func (c *RedisCluster) Nodes() ([]ClusterNode, error) {
	live := c.Live()
	if len(live) == 0 {
		return nil, fmt.Errorf("no live node")
	}
	return c.NodesSeenBy(live[0])
}

// NodesSeenBy is the cluster's topology as the node at addr sees it.
func (c *RedisCluster) NodesSeenBy(addr string) ([]ClusterNode, error) {
	text, err := ask(addr, func(ctx context.Context, n *redis.Client) (string, error) { return n.ClusterNodes(ctx).Result() })
	if err != nil {
		return nil, err
	}
	var out []ClusterNode
	for line := range strings.Lines(text) {
		// <id> <ip:port@cport[,hostname]> <flags> <master> <ping> <pong> <epoch> <link> <slot>...
		f := strings.Fields(line)
		if len(f) < 8 {
			continue
		}
		addr, _, _ := strings.Cut(f[1], "@")
		flags := strings.Split(f[2], ",")
		n := ClusterNode{ID: f[0], Addr: addr, Master: slices.Contains(flags, "master"),
			Failed: slices.Contains(flags, "fail") || slices.Contains(flags, "fail?"), Slots: f[8:]}
		if f[3] != "-" {
			n.MasterID = f[3]
		}
		out = append(out, n)
	}
	return out, nil
}

// ReplicaOf is the address of a replica that follows the master at addr.
func (c *RedisCluster) ReplicaOf(addr string) (string, error) {
	nodes, err := c.Nodes()
	if err != nil {
		return "", err
	}
	var id string
	for _, n := range nodes {
		if n.Addr == addr {
			if !n.Master {
				return "", fmt.Errorf("%s is not a master", addr)
			}
			id = n.ID
		}
	}
	for _, n := range nodes {
		if id != "" && n.MasterID == id && !n.Failed {
			return n.Addr, nil
		}
	}
	return "", fmt.Errorf("no replica follows %s (%s)", addr, id)
}

// IsMaster reports whether the first live node sees the node at addr as a
// master that serves slots.
func (c *RedisCluster) IsMaster(addr string) bool {
	nodes, err := c.Nodes()
	if err != nil {
		return false
	}
	for _, n := range nodes {
		if n.Addr == addr {
			return n.Master && !n.Failed && len(n.Slots) > 0
		}
	}
	return false
}

// Kill stops the node at addr with SIGKILL, as a crash would, and waits
// until it is gone.
func (c *RedisCluster) Kill(addr string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range c.nodes {
		if n.addr == addr && !n.dead {
			n.cmd.Process.Kill()
			n.cmd.Wait()
			n.dead = true
		}
	}
}

// Log is the log file of the node at addr, for a failure message.
func (c *RedisCluster) Log(addr string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range c.nodes {
		if n.addr == addr {
			b, _ := os.ReadFile(filepath.Join(n.dir, "redis.log"))
			return string(b)
		}
	}
	return ""
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
