package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"net/http"
	"regexp"
	"strings"
)

// Scope is what a token may do. Admin includes read.
type Scope int

const (
	ScopeRead  Scope = 1 // every GET
	ScopeAdmin Scope = 2 // also the actions (requeue, discard, pause, resume) and event bodies on the live feed
)

func (s Scope) String() string {
	if s == ScopeAdmin {
		return "admin"
	}
	return "read"
}

// Token is one API token: a name (for logs), a scope, and the SHA-256 of
// its secret. The secret itself is never kept.
type Token struct {
	Name   string
	Scope  Scope
	digest [sha256.Size]byte
}

var tokenName = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

// MinSecretLength is the shortest secret given in clear that is accepted.
const MinSecretLength = 16

// ParseTokens parses HOOKSTREAM_API_TOKENS: comma-separated
// name:scope:secret, scope read or admin, the secret in clear (at least
// MinSecretLength characters) or as sha256:<64 hex digits> so that the
// configuration need not hold it. Errors name the entry by position and
// name, never by secret.
func ParseTokens(s string) ([]Token, error) {
	var out []Token
	seen := map[string]bool{}
	for i, entry := range strings.Split(s, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		name, rest, ok1 := strings.Cut(entry, ":")
		scope, secret, ok2 := strings.Cut(rest, ":")
		where := fmt.Sprintf("API token %d", i+1)
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("%s: want name:scope:secret (scope read or admin)", where)
		}
		if !tokenName.MatchString(name) {
			return nil, fmt.Errorf("%s: name %q: use 1 to 64 letters, digits, '_', '.' or '-'", where, name)
		}
		where = fmt.Sprintf("API token %d (%s)", i+1, name)
		if seen[name] {
			return nil, fmt.Errorf("%s: the name is used twice; names tell tokens apart in the access log", where)
		}
		seen[name] = true
		t := Token{Name: name}
		switch scope {
		case "read":
			t.Scope = ScopeRead
		case "admin":
			t.Scope = ScopeAdmin
		default:
			return nil, fmt.Errorf("%s: scope %q: use read or admin", where, scope)
		}
		if hexDigest, ok := strings.CutPrefix(secret, "sha256:"); ok {
			b, err := hex.DecodeString(hexDigest)
			if err != nil || len(b) != sha256.Size {
				return nil, fmt.Errorf("%s: sha256: wants the 64 hex digits of the secret's SHA-256 (printf %%s SECRET | sha256sum)", where)
			}
			copy(t.digest[:], b)
		} else {
			if len(secret) < MinSecretLength {
				return nil, fmt.Errorf("%s: the secret is shorter than %d characters; use a long random one (openssl rand -hex 24)", where, MinSecretLength)
			}
			t.digest = sha256.Sum256([]byte(secret))
		}
		out = append(out, t)
	}
	return out, nil
}

// authenticate finds the token whose secret the request bears. Every
// configured token is compared, in constant time, whichever matches, so
// the time taken tells nothing about the secrets.
func (s *Server) authenticate(r *http.Request) (name string, scope Scope, ok bool) {
	if s.cfg.Insecure {
		return "insecure", ScopeAdmin, true
	}
	bearer, found := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !found {
		return "", 0, false
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(bearer)))
	match := -1
	for i := range s.cfg.Tokens {
		if subtle.ConstantTimeCompare(got[:], s.cfg.Tokens[i].digest[:]) == 1 {
			match = i
		}
	}
	if match < 0 {
		return "", 0, false
	}
	return s.cfg.Tokens[match].Name, s.cfg.Tokens[match].Scope, true
}
