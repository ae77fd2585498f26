package main

import (
	"os"
	"strings"
	"testing"

	"github.com/hookstream/hookstream/internal/cli"
)

// docs/configuration.md is generated from the flag definitions; this fails
// when a flag changed and the file was not regenerated with `make docs`.
func TestConfigurationDocIsCurrent(t *testing.T) {
	want := cli.ConfigurationMarkdown(rootCommand())
	got, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatalf("read docs/configuration.md: %v; generate it with `make docs`", err)
	}
	if string(got) != want {
		t.Fatalf("docs/configuration.md is stale; regenerate it with `make docs` (hookstream help configuration > docs/configuration.md)")
	}
	for _, name := range []string{"--redis-url", "--database-url", "--webhook-secrets", "--window-sizes", "--journeys"} {
		if !strings.Contains(want, "`"+name+"`") {
			t.Errorf("the generated configuration lacks %s", name)
		}
	}
}
