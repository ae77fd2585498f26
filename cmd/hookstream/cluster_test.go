package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookstream/hookstream/internal/testenv"
	"github.com/hookstream/hookstream/process"
	"github.com/hookstream/hookstream/sim"
	"github.com/hookstream/hookstream/stream"
)

// TestScaleOutOnRedisCluster: a private three-master Redis Cluster, two
// receivers and three processors of the built binary. The receivers reach
// the cluster through one node's URL (cluster mode detected), the
// processors through a comma-separated node list. Both receivers take
// simulated traffic while one processor is killed with SIGKILL holding
// unacknowledged entries; the survivors take them over, status lists every
// processor's consumers, and the events table ends equal to the ground
// truth of both simulators: zero missing, zero duplicated.
func TestScaleOutOnRedisCluster(t *testing.T) {
	t.Parallel()
	bin := buildBinary(t)
	rc, addrs := testenv.StartRedisClusterNodes(t)
	db, dbURL := testenv.Postgres(t)
	ns := testenv.Name("hsc")
	p := &pipeline{t: t, bin: bin, ns: ns, keys: stream.NewKeys(ns, 16), db: db}
	oneNode := "redis://" + addrs[1]
	nodeList := "redis://" + addrs[0] + "," + addrs[2]
	p.env = append(os.Environ(),
		"HOOKSTREAM_REDIS_URL="+oneNode,
		"HOOKSTREAM_DATABASE_URL="+dbURL,
		"HOOKSTREAM_NAMESPACE="+ns,
		"HOOKSTREAM_WEBHOOK_SECRETS=pipeline-secret",
	)
	p.run("migrate", "up")

	recv := []*proc{
		p.serve("--roles", "ingest", "--spool-dir", t.TempDir()),
		p.serve("--roles", "ingest", "--spool-dir", t.TempDir()),
	}
	procArgs := func(consumer string) []string {
		return []string{"--roles", "process", "--redis-url", nodeList, "--consumer", consumer,
			"--batch-size", "20", "--claim-idle", "2s", "--read-block", "200ms"}
	}
	survivors := []*proc{p.serve(procArgs("keep-a")...), p.serve(procArgs("keep-b")...)}
	victim := p.serve(procArgs("victim")...)
	// The API's live feed follows the cluster's streams too.
	apiAddr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	apiProc := p.serve("--roles", "api", "--api-insecure", "--api-addr", apiAddr)
	testenv.WaitFor(t, 20*time.Second, "the API to listen", func() bool {
		resp, err := http.Get("http://" + apiAddr + "/api/v1/status")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	liveEvents := followLive(t, "http://"+apiAddr+"/api/v1/live?types=event")

	loads := []*load{
		p.startLoad(recv[0].base+"/webhooks/dwolla", 150, 31),
		p.startLoad(recv[1].base+"/webhooks/dwolla", 150, 32),
	}

	// pendingOf sums what consumer names starting with prefix hold pending,
	// read straight from the cluster.
	ctx := context.Background()
	pendingOf := func(prefix string) int64 {
		var n int64
		for part := range p.keys.Partitions {
			cs, err := rc.XInfoConsumers(ctx, p.keys.Stream(part), process.DefaultGroup).Result()
			if err != nil && !strings.Contains(err.Error(), "no such key") && !strings.Contains(err.Error(), "NOGROUP") {
				t.Fatalf("consumers of partition %d: %v", part, err)
			}
			for _, c := range cs {
				if strings.HasPrefix(c.Name, prefix) {
					n += c.Pending
				}
			}
		}
		return n
	}
	// Kill the victim while it holds entries; if it happened to have
	// acknowledged everything at that instant, start another and try again.
	var held int64
	var atKill process.Status
	victims := []string{"victim"}
	for attempt := 1; held == 0; attempt++ {
		if attempt > 5 {
			t.Fatal("five SIGKILLs never caught a processor holding unacknowledged entries")
		}
		name := victims[len(victims)-1]
		testenv.WaitFor(t, 60*time.Second, name+" to hold entries", func() bool { return pendingOf(name+"-") > 0 })
		victim.kill9()
		atKill = p.status()
		for _, c := range atKill.Consumers {
			if strings.HasPrefix(c.Consumer, name+"-") {
				held += c.Pending
			}
		}
		if held == 0 {
			victims = append(victims, fmt.Sprintf("victim%d", attempt+1))
			victim = p.serve(procArgs(victims[len(victims)-1])...)
		}
	}
	t.Logf("killed %s holding %d entries", victims[len(victims)-1], held)
	// status lists every processor's consumers, the dead one's included.
	table := p.run("status")
	for _, name := range append([]string{"keep-a", "keep-b"}, victims...) {
		found := false
		for _, c := range atKill.Consumers {
			found = found || strings.HasPrefix(c.Consumer, name+"-")
		}
		if !found || !strings.Contains(table, name+"-0") {
			t.Fatalf("status does not list the consumers of %s (json: %v):\n%s", name, found, table)
		}
	}

	var want []string
	for _, l := range loads {
		ids, _ := l.wait(t)
		want = append(want, ids...)
	}
	testenv.WaitFor(t, 120*time.Second, "every event stored and nothing left in the streams", func() bool {
		st, err := stream.NewGroup(rc, p.keys, process.DefaultGroup).Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var left int64
		for _, s := range st {
			left += s.Pending + max(s.Lag, 0)
		}
		return left == 0 && p.stored() >= int64(len(want))
	})
	testenv.WaitFor(t, 30*time.Second, "stored events on the live feed", func() bool { return liveEvents.Load() > 0 })
	rep, err := sim.VerifyEvents(ctx, p.db, want)
	if err != nil || !rep.OK() {
		t.Fatalf("events table vs the simulators' ground truth: %v %v", rep, err)
	}
	t.Logf("verify events: %s (%d events through 2 receivers)", rep, len(want))
	if n := p.count(`SELECT count(*) FROM dead_letters`); n != 0 {
		t.Fatalf("%d dead letters; a killed processor must dead-letter nothing", n)
	}

	// The survivors took the dead consumer's entries over: it holds none.
	final := p.status()
	for _, c := range final.Consumers {
		if strings.HasPrefix(c.Consumer, victims[len(victims)-1]+"-") && c.Pending != 0 {
			t.Fatalf("the killed consumer %s still holds %d entries on partition %d", c.Consumer, c.Pending, c.Partition)
		}
	}
	if final.Total.Pending != 0 {
		t.Fatalf("status: %d pending at the end", final.Total.Pending)
	}
	// The operations commands against the cluster: pause, resume, dlq.
	p.run("pause", "process")
	testenv.WaitFor(t, 20*time.Second, "both survivors to report themselves paused", func() bool {
		st, paused := p.status(), 0
		for _, h := range st.Processors {
			if strings.HasPrefix(h.Consumer, "keep-") && h.Paused {
				paused++
			}
		}
		return st.Paused && paused == 2
	})
	p.run("resume", "process")
	if st := p.status(); st.Paused {
		t.Fatal("status says paused after resume")
	}
	if out := p.run("dlq", "list"); strings.Contains(out, "CROSSSLOT") {
		t.Fatalf("dlq list:\n%s", out)
	}
	took := false
	for _, s := range survivors {
		took = took || strings.Contains(s.logs.String(), "took over entries from an idle consumer")
	}
	if !took {
		t.Fatalf("no survivor logged taking over the killed consumer's entries:\n%s\n%s", survivors[0].logs.String(), survivors[1].logs.String())
	}
	// Each survivor stored some of the events: the load was shared.
	stored := map[string]int64{}
	for _, h := range final.Processors {
		stored[h.Consumer] = h.Stored
	}
	if stored["keep-a"] == 0 || stored["keep-b"] == 0 {
		t.Fatalf("the survivors' heartbeats: %+v; want both storing", final.Processors)
	}
	for _, r := range append(recv, apiProc) {
		if strings.Contains(r.logs.String(), "CROSSSLOT") {
			t.Fatalf("a receiver or the API hit CROSSSLOT on the cluster:\n%s", r.logs.String())
		}
	}
	for _, s := range survivors {
		s.stop(t)
		if strings.Contains(s.logs.String(), "CROSSSLOT") {
			t.Fatalf("a processor hit CROSSSLOT on the cluster:\n%s", s.logs.String())
		}
	}
}

// followLive reads a live feed until the test ends and counts its "event"
// messages.
func followLive(t *testing.T, url string) *atomic.Int64 {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	var n atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
		for sc.Scan() {
			if sc.Text() == "event: event" {
				n.Add(1)
			}
		}
	}()
	t.Cleanup(func() { cancel(); resp.Body.Close(); <-done })
	return &n
}
