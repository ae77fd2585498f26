// Package cli holds the command-line conventions every hookstream subcommand
// shares, on top of ffcli: flags may come before or after the verb and its
// arguments; a wrong invocation says what was wrong on its first line,
// followed by the usage line, once (exit 2); --help prints the usage on
// stdout (exit 0); a failure prints the error (exit 1). It also has the flag
// types that refuse bad values while parsing (choices, times) and generates
// docs/configuration.md from the flag definitions. It knows nothing of what
// the commands do.
package cli

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"
)

// The command-line conventions every subcommand shares: flags may come before
// or after the verb and its arguments; a wrong invocation says what was wrong
// on its first line, followed by the usage line, once.

// usageError is a wrong invocation (as opposed to a failure while running).
type usageError struct {
	cmd *ffcli.Command // the command invoked wrongly (filled by the Exec wrapper)
	msg string
}

func (e *usageError) Error() string { return e.msg }

// Usagef is the error of a wrong invocation: Run prints it on the first line,
// then the command's usage line, and exits 2.
func Usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// cli is the parsed command tree, and which command a parse or usage error
// is about.
type cli struct {
	root   *ffcli.Command
	usedBy *ffcli.Command // the command whose usage the flag package asked for
}

// prepare walks the tree once: each flag set reports into this cli instead of
// printing, each Exec accepts flags after its positional arguments, and a
// command with subcommands rejects an unknown one by name.
func (c *cli) prepare(cmd *ffcli.Command) {
	if cmd.FlagSet == nil {
		cmd.FlagSet = flag.NewFlagSet(cmd.Name, flag.ContinueOnError)
	}
	cmd.FlagSet.SetOutput(io.Discard)
	cmd.UsageFunc = func(x *ffcli.Command) string {
		c.usedBy = x
		return ffcli.DefaultUsageFunc(x)
	}
	if len(cmd.Subcommands) > 0 && cmd.Exec == nil {
		cmd.Exec = func(_ context.Context, args []string) error {
			if len(args) == 0 {
				return Usagef("%s needs a subcommand: %s", cmd.Name, SubcommandNames(cmd))
			}
			return Usagef("unknown subcommand %q; %s has: %s", args[0], cmd.Name, SubcommandNames(cmd))
		}
	}
	if exec := cmd.Exec; exec != nil {
		fs := cmd.FlagSet
		cmd.Exec = func(ctx context.Context, args []string) error {
			args, err := parseInterleaved(fs, args)
			if err != nil { // a bad flag after a positional argument
				return &usageError{cmd: cmd, msg: innermost(err).Error()}
			}
			// Only what the command itself calls a usage error is one: a
			// failure while running keeps its full message and exit 1.
			err = exec(ctx, args)
			if ue := (*usageError)(nil); errors.As(err, &ue) && ue.cmd == nil {
				ue.cmd = cmd
			}
			return err
		}
	}
	for _, sc := range cmd.Subcommands {
		c.prepare(sc)
	}
}

func innermost(err error) error {
	for errors.Unwrap(err) != nil {
		err = errors.Unwrap(err)
	}
	return err
}

// Subcommand is root's direct subcommand name, or nil.
func Subcommand(root *ffcli.Command, name string) *ffcli.Command {
	for _, sc := range root.Subcommands {
		if sc.Name == name {
			return sc
		}
	}
	return nil
}

// SubcommandNames lists cmd's subcommands, comma-separated.
func SubcommandNames(cmd *ffcli.Command) string {
	var names []string
	for _, sc := range cmd.Subcommands {
		names = append(names, sc.Name)
	}
	return strings.Join(names, ", ")
}

// parseInterleaved parses flags that come between or after positional
// arguments (the flag package stops at the first positional one) and returns
// the positional arguments. After "--" everything is positional.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for len(args) > 0 {
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		if !strings.HasPrefix(args[0], "-") || args[0] == "-" {
			pos, args = append(pos, args[0]), args[1:]
			continue
		}
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		// fs.Parse stops at the first positional argument, or after "--"
		// (which it consumes): tell the two apart by what it left.
		rest := fs.Args()
		consumed := args[:len(args)-len(rest)]
		if len(consumed) > 0 && consumed[len(consumed)-1] == "--" {
			return append(pos, rest...), nil
		}
		args = rest
	}
	return pos, nil
}

