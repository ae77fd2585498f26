package ingest

import (
	"encoding/json"
	"testing"
)

func TestAppendJSONString(t *testing.T) {
	for _, s := range []string{"", "abc-123", `quo"te`, `back\slash`, "ctl\x00\x1f\n\t", "ünïcode ✓", "</script>"} {
		got := appendJSONString(nil, s)
		var back string
		if err := json.Unmarshal(got, &back); err != nil || back != s {
			t.Fatalf("appendJSONString(%q) = %s, which decodes to %q (%v)", s, got, back, err)
		}
	}
}
