package main

import (
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/hookstream/hookstream/internal/testenv"
)

// TestBenchE2E runs `bench e2e` briefly, a rate and a spike, and checks what
// it reports: every webhook answered 2xx, every unique one stored (the first
// 4,096 webhooks are never duplicates, so at these sizes stored equals
// sent), the backlog drained, the probes seen in the 1m window.
func TestBenchE2E(t *testing.T) {
	bin := buildBinary(t)
	cmd := exec.Command(bin, "bench", "e2e", "--rates", "300", "--duration", "3s",
		"--spike", "--spike-base", "100", "--spike-factor", "4", "--spike-edge", "1s", "--spike-duration", "2s",
		"--probe-rate", "4", "--drain-limit", "60s", "--partitions", "4",
		"--redis-url", testenv.RedisURL(), "--database-url", testenv.DatabaseURL())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("bench e2e: %v\n%s", err, out)
	}
	text := string(out)
	t.Logf("%s", text)
	phases := strings.Split(text, "\n\n")[1:]
	want := []struct {
		name string
		sent int
	}{{"300/s", 900}, {"spike 100→400→100/s", 100 + 800 + 100}}
	if len(phases) < len(want) {
		t.Fatalf("want %d phases, got:\n%s", len(want), text)
	}
	stored := regexp.MustCompile(`stored (\d+) events`)
	for i, w := range want {
		ph := phases[i]
		if !strings.HasPrefix(ph, w.name+"\n") {
			t.Errorf("phase %d: want %q first, got:\n%s", i, w.name, ph)
		}
		if !strings.Contains(ph, "non-2xx 0, errors 0") {
			t.Errorf("%s: a webhook was not answered 2xx:\n%s", w.name, ph)
		}
		m := stored.FindStringSubmatch(ph)
		if m == nil || m[1] != strconv.Itoa(w.sent) {
			t.Errorf("%s: want stored %d events, got %v:\n%s", w.name, w.sent, m, ph)
		}
		if !strings.Contains(ph, "drained after the load in") {
			t.Errorf("%s: the backlog did not drain:\n%s", w.name, ph)
		}
		if !strings.Contains(ph, "ACK → visible in the 1m window") {
			t.Errorf("%s: no probe was seen in the 1m window:\n%s", w.name, ph)
		}
		if !strings.Contains(ph, "CPU per stored event: hookstream") {
			t.Errorf("%s: no CPU split:\n%s", w.name, ph)
		}
	}
}
