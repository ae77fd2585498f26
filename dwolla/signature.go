package dwolla

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"net/http"
	"sync"
)

// SignatureHeader is the header that carries hex(HMAC-SHA256(secret, raw body)).
const SignatureHeader = "X-Request-Signature-SHA-256"

// legacySignatureHeader is the spelling one older Dwolla page uses; looking it up
// as a fallback costs nothing.
const legacySignatureHeader = "X-Request-Signature-SHA256"

// TopicHeader carries the event topic; informational only, the body is authoritative.
const TopicHeader = "X-Dwolla-Topic"

// Sign returns the lowercase hex HMAC-SHA256 of body under secret, exactly as
// Dwolla computes it.
func Sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// SignatureFrom returns the signature header of a request, or "" when absent.
func SignatureFrom(h http.Header) string {
	if s := h.Get(SignatureHeader); s != "" {
		return s
	}
	return h.Get(legacySignatureHeader)
}

// Verifier checks webhook signatures against one or more secrets, so a secret
// can be rotated without downtime: configure old and new, switch Dwolla over,
// then drop the old one. It is safe for concurrent use and allocates nothing on
// the hot path.
type Verifier struct {
	pools []sync.Pool // one pool of HMAC states per secret
}

// NewVerifier returns a Verifier for the given secrets; empty secrets are ignored.
func NewVerifier(secrets [][]byte) *Verifier {
	v := &Verifier{}
	for _, s := range secrets {
		if len(s) == 0 {
			continue
		}
		key := append([]byte(nil), s...)
		v.pools = append(v.pools, sync.Pool{New: func() any { return hmac.New(sha256.New, key) }})
	}
	return v
}

// Secrets reports how many secrets the verifier accepts.
func (v *Verifier) Secrets() int { return len(v.pools) }

// Verify reports whether sig (hex, either case) is the HMAC-SHA256 of body under
// any configured secret. The comparison is constant-time, and every secret is
// tried even after a match so timing does not reveal which one matched.
func (v *Verifier) Verify(body []byte, sig string) bool {
	var want [sha256.Size]byte
	if len(sig) != 2*sha256.Size {
		return false
	}
	if _, err := hex.Decode(want[:], []byte(sig)); err != nil {
		return false
	}
	ok := 0
	var sum [sha256.Size]byte
	for i := range v.pools {
		m := v.pools[i].Get().(hash.Hash)
		m.Reset()
		m.Write(body)
		got := m.Sum(sum[:0])
		v.pools[i].Put(m)
		if hmac.Equal(got, want[:]) {
			ok = 1
		}
	}
	return ok == 1
}
