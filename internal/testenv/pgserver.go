package testenv

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// PGBinDir is where the PostgreSQL 15 server binaries are looked for first
// (Debian's layout); initdb and postgres on PATH are the fallback.
const PGBinDir = "/usr/lib/postgresql/15/bin"

// PGServer is a private PostgreSQL server that a test may stop, kill and
// restart, its cluster in the test's temp dir: trust authentication, bound
// to 127.0.0.1 on a free port, its unix socket in the temp dir too. As root
// it runs as the postgres user (PostgreSQL refuses to run as root), like
// scripts/services.sh does.
type PGServer struct {
	t    testing.TB
	bin  string // folder of initdb and postgres
	Port int
	Dir  string // the data directory
	Sock string // the unix socket directory
	cred *syscall.Credential
	opts PGServerOptions
	cmd  *exec.Cmd
	done chan struct{}
}

// PGServerOptions configure a private PostgreSQL server.
type PGServerOptions struct {
	// TLS, when set, turns SSL on with this server certificate and lets
	// TCP clients in over SSL only (pg_hba.conf: hostssl trust, hostnossl
	// reject). URL then asks for sslmode=verify-full against the CA.
	TLS *TLSFiles
}

// StartPGServer runs initdb in a temp dir and starts the server; it is killed
// when the test ends. The test is skipped when no PostgreSQL server binaries
// are installed.
func StartPGServer(t testing.TB) *PGServer {
	t.Helper()
	return StartPGServerWith(t, PGServerOptions{})
}

// StartPGServerWith is StartPGServer configured by opts.
func StartPGServerWith(t testing.TB, opts PGServerOptions) *PGServer {
	t.Helper()
	bin := PGBinDir
	if _, err := os.Stat(filepath.Join(bin, "postgres")); err != nil {
		p, err := exec.LookPath("postgres")
		if err != nil {
			t.Skipf("no PostgreSQL server binaries in %s or on PATH; install them with `apt-get install -y postgresql-15`", PGBinDir)
		}
		bin = filepath.Dir(p)
	}
	base := t.TempDir()
	s := &PGServer{t: t, bin: bin, Port: FreePort(t), Dir: filepath.Join(base, "data"), Sock: filepath.Join(base, "sock"), opts: opts}
	if err := os.Mkdir(s.Sock, 0o700); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		s.cred = pgCredential(t)
		// The postgres user must reach the cluster: the temp dirs are 0700
		// and root's.
		for _, d := range []string{filepath.Dir(base), base} {
			if err := os.Chmod(d, 0o711); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Chown(s.Sock, int(s.cred.Uid), int(s.cred.Gid)); err != nil {
			t.Fatal(err)
		}
		if err := os.Mkdir(s.Dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(s.Dir, int(s.cred.Uid), int(s.cred.Gid)); err != nil {
			t.Fatal(err)
		}
	}
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", s.Dir, "-U", "postgres", "--auth=trust",
		"--encoding=UTF8", "--locale=C", "--no-sync")
	initdb.Dir = "/"
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	if out, err := initdb.CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	if opts.TLS != nil {
		s.setupTLS()
	}
	s.Start()
	t.Cleanup(s.Kill)
	return s
}

