package alert

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// golden compares got (JSON) with testdata/name, indented; -update writes
// it. The golden files are reviewed by hand: they are what Slack and
// webhook receivers get.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	var buf bytes.Buffer
	if err := json.Indent(&buf, got, "", "  "); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	buf.WriteByte('\n')
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./alert -run Golden -update to write it)", err)
	}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Errorf("%s differs from the golden file:\n%s", name, buf.String())
	}
}

func resolvedOf(n Notification) Notification {
	n.State, n.Value, n.ResolvedAt = StateResolved, 12, started.Add(17*time.Minute)
	return n
}

func group(ns ...Notification) Group {
	g := Group{ID: "ntf_golden", Key: GroupKey(ns[0].Rule), Rule: ns[0].Rule, Severity: ns[0].Severity, Status: StateResolved,
		CreatedAt: started.Add(30 * time.Second), Alerts: ns}
	for _, n := range ns {
		if n.State == StateFiring {
			g.Status = StateFiring
		}
	}
	return g
}

func TestGoldenPayloads(t *testing.T) {
	second := firing()
	second.Fingerprint, second.Value = "4567ef01", 58
	second.Labels = map[string]string{"topic": "transfer_failed", "team": "payments"}
	second.Summary = "58 transfer failures in 1m"
	anomaly := Notification{Rule: "anomaly", Severity: SeverityWarning, State: StateFiring, Fingerprint: "89ab2345",
		Value: 412, Expected: &Range{Low: 80, High: 160}, Window: "5m", Labels: map[string]string{"series": "volume/family=transfer"},
		StartedAt: started, Summary: "anomaly on volume/family=transfer: 412, expected 80 – 160 (score 0.97)"}

	for _, c := range []struct {
		name string
		kind TargetKind
		g    Group
	}{
		{"slack-firing.json", TargetSlack, group(firing())},
		{"slack-resolved.json", TargetSlack, group(resolvedOf(firing()))},
		{"slack-anomaly.json", TargetSlack, group(anomaly)},
		{"slack-group.json", TargetSlack, group(firing(), second, resolvedOf(firing()))},
		{"webhook-firing.json", TargetWebhook, group(firing(), second)},
		{"webhook-resolved.json", TargetWebhook, group(resolvedOf(firing()))},
	} {
		t.Run(c.name, func(t *testing.T) {
			b, err := Body(c.kind, c.g)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, c.name, b)
		})
	}
}

func TestSlackGroupKeepsLimits(t *testing.T) {
	var ns []Notification
	for i := range 60 {
		n := firing()
		n.Fingerprint = strings.Repeat("x", i+1)
		n.Summary = strings.Repeat("<!channel> ", 400)
		ns = append(ns, n)
	}
	m := SlackGroup(group(ns...))
	if len(m.Blocks) > slackBlocksMax {
		t.Fatalf("%d blocks", len(m.Blocks))
	}
	b, _ := json.Marshal(m)
	if strings.Contains(string(b), "<!channel>") {
		t.Fatal("a summary can mention the channel")
	}
	if !strings.Contains(string(b), "and 40 more") {
		t.Fatal("the alerts past the limit are not counted")
	}
}
