// Command hookstream is the one hookstream binary. Every subcommand's flags can
// also be set from the environment as HOOKSTREAM_<FLAG>, with dashes as
// underscores (for example --redis-url is HOOKSTREAM_REDIS_URL); a flag given
// on the command line wins over the environment.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/hookstream/hookstream/internal/cli"
	"github.com/peterbourgon/ff/v3/ffcli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})))
	code := cli.Run(ctx, rootCommand(), os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func rootCommand() *ffcli.Command {
	fs := flag.NewFlagSet("hookstream", flag.ContinueOnError)
	root := &ffcli.Command{
		Name:       "hookstream",
		ShortUsage: "hookstream <subcommand> [flags]",
		LongHelp: `hookstream captures Dwolla webhooks into Redis Streams and turns them into
live analytics. Every flag can also be set as HOOKSTREAM_<FLAG> in the
environment (dashes become underscores); the command line wins.

Run 'hookstream <subcommand> --help' for the flags of each subcommand.`,
		FlagSet: fs,
		Exec: func(_ context.Context, args []string) error {
			if len(args) == 0 {
				return flag.ErrHelp // a bare "hookstream" shows what there is
			}
			return cli.Usagef("unknown subcommand %q; run 'hookstream help' for the list", args[0])
		},
		Subcommands: []*ffcli.Command{
			serveCommand(),
			devCommand(),
			migrateCommand(),
			simCommand(),
			benchCommand(),
			statusCommand(),
			pauseCommand(true),
			pauseCommand(false),
			dlqCommand(),
			refoldCommand("refold"),
			refoldCommand("replay"),
			queryCommand(),
			journeysCommand(),
			anomalyCommand(),
			alertsCommand(),
			reconcileCommand(),
		},
	}
	helpCmd := &ffcli.Command{
		Name:       "help",
		ShortUsage: "hookstream help [subcommand...] | hookstream help configuration",
		ShortHelp:  "explain hookstream or one of its subcommands; 'configuration' lists every flag and variable",
		Exec: func(ctx context.Context, args []string) error {
			if len(args) == 1 && args[0] == "configuration" {
				_, err := io.WriteString(os.Stdout, cli.ConfigurationMarkdown(root))
				return err
			}
			cmd := root
			for _, a := range args {
				next := cli.Subcommand(cmd, a)
				if next == nil {
					return cli.Usagef("no subcommand %q in '%s'; it has: %s", a, cli.CommandPath(cmd, root), cli.SubcommandNames(cmd))
				}
				cmd = next
			}
			fmt.Fprintln(os.Stdout, ffcli.DefaultUsageFunc(cmd))
			return nil
		},
	}
	root.Subcommands = append(root.Subcommands, helpCmd)
	return root
}
