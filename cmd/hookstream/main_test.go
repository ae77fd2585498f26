package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hookstream/hookstream/dwolla"
	"github.com/hookstream/hookstream/internal/testenv"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
	binDir  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// buildBinary builds hookstream once for all the tests that drive the real binary.
func buildBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		if binDir, binErr = os.MkdirTemp("", "hookstream-bin"); binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "hookstream")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

func TestBinary(t *testing.T) {
	bin := buildBinary(t)

	t.Run("help", func(t *testing.T) {
		for _, args := range [][]string{{"help"}, {"help", "serve"}, {"serve", "--help"}, {"sim", "--help"}, {"bench", "ingest", "--help"}, {"bench", "process", "--help"}, {"migrate", "--help"}, {"status", "--help"}, {"pause", "--help"}, {"resume", "--help"}, {"dlq", "--help"}, {"replay", "--help"}} {
			out, _ := exec.Command(bin, args...).CombinedOutput()
			if !strings.Contains(string(out), "USAGE") {
				t.Errorf("%v printed no usage:\n%s", args, out)
			}
		}
		out, err := exec.Command(bin, "serve", "--roles", "nonsense", "--webhook-secrets", "x").CombinedOutput()
		if err == nil || !strings.Contains(string(out), `unknown role "nonsense"`) {
			t.Errorf("unknown role: err %v, output %s", err, out)
		}
	})

	t.Run("serve configured from the environment, stopped by SIGTERM", func(t *testing.T) {
		_, ns := testenv.Redis(t) // its cleanup deletes the keys serve writes under ns
		port := testenv.FreePort(t)
		cmd := exec.Command(bin, "serve", "--roles", "ingest")
		cmd.Env = append(os.Environ(),
			"HOOKSTREAM_REDIS_URL="+testenv.RedisURL(),
			"HOOKSTREAM_DATABASE_URL="+testenv.DatabaseURL(),
			"HOOKSTREAM_WEBHOOK_SECRETS=old, new",
			fmt.Sprintf("HOOKSTREAM_HTTP_ADDR=127.0.0.1:%d", port),
			"HOOKSTREAM_NAMESPACE="+ns,
			"HOOKSTREAM_SPOOL_DIR="+t.TempDir(),
		)
		var logs bytes.Buffer
		cmd.Stdout, cmd.Stderr = &logs, &logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer cmd.Process.Kill()
		base := fmt.Sprintf("http://127.0.0.1:%d", port)
		deadline := time.Now().Add(15 * time.Second)
		for {
			resp, err := http.Get(base + "/readyz")
			if err == nil {
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode == 200 && strings.Contains(string(body), `"redis": "up"`) && strings.Contains(string(body), `"postgres": "up"`) {
					break
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("serve never became ready:\n%s", logs.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
		body := []byte(`{"id":"bin-1","topic":"customer_created","created":"2026-11-28T10:00:00Z"}`)
		for _, secret := range []string{"old", "new"} {
			req, _ := http.NewRequest(http.MethodPost, base+"/webhooks/dwolla", bytes.NewReader(body))
			req.Header.Set(dwolla.SignatureHeader, dwolla.Sign([]byte(secret), body))
			resp, err := http.DefaultClient.Do(req)
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("webhook signed with %q: %v %v", secret, resp, err)
			}
			resp.Body.Close()
		}
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("serve exited with %v after SIGTERM:\n%s", err, logs.String())
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("serve did not stop within 20s of SIGTERM:\n%s", logs.String())
		}
		if !strings.Contains(logs.String(), "ingest stopped") {
			t.Fatalf("no orderly shutdown in the log:\n%s", logs.String())
		}
	})
}
