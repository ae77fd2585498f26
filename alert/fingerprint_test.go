package alert

import (
	"regexp"
	"testing"
)

func TestFingerprint(t *testing.T) {
	base := Fingerprint("fails", map[string]string{"topic": "a", "team": "x"})
	if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(base) {
		t.Fatalf("fingerprint %q is not 32 hex digits", base)
	}
	// nil and empty label sets are the same set.
	if got, want := Fingerprint("r", nil), Fingerprint("r", map[string]string{}); got != want {
		t.Errorf("nil and empty labels differ: %s %s", got, want)
	}
	for i := 0; i < 20; i++ { // map order varies from run to run
		if got := Fingerprint("fails", map[string]string{"team": "x", "topic": "a"}); got != base {
			t.Fatalf("same input, fingerprints %s and %s", base, got)
		}
	}
	seen := map[string]string{"base": base}
	for name, fp := range map[string]string{
		"other rule":     Fingerprint("fails2", map[string]string{"topic": "a", "team": "x"}),
		"other value":    Fingerprint("fails", map[string]string{"topic": "b", "team": "x"}),
		"label dropped":  Fingerprint("fails", map[string]string{"topic": "a"}),
		"no labels":      Fingerprint("fails", nil),
		"shifted bytes":  Fingerprint("fails", map[string]string{"topic": "ateam", "": "x"}),
		"name in value":  Fingerprint("failstopic", map[string]string{"": "a", "team": "x"}),
		"key/value swap": Fingerprint("fails", map[string]string{"a": "topic", "team": "x"}),
	} {
		for other, ofp := range seen {
			if fp == ofp {
				t.Errorf("%s and %s share fingerprint %s", name, other, fp)
			}
		}
		seen[name] = fp
	}
}

func TestFingerprintPinned(t *testing.T) {
	// sha256 of uvarint(1) "r" uvarint(1) "k" uvarint(1) "v", first 16 bytes,
	// computed with Python's hashlib.
	// Changing the encoding orphans stored alerts: this must not change.
	const want = "8ba6016d6174a56b60d38d361c7d3570"
	if got := Fingerprint("r", map[string]string{"k": "v"}); got != want {
		t.Errorf("Fingerprint(r, k=v) = %s, want %s", got, want)
	}
}
