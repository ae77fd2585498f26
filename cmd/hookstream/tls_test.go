package main

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/hookstream/hookstream/internal/testenv"
	"github.com/hookstream/hookstream/stream"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
)

// TestTLSToRedisAndPostgres: a private Redis that accepts TLS only and a
// private PostgreSQL that accepts SSL only (pg_hba.conf: hostssl, and
// hostnossl reject), both with a certificate from a throwaway CA. serve
// (ingest and process) reaches them with rediss:// and
// sslmode=verify-full, trusting the CA through SSL_CERT_FILE and
// sslrootcert; the simulator's traffic is stored exactly once. A plain
// redis:// URL, sslmode=disable, and verification without the CA each fail
// with hookstream's error naming the cause.
func TestTLSToRedisAndPostgres(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	certs := testenv.NewTLSFiles(t)
	rs := testenv.StartRedisServerWith(t, testenv.RedisServerOptions{TLS: certs, AppendFsync: "everysec"})
	pg := testenv.StartPGServerWith(t, testenv.PGServerOptions{TLS: certs})
	if !strings.HasPrefix(rs.URL(), "rediss://") || !strings.Contains(pg.URL(), "sslmode=verify-full") {
		t.Fatalf("the servers' URLs do not ask for TLS: %s %s", rs.URL(), pg.URL())
	}

	rdb := redis.NewClient(rs.Options())
	t.Cleanup(func() { rdb.Close() })
	db, err := pgxpool.New(ctx, pg.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	ns := testenv.Name("hst")
	p := &pipeline{t: t, bin: buildBinary(t), rdb: rdb, ns: ns, keys: stream.NewKeys(ns, 16), db: db}
	// The child processes trust the test CA and nothing else that the
	// environment may have pointed at.
	base := withoutCAEnv(os.Environ())
	p.env = append(base,
		"HOOKSTREAM_REDIS_URL="+rs.URL(),
		"HOOKSTREAM_DATABASE_URL="+pg.URL(),
		"HOOKSTREAM_NAMESPACE="+ns,
		"HOOKSTREAM_WEBHOOK_SECRETS=pipeline-secret",
		"HOOKSTREAM_SPOOL_DIR="+t.TempDir(),
		"SSL_CERT_FILE="+certs.CA,
	)

	t.Run("refusals", func(t *testing.T) {
		// Each case runs a command that needs the server and must fail with
		// an error naming the cause.
		plainRedis := strings.Replace(rs.URL(), "rediss://", "redis://", 1)
		noSSL := strings.Replace(pg.URL(), "sslmode=verify-full", "sslmode=disable", 1)
		noRoot, _, _ := strings.Cut(pg.URL(), "&sslrootcert=")
		for _, c := range []struct {
			name string
			env  []string
			args []string
			want []string // every one in the output
		}{
			{"plain redis:// against the TLS port", []string{"HOOKSTREAM_REDIS_URL=" + plainRedis},
				[]string{"status"}, []string{"connect to Redis at " + plainRedis}},
			{"rediss:// without the CA", []string{"SSL_CERT_FILE="},
				[]string{"status"}, []string{"connect to Redis at " + rs.URL(), "x509: certificate signed by unknown authority"}},
			{"sslmode=disable against hostssl only", []string{"HOOKSTREAM_DATABASE_URL=" + noSSL},
				[]string{"migrate", "up"}, []string{"connect to PostgreSQL", "pg_hba.conf rejects connection", "no encryption"}},
			{"sslmode=verify-full without sslrootcert or SSL_CERT_FILE", []string{"HOOKSTREAM_DATABASE_URL=" + noRoot, "SSL_CERT_FILE="},
				[]string{"migrate", "up"}, []string{"connect to PostgreSQL", "x509: certificate signed by unknown authority"}},
		} {
			q := *p
			q.t = t
			q.env = append(append([]string(nil), p.env...), c.env...)
			if c.env[len(c.env)-1] == "SSL_CERT_FILE=" {
				q.env = withoutCAEnv(q.env)
			}
			out, err := q.try(c.args...)
			if err == nil {
				t.Errorf("%s: hookstream %s succeeded:\n%s", c.name, strings.Join(c.args, " "), out)
				continue
			}
			for _, w := range c.want {
				if !strings.Contains(out, w) {
					t.Errorf("%s: hookstream %s failed (%v) without %q in its output:\n%s", c.name, strings.Join(c.args, " "), err, w, out)
				}
			}
			t.Logf("%s: %s", c.name, lastLineOf(strings.TrimSpace(out)))
		}
		// Redis listens for TLS only (port 0: no plain listener), and a
		// plain client's PING on the TLS port fails.
		for param, want := range map[string]string{"port": "0", "tls-port": strconv.Itoa(rs.Port)} {
			if got, err := rdb.ConfigGet(ctx, param).Result(); err != nil || got[param] != want {
				t.Errorf("Redis CONFIG GET %s: %v %v; want %s", param, got, err, want)
			}
		}
		plain := redis.NewClient(&redis.Options{Addr: rs.Options().Addr, MaxRetries: -1})
		defer plain.Close()
		if err := plain.Ping(ctx).Err(); err == nil {
			t.Errorf("a plain PING to the TLS-only Redis succeeded")
		}
		// Nor PostgreSQL over TCP without SSL.
		if conn, err := pgx.Connect(ctx, noSSL); err == nil {
			conn.Close(ctx)
			t.Errorf("a connection with sslmode=disable was let in")
		}
	})
	if t.Failed() {
		return
	}

	p.run("migrate", "up")
	srv := p.serve("--roles", "ingest,process", "--read-block", "200ms")
	truth, out := p.loadSim(srv, 200, 300, "71")
	want := p.simDone(out, truth)
	p.verifyExact(srv, want, false)

	// The server's side: every client connection PostgreSQL has, serve's
	// and this test's, is over SSL.
	var ssl bool
	if err := db.QueryRow(ctx, `SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()`).Scan(&ssl); err != nil || !ssl {
		t.Fatalf("pg_stat_ssl for this connection: ssl=%v, %v", ssl, err)
	}
	var clients, plainClients int64
	var version string
	if err := db.QueryRow(ctx, `
SELECT count(*), count(*) FILTER (WHERE NOT s.ssl), coalesce(min(s.version), '')
FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid)
WHERE a.backend_type = 'client backend'`).Scan(&clients, &plainClients, &version); err != nil {
		t.Fatal(err)
	}
	if clients < 2 || plainClients != 0 {
		t.Fatalf("PostgreSQL has %d client connections, %d of them without SSL; want serve's and this test's, all over SSL", clients, plainClients)
	}
	t.Logf("PostgreSQL: %d client connections, all over SSL (%s); Redis: port 0 and tls-port %d (a plain PING is refused)", clients, version, rs.Port)
	srv.stop(t)
}

// withoutCAEnv is env without the variables that point Go's TLS at other
// roots (the last assignment of SSL_CERT_FILE would otherwise count).
func withoutCAEnv(env []string) []string {
	var out []string
	for _, kv := range env {
		if k, _, _ := strings.Cut(kv, "="); k == "SSL_CERT_FILE" || k == "SSL_CERT_DIR" {
			continue
		}
		out = append(out, kv)
	}
	return out
}
