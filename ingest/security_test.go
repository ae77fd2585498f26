package ingest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hookstream/hookstream/dwolla"
	"github.com/hookstream/hookstream/internal/testenv"
	"github.com/hookstream/hookstream/stream"
)

// The penetration pass over the webhook receiver, item by item of the
// OWASP API Security Top 10 (2023); docs/security.md ("Penetration pass")
// maps each subtest to what it attacks. Each attack asserts the exact
// answer and that nothing was stored that should not be.

const (
	errNoSig  = "missing X-Request-Signature-SHA-256 header"
	errBadSig = "X-Request-Signature-SHA-256 does not match the body under any configured secret"
)

// exchange is one request to the receiver, answered as it came.
type exchange struct {
	code int
	hdr  http.Header
	raw  []byte
	body response
}

func (h *harness) send(method, path string, body []byte, header map[string]string) exchange {
	h.t.Helper()
	req, err := http.NewRequest(method, h.srv.URL+path, bytes.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := h.srv.Client().Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	x := exchange{code: resp.StatusCode, hdr: resp.Header}
	x.raw, _ = io.ReadAll(resp.Body)
	json.Unmarshal(x.raw, &x.body)
	return x
}

// wantAnswer fails unless x is the JSON answer code with status and error.
func wantAnswer(t *testing.T, what string, x exchange, code int, status, errText string) {
	t.Helper()
	if x.code != code || x.body.Status != status || x.body.Error != errText {
		t.Fatalf("%s: %d %s\nwant %d {status %q, error %q}", what, x.code, x.raw, code, status, errText)
	}
	if ct := x.hdr.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("%s: Content-Type %q, want application/json", what, ct)
	}
	if v := x.hdr.Get("Access-Control-Allow-Origin"); v != "" {
		t.Fatalf("%s: Access-Control-Allow-Origin %q", what, v)
	}
}

