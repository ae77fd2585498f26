package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/hookstream/hookstream/internal/cli"
	"github.com/hookstream/hookstream/migrations"
	"github.com/hookstream/hookstream/store"
	"github.com/peterbourgon/ff/v3/ffcli"
)

func migrateCommand() *ffcli.Command {
	fs := flag.NewFlagSet("hookstream migrate", flag.ContinueOnError)
	var c common
	c.register(fs)
	return &ffcli.Command{
		Name:       "migrate",
		ShortUsage: "hookstream migrate up|status [flags]",
		ShortHelp:  "apply or show the PostgreSQL schema migrations embedded in the binary",
		LongHelp: `up      applies every pending migration (idempotent; safe to run on every start)
status  lists each migration with its state and when it was applied

The migration history is kept in the table goose_db_version of the first schema
in the connection's search_path.`,
		FlagSet: fs,
		Options: envOptions(),
		Exec: func(ctx context.Context, args []string) error {
			if len(args) != 1 || (args[0] != "up" && args[0] != "status") {
				return cli.Usagef("migrate takes one argument, up or status")
			}
			pool, err := store.Open(ctx, c.dbURL)
			if err != nil {
				return err
			}
			defer pool.Close()
			if args[0] == "status" {
				return migrations.Status(ctx, pool, os.Stdout)
			}
			res, err := migrations.Up(ctx, pool)
			for _, r := range res {
				fmt.Printf("applied %05d %s in %s\n", r.Source.Version, r.Source.Path, r.Duration)
			}
			if err == nil && len(res) == 0 {
				fmt.Println("schema is up to date")
			}
			return err
		},
	}
}
