package alert

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Webhook signing, the Standard Webhooks v1 way
// (https://github.com/standard-webhooks/standard-webhooks, spec/standard-webhooks.md):
// the signed content is "<webhook-id>.<webhook-timestamp>.<body>", the MAC
// HMAC-SHA256, and the webhook-signature header "v1,<base64 MAC>", several
// separated by spaces while a secret is rotated.

// Header names of a signed webhook.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// secretPrefix marks a secret written as base64, the spec's form.
const secretPrefix = "whsec_"

// Secret bounds in bytes: the spec asks for 24 to 64 random bytes.
const (
	minSecret = 24
	maxSecret = 64
)

// DefaultTolerance is how far a webhook-timestamp may be from the
// verifier's clock: 5 minutes, as the reference library has it.
const DefaultTolerance = 5 * time.Minute

// Verification errors.
var (
	ErrMissingHeaders   = errors.New("webhook: missing webhook-id, webhook-timestamp or webhook-signature")
	ErrInvalidTimestamp = errors.New("webhook: webhook-timestamp is not Unix seconds")
	ErrMessageTooOld    = errors.New("webhook: timestamp too old")
	ErrMessageTooNew    = errors.New("webhook: timestamp too new")
	ErrNoMatch          = errors.New("webhook: no matching signature")
)

// Secret is a signing key.
type Secret []byte

// ParseSecret reads a secret as written in a rules file: whsec_ followed by
// the standard base64 of the key (the spec's form, what receivers are
// given), or else the key's raw bytes. Either way the key must be 24 to 64
// bytes.
func ParseSecret(s string) (Secret, error) {
	var key []byte
	if b64, ok := strings.CutPrefix(s, secretPrefix); ok {
		var err error
		if key, err = base64.StdEncoding.DecodeString(b64); err != nil {
			return nil, fmt.Errorf("after whsec_ comes standard base64, and this is not")
		}
	} else {
		key = []byte(s)
	}
	if len(key) < minSecret || len(key) > maxSecret {
		return nil, fmt.Errorf("the key is %d bytes; use %d to %d random bytes (whsec_ + base64)", len(key), minSecret, maxSecret)
	}
	return key, nil
}

// String writes the secret in the spec's form, whsec_<base64>.
func (s Secret) String() string { return secretPrefix + base64.StdEncoding.EncodeToString(s) }

// Signed is the headers of one signed delivery.
type Signed struct {
	ID        string // webhook-id: the same for every attempt of one notification
	Timestamp string // webhook-timestamp: Unix seconds of this attempt
	Signature string // webhook-signature: v1,<base64>[ v1,<base64>...]
}

// Set puts the headers on h.
func (s Signed) Set(h http.Header) {
	h.Set(HeaderID, s.ID)
	h.Set(HeaderTimestamp, s.Timestamp)
	h.Set(HeaderSignature, s.Signature)
}

// Sign signs body, sent as message id at time ts, with each secret (two
// while one is rotated out). The id must not be empty nor hold '.' or
// whitespace. body must be the exact bytes sent.
func Sign(id string, ts time.Time, body []byte, secrets ...Secret) (Signed, error) {
	if id == "" || strings.ContainsAny(id, ". \t\r\n") {
		return Signed{}, fmt.Errorf("webhook: message id %q: must be non-empty, without '.' or whitespace", id)
	}
	if len(secrets) == 0 {
		return Signed{}, fmt.Errorf("webhook: no secret to sign with")
	}
	stamp := strconv.FormatInt(ts.Unix(), 10)
	sigs := make([]string, len(secrets))
	for i, k := range secrets {
		if len(k) == 0 {
			return Signed{}, fmt.Errorf("webhook: empty secret")
		}
		sigs[i] = "v1," + base64.StdEncoding.EncodeToString(mac(k, id, stamp, body))
	}
	return Signed{ID: id, Timestamp: stamp, Signature: strings.Join(sigs, " ")}, nil
}

func mac(key Secret, id, stamp string, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id))
	m.Write([]byte{'.'})
	m.Write([]byte(stamp))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Verify checks a received webhook as a receiver should: the timestamp
// within tolerance of now (0: DefaultTolerance), and some v1 signature in
// the header made with one of secrets over the id, the timestamp and body,
// compared in constant time. Signatures of other versions (v1a) are
// skipped.
func Verify(h http.Header, body []byte, now time.Time, tolerance time.Duration, secrets ...Secret) error {
	id, stamp, sigs := h.Get(HeaderID), h.Get(HeaderTimestamp), h.Get(HeaderSignature)
	if id == "" || stamp == "" || sigs == "" {
		return ErrMissingHeaders
	}
	sec, err := strconv.ParseInt(stamp, 10, 64)
	if err != nil {
		return ErrInvalidTimestamp
	}
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	ts := time.Unix(sec, 0)
	switch {
	case now.Sub(ts) > tolerance:
		return ErrMessageTooOld
	case ts.Sub(now) > tolerance:
		return ErrMessageTooNew
	}
	for _, k := range secrets {
		want := mac(k, id, stamp, body)
		for _, sig := range strings.Fields(sigs) {
			v, b64, ok := strings.Cut(sig, ",")
			if !ok || v != "v1" {
				continue
			}
			got, err := base64.StdEncoding.DecodeString(b64)
			if err != nil {
				continue
			}
			if hmac.Equal(got, want) {
				return nil
			}
		}
	}
	return ErrNoMatch
}