// pgCredential is the user a root test runs PostgreSQL as.
func pgCredential(t testing.TB) *syscall.Credential {
	t.Helper()
	u, err := user.Lookup("postgres")
	if err != nil {
		t.Skipf("running as root and there is no postgres user to run a private PostgreSQL as: %v", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
}

// setupTLS puts the server's certificate and key in the data directory,
// owned by the user the server runs as (it refuses a key others can read),
// and replaces pg_hba.conf: over TCP, SSL or nothing.
func (s *PGServer) setupTLS() {
	s.t.Helper()
	for _, f := range []struct{ from, to string }{{s.opts.TLS.Cert, "server.crt"}, {s.opts.TLS.Key, "server.key"}} {
		b, err := os.ReadFile(f.from)
		if err != nil {
			s.t.Fatal(err)
		}
		to := filepath.Join(s.Dir, f.to)
		if err := os.WriteFile(to, b, 0o600); err != nil {
			s.t.Fatal(err)
		}
		if s.cred != nil {
			if err := os.Chown(to, int(s.cred.Uid), int(s.cred.Gid)); err != nil {
				s.t.Fatal(err)
			}
		}
	}
	hba := "local all all trust\n" +
		"hostssl all all 127.0.0.1/32 trust\n" +
		"hostnossl all all 127.0.0.1/32 reject\n"
	if err := os.WriteFile(filepath.Join(s.Dir, "pg_hba.conf"), []byte(hba), 0o600); err != nil {
		s.t.Fatal(err)
	}
}

// URL is the server's postgres:// URL (database postgres, user postgres):
// sslmode=disable, or with the TLS option sslmode=verify-full trusting the
// test CA.
func (s *PGServer) URL() string {
	if s.opts.TLS != nil {
		return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=verify-full&sslrootcert=%s", s.Port, url.QueryEscape(s.opts.TLS.CA))
	}
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", s.Port)
}

// Addr is the server's "host:port".
func (s *PGServer) Addr() string { return fmt.Sprintf("127.0.0.1:%d", s.Port) }

// Start (re)starts the server and waits until it accepts a login. After a
// Kill that is crash recovery, which it waits for too.
func (s *PGServer) Start() {
	s.t.Helper()
	s.start(0)
}

func (s *PGServer) start(attempt int) {
	s.t.Helper()
	cmd := exec.Command(filepath.Join(s.bin, "postgres"), "-D", s.Dir, "-p", strconv.Itoa(s.Port),
		"-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories="+s.Sock,
		"-c", "fsync=off", "-c", "max_connections=200", "-c", "logging_collector=off")
	if s.opts.TLS != nil {
		cmd.Args = append(cmd.Args, "-c", "ssl=on", "-c", "ssl_cert_file=server.crt", "-c", "ssl_key_file=server.key")
	}
	cmd.Dir = "/"
	// Its own process group, so Kill takes the backends down with the
	// postmaster, as a crash of the machine would.
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred, Setpgid: true}
	logf, err := os.OpenFile(filepath.Join(filepath.Dir(s.Dir), "postgres.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		s.t.Fatal(err)
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("start postgres: %v", err)
	}
	s.cmd, s.done = cmd, make(chan struct{})
	go func(done chan struct{}) { cmd.Wait(); close(done) }(s.done)
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		conn, err := pgx.Connect(ctx, s.URL())
		if err == nil {
			conn.Close(ctx)
			cancel()
			return
		}
		cancel()
		select {
		case <-s.done:
			// After a Kill, a backend may not be quite gone yet: the new
			// postmaster then refuses the shared memory it still holds.
			if attempt < 50 && strings.Contains(s.Log(), "pre-existing shared memory block") {
				time.Sleep(100 * time.Millisecond)
				s.start(attempt + 1)
				return
			}
			s.t.Fatalf("postgres on port %d exited at start:\n%s", s.Port, s.Log())
		default:
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("postgres on port %d did not accept a login in 30s: %v\n%s", s.Port, err, s.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop shuts the server down with a fast shutdown (SIGINT: sessions are
// ended, open transactions rolled back, a checkpoint written) and waits.
func (s *PGServer) Stop() {
	s.t.Helper()
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		s.t.Errorf("postgres did not finish a fast shutdown in 30s; killing it")
		s.Kill()
	}
	s.cmd = nil
}

// Kill sends SIGKILL to the postmaster and every backend (a crash), and
// waits for the postmaster to be gone.
func (s *PGServer) Kill() {
	if s.cmd == nil {
		return
	}
	syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	<-s.done
	s.cmd = nil
}

// Log is what the server has logged so far.
func (s *PGServer) Log() string {
	b, _ := os.ReadFile(filepath.Join(filepath.Dir(s.Dir), "postgres.log"))
	return string(b)
}
