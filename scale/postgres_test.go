package scale_test

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

// postgresCluster is a Postgres cluster of the test's own on a loopback
// port, with its data directory.
type postgresCluster struct {
	*process
	dir  string
	port int
}

// pgBin finds a Postgres server program: Debian keeps them in
// /usr/lib/postgresql/VERSION/bin, off the PATH (the newest is taken).
func pgBin(t *testing.T, name string) string {
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
func asPostgres(t *testing.T, cmd *exec.Cmd) *exec.Cmd {
	t.Helper()
	if os.Geteuid() != 0 {
		return cmd
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		t.Fatalf("running as root, Postgres needs a postgres user: %v", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	cmd.Env = append(os.Environ(), "HOME="+u.HomeDir)
	return cmd
}

// postgresDir makes a directory the Postgres programs may write, removed
// when the test ends (t.TempDir's parents are closed to other users).
func postgresDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "orbt-scale-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatal(err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// runTool runs a Postgres tool to its end, failing the test with its output.
func runTool(t *testing.T, bin string, args ...string) {
	t.Helper()
	out, err := asPostgres(t, exec.Command(pgBin(t, bin), args...)).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", bin, args, err, out)
	}
}

// startPostgres runs the cluster in dir on a free loopback port; quick
// rather than durable (fsync off: the test's data is thrown away).
func startPostgres(t *testing.T, name, dir string) *postgresCluster {
	t.Helper()
	port := freePort(t)
	cmd := asPostgres(t, exec.Command(pgBin(t, "postgres"), "-D", dir, "-p", strconv.Itoa(port), "-k", filepath.Dir(dir),
		"-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "full_page_writes=off",
		"-c", "shared_buffers=32MB", "-c", "max_connections=60"))
	c := &postgresCluster{process: start(t, name, cmd), dir: dir, port: port}
	waitFor(t, name+" accepts connections", 30*time.Second, func() error {
		pool, err := pgxpool.New(context.Background(), c.url("postgres"))
		if err != nil {
			return err
		}
		defer pool.Close()
		return pool.Ping(context.Background())
	})
	return c
}

func (c *postgresCluster) url(database string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", c.port, database)
}

// pool opens a pool to a database of the cluster, closed with the test.
func (c *postgresCluster) pool(t *testing.T, database string) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), c.url(database))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// primaryAndReplica starts a primary cluster of the test's own (initdb)
// and a streaming replica of it made by pg_basebackup, as an operator
// would, both on loopback.
func primaryAndReplica(t *testing.T) (primary, replica *postgresCluster) {
	t.Helper()
	base := postgresDir(t)
	primaryDir, replicaDir := filepath.Join(base, "primary"), filepath.Join(base, "replica")
	// initdb's pg_hba trusts loopback, replication included.
	runTool(t, "initdb", "-D", primaryDir, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
	primary = startPostgres(t, "primary", primaryDir)
	runTool(t, "pg_basebackup", "-h", "127.0.0.1", "-p", strconv.Itoa(primary.port), "-U", "postgres",
		"-D", replicaDir, "-R", "-X", "stream", "-c", "fast")
	replica = startPostgres(t, "replica", replicaDir)
	return primary, replica
}
