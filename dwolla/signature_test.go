package dwolla

import (
	"net/http"
	"strings"
	"testing"
)

func TestVerifier(t *testing.T) {
	body := []byte(sample)
	old, cur := []byte("old-secret"), []byte("new-secret")
	v := NewVerifier([][]byte{old, cur, nil})
	if v.Secrets() != 2 {
		t.Fatalf("empty secret should be ignored; got %d secrets", v.Secrets())
	}
	f := func(sig string, want bool) {
		t.Helper()
		if got := v.Verify(body, sig); got != want {
			t.Fatalf("Verify(%q) = %v, want %v", sig, got, want)
		}
	}
	f(Sign(cur, body), true)
	f(Sign(old, body), true) // rotation: both accepted
	f(strings.ToUpper(Sign(cur, body)), true)
	f(Sign([]byte("other"), body), false)
	f(Sign(cur, append([]byte(nil), append(body, ' ')...)), false) // body changed
	f("", false)
	f("zz"+Sign(cur, body)[2:], false) // not hex
	f(Sign(cur, body)[:40], false)     // SHA-1 length
}

func TestSignatureFrom(t *testing.T) {
	h := http.Header{}
	h.Set("x-request-signature-sha256", "legacy")
	if SignatureFrom(h) != "legacy" {
		t.Fatal("legacy header spelling not read")
	}
	h.Set("X-Request-Signature-SHA-256", "real")
	if SignatureFrom(h) != "real" {
		t.Fatal("canonical header should win")
	}
}

func BenchmarkVerify(b *testing.B) {
	body := []byte(sample)
	v := NewVerifier([][]byte{[]byte("secret")})
	sig := Sign([]byte("secret"), body)
	b.ReportAllocs()
	for b.Loop() {
		if !v.Verify(body, sig) {
			b.Fatal("no match")
		}
	}
}

func BenchmarkParseEvent(b *testing.B) {
	body := []byte(sample)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseEvent(body); err != nil {
			b.Fatal(err)
		}
	}
}
