package ingest

import (
	"context"
	"testing"
	"time"

	"github.com/hookstream/hookstream/internal/testenv"
	"github.com/hookstream/hookstream/sim"
)

// TestSimulatorTraffic sends the simulator's lifecycles with 20% duplicate and
// 20% reordered deliveries and checks the streams hold exactly its ground truth.
func TestSimulatorTraffic(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil, Options{})
	sc := sim.Generate(sim.Config{Customers: 300, Seed: 42})
	stats, err := sim.Send(context.Background(), sc.Events, sim.SendConfig{
		URL: h.srv.URL + "/webhooks/dwolla", Secret: secret, Concurrency: 16,
		Duplicates: 0.2, Reorder: 0.2, ReorderDelay: 200 * time.Millisecond, Seed: 7,
	})
	if err != nil {
		t.Fatal(err)
	}
	if stats.Duplicates == 0 || stats.Reordered == 0 || stats.GaveUp != 0 {
		t.Fatalf("send stats %+v: want duplicates and reordering, nothing given up", stats)
	}
	truth := make([]string, len(sc.Events))
	for i, ev := range sc.Events {
		truth[i] = ev.ID
	}
	rep, err := sim.VerifyStreams(context.Background(), h.rdb, h.keys, truth)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Fatalf("streams differ from the ground truth: %s", rep)
	}
	t.Logf("%d unique events, %d deliveries (%d duplicates, %d reordered): %s", len(sc.Events), stats.Sent, stats.Duplicates, stats.Reordered, rep)
}

// TestSimulatorTrafficOnCluster is the same traffic against a real three-master
// Redis Cluster: the receiver runs unchanged on a cluster client.
func TestSimulatorTrafficOnCluster(t *testing.T) {
	t.Parallel()
	h := newHarness(t, testenv.StartRedisCluster(t), Options{})
	sc := sim.Generate(sim.Config{Customers: 100, Seed: 9})
	if _, err := sim.Send(context.Background(), sc.Events, sim.SendConfig{
		URL: h.srv.URL + "/webhooks/dwolla", Secret: secret, Concurrency: 16,
		Duplicates: 0.2, Reorder: 0.2, ReorderDelay: 100 * time.Millisecond, Seed: 1,
	}); err != nil {
		t.Fatal(err)
	}
	truth := make([]string, len(sc.Events))
	for i, ev := range sc.Events {
		truth[i] = ev.ID
	}
	rep, err := sim.VerifyStreams(context.Background(), h.rdb, h.keys, truth)
	if err != nil || !rep.OK() {
		t.Fatalf("streams on the cluster differ from the ground truth: %v %s", err, rep)
	}
	if rd := h.recv.Readiness(context.Background()); !rd.Ready || rd.Redis != "up" {
		t.Fatalf("readiness on a cluster: %+v", rd)
	}
}
