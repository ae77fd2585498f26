package cli

import (
	"flag"
	"fmt"
	"strings"

	"github.com/peterbourgon/ff/v3/ffcli"
)

// ConfigurationMarkdown is docs/configuration.md: every flag of every
// subcommand, with its environment variable and default, generated from the
// flag definitions themselves ('hookstream help configuration'; a test fails
// when the committed file differs).
func ConfigurationMarkdown(root *ffcli.Command) string {
	type row struct {
		name, def, usage, env string
		cmds                  []string
	}
	var rows []*row
	index := map[string]*row{}
	var walk func(c *ffcli.Command, path string)
	walk = func(c *ffcli.Command, path string) {
		if c.FlagSet != nil {
			c.FlagSet.VisitAll(func(f *flag.Flag) {
				env := ""
				if c.Options != nil {
					env = "HOOKSTREAM_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
				}
				key := f.Name + "\x00" + f.DefValue + "\x00" + f.Usage + "\x00" + env
				r, ok := index[key]
				if !ok {
					r = &row{name: f.Name, def: f.DefValue, usage: f.Usage, env: env}
					index[key] = r
					rows = append(rows, r)
				}
				r.cmds = append(r.cmds, path)
			})
		}
		for _, sc := range c.Subcommands {
			walk(sc, strings.TrimPrefix(path+" "+sc.Name, " "))
		}
	}
	walk(root, "")
	cell := func(s string) string { return strings.ReplaceAll(strings.ReplaceAll(s, "|", `\|`), "\n", " ") }
	var b strings.Builder
	b.WriteString(`# Configuration

Every flag of every ` + "`hookstream`" + ` subcommand. Generated from the flag definitions by
` + "`hookstream help configuration > docs/configuration.md`" + ` (` + "`make docs`" + `); a test fails when this
file is stale, so edit the flag, not this file.

A flag can also be set in the environment as ` + "`HOOKSTREAM_<FLAG>`" + ` (dashes become underscores); the
command line wins. ` + "`make dev`" + ` and ` + "`make test`" + ` write the server URLs to ` + "`.hookstream/env`" + `
(` + "`. .hookstream/env`" + ` loads them into a shell). A flag whose default or meaning differs between
subcommands has a row for each.

| flag | variable | default | subcommands | what it sets |
|---|---|---|---|---|
`)
	for _, r := range rows {
		def := "`" + cell(r.def) + "`"
		if r.def == "" {
			def = ""
		}
		env := ""
		if r.env != "" {
			env = "`" + r.env + "`"
		}
		fmt.Fprintf(&b, "| `--%s` | %s | %s | %s | %s |\n", r.name, env, def, cell(strings.Join(r.cmds, ", ")), cell(r.usage))
	}
	return b.String()
}
