package sim

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

func TestCompare(t *testing.T) {
	t.Parallel()
	many := func(prefix string, n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprintf("%s%02d", prefix, i)
		}
		return out
	}
	counts := func(ids ...string) map[string]int {
		m := map[string]int{}
		for _, id := range ids {
			m[id]++
		}
		return m
	}
	tests := []struct {
		name   string
		truth  []string
		stored map[string]int
		want   Report
		ok     bool
	}{
		{"exact", []string{"a", "b"}, counts("b", "a"), Report{Expected: 2, Found: 2}, true},
		{"nothing either side", nil, counts(), Report{}, true},
		{"duplicate in truth counts once", []string{"a", "a"}, counts("a"), Report{Expected: 1, Found: 1}, true},
		{"missing", []string{"a", "b", "c"}, counts("a"), Report{Expected: 3, Found: 1, Missing: 2, MissingIDs: []string{"b", "c"}}, false},
		{"duplicated", []string{"a", "b"}, counts("a", "b", "b"), Report{Expected: 2, Found: 2, Duplicated: 1, DuplicatedIDs: []string{"b"}}, false},
		{"unexpected", []string{"a"}, counts("a", "z"), Report{Expected: 1, Found: 1, Unexpected: 1, UnexpectedIDs: []string{"z"}}, false},
		{"examples capped at ten, sorted", many("m", 0), counts(many("u", 15)...),
			Report{Unexpected: 15, UnexpectedIDs: many("u", 10)}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := compare(tc.truth, tc.stored)
			if got.Expected != tc.want.Expected || got.Found != tc.want.Found || got.Missing != tc.want.Missing ||
				got.Duplicated != tc.want.Duplicated || got.Unexpected != tc.want.Unexpected ||
				!slices.Equal(got.MissingIDs, tc.want.MissingIDs) || !slices.Equal(got.DuplicatedIDs, tc.want.DuplicatedIDs) ||
				!slices.Equal(got.UnexpectedIDs, tc.want.UnexpectedIDs) {
				t.Fatalf("compare = %+v, want %+v", got, tc.want)
			}
			if got.OK() != tc.ok {
				t.Fatalf("OK() = %v, want %v", got.OK(), tc.ok)
			}
			s := got.String()
			if wantPrefix := map[bool]string{true: "OK:", false: "MISMATCH:"}[tc.ok]; !strings.HasPrefix(s, wantPrefix) {
				t.Fatalf("String() = %q, want prefix %q", s, wantPrefix)
			}
			for _, id := range got.MissingIDs {
				if !strings.Contains(s, id) {
					t.Fatalf("String() = %q does not name missing %s", s, id)
				}
			}
		})
	}
}
