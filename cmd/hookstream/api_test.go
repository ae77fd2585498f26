package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hookstream/hookstream/internal/testenv"
)

// The api role: refused without tokens (or insecure off loopback), served
// with a hashed token whose name, never secret, reaches the access log;
// "all" without tokens runs the other roles and says why the API is not.
func TestServeTheAPIRole(t *testing.T) {
	bin := buildBinary(t)
	_, ns := testenv.Redis(t)
	env := func(extra ...string) []string {
		return append(os.Environ(), append([]string{"HOOKSTREAM_REDIS_URL=" + testenv.RedisURL(), "HOOKSTREAM_DATABASE_URL=" + testenv.DatabaseURL(),
			"HOOKSTREAM_NAMESPACE=" + ns, "HOOKSTREAM_SPOOL_DIR=" + t.TempDir(), "HOOKSTREAM_WEBHOOK_SECRETS=s",
			fmt.Sprintf("HOOKSTREAM_HTTP_ADDR=127.0.0.1:%d", testenv.FreePort(t))}, extra...)...)
	}
	for _, c := range []struct {
		args []string
		env  []string
		want string
	}{
		{[]string{"serve", "--roles", "api"}, nil, "no API tokens configured"},
		{[]string{"serve", "--roles", "api", "--api-insecure", "--api-addr", "0.0.0.0:0"}, nil, "only on a loopback address"},
		{[]string{"serve", "--roles", "api"}, []string{"HOOKSTREAM_API_TOKENS=x:read:short"}, "shorter than 16"},
	} {
		cmd := exec.Command(bin, c.args...)
		cmd.Env = env(c.env...)
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), c.want) {
			t.Errorf("%v %v: err %v, output %s; want it to say %q", c.args, c.env, err, out, c.want)
		}
	}

	secret := "a-long-random-secret-for-the-test"
	digest := sha256.Sum256([]byte(secret))
	port := testenv.FreePort(t)
	start := func(args []string, extra ...string) (*exec.Cmd, *syncBuffer) {
		cmd := exec.Command(bin, args...)
		cmd.Env = env(extra...)
		logs := &syncBuffer{}
		cmd.Stdout, cmd.Stderr = logs, logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		return cmd, logs
	}
	stop := func(cmd *exec.Cmd, logs *syncBuffer) {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("exited with %v after SIGTERM:\n%s", err, logs)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("did not stop within 20s of SIGTERM:\n%s", logs)
		}
	}
	cmd, logs := start([]string{"serve", "--roles", "api"}, "HOOKSTREAM_API_TOKENS=grafana:read:sha256:"+hex.EncodeToString(digest[:]),
		fmt.Sprintf("HOOKSTREAM_API_ADDR=127.0.0.1:%d", port))
	url := fmt.Sprintf("http://127.0.0.1:%d/api/v1/info", port)
	var body []byte
	testenv.WaitFor(t, 15*time.Second, "the API to answer", func() bool {
		req, _ := http.NewRequest("GET", url, nil)
		req.Header.Set("Authorization", "Bearer "+secret)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		body, _ = io.ReadAll(resp.Body)
		return resp.StatusCode == 200
	})
	if !strings.Contains(string(body), `"token":"grafana"`) || !strings.Contains(string(body), `"scope":"read"`) {
		t.Fatalf("info: %s", body)
	}
	stop(cmd, logs)
	if l := logs.String(); !strings.Contains(l, "token=grafana") || strings.Contains(l, secret) {
		t.Fatalf("the access log should name the token and never show its secret:\n%s", l)
	}

	cmd, logs = start([]string{"serve", "--roles", "all"})
	testenv.WaitFor(t, 15*time.Second, "serve --roles all to say the API is not running", func() bool {
		return strings.Contains(logs.String(), "the api role is not running: no API tokens are configured")
	})
	stop(cmd, logs)
}
