package testenv

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisServer is a private redis-server process that a test may kill and
// restart, with its data in the test's temp dir. It persists with an
// append-only file (AOF), by default fsync'd on every write, so a restart,
// even after SIGKILL, keeps what was acknowledged.
type RedisServer struct {
	t    testing.TB
	bin  string
	opts RedisServerOptions
	Port int
	Dir  string
	cmd  *exec.Cmd
}

// RedisServerOptions configure a private redis-server.
type RedisServerOptions struct {
	// AppendFsync is the AOF fsync policy: "always" (the default; every
	// acknowledged write is on disk), "everysec" (Redis's default; a crash
	// of the machine or a SIGKILL of Redis may lose the last second) or "no".
	AppendFsync string
	// TLS, when set, makes the server accept TLS connections only, with
	// these files (--port 0 --tls-port): URL is then rediss://. Clients
	// are not asked for a certificate (--tls-auth-clients no).
	TLS *TLSFiles
}

// StartRedisServer starts a private redis-server on a free loopback port,
// with the AOF fsync'd on every write.
func StartRedisServer(t testing.TB) *RedisServer {
	t.Helper()
	return StartRedisServerWith(t, RedisServerOptions{})
}

// StartRedisServerWith starts a private redis-server configured by opts.
func StartRedisServerWith(t testing.TB, opts RedisServerOptions) *RedisServer {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redis-server not found on PATH: %v; install it with `apt-get install -y redis-server` (make test does)", err)
	}
	if opts.AppendFsync == "" {
		opts.AppendFsync = "always"
	}
	s := &RedisServer{t: t, bin: bin, opts: opts, Port: FreePort(t), Dir: t.TempDir()}
	s.Start()
	t.Cleanup(func() { s.Kill() })
	return s
}

// URL is the server's redis:// URL, or rediss:// with the TLS option.
func (s *RedisServer) URL() string {
	if s.opts.TLS != nil {
		return fmt.Sprintf("rediss://127.0.0.1:%d/0", s.Port)
	}
	return fmt.Sprintf("redis://127.0.0.1:%d/0", s.Port)
}

// Options are go-redis options that reach the server: with the TLS
// option, over TLS trusting the test CA.
func (s *RedisServer) Options() *redis.Options {
	opt := &redis.Options{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port))}
	if s.opts.TLS != nil {
		opt.TLSConfig = &tls.Config{RootCAs: s.opts.TLS.Pool(s.t), MinVersion: tls.VersionTLS12}
	}
	return opt
}

// args are the command line of redis-server.
func (s *RedisServer) args() []string {
	port := []string{"--port", strconv.Itoa(s.Port)}
	if f := s.opts.TLS; f != nil {
		port = []string{"--port", "0", "--tls-port", strconv.Itoa(s.Port),
			"--tls-cert-file", f.Cert, "--tls-key-file", f.Key, "--tls-ca-cert-file", f.CA,
			"--tls-auth-clients", "no"}
	}
	return append(port, "--bind", "127.0.0.1", "--save", "",
		"--appendonly", "yes", "--appendfsync", s.opts.AppendFsync, "--dir", s.Dir,
		"--logfile", filepath.Join(s.Dir, "redis.log"))
}

// Start (re)starts the server on its port and waits until it answers.
func (s *RedisServer) Start() {
	s.t.Helper()
	s.cmd = exec.Command(s.bin, s.args()...)
	// Before its log file is open, redis-server complains on its stdout, in
	// a file of its own: e.g. a TLS directive where it was built without
	// TLS.
	early := filepath.Join(s.Dir, "redis.out")
	out, err := os.OpenFile(early, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		s.t.Fatal(err)
	}
	defer out.Close()
	s.cmd.Stdout, s.cmd.Stderr = out, out
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("start redis-server: %v", err)
	}
	rdb := redis.NewClient(s.Options())
	defer rdb.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := rdb.Ping(ctx).Err()
		cancel()
		if err == nil {
			return
		}
		if s.opts.TLS != nil {
			if why := noTLS(s.output()); why != "" {
				s.Kill()
				s.t.Skipf("redis-server %s cannot serve TLS: %s", s.bin, why)
			}
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("redis-server on port %d did not answer in 10s: %v\n%s", s.Port, err, s.output())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// output is what the server printed before its log file was open, and its
// log.
func (s *RedisServer) output() string {
	early, _ := os.ReadFile(filepath.Join(s.Dir, "redis.out"))
	log, _ := os.ReadFile(filepath.Join(s.Dir, "redis.log"))
	return string(early) + string(log)
}

// noTLS is the line of a redis-server's output that says it was built
// without TLS, or "".
func noTLS(out string) string {
	// A build that does not know the tls-* directives refuses the command
	// line: ">>> 'tls-port "N"'" then "Bad directive or wrong number of
	// arguments".
	if i := strings.Index(out, ">>> 'tls-"); i >= 0 && strings.Contains(out, "Bad directive") {
		directive, _, _ := strings.Cut(out[i+4:], "\n")
		return "Bad directive " + directive
	}
	for _, line := range strings.Split(out, "\n") {
		l := strings.ToLower(line)
		if strings.Contains(l, "tls") && (strings.Contains(l, "not supported") || strings.Contains(l, "not built") || strings.Contains(l, "built without")) {
			return strings.TrimSpace(line)
		}
	}
	return ""
}

// Shutdown stops the server gracefully (SHUTDOWN: the AOF is flushed and
// fsync'd) and waits for it to exit.
func (s *RedisServer) Shutdown() {
	s.t.Helper()
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	rdb := redis.NewClient(s.Options())
	defer rdb.Close()
	// SHUTDOWN answers nothing when it succeeds: the connection just closes.
	if err := rdb.Shutdown(context.Background()).Err(); err != nil && !errors.Is(err, io.EOF) && !strings.Contains(err.Error(), "connection") {
		s.t.Logf("redis-server SHUTDOWN: %v; killing it", err)
		s.cmd.Process.Kill()
	}
	s.cmd.Wait()
	s.cmd = nil
}

// Restart stops the server, with SIGKILL when kill is true (a crash) or
// gracefully otherwise, and starts it again on the same port and data
// directory, waiting until it answers (it has loaded its AOF by then).
func (s *RedisServer) Restart(kill bool) {
	s.t.Helper()
	if kill {
		s.Kill()
	} else {
		s.Shutdown()
	}
	s.Start()
}

// Kill stops the server with SIGKILL, as a crash would.
func (s *RedisServer) Kill() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	s.cmd.Process.Kill()
	s.cmd.Wait()
	s.cmd = nil
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