// API2: broken authentication of webhooks.
func TestPenetrationWebhookSignatures(t *testing.T) {
	t.Parallel()
	old, cur := []byte("pen-old-secret"), []byte("pen-current-secret")
	h := newHarness(t, nil, Options{Secrets: [][]byte{old, cur}})
	body := event("pen-1")
	good := dwolla.Sign(cur, body)
	mac, _ := hex.DecodeString(good)
	flipped := bytes.Clone(body)
	flipped[len(flipped)-3] ^= 0x01 // inside the customer link
	for _, c := range []struct {
		name   string
		body   []byte
		header map[string]string
		err    string
	}{
		{"no signature", body, nil, errNoSig},
		{"blank signature", body, map[string]string{dwolla.SignatureHeader: " "}, errNoSig},
		{"signed with another secret", body, map[string]string{dwolla.SignatureHeader: dwolla.Sign([]byte("pen-guess"), body)}, errBadSig},
		{"truncated by one digit", body, map[string]string{dwolla.SignatureHeader: good[:63]}, errBadSig},
		{"half the digits", body, map[string]string{dwolla.SignatureHeader: good[:32]}, errBadSig},
		{"one digit more", body, map[string]string{dwolla.SignatureHeader: good + "0"}, errBadSig},
		{"last digit changed", body, map[string]string{dwolla.SignatureHeader: lastChanged(good)}, errBadSig},
		{"base64 instead of hex", body, map[string]string{dwolla.SignatureHeader: base64.StdEncoding.EncodeToString(mac)}, errBadSig},
		{"prefixed sha256=", body, map[string]string{dwolla.SignatureHeader: "sha256=" + good}, errBadSig},
		{"non-hex of the right length", body, map[string]string{dwolla.SignatureHeader: strings.Repeat("zz", 32)}, errBadSig},
		{"all zeros", body, map[string]string{dwolla.SignatureHeader: strings.Repeat("0", 64)}, errBadSig},
		{"the secret itself", body, map[string]string{dwolla.SignatureHeader: string(cur)}, errBadSig},
		{"SHA-256 of the body, no key", body, map[string]string{dwolla.SignatureHeader: sha256Hex(body)}, errBadSig},
		{"replayed signature, one body byte altered", flipped, map[string]string{dwolla.SignatureHeader: good}, errBadSig},
		{"replayed signature, body with a trailing space", append(bytes.Clone(body), ' '), map[string]string{dwolla.SignatureHeader: good}, errBadSig},
		{"signature in the topic header only", body, map[string]string{dwolla.TopicHeader: good}, errNoSig},
		{"unsigned garbage is not parsed", []byte("not json at all"), nil, errNoSig},
		{"unsigned garbage, wrong signature", []byte("not json at all"), map[string]string{dwolla.SignatureHeader: good}, errBadSig},
	} {
		t.Run(c.name, func(t *testing.T) {
			x := h.send("POST", "/webhooks/dwolla", c.body, c.header)
			wantAnswer(t, c.name, x, 401, "error", c.err)
			for _, s := range [][]byte{old, cur} {
				if bytes.Contains(x.raw, s) {
					t.Fatalf("the answer holds a secret: %s", x.raw)
				}
			}
		})
	}
	if got := h.streamIDs(); len(got) != 0 {
		t.Fatalf("rejected deliveries were stored: %v", got)
	}
	t.Run("upper-case hex is the same signature", func(t *testing.T) {
		x := h.send("POST", "/webhooks/dwolla", body, map[string]string{dwolla.SignatureHeader: strings.ToUpper(good)})
		if x.code != 200 || x.body.Status != "stored" || x.body.ID != "pen-1" {
			t.Fatalf("%d %s, want 200 stored", x.code, x.raw)
		}
	})
	t.Run("a replayed delivery is stored once", func(t *testing.T) {
		x := h.send("POST", "/webhooks/dwolla", body, map[string]string{dwolla.SignatureHeader: good})
		if x.code != 200 || x.body.Status != "duplicate" || x.body.ID != "pen-1" {
			t.Fatalf("%d %s, want 200 duplicate", x.code, x.raw)
		}
		if got := h.streamIDs(); len(got) != 1 || got["pen-1"] != 1 {
			t.Fatalf("stream holds %v, want pen-1 once", got)
		}
	})
	t.Run("rotation: the old secret works while configured, not after", func(t *testing.T) {
		b := event("pen-rot")
		x := h.send("POST", "/webhooks/dwolla", b, map[string]string{dwolla.SignatureHeader: dwolla.Sign(old, b)})
		if x.code != 200 || x.body.Status != "stored" {
			t.Fatalf("old secret during rotation: %d %s", x.code, x.raw)
		}
		after := newHarness(t, nil, Options{Secrets: [][]byte{cur}})
		b = event("pen-rot-2")
		x = after.send("POST", "/webhooks/dwolla", b, map[string]string{dwolla.SignatureHeader: dwolla.Sign(old, b)})
		wantAnswer(t, "old secret after rotation", x, 401, "error", errBadSig)
		x = after.send("POST", "/webhooks/dwolla", b, map[string]string{dwolla.SignatureHeader: dwolla.Sign(cur, b)})
		if x.code != 200 || x.body.Status != "stored" {
			t.Fatalf("new secret after rotation: %d %s", x.code, x.raw)
		}
	})
	t.Run("no secret configured is refused at start", func(t *testing.T) {
		_, err := New(h.rdb, h.keys, Options{SpoolDir: t.TempDir()})
		if err == nil || !strings.Contains(err.Error(), "secret") {
			t.Fatalf("New without secrets: %v, want a refusal about the secret", err)
		}
	})
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// lastChanged is sig with its last hex digit replaced by another.
func lastChanged(sig string) string {
	if strings.HasSuffix(sig, "0") {
		return sig[:len(sig)-1] + "1"
	}
	return sig[:len(sig)-1] + "0"
}

// API3, API4 and API8 on the receiver's listener.
func TestPenetrationReceiverListener(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil, Options{MaxBody: 4096})

	t.Run("body over --max-body, announced", func(t *testing.T) {
		b := append(event("pen-big"), bytes.Repeat([]byte(" "), 5000)...)
		x := h.send("POST", "/webhooks/dwolla", b, map[string]string{dwolla.SignatureHeader: dwolla.Sign(secret, b)})
		wantAnswer(t, "oversize", x, 413, "error", fmt.Sprintf("body of %d bytes exceeds the 4096 byte limit", len(b)))
	})
	t.Run("body over --max-body, chunked and unsigned", func(t *testing.T) {
		req, _ := http.NewRequest("POST", h.srv.URL+"/webhooks/dwolla", io.MultiReader(bytes.NewReader(bytes.Repeat([]byte("a"), 1<<20))))
		req.ContentLength = -1
		resp, err := h.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 413 || string(raw) != `{"status":"error","error":"body exceeds the 4096 byte limit"}`+"\n" {
			t.Fatalf("%d %s, want 413", resp.StatusCode, raw)
		}
	})
	for _, c := range []struct{ method, path, allow, err string }{
		{"GET", "/webhooks/dwolla", "POST", "only POST is accepted"},
		{"TRACE", "/webhooks/dwolla", "POST", "only POST is accepted"},
		{"OPTIONS", "/webhooks/dwolla", "POST", "only POST is accepted"},
		{"PUT", "/webhooks/dwolla", "POST", "only POST is accepted"},
		{"TRACE", "/healthz", "GET, HEAD", "only GET is accepted here"},
		{"POST", "/readyz", "GET, HEAD", "only GET is accepted here"},
		{"DELETE", "/metrics", "GET, HEAD", "only GET is accepted here"},
	} {
		t.Run(c.method+" "+c.path, func(t *testing.T) {
			x := h.send(c.method, c.path, nil, map[string]string{"Origin": "https://evil.example", "X-Echo": "echo-me", dwolla.SignatureHeader: "echo-sig"})
			wantAnswer(t, c.method+" "+c.path, x, 405, "error", c.err)
			if x.hdr.Get("Allow") != c.allow {
				t.Fatalf("Allow %q, want %q", x.hdr.Get("Allow"), c.allow)
			}
			if bytes.Contains(x.raw, []byte("echo-me")) || bytes.Contains(x.raw, []byte("echo-sig")) {
				t.Fatalf("the request was echoed: %s", x.raw)
			}
		})
	}
	for _, path := range []string{"/", "/webhooks", "/webhooks/dwolla/", "/webhooks/dwolla/../../etc/passwd", "/debug/pprof/", "/api/v1/info", "/%2e%2e/etc/passwd"} {
		t.Run("unknown "+path, func(t *testing.T) {
			x := h.send("GET", path, nil, nil)
			if x.code == 301 || x.code == 307 || x.code == 308 {
				// net/http cleans ".." paths with a redirect first; where
				// it leads is answered like any path.
				x = h.send("GET", x.hdr.Get("Location"), nil, nil)
			}
			wantAnswer(t, "GET "+path, x, 404, "error", "no such endpoint; webhooks are POSTed to /webhooks/dwolla")
		})
	}
	t.Run("health, readiness and metrics hold no secret", func(t *testing.T) {
		for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
			for _, method := range []string{"GET", "HEAD"} {
				x := h.send(method, path, nil, nil)
				if x.code != 200 {
					t.Fatalf("%s %s: %d", method, path, x.code)
				}
				if bytes.Contains(x.raw, secret) {
					t.Fatalf("%s %s holds the webhook secret", method, path)
				}
			}
		}
	})
	t.Run("still healthy", func(t *testing.T) {
		if r := h.postSigned(event("pen-after")); r.code != 200 || r.body.Status != "stored" {
			t.Fatalf("a valid delivery after the attacks: %d %+v", r.code, r.body)
		}
	})
}

