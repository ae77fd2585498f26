package main

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// The shipped binary must not link test helpers (internal/testenv imports
// testing, and with it the test flags and their init work).
func TestBinaryLinksNoTestingCode(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	for _, banned := range []string{"testing", "github.com/hookstream/hookstream/internal/testenv"} {
		if slices.Contains(deps, banned) {
			t.Errorf("cmd/hookstream depends on %s; keep test helpers out of the binary", banned)
		}
	}
}
