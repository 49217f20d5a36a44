package testdb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvPostgresDSN names the environment variable that points the tests at an
// existing PostgreSQL server instead of starting one. Its value is a DSN
// (URL or keyword/value form) of a role allowed to CREATE DATABASE; every
// test database is created on that server and dropped afterwards.
const EnvPostgresDSN = "MQTTSPEC_PG_DSN"

// startTimeout bounds how long the server may take to accept connections.
const startTimeout = 30 * time.Second

// pgServer is the one PostgreSQL server of this test binary.
type pgServer struct {
	once    sync.Once
	err     error  // start failure (t.Fatal)
	missing string // binaries not installed (t.Skip, or t.Fatal on CI)

	baseDSN string  // DSN of the maintenance database "postgres"
	admin   *sql.DB // connection for CREATE/DROP DATABASE
	seq     atomic.Int64

	// Set only when we started the server ourselves.
	dir    string        // temporary directory: data dir, socket, log
	cmd    *exec.Cmd     // the postmaster
	exited chan struct{} // closed when cmd has exited
	stop   chan struct{} // releases the goroutine whose thread forked cmd

	mu      sync.Mutex
	stopped bool
}

var pg = &pgServer{}

// Main runs the tests of a package and then stops the PostgreSQL server if
// one was started, removes its files and exits with the tests' status.
// Call it from TestMain.
func Main(m *testing.M) {
	code := m.Run()
	pg.shutdown()
	os.Exit(code)
}

// PostgresDSN creates a fresh database on the shared test server and
// returns its DSN; the database is dropped by t.Cleanup. Without
// PostgreSQL binaries the test is skipped, or fails when CI is set.
func PostgresDSN(t testing.TB) string {
	t.Helper()
	s := pg.get(t)
	name := fmt.Sprintf("mqttspec_test_%d_%d", os.Getpid(), s.seq.Add(1))
	ident := pgx.Identifier{name}.Sanitize()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := s.admin.ExecContext(ctx, "CREATE DATABASE "+ident); err != nil {
		t.Fatalf("testdb: create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := s.admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+ident+" WITH (FORCE)"); err != nil {
			t.Errorf("testdb: drop database %s: %v", name, err)
		}
	})
	dsn, err := withDatabase(s.baseDSN, name)
	if err != nil {
		t.Fatalf("testdb: %v", err)
	}
	return dsn
}

// get starts the server on first use and fails or skips t when it cannot.
func (s *pgServer) get(t testing.TB) *pgServer {
	t.Helper()
	s.once.Do(s.start)
	switch {
	case s.missing != "" && os.Getenv("CI") != "":
		t.Fatalf("testdb: PostgreSQL is required when CI is set: %s", s.missing)
	case s.missing != "":
		t.Skipf("postgresql not installed: apt-get install postgresql (%s)", s.missing)
	case s.err != nil:
		t.Fatalf("testdb: start PostgreSQL: %v", s.err)
	}
	return s
}

func (s *pgServer) start() {
	if dsn := os.Getenv(EnvPostgresDSN); dsn != "" {
		s.baseDSN = dsn
		s.err = s.connectAdmin(startTimeout)
		return
	}
	bin, err := findPostgresBin()
	if err != nil {
		s.missing = err.Error()
		return
	}
	for attempt := 0; attempt < 3; attempt++ {
		if s.err = s.launch(bin); s.err == nil || !errors.Is(s.err, errPortTaken) {
			return
		}
	}
}

var errPortTaken = errors.New("server exited while starting (port taken?)")

// findPostgresBin returns the directory holding initdb and postgres: the
// newest /usr/lib/postgresql/<version>/bin, else the one of initdb in PATH.
func findPostgresBin() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool {
		vi, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(dirs[i])), 64)
		vj, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(dirs[j])), 64)
		return vi > vj
	})
	for _, d := range dirs {
		if isExecutable(filepath.Join(d, "initdb")) && isExecutable(filepath.Join(d, "postgres")) {
			return d, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		d := filepath.Dir(p)
		if isExecutable(filepath.Join(d, "postgres")) {
			return d, nil
		}
	}
	return "", errors.New("no initdb/postgres in /usr/lib/postgresql/*/bin or PATH")
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

// credential returns the identity to run PostgreSQL with: the postgres user
// when we are root (PostgreSQL refuses to run as root), else nil (ours).
func credential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root and no postgres user to run the server as: %w", err)
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("postgres user has non-numeric ids %s:%s", u.Uid, u.Gid)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), NoSetGroups: true}, nil
}

