package scratch

import (
	"strings"
	"testing"
)

func TestWithSearchPath(t *testing.T) {
	f := func(in, schema, want string) {
		t.Helper()
		if got := WithSearchPath(in, schema); got != want {
			t.Errorf("WithSearchPath(%q, %q) = %q, want %q", in, schema, got, want)
		}
	}
	f("postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable", "s1",
		"postgres://postgres@127.0.0.1:5432/postgres?search_path=s1&sslmode=disable")
	f("postgresql://u@h/db", "s2", "postgresql://u@h/db?search_path=s2")
	f("postgres://u@h/db?search_path=old", "new", "postgres://u@h/db?search_path=new")
	f("host=127.0.0.1 user=postgres", "s3", "host=127.0.0.1 user=postgres search_path=s3")
}

func TestNameIsFreshAndSchemaSafe(t *testing.T) {
	a, b := Name("t_"), Name("t_")
	if a == b {
		t.Fatalf("two names are equal: %s", a)
	}
	if !strings.HasPrefix(a, "t_") || len(a) != len("t_")+12 {
		t.Fatalf("Name(%q) = %q, want the prefix and 12 hex digits", "t_", a)
	}
	if strings.Trim(a[2:], "0123456789abcdef") != "" {
		t.Fatalf("Name(%q) = %q has characters other than hex digits", "t_", a)
	}
}