// Run parses args against the command tree root, runs the selected command,
// and reports the outcome the way every subcommand does: usage on stdout for
// --help (exit 0); for a wrong invocation the mistake on the first line of
// stderr, then the usage line (exit 2); for a failure the error (exit 1). It
// returns the exit code.
func Run(ctx context.Context, root *ffcli.Command, args []string, stdout, stderr io.Writer) int {
	c := &cli{root: root}
	c.prepare(c.root)
	if err := c.root.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return c.help(stdout)
		}
		// Every error of parsing is a wrong invocation: a bad flag, before
		// any command ran.
		cmd := cmp.Or(c.usedBy, c.root)
		fmt.Fprintf(stderr, "%s: %v\n", CommandPath(cmd, c.root), innermost(err))
		printUsageHint(stderr, cmd, c.root)
		return 2
	}
	err := c.root.Run(ctx)
	var ue *usageError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return c.help(stdout)
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "%s: %s\n", CommandPath(ue.cmd, c.root), ue.msg)
		printUsageHint(stderr, ue.cmd, c.root)
		return 2
	default:
		fmt.Fprintf(stderr, "%s: %v\n", c.root.Name, err)
		return 1
	}
}

// help prints the usage of the command --help was asked of.
func (c *cli) help(stdout io.Writer) int {
	fmt.Fprintln(stdout, ffcli.DefaultUsageFunc(cmp.Or(c.usedBy, c.root)))
	return 0
}

func printUsageHint(w io.Writer, cmd, root *ffcli.Command) {
	if cmd == nil {
		cmd = root
	}
	if cmd.ShortUsage != "" {
		fmt.Fprintf(w, "usage: %s\n", cmd.ShortUsage)
	}
	fmt.Fprintf(w, "run '%s --help' for every flag\n", CommandPath(cmd, root))
}

// CommandPath is "hookstream query metrics" for the metrics command.
func CommandPath(cmd, root *ffcli.Command) string {
	if cmd == nil || cmd == root {
		return root.Name
	}
	var walk func(c *ffcli.Command, path []string) []string
	walk = func(c *ffcli.Command, path []string) []string {
		path = append(path, c.Name)
		if c == cmd {
			return path
		}
		for _, sc := range c.Subcommands {
			if p := walk(sc, slices.Clone(path)); p != nil {
				return p
			}
		}
		return nil
	}
	return strings.Join(walk(root, nil), " ")
}

// choiceValue is a flag that takes one of a fixed set of words.
type choiceValue struct {
	v       *string
	choices []string
}

func (c choiceValue) String() string {
	if c.v == nil {
		return ""
	}
	return *c.v
}

func (c choiceValue) Set(s string) error {
	if !slices.Contains(c.choices, s) {
		return fmt.Errorf("%q is not one of %s", s, strings.Join(c.choices, ", "))
	}
	*c.v = s
	return nil
}

// Parse parses args against the tree without running anything (for tests of
// commands that run until interrupted).
func Parse(root *ffcli.Command, args []string) error {
	c := &cli{root: root}
	c.prepare(root)
	return root.Parse(args)
}

// Choice registers a flag that takes one of choices, the first the
// default; any other value is refused while parsing, naming the choices.
func Choice(fs *flag.FlagSet, name, usage string, choices ...string) *string {
	v := choices[0]
	fs.Var(choiceValue{&v, choices}, name, usage)
	return &v
}

// Output registers -o with the given choices, the first the default.
func Output(fs *flag.FlagSet, choices ...string) *string {
	return Choice(fs, "o", "output: "+strings.Join(choices, " or "), choices...)
}

// timeValue is a flag holding a point in time: RFC 3339, or a date (midnight
// UTC). The zero time means "not given".
type timeValue struct{ t *time.Time }

func (v timeValue) String() string {
	if v.t == nil || v.t.IsZero() {
		return ""
	}
	return v.t.Format(time.RFC3339)
}

func (v timeValue) Set(s string) error {
	t, err := ParseTime(s)
	if err != nil {
		return err
	}
	*v.t = t
	return nil
}

func ParseTime(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%q is not a time; use RFC 3339 (2026-12-01T15:04:05Z) or a date (2026-12-01, midnight UTC)", s)
}

// ParsePeriod reads FROM..TO, each an RFC 3339 time or a date (TO
// exclusive): the periods `query compare` and the API compare.
func ParsePeriod(s string) (from, to time.Time, err error) {
	a, b, ok := strings.Cut(s, "..")
	if !ok {
		return from, to, fmt.Errorf("%q is not a period; want FROM..TO, for example 2026-11-16..2026-11-23 (RFC 3339 times or dates, TO exclusive)", s)
	}
	if from, err = ParseTime(strings.TrimSpace(a)); err != nil {
		return from, to, err
	}
	if to, err = ParseTime(strings.TrimSpace(b)); err != nil {
		return from, to, err
	}
	if !from.Before(to) {
		return from, to, fmt.Errorf("%q: the start is not before the end", s)
	}
	return from, to, nil
}

// Time registers a time flag.
func Time(fs *flag.FlagSet, name, usage string) *time.Time {
	t := new(time.Time)
	fs.Var(timeValue{t}, name, usage)
	return t
}