// launch initialises a data directory and starts a postmaster on a free
// port, waiting until it accepts connections.
func (s *pgServer) launch(bin string) (err error) {
	cred, err := credential()
	if err != nil {
		return err
	}
	parent := dataParent()
	removeStaleDirs(parent)
	dir, err := os.MkdirTemp(parent, dirPrefix)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = os.RemoveAll(dir)
		}
	}()
	if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		return err
	}
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			return fmt.Errorf("chown %s: %w", dir, err)
		}
	}
	data := filepath.Join(dir, "data")

	initdb := exec.Command(filepath.Join(bin, "initdb"), "--no-locale", "-E", "UTF8",
		"-A", "trust", "-U", "postgres", "--no-sync", "-D", data)
	initdb.Dir = dir
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := initdb.CombinedOutput(); err != nil {
		return fmt.Errorf("initdb: %w\n%s", err, out)
	}

	port, err := freePort()
	if err != nil {
		return err
	}
	logPath := filepath.Join(dir, "postgres.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logFile.Close() // the child keeps its own descriptor

	cmd := exec.Command(filepath.Join(bin, "postgres"), "-D", data,
		"-p", strconv.Itoa(port), "-k", dir,
		"-c", "listen_addresses=127.0.0.1",
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
		"-c", "max_connections=300")
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Credential: cred,
		Setpgid:    true, // a ^C on the terminal reaches the tests, not the server
		// If the test binary dies without running Main, the kernel stops the
		// server (immediate shutdown). The signal is tied to the thread that
		// forked, which is why that thread is kept alive below.
		Pdeathsig: syscall.SIGQUIT,
	}

	started := make(chan error, 1)
	stop := make(chan struct{})
	go func() {
		runtime.LockOSThread() // keep the forking thread (Pdeathsig) until shutdown
		if err := cmd.Start(); err != nil {
			runtime.UnlockOSThread()
			started <- err
			return
		}
		started <- nil
		<-stop
		runtime.UnlockOSThread()
	}()
	if err := <-started; err != nil {
		return fmt.Errorf("start postgres: %w", err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	s.dir, s.cmd, s.exited, s.stop = dir, cmd, exited, stop
	s.baseDSN = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)

	if err := s.connectAdmin(startTimeout); err != nil {
		logText, _ := os.ReadFile(logPath)
		s.kill()
		close(stop)
		s.dir, s.cmd, s.exited, s.stop = "", nil, nil, nil
		if strings.Contains(string(logText), "could not bind") || strings.Contains(string(logText), "already in use") {
			return fmt.Errorf("%w: %s", errPortTaken, logText)
		}
		return fmt.Errorf("%w\nserver log:\n%s", err, logText)
	}
	return nil
}

// connectAdmin opens the maintenance connection, retrying until the server
// answers, it exits, or timeout passes.
func (s *pgServer) connectAdmin(timeout time.Duration) error {
	db, err := sql.Open("pgx", s.baseDSN)
	if err != nil {
		return err
	}
	db.SetMaxOpenConns(4)
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err = db.PingContext(ctx)
		cancel()
		if err == nil {
			s.admin = db
			return nil
		}
		if s.exited != nil {
			select {
			case <-s.exited:
				_ = db.Close()
				return fmt.Errorf("postgres exited while starting: %w", err)
			default:
			}
		}
		if time.Now().After(deadline) {
			_ = db.Close()
			return fmt.Errorf("postgres did not accept connections within %s: %w", timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// shutdown stops the server we started (fast shutdown, then SIGKILL after
// 15 s) and removes its directory. Idempotent.
func (s *pgServer) shutdown() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return
	}
	s.stopped = true
	if s.admin != nil {
		_ = s.admin.Close()
	}
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGINT) // fast shutdown
	select {
	case <-s.exited:
	case <-time.After(15 * time.Second):
		s.kill()
	}
	close(s.stop)
	_ = os.RemoveAll(s.dir)
}