// API4 on the role's own HTTP server: headers too large, and a client that
// never finishes its headers (slowloris) while others are answered.
func TestPenetrationReceiverSlowClients(t *testing.T) {
	t.Parallel()
	rdb, ns := testenv.Redis(t)
	role, err := NewRole(rdb, stream.NewKeys(ns, 2), "127.0.0.1:0", Options{Secrets: [][]byte{secret}, SpoolDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- role.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ingest role: %v", err)
		}
	})
	base := "http://" + role.Addr()
	healthy := func(t *testing.T) {
		t.Helper()
		testenv.WaitFor(t, 10*time.Second, "the receiver to answer /healthz", func() bool {
			resp, err := http.Get(base + "/healthz")
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode == 200
		})
	}
	healthy(t)
	t.Run("headers over 1 MB", func(t *testing.T) {
		req, _ := http.NewRequest("POST", base+"/webhooks/dwolla", strings.NewReader("{}"))
		req.Header.Set("X-Padding", strings.Repeat("a", 1<<20+4096))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge || string(b) != "431 Request Header Fields Too Large" {
			t.Fatalf("%d %q, want 431", resp.StatusCode, b)
		}
		healthy(t)
	})
	t.Run("slowloris: headers never finished", func(t *testing.T) {
		c, err := net.Dial("tcp", role.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := io.WriteString(c, "POST /webhooks/dwolla HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n"); err != nil {
			t.Fatal(err)
		}
		healthy(t) // others are answered meanwhile
		// The server closes the connection (ReadHeaderTimeout, 5s) without
		// an answer; the bound here is only against a hang.
		c.SetReadDeadline(time.Now().Add(60 * time.Second))
		b, err := io.ReadAll(bufio.NewReader(c))
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatal("the server kept a connection with unfinished headers open for 60s")
		}
		if len(b) != 0 {
			t.Fatalf("the server answered unfinished headers: %q", b)
		}
		healthy(t)
	})
}
