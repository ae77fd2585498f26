package cli

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"
)

// toy is a small tree shaped like hookstream's: a leaf with a verb, a
// parent with subcommands.
func toy(got *[]string, gotFlag *string) *ffcli.Command {
	fs := flag.NewFlagSet("toy rebuild", flag.ContinueOnError)
	name := fs.String("journey", "", "journey")
	out := Output(fs, "table", "json")
	when := Time(fs, "from", "start")
	rebuild := &ffcli.Command{
		Name: "journeys", ShortUsage: "toy journeys rebuild [--journey NAME]", FlagSet: fs,
		Exec: func(_ context.Context, args []string) error {
			if len(args) != 1 || args[0] != "rebuild" {
				return Usagef("journeys has one verb, rebuild")
			}
			*got = append([]string{}, args...)
			*gotFlag = *name + "/" + *out + "/" + when.Format(time.DateOnly)
			return nil
		},
	}
	fail := &ffcli.Command{Name: "fail", Exec: func(context.Context, []string) error { return errors.New("disk on fire") }}
	// A failure whose innermost cause reads like a flag error is still a
	// failure, reported whole.
	badURL := &ffcli.Command{Name: "badurl", Exec: func(context.Context, []string) error {
		return fmt.Errorf("parse Redis URL: %w; expected redis://host:port/db", errors.New(`invalid port ":xx" after host`))
	}}
	parent := &ffcli.Command{Name: "query", ShortUsage: "toy query fail", Subcommands: []*ffcli.Command{fail, badURL}}
	return &ffcli.Command{
		Name: "toy", ShortUsage: "toy <subcommand>", Subcommands: []*ffcli.Command{rebuild, parent},
		Exec: func(_ context.Context, args []string) error {
			if len(args) == 0 {
				return flag.ErrHelp
			}
			return Usagef("unknown subcommand %q", args[0])
		},
	}
}

func TestRunExitCodesAndMessages(t *testing.T) {
	f := func(args string, wantCode int, wantArgs []string, wantFlags, wantFirstLine string) {
		t.Helper()
		var got []string
		var gotFlag string
		var stdout, stderr bytes.Buffer
		code := Run(context.Background(), toy(&got, &gotFlag), strings.Fields(args), &stdout, &stderr)
		if code != wantCode {
			t.Errorf("%q: exit %d, want %d (stderr %q)", args, code, wantCode, stderr.String())
		}
		if wantArgs != nil && strings.Join(got, " ") != strings.Join(wantArgs, " ") {
			t.Errorf("%q: positional %v, want %v", args, got, wantArgs)
		}
		if wantFlags != "" && gotFlag != wantFlags {
			t.Errorf("%q: flags %q, want %q", args, gotFlag, wantFlags)
		}
		first, _, _ := strings.Cut(stderr.String(), "\n")
		if wantFirstLine != "" && first != wantFirstLine {
			t.Errorf("%q: first line %q, want %q", args, first, wantFirstLine)
		}
		if wantCode == 2 && strings.Count(stderr.String(), wantFirstLine) != 1 {
			t.Errorf("%q: the error is not printed exactly once:\n%s", args, stderr.String())
		}
	}
	// Flags before, after and between positional arguments.
	f("journeys rebuild --journey onboarding", 0, []string{"rebuild"}, "onboarding/table/0001-01-01", "")
	f("journeys --journey onboarding rebuild -o json", 0, []string{"rebuild"}, "onboarding/json/0001-01-01", "")
	f("journeys rebuild --from 2026-12-01", 0, []string{"rebuild"}, "/table/2026-12-01", "")
	f("journeys -- rebuild", 0, []string{"rebuild"}, "", "")
	// Wrong invocations: what was wrong, on the first line.
	f("statsu", 2, nil, "", `toy: unknown subcommand "statsu"`)
	f("journeys", 2, nil, "", "toy journeys: journeys has one verb, rebuild")
	f("journeys rebuild -o yaml", 2, nil, "", `toy journeys: invalid value "yaml" for flag -o: "yaml" is not one of table, json`)
	f("journeys rebuild --from 2026-13-01", 2, nil, "", `toy journeys: invalid value "2026-13-01" for flag -from: "2026-13-01" is not a time; use RFC 3339 (2026-12-01T15:04:05Z) or a date (2026-12-01, midnight UTC)`)
	f("journeys --nope rebuild", 2, nil, "", "toy journeys: flag provided but not defined: -nope")
	f("journeys rebuild --nope", 2, nil, "", "toy journeys: flag provided but not defined: -nope")
	f("query", 2, nil, "", "toy query: query needs a subcommand: fail, badurl")
	f("query frob", 2, nil, "", `toy query: unknown subcommand "frob"; query has: fail, badurl`)
	// Help and failures.
	f("", 0, nil, "", "")
	f("journeys --help", 0, nil, "", "")
	f("query fail", 1, nil, "", "toy: disk on fire")
	f("query badurl", 1, nil, "", `toy: parse Redis URL: invalid port ":xx" after host; expected redis://host:port/db`)
}

func TestParseTime(t *testing.T) {
	f := func(in string, want time.Time, wantErr bool) {
		t.Helper()
		got, err := ParseTime(in)
		if (err != nil) != wantErr || !got.Equal(want) {
			t.Errorf("ParseTime(%q) = %v, %v; want %v (error %v)", in, got, err, want, wantErr)
		}
	}
	f("2026-12-01", time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), false)
	f("2026-12-01T15:04:05+01:00", time.Date(2026, 12, 1, 14, 4, 5, 0, time.UTC), false)
	f("2026-12-01T15:04:05.5Z", time.Date(2026, 12, 1, 15, 4, 5, 5e8, time.UTC), false)
	f("yesterday", time.Time{}, true)
	f("2026-13-01", time.Time{}, true)
}
