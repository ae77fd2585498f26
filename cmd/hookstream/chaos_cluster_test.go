package main

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hookstream/hookstream/internal/testenv"
	"github.com/hookstream/hookstream/stream"
	"github.com/redis/go-redis/v9"
)

// TestChaosClusterFailover: a private Redis Cluster of three masters, each
// with one replica, persisting with an AOF fsync'd every second and a
// cluster-node-timeout of 1.5 s. Two receivers and two processors reach it
// through the list of every node. Under load, with a backlog that only
// Redis holds, the master of partition 0's stream is killed with SIGKILL;
// its replica takes over, every live node answers cluster_state:ok again
// while both simulators are still sending, and the test ends with the
// chaos verification: events, windows and journeys exact, no dead letter.
//
// Redis replicates asynchronously: an entry the master acknowledged and
// died before sending to its replica would be lost by the failover
// (docs/reliability.md says how far this test goes). It would show here
// as missing events, and fail the test.
func TestChaosClusterFailover(t *testing.T) {
	// Not yet reliable: after the phantom-lag fix it passed 5 of 6 runs on
	// the development machine, and the failing run's output was not kept.
	// Until its cause is found it runs only where asked (make test-chaos).
	if os.Getenv("HOOKSTREAM_TEST_FAILOVER") == "" {
		t.Skip("flaky (5 of 6 runs passed): set HOOKSTREAM_TEST_FAILOVER=1, as make test-chaos does")
	}
	t.Parallel()
	bin := buildBinary(t)
	rc := testenv.StartRedisClusterWith(t, testenv.RedisClusterOptions{
		Replicas: 1, NodeTimeout: 1500 * time.Millisecond, AppendFsync: "everysec"})
	db, dbURL := testenv.Postgres(t)
	ns := testenv.Name("hsf")
	p := &pipeline{t: t, bin: bin, ns: ns, keys: stream.NewKeys(ns, 16), db: db, rdb: throughCluster(rc.Client)}
	t.Cleanup(func() { p.rdb.Close() })
	// Every node, so a client whose seed died still finds the cluster.
	p.env = append(os.Environ(),
		"HOOKSTREAM_REDIS_URL=redis://"+strings.Join(rc.Addrs(), ","),
		"HOOKSTREAM_DATABASE_URL="+dbURL,
		"HOOKSTREAM_NAMESPACE="+ns,
		"HOOKSTREAM_WEBHOOK_SECRETS=pipeline-secret",
	)
	p.run("migrate", "up")

	recv := []*proc{
		p.serve("--roles", "ingest", "--spool-dir", t.TempDir()),
		p.serve("--roles", "ingest", "--spool-dir", t.TempDir()),
	}
	procs := []*proc{p.serve(processorArgs...), p.serve(processorArgs...)}
	loads := []*load{
		p.startLoad(recv[0].base+"/webhooks/dwolla", 800, 41),
		p.startLoad(recv[1].base+"/webhooks/dwolla", 800, 42),
	}

	ctx := context.Background()
	m, err := rc.Client.MasterForKey(ctx, p.keys.Stream(0))
	if err != nil {
		t.Fatal(err)
	}
	victim := m.Options().Addr
	replica, err := rc.ReplicaOf(victim)
	if err != nil {
		t.Fatal(err)
	}
	var onVictim []int
	for part := range p.keys.Partitions {
		if n, err := rc.Client.MasterForKey(ctx, p.keys.Stream(part)); err == nil && n.Options().Addr == victim {
			onVictim = append(onVictim, part)
		}
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("the promoted replica's log:\n%s", rc.Log(replica))
		}
	})

	testenv.WaitFor(t, 60*time.Second, "some events stored", func() bool { return p.stored() > 300 })
	// A backlog that only Redis holds when the master dies: a replica that
	// had not received it would lose events with it.
	p.run("pause", "process")
	testenv.WaitFor(t, 60*time.Second, "a backlog in Redis", func() bool { return p.status().Total.Lag > 1000 })
	backlog := p.status().Total.Lag
	p.run("resume", "process")
	rc.Kill(victim)
	atKill := p.stored()
	killedAt := time.Now()
	testenv.WaitFor(t, 60*time.Second, "the replica "+replica+" to be promoted and every live node to answer cluster_state:ok",
		func() bool { return rc.IsMaster(replica) && rc.OK() })
	failover := time.Since(killedAt).Round(100 * time.Millisecond)
	for _, l := range loads {
		select {
		case err := <-l.done:
			l.done <- err // for its cleanup
			t.Fatalf("a simulator finished before the failover was over (%s after the kill): the test needs more events", time.Since(killedAt).Round(100*time.Millisecond))
		default:
		}
	}
	// The test's own client too must learn the new slot map before it
	// counts stream entries (the processes learn it on their errors).
	testenv.WaitFor(t, 30*time.Second, "the test's cluster client to route partition 0 to "+replica, func() bool {
		rc.Client.ReloadState(ctx)
		m, err := rc.Client.MasterForKey(ctx, p.keys.Stream(0))
		return err == nil && m.Options().Addr == replica
	})

	var want []string
	for _, l := range loads {
		ids, st := l.wait(t)
		if st.retries != 0 || st.netErrors != 0 || st.non2xx != "none" {
			t.Fatalf("a webhook was not answered 2xx at its first try during the failover: %+v\n%s", st, l.out.String())
		}
		want = append(want, ids...)
	}
	// The kill reached the receivers: they found the master gone and
	// spooled, then drained the spool into the promoted replica.
	hit := false
	for _, r := range recv {
		s := r.logs.String()
		hit = hit || strings.Contains(s, "redis unreachable") || strings.Contains(s, "redis refused entries")
	}
	if !hit {
		t.Fatalf("no receiver noticed the master's death:\n%s\n%s", recv[0].logs.String(), recv[1].logs.String())
	}
	p.checkChaos(want)
	if n := p.count(`SELECT count(*) FROM dead_letters`); n != 0 {
		t.Fatalf("%d dead letters after a failover", n)
	}
	for _, r := range recv {
		if metric(t, r.base, "hookstream_ingest_redis_up") != 1 {
			t.Fatalf("a receiver still reports Redis down:\n%s", r.logs.String())
		}
	}
	t.Logf("killed master %s (partitions %v) with %d of %d events stored and a backlog of %d; replica %s promoted and the cluster ok on every live node %s later",
		victim, onVictim, atKill, len(want), backlog, replica, failover)
	for _, pr := range append(recv, procs...) {
		pr.stop(t)
	}
}

// throughCluster is a *redis.Client (what the pipeline's helpers take)
// whose every command the cluster client runs; it never dials by itself.
func throughCluster(rc *redis.ClusterClient) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	c.AddHook(clusterHook{rc})
	return c
}

type clusterHook struct{ rc *redis.ClusterClient }

func (h clusterHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h clusterHook) ProcessHook(redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error { return h.rc.Process(ctx, cmd) }
}

func (h clusterHook) ProcessPipelineHook(redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		var first error
		for _, cmd := range cmds {
			if err := h.rc.Process(ctx, cmd); err != nil && first == nil {
				first = err
			}
		}
		return first
	}
}
