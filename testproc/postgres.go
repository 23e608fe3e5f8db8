package testproc

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Postgres is a Postgres cluster of the test's own on a loopback port,
// with its data directory.
type Postgres struct {
	*Process
	Dir  string
	Port int
}

// PostgresBin finds a Postgres server program: Debian keeps them in
// /usr/lib/postgresql/VERSION/bin, off the PATH (the newest is taken).
func PostgresBin(t testing.TB, name string) string {
	t.Helper()
	found, _ := filepath.Glob("/usr/lib/postgresql/*/bin/" + name)
	slices.SortFunc(found, func(a, b string) int {
		va, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(a))))
		vb, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(b))))
		return va - vb
	})
	if len(found) > 0 {
		return found[len(found)-1]
	}
	if path, err := exec.LookPath(name); err == nil {
		return path
	}
	t.Fatalf("the Postgres server program %s is not installed (deploy/services.sh installs PostgreSQL)", name)
	return ""
}

// asPostgres runs cmd as the postgres user when the test runs as root
// (Postgres refuses to run as root), in a directory that user owns.
func asPostgres(t testing.TB, cmd *exec.Cmd) *exec.Cmd {
	t.Helper()
	if os.Geteuid() != 0 {
		return cmd
	}
	uid, gid, home := postgresUser(t)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	cmd.Env = append(os.Environ(), "HOME="+home)
	return cmd
}

func postgresUser(t testing.TB) (uid, gid int, home string) {
	t.Helper()
	u, err := user.Lookup("postgres")
	if err != nil {
		t.Fatalf("running as root, Postgres needs a postgres user: %v", err)
	}
	uid, _ = strconv.Atoi(u.Uid)
	gid, _ = strconv.Atoi(u.Gid)
	return uid, gid, u.HomeDir
}

// PostgresDir makes a directory the Postgres programs may write, removed
// when the test ends (t.TempDir's parents are closed to other users).
func PostgresDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "orbt-test-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if os.Geteuid() == 0 {
		uid, gid, _ := postgresUser(t)
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// PostgresTool runs a Postgres program to its end (as the postgres user
// when the test runs as root), failing the test with its output.
func PostgresTool(t testing.TB, bin string, args ...string) []byte {
	t.Helper()
	out, err := asPostgres(t, exec.Command(PostgresBin(t, bin), args...)).Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("%s %v: %v\n%s", bin, args, err, stderr)
	}
	return out
}

// InitPostgres makes a new cluster with initdb (trusting loopback,
// replication included) and starts it.
func InitPostgres(t testing.TB, name string, settings ...string) *Postgres {
	t.Helper()
	dir := filepath.Join(PostgresDir(t), name)
	PostgresTool(t, "initdb", "-D", dir, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
	return StartPostgres(t, name, dir, settings...)
}

// StartPostgres runs the cluster in dir on a free loopback port; quick
// rather than durable (fsync off: the test's data is thrown away). Each
// setting is a "name=value" given to postgres -c. Restart brings it back
// on the same port and data.
func StartPostgres(t testing.TB, name, dir string, settings ...string) *Postgres {
	t.Helper()
	port := FreePort(t)
	args := []string{"-D", dir, "-p", strconv.Itoa(port), "-k", filepath.Dir(dir),
		"-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "full_page_writes=off",
		"-c", "shared_buffers=32MB", "-c", "max_connections=60"}
	for _, s := range settings {
		args = append(args, "-c", s)
	}
	bin := PostgresBin(t, "postgres")
	p := Start(t, name, func() *exec.Cmd { return asPostgres(t, exec.Command(bin, args...)) })
	p.Addr = fmt.Sprintf("127.0.0.1:%d", port)
	c := &Postgres{Process: p, Dir: dir, Port: port}
	c.WaitReady(t, 30*time.Second)
	return c
}

// WaitReady waits until the cluster accepts connections.
func (c *Postgres) WaitReady(t testing.TB, limit time.Duration) {
	t.Helper()
	WaitFor(t, c.Name+" accepts connections", limit, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		pool, err := pgxpool.New(ctx, c.URL("postgres"))
		if err != nil {
			return err
		}
		defer pool.Close()
		return pool.Ping(ctx)
	})
}

// URL is a connection URL of one of the cluster's databases.
func (c *Postgres) URL(database string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", c.Port, database)
}

// Pool opens a pool to a database of the cluster, closed with the test.
func (c *Postgres) Pool(t testing.TB, database string) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), c.URL(database))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// CreateDatabase makes a database in the cluster.
func (c *Postgres) CreateDatabase(t testing.TB, name string) {
	t.Helper()
	PostgresTool(t, "createdb", "-h", "127.0.0.1", "-p", strconv.Itoa(c.Port), "-U", "postgres", name)
}

// PrimaryAndReplica starts a primary cluster of the test's own (initdb)
// and a streaming replica of it made by pg_basebackup, as an operator
// would, both on loopback.
func PrimaryAndReplica(t testing.TB) (primary, replica *Postgres) {
	t.Helper()
	primary = InitPostgres(t, "primary")
	replicaDir := filepath.Join(filepath.Dir(primary.Dir), "replica")
	PostgresTool(t, "pg_basebackup", "-h", "127.0.0.1", "-p", strconv.Itoa(primary.Port), "-U", "postgres",
		"-D", replicaDir, "-R", "-X", "stream", "-c", "fast")
	replica = StartPostgres(t, "replica", replicaDir)
	return primary, replica
}
