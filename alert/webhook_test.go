package alert

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
)

// The known answer of the Standard Webhooks reference library
// (libraries/go/webhook_test.go).
const (
	kaID   = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	kaTS   = 1614265330
	kaBody = `{"test": 2432232314}`
	kaSig  = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

func TestSignKnownVector(t *testing.T) {
	k, err := ParseSecret(secret)
	if err != nil {
		t.Fatal(err)
	}
	s, err := Sign(kaID, time.Unix(kaTS, 0), []byte(kaBody), k)
	if err != nil {
		t.Fatal(err)
	}
	if s.ID != kaID || s.Timestamp != "1614265330" || s.Signature != kaSig {
		t.Errorf("signed %+v, want signature %s", s, kaSig)
	}
	if k.String() != secret {
		t.Errorf("secret round trip %s", k)
	}
	h := http.Header{}
	s.Set(h)
	if h.Get("Webhook-Signature") != kaSig || h.Get("webhook-id") != kaID || h.Get("webhook-timestamp") != "1614265330" {
		t.Errorf("headers %v", h)
	}
	if err := Verify(h, []byte(kaBody), time.Unix(kaTS+60, 0), 0, k); err != nil {
		t.Errorf("verify: %v", err)
	}
}

func TestSignIndependent(t *testing.T) {
	raw := strings.Repeat("k", 32)
	k, err := ParseSecret(raw)
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"type":"alert.firing"}`)
	s, err := Sign("n1", time.Unix(1700000000, 0), body, k)
	if err != nil {
		t.Fatal(err)
	}
	m := hmac.New(sha256.New, []byte(raw))
	m.Write([]byte("n1.1700000000." + string(body)))
	if want := "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil)); s.Signature != want {
		t.Errorf("signature %s, want %s", s.Signature, want)
	}
}

func TestVerify(t *testing.T) {
	old, _ := ParseSecret(strings.Repeat("o", 24))
	cur, _ := ParseSecret(secret)
	other, _ := ParseSecret(strings.Repeat("x", 24))
	now := time.Unix(1700000000, 0)
	body := []byte(`{"a":1}`)
	sign := func(ts time.Time, ks ...Secret) http.Header {
		s, err := Sign("msg_1", ts, body, ks...)
		if err != nil {
			t.Fatal(err)
		}
		h := http.Header{}
		s.Set(h)
		return h
	}
	rotated := sign(now, old, cur)
	if n := len(strings.Fields(rotated.Get(HeaderSignature))); n != 2 {
		t.Errorf("rotation: %d signatures, want 2", n)
	}
	withV1a := sign(now, cur)
	withV1a.Set(HeaderSignature, "v1a,abc "+withV1a.Get(HeaderSignature))
	tampered := sign(now, cur)
	tampered.Set(HeaderID, "msg_2")
	restamped := sign(now, cur)
	restamped.Set(HeaderTimestamp, "1700000001")
	noSig := sign(now, cur)
	noSig.Del(HeaderSignature)
	badTS := sign(now, cur)
	badTS.Set(HeaderTimestamp, "yesterday")

	for _, tc := range []struct {
		name string
		h    http.Header
		body string
		keys []Secret
		want error
	}{
		{"ok", sign(now, cur), string(body), []Secret{cur}, nil},
		{"rotated, old key", rotated, string(body), []Secret{old}, nil},
		{"rotated, new key", rotated, string(body), []Secret{cur}, nil},
		{"other versions skipped", withV1a, string(body), []Secret{cur}, nil},
		{"verifier with two keys", sign(now, cur), string(body), []Secret{other, cur}, nil},
		{"wrong key", sign(now, cur), string(body), []Secret{other}, ErrNoMatch},
		{"tampered body", sign(now, cur), `{"a":2}`, []Secret{cur}, ErrNoMatch},
		{"tampered id", tampered, string(body), []Secret{cur}, ErrNoMatch},
		{"tampered timestamp", restamped, string(body), []Secret{cur}, ErrNoMatch},
		{"too old", sign(now.Add(-6*time.Minute), cur), string(body), []Secret{cur}, ErrMessageTooOld},
		{"too new", sign(now.Add(6*time.Minute), cur), string(body), []Secret{cur}, ErrMessageTooNew},
		{"within tolerance", sign(now.Add(-4*time.Minute), cur), string(body), []Secret{cur}, nil},
		{"missing header", noSig, string(body), []Secret{cur}, ErrMissingHeaders},
		{"bad timestamp", badTS, string(body), []Secret{cur}, ErrInvalidTimestamp},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := Verify(tc.h, []byte(tc.body), now, 0, tc.keys...); !errors.Is(err, tc.want) {
				t.Errorf("Verify = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestSignRejects(t *testing.T) {
	k, _ := ParseSecret(secret)
	for _, id := range []string{"", "a.b", "a b"} {
		if _, err := Sign(id, time.Now(), nil, k); err == nil {
			t.Errorf("Sign(%q) signed", id)
		}
	}
	if _, err := Sign("a", time.Now(), nil); err == nil {
		t.Error("Sign without a secret signed")
	}
	for _, s := range []string{"", "short", "whsec_", "whsec_%%%", strings.Repeat("k", 65)} {
		if _, err := ParseSecret(s); err == nil {
			t.Errorf("ParseSecret(%q) accepted", s)
		}
	}
}
