package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/hookstream/hookstream/migrations"
	"github.com/hookstream/hookstream/store"
	"github.com/hookstream/hookstream/stream"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/peterbourgon/ff/v3"
	"github.com/redis/go-redis/v9"
)

// envOptions make every flag readable from HOOKSTREAM_<FLAG>.
func envOptions() []ff.Option {
	return []ff.Option{ff.WithEnvVarPrefix("HOOKSTREAM")}
}

// The servers used when neither a flag nor the environment names one.
const (
	defaultRedisURL    = "redis://127.0.0.1:6379/0"
	defaultDatabaseURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
)

// common holds the connection settings most subcommands share.
type common struct {
	redisURL   string
	dbURL      string
	namespace  string
	partitions int
}

func (c *common) register(fs *flag.FlagSet) {
	fs.StringVar(&c.redisURL, "redis-url", defaultRedisURL, "Redis URL: redis://[user:pass@]host:port/db (rediss:// for TLS), any node of a Redis Cluster (detected at start), or a comma-separated list of cluster nodes (docs/scaling.md)")
	fs.StringVar(&c.dbURL, "database-url", defaultDatabaseURL, "PostgreSQL URL")
	fs.StringVar(&c.namespace, "namespace", "hs", "prefix of every Redis key, so several installations can share one Redis")
	fs.IntVar(&c.partitions, "partitions", 16, "number of partition streams; must be the same for every process of one namespace")
}

// source says where a connection setting came from, for error messages: a
// read command run without `. .hookstream/env` must say it used the default.
func source(flagName, value, def string) string {
	env := "HOOKSTREAM_" + map[string]string{"redis-url": "REDIS_URL", "database-url": "DATABASE_URL"}[flagName]
	if value == def && os.Getenv(env) == "" {
		return fmt.Sprintf("the default %s (%s is not set; after `make dev` or `make services-up`, run `. .hookstream/env`)", value, env)
	}
	return value
}

// opsEnv is the connections an operations command needs.
type opsEnv struct {
	rdb  redis.UniversalClient
	db   *pgxpool.Pool
	keys stream.Keys
}

// connect opens Redis (required) and, when needDB, PostgreSQL with a
// hookstream schema.
func (c *common) connect(ctx context.Context, needDB bool) (*opsEnv, func(), error) {
	rdb, err := stream.NewClient(c.redisURL, 5*time.Second, 4)
	if err != nil {
		return nil, nil, err
	}
	if err := rdb.Ping(ctx).Err(); err != nil {
		rdb.Close()
		hint := ""
		if errors.Is(err, io.EOF) && strings.HasPrefix(c.redisURL, "redis://") {
			hint = "; if that server expects TLS, use rediss://"
		}
		return nil, nil, fmt.Errorf("connect to Redis at %s: %w%s", source("redis-url", c.redisURL, defaultRedisURL), err, hint)
	}
	env := &opsEnv{rdb: rdb, keys: stream.NewKeys(c.namespace, c.partitions)}
	if needDB {
		if env.db, err = c.openDB(ctx); err != nil {
			rdb.Close()
			return nil, nil, err
		}
	}
	return env, func() {
		rdb.Close()
		if env.db != nil {
			env.db.Close()
		}
	}, nil
}

// openDB connects to PostgreSQL and checks that it holds the hookstream
// schema at this binary's version, naming the server it used when not.
func (c *common) openDB(ctx context.Context) (*pgxpool.Pool, error) {
	db, err := store.Open(ctx, c.dbURL)
	if err != nil {
		if c.dbURL == defaultDatabaseURL && os.Getenv("HOOKSTREAM_DATABASE_URL") == "" {
			err = fmt.Errorf("%w (used %s)", err, source("database-url", c.dbURL, defaultDatabaseURL))
		}
		return nil, err
	}
	if err := migrations.Check(ctx, db); err != nil {
		db.Close()
		if c.dbURL == defaultDatabaseURL && os.Getenv("HOOKSTREAM_DATABASE_URL") == "" {
			err = fmt.Errorf("%w; used %s", err, source("database-url", c.dbURL, defaultDatabaseURL))
		}
		return nil, err
	}
	return db, nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
