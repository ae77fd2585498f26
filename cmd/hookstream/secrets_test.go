package main

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookstream/hookstream/internal/testenv"
)

// TestNoSecretInLogs runs every role with every kind of secret configured
// (the webhook secret, API tokens, the Dwolla key and secret, a Slack URL
// and a webhook target's signing secret), drives each through its path
// (signed webhooks and badly signed ones, API calls with good tokens and
// with a near miss of one, reconciliation against the fake Dwolla API,
// alerts delivered to Slack and the webhook target), and then scans
// everything the processes printed: no secret appears.
func TestNoSecretInLogs(t *testing.T) {
	t.Parallel()
	p := newPipeline(t)
	secret := func(prefix string) string {
		b := make([]byte, 16)
		rand.Read(b)
		return prefix + hex.EncodeToString(b)
	}
	rawSigning := make([]byte, 32)
	rand.Read(rawSigning)
	secrets := map[string]string{
		"webhook secret":      secret("wh-"),
		"admin token":         secret("adm-"),
		"read token":          secret("rd-"),
		"Dwolla key":          secret("dk-"),
		"Dwolla secret":       secret("ds-"),
		"Slack URL's secret":  secret("sl-"),
		"target secret":       "whsec_" + base64.StdEncoding.EncodeToString(rawSigning),
		"target secret (b64)": base64.StdEncoding.EncodeToString(rawSigning),
	}

	// Slack and the webhook target: loopback servers that take everything.
	var slackHits, webhookHits atomic.Int64
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if strings.HasPrefix(r.URL.Path, "/services/") {
			slackHits.Add(1)
			io.WriteString(w, "ok")
			return
		}
		webhookHits.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(receiver.Close)
	rules := filepath.Join(t.TempDir(), "alert-rules.yaml")
	if err := os.WriteFile(rules, []byte(fmt.Sprintf(`group_wait: 1s
targets:
  - {name: oncall, kind: slack, url: "%[1]s/services/T0/B0/%[2]s"}
  - {name: pager, kind: webhook, url: "%[1]s/hooks", secret: "%[3]s"}
rules:
  - {name: dead-letters-watch, kind: operational, severity: info, signal: dead_letters_open, op: ">=", value: 0, summary: "{{.Value}} dead letters open"}
`, receiver.URL, secrets["Slack URL's secret"], secrets["target secret"])), 0o600); err != nil {
		t.Fatal(err)
	}

	dwollaPort, apiPort := testenv.FreePort(t), testenv.FreePort(t)
	p.env = append(p.env,
		"HOOKSTREAM_WEBHOOK_SECRETS="+secrets["webhook secret"],
		"HOOKSTREAM_API_TOKENS=ops:admin:"+secrets["admin token"]+",grafana:read:"+secrets["read token"],
		"HOOKSTREAM_ALERT_RULES="+rules,
		fmt.Sprintf("HOOKSTREAM_DWOLLA_API=http://127.0.0.1:%d", dwollaPort),
		"HOOKSTREAM_DWOLLA_KEY="+secrets["Dwolla key"],
		"HOOKSTREAM_DWOLLA_SECRET="+secrets["Dwolla secret"],
	)
	apiBase := fmt.Sprintf("http://127.0.0.1:%d", apiPort)
	srv := p.serve("--roles", "all", "--reconcile-every", "1s", "--api-addr", fmt.Sprintf("127.0.0.1:%d", apiPort))

	// Signed traffic with some webhooks never delivered (reconciliation
	// fetches them from the fake API with the Dwolla credentials), created
	// over the day before now: reconciliation looks back 30 days.
	start := time.Now().UTC().Add(-24 * time.Hour).Format(time.RFC3339)
	simOut := p.background("sim", "--url", srv.base+"/webhooks/dwolla", "--webhook-secrets", secrets["webhook secret"],
		"--customers", "40", "--seed", "31", "--start", start, "--rate", "0", "--drop", "0.1",
		"--api-addr", fmt.Sprintf("127.0.0.1:%d", dwollaPort), "--api-key", secrets["Dwolla key"], "--api-secret", secrets["Dwolla secret"],
		"--verify", "events", "--verify-timeout", "90s")

	// Badly signed webhooks: one signed with a near miss of the secret.
	for _, sig := range []string{"00", hex.EncodeToString([]byte(secrets["webhook secret"]))} {
		req, _ := http.NewRequest(http.MethodPost, srv.base+"/webhooks/dwolla", strings.NewReader(`{"id":"x","topic":"customer_created"}`))
		req.Header.Set("X-Request-Signature-SHA-256", sig)
		if resp, err := http.DefaultClient.Do(req); err != nil {
			t.Fatal(err)
		} else if resp.Body.Close(); resp.StatusCode != http.StatusUnauthorized && resp.StatusCode != http.StatusForbidden {
			t.Errorf("a badly signed webhook got %s", resp.Status)
		}
	}
	// The API with each token, and with near misses of them.
	for _, tok := range []string{secrets["admin token"], secrets["read token"], secrets["admin token"] + "x", "x" + secrets["read token"]} {
		req, _ := http.NewRequest(http.MethodGet, apiBase+"/api/v1/status", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		if resp, err := http.DefaultClient.Do(req); err != nil {
			t.Fatal(err)
		} else {
			resp.Body.Close()
		}
	}

	waitOutput(t, simOut, "still serving the fake Dwolla API", 150*time.Second)
	if s := simOut.String(); !strings.Contains(s, " 0 missing, 0 duplicated, 0 unexpected") {
		t.Fatalf("sim --verify events (reconciliation recovers the dropped):\n%s\nserve:\n%s", s, srv.logs.String())
	}
	testenv.WaitFor(t, 60*time.Second, "an alert delivered to Slack and to the webhook target", func() bool {
		return slackHits.Load() > 0 && webhookHits.Load() > 0
	})
	srv.stop(t)

	for what, out := range map[string]string{"serve": srv.logs.String(), "sim": simOut.String()} {
		if len(out) < 200 {
			t.Fatalf("%s printed almost nothing (%d bytes): the scan would prove nothing", what, len(out))
		}
		for name, s := range secrets {
			if i := strings.Index(out, s); i >= 0 {
				line := out[strings.LastIndex(out[:i], "\n")+1:]
				if j := strings.IndexByte(line, '\n'); j >= 0 {
					line = line[:j]
				}
				t.Errorf("%s's output holds the %s: %s", what, name, strings.ReplaceAll(line, s, "<"+name+">"))
			}
		}
	}
}
