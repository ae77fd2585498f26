// Command hookstream is the one hookstream binary. Every subcommand's flags can
// also be set from the environment as HOOKSTREAM_<FLAG>, with dashes as
// underscores (for example --redis-url is HOOKSTREAM_REDIS_URL); a flag given
// on the command line wins over the environment.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/peterbourgon/ff/v3"
	"github.com/peterbourgon/ff/v3/ffcli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})))

	root := rootCommand()
	if err := root.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintf(os.Stderr, "hookstream: %v\n", err)
		os.Exit(2)
	}
	if err := root.Run(ctx); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(2)
		}
		fmt.Fprintf(os.Stderr, "hookstream: %v\n", err)
		os.Exit(1)
	}
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
			replayCommand(),
			queryCommand(),
			journeysCommand(),
		},
		Exec: func(ctx context.Context, args []string) error { return flag.ErrHelp },
	}
	helpCmd := &ffcli.Command{
		Name:       "help",
		ShortUsage: "hookstream help [subcommand]",
		ShortHelp:  "explain hookstream or one of its subcommands",
		Exec: func(ctx context.Context, args []string) error {
			cmd := root
			for _, a := range args {
				for _, sc := range cmd.Subcommands {
					if sc.Name == a {
						cmd = sc
						break
					}
				}
			}
			fmt.Fprintln(os.Stdout, ffcli.DefaultUsageFunc(cmd))
			return nil
		},
	}
	root.Subcommands = append(root.Subcommands, helpCmd)
	return root
}

// envOptions make every flag readable from HOOKSTREAM_<FLAG>.
func envOptions() []ff.Option {
	return []ff.Option{ff.WithEnvVarPrefix("HOOKSTREAM")}
}

// common holds the connection settings most subcommands share.
type common struct {
	redisURL   string
	dbURL      string
	namespace  string
	partitions int
}

func (c *common) register(fs *flag.FlagSet) {
	fs.StringVar(&c.redisURL, "redis-url", "redis://127.0.0.1:6379/0", "Redis URL (redis://[user:pass@]host:port/db)")
	fs.StringVar(&c.dbURL, "database-url", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable", "PostgreSQL URL")
	fs.StringVar(&c.namespace, "namespace", "hs", "prefix of every Redis key, so several installations can share one Redis")
	fs.IntVar(&c.partitions, "partitions", 16, "number of partition streams; must be the same for every process of one namespace")
}
