// Package scratch names the private corners of a shared Redis and PostgreSQL
// that tests and benchmarks work in: a random key namespace or schema name,
// and a database URL that selects such a schema. It does not create or drop
// anything, and it does not import testing: the benchmarks of the shipped
// binary use it as well as the tests (through internal/testenv).
package scratch

import (
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"strings"
)

// Name returns prefix followed by 12 random hex digits: a short identifier,
// safe as a Redis key prefix or an unquoted PostgreSQL schema name (when
// prefix is one), that no other run picks.
func Name(prefix string) string {
	var b [6]byte
	rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// WithSearchPath returns dbURL with its search_path set to schema, so every
// connection made from it works in that schema. dbURL may be a postgres://
// URL or a keyword/value connection string.
func WithSearchPath(dbURL, schema string) string {
	u, err := url.Parse(dbURL)
	if err != nil || !strings.HasPrefix(u.Scheme, "postgres") {
		return dbURL + " search_path=" + schema
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}
