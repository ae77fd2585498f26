package main

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/hookstream/hookstream/internal/cli"
	"github.com/hookstream/hookstream/internal/testenv"
	"github.com/hookstream/hookstream/migrations"
	"github.com/peterbourgon/ff/v3/ffcli"
)

// Every usage line the binary shows (each leaf command's usage line in
// --help) and every hookstream command in the shell blocks of README.md and
// docs/ works as written: run against a private namespace and schema, none
// of them is a usage error. Commands that run until interrupted (serve, dev,
// sim, bench) are parsed only.
func TestEveryDocumentedUsageLineWorksAsWritten(t *testing.T) {
	_, ns := testenv.Redis(t) // its cleanup deletes every key the commands write under ns
	db, dbURL := testenv.Postgres(t)
	if _, err := migrations.Up(context.Background(), db); err != nil {
		t.Fatal(err)
	}
	body := filepath.Join(t.TempDir(), "fixed.json")
	if err := os.WriteFile(body, []byte(`{}`), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("HOOKSTREAM_REDIS_URL", testenv.RedisURL())
	t.Setenv("HOOKSTREAM_DATABASE_URL", dbURL)
	t.Setenv("HOOKSTREAM_NAMESPACE", ns)

	var lines []string
	var walk func(c *ffcli.Command)
	walk = func(c *ffcli.Command) {
		if len(c.Subcommands) == 0 && c.ShortUsage != "" {
			lines = append(lines, c.ShortUsage)
		}
		for _, sc := range c.Subcommands {
			walk(sc)
		}
	}
	walk(rootCommand())
	docs, _ := filepath.Glob("../../docs/*.md")
	for _, f := range append([]string{"../../README.md"}, docs...) {
		lines = append(lines, shellCommands(t, f)...)
	}
	if len(lines) < 30 {
		t.Fatalf("found only %d usage lines; the collector is broken", len(lines))
	}
	// The commands print their results to os.Stdout; keep them out of the
	// test's output.
	devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer devnull.Close()
	realStdout := os.Stdout
	os.Stdout = devnull
	defer func() { os.Stdout = realStdout }()
	longRunning := map[string]bool{"serve": true, "dev": true, "sim": true, "bench": true}
	seen := map[string]bool{}
	for _, line := range lines {
		for _, args := range expandUsage(line, body) {
			key := strings.Join(args, " ")
			if seen[key] || len(args) == 0 {
				continue
			}
			seen[key] = true
			if longRunning[args[0]] {
				if err := cli.Parse(rootCommand(), args); err != nil {
					t.Errorf("%q (from %q) does not parse: %v", key, line, err)
				}
				continue
			}
			var stdout, stderr bytes.Buffer
			code := cli.Run(context.Background(), rootCommand(), args, &stdout, &stderr)
			switch {
			case code == 2:
				t.Errorf("%q (from %q) is a usage error:\n%s", key, line, stderr.String())
			case code != 0 && !absentData.MatchString(stderr.String()):
				t.Errorf("%q (from %q) failed (exit %d):\n%s", key, line, code, stderr.String())
			}
		}
	}
	t.Logf("ran %d documented invocations", len(seen))
}

// shellCommands are the hookstream command lines in the sh blocks of a
// Markdown file, without prompts, comments, pipes and redirections.
func shellCommands(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	inSh, cont := false, ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "```") {
			inSh = !inSh && strings.TrimPrefix(line, "```") == "sh"
			continue
		}
		if !inSh {
			continue
		}
		if cont != "" {
			line = cont + " " + strings.TrimSpace(line)
			cont = ""
		}
		if strings.HasSuffix(line, `\`) {
			cont = strings.TrimSuffix(line, `\`)
			continue
		}
		for _, cut := range []string{" #", " | ", " && ", ";", " >", " 2>"} {
			if i := strings.Index(line, cut); i >= 0 {
				line = line[:i]
			}
		}
		fields := strings.Fields(line)
		for len(fields) > 0 && strings.Contains(fields[0], "=") { // VAR=value prefixes
			fields = fields[1:]
		}
		if len(fields) > 1 && (fields[0] == "hookstream" || strings.HasSuffix(fields[0], "/hookstream")) {
			out = append(out, "hookstream "+strings.Join(fields[1:], " "))
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

var (
	// absentData is how a command that names a dead letter, an instance or
	// a file fails when the thing does not exist: the private schema is
	// empty, so those lines can only show that they parse and connect.
	absentData   = regexp.MustCompile(`no such dead letter|dead letters? not (requeued|discarded)|no [a-z_]+ instance for subject|no such file|: not found; |the alert rules list no targets`)
	shellVar     = regexp.MustCompile(`\$\{?[A-Za-z_]+\}?`)
	plainWord    = regexp.MustCompile(`^[a-z]+$`)
	placeholders = map[string]string{
		"T": "2026-11-01T00:00:00Z", "ID": "1", "ID...": "1", "NAME": "onboarding", "N": "3", "a,b": "customer_created",
		"FILE": "", "S": "s", "...": "x", "<subcommand>": "status", "subcommand...": "", "flags": "",
		"FROM..TO": "2026-11-01..2026-11-02",
	}
)

// expandUsage turns a usage line ("hookstream dlq list|show ID [flags]") into
// the invocations it documents: one per alternative, optional parts
// included, placeholders filled in.
func expandUsage(line, file string) [][]string {
	line = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), "hookstream"))
	line = shellVar.ReplaceAllString(line, "x")
	var out [][]string
	// Alternatives of the whole line ("A | hookstream B") first.
	for _, whole := range strings.Split(line, " | ") {
		whole = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(whole), "hookstream"))
		fields := strings.Fields(whole)
		// The command path is the leading plain words.
		var path []string
		for len(fields) > 0 && plainWord.MatchString(fields[0]) && len(path) < 2 && isCommand(append(path, fields[0])) {
			path, fields = append(path, fields[0]), fields[1:]
		}
		if len(path) == 0 && len(out) > 0 {
			path = out[0][:commandDepth(out[0])] // "--journey NAME" continues the first alternative's command
		}
		rest := strings.Join(fields, " ")
		for _, alt := range splitOutside(rest, '|') {
			args := append([]string{}, path...)
			for i, tok := range strings.Fields(alt) {
				tok = strings.Trim(tok, "[]")
				if tok == "" {
					continue
				}
				if i := strings.IndexByte(tok, '|'); i >= 0 { // "-o table|json": the first choice
					tok = tok[:i]
				}
				if v, ok := placeholders[tok]; ok {
					switch {
					case tok == "FILE":
						v = file
					case tok == "T" && i > 0 && strings.Trim(strings.Fields(alt)[i-1], "[]") == "--to":
						v = "2026-11-02T00:00:00Z" // after --from's T
					}
					if v == "" {
						continue
					}
					tok = v
				}
				args = append(args, tok)
			}
			out = append(out, args)
		}
	}
	return out
}

// splitOutside splits s on sep where it is not inside [...].
func splitOutside(s string, sep byte) []string {
	var out []string
	depth, start := 0, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '[':
			depth++
		case ']':
			depth--
		case sep:
			if depth == 0 {
				out = append(out, s[start:i])
				start = i + 1
			}
		}
	}
	return append(out, s[start:])
}

// isCommand reports whether path names a command of the tree.
func isCommand(path []string) bool {
	c := rootCommand()
	for _, name := range path {
		if c = cli.Subcommand(c, name); c == nil {
			return false
		}
	}
	return true
}

func commandDepth(args []string) int {
	n := 0
	for n < len(args) && isCommand(args[:n+1]) {
		n++
	}
	return n
}
