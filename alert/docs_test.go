package alert_test

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/hookstream/hookstream/alert"
	"github.com/hookstream/hookstream/windows"
)

// The rules files README.md and docs/alerts.md show are valid as written.
func TestDocumentedRulesFiles(t *testing.T) {
	block := regexp.MustCompile("(?s)```yaml\n(.*?)```")
	n := 0
	for _, path := range []string{"../README.md", "../docs/alerts.md"} {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range block.FindAllSubmatch(b, -1) {
			if !strings.Contains(string(m[1]), "\nrules:") {
				continue
			}
			n++
			rs, err := alert.ParseRules(m[1], windows.Config{})
			if err != nil {
				t.Errorf("%s: the rules file does not load: %v", path, err)
				continue
			}
			if len(rs.Targets) == 0 || rs.Targets[0].Kind != alert.TargetSlack {
				t.Errorf("%s: the rules file is not pointed at Slack", path)
			}
		}
	}
	if n != 2 {
		t.Fatalf("found %d rules files in README.md and docs/alerts.md, want one in each", n)
	}
}