// kill stops the postmaster by its PID (never by name) and waits for it.
func (s *pgServer) kill() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGQUIT)
	select {
	case <-s.exited:
		return
	case <-time.After(5 * time.Second):
	}
	_ = s.cmd.Process.Kill()
	<-s.exited
}

// dirPrefix starts the name of every directory a test server lives in.
const dirPrefix = "mqttspec-pg-"

// dataParent returns where the server's directory is created: /dev/shm when
// it is a writable tmpfs (CREATE DATABASE copies the template's files, which
// takes about a second per database on a disk and a few milliseconds in
// memory), else the system's temporary directory.
func dataParent() string {
	const shm = "/dev/shm"
	if fi, err := os.Stat(shm); err == nil && fi.IsDir() && unix0777(fi.Mode()) {
		var st syscall.Statfs_t
		if err := syscall.Statfs(shm, &st); err == nil && uint64(st.Bavail)*uint64(st.Bsize) > 512<<20 {
			return shm
		}
	}
	return os.TempDir()
}

func unix0777(m os.FileMode) bool { return m.Perm()&0o777 == 0o777 }

// ownerFile, in a server directory, holds the PID of the test binary that
// created it.
const ownerFile = "owner.pid"

// removeStaleDirs deletes server directories that earlier test binaries
// left behind when they died without running Main: those whose owner test
// binary and postmaster are both gone. Directories without an owner file
// are removed only when more than an hour old.
func removeStaleDirs(parent string) {
	dirs, _ := filepath.Glob(filepath.Join(parent, dirPrefix+"*"))
	for _, d := range dirs {
		owner, ok := readPID(filepath.Join(d, ownerFile))
		if !ok {
			if fi, err := os.Stat(d); err == nil && time.Since(fi.ModTime()) > time.Hour {
				_ = os.RemoveAll(d)
			}
			continue
		}
		if alive(owner) {
			continue
		}
		if pm, ok := readPID(filepath.Join(d, "data", "postmaster.pid")); ok && alive(pm) {
			continue
		}
		_ = os.RemoveAll(d)
	}
}

// readPID reads the number on the first line of file.
func readPID(file string) (int, bool) {
	b, err := os.ReadFile(file)
	if err != nil {
		return 0, false
	}
	line, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	return pid, err == nil && pid > 0
}

// alive reports whether a process with pid exists (as far as we can tell).
func alive(pid int) bool {
	return !errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// withDatabase returns dsn with its database replaced by name.
func withDatabase(dsn, name string) (string, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "", fmt.Errorf("parse %s: %w", EnvPostgresDSN, err)
		}
		u.Path = "/" + name
		return u.String(), nil
	}
	// keyword/value form: a later dbname overrides an earlier one.
	return strings.TrimSpace(dsn) + " dbname=" + name, nil
}

// LaunchPostgres is PostgresDSN outside a test (the load command): it
// starts the server on first use (or uses $MQTTSPEC_PG_DSN), creates the
// database name and returns its DSN. StopPostgres stops the server.
func LaunchPostgres(name string) (string, error) {
	pg.once.Do(pg.start)
	switch {
	case pg.missing != "":
		return "", fmt.Errorf("postgresql not installed: %s", pg.missing)
	case pg.err != nil:
		return "", pg.err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := pg.admin.ExecContext(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", fmt.Errorf("create database %s: %w", name, err)
	}
	return withDatabase(pg.baseDSN, name)
}

// PostgresPID returns the process id of the server LaunchPostgres started
// (0 when it uses $MQTTSPEC_PG_DSN).
func PostgresPID() int {
	if pg.cmd == nil || pg.cmd.Process == nil {
		return 0
	}
	return pg.cmd.Process.Pid
}

// StopPostgres stops a server LaunchPostgres started.
func StopPostgres() { pg.shutdown() }
