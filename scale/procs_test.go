// Package scale_test runs Orbt on the engines it scales out on, as real
// processes on loopback: Redis behind three sentinels, a Redis Cluster, and
// a streaming Postgres replica.
package scale_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/orbt/orbt/testenv"
)

var db *testenv.Database

func TestMain(m *testing.M) { os.Exit(testenv.Main(m, "scale", &db)) }

// freePort is a loopback port nothing listens on (a moment ago).
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// process is a server the test started; kill ends it as a crash would.
type process struct {
	name string
	cmd  *exec.Cmd
	addr string
}

func (p *process) kill() {
	if p.cmd.ProcessState == nil {
		p.cmd.Process.Kill()
		p.cmd.Wait()
	}
}

// command runs a server binary, its output in a log file that the test's
// failure shows the end of; the server is killed when the test ends.
func command(t *testing.T, name, bin string, args ...string) *process {
	t.Helper()
	path, err := exec.LookPath(bin)
	if err != nil {
		t.Fatalf("%s is not installed (deploy/services.sh --with-test-tools installs what the tests need): %v", bin, err)
	}
	return start(t, name, exec.Command(path, args...))
}

// start starts cmd as command does.
func start(t *testing.T, name string, cmd *exec.Cmd) *process {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), name+".log")
	out, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	p := &process{name: name, cmd: cmd}
	t.Cleanup(func() {
		p.kill()
		out.Close()
		if t.Failed() {
			if b, err := os.ReadFile(logPath); err == nil {
				t.Logf("%s log (end):\n%s", name, tail(string(b), 2000))
			}
		}
	})
	return p
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// redisServer starts a redis-server on a free loopback port, keeping
// nothing on disk, with extra configuration lines.
func redisServer(t *testing.T, name string, extra ...string) *process {
	t.Helper()
	port := freePort(t)
	args := []string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", t.TempDir()}
	p := command(t, name, "redis-server", append(args, extra...)...)
	p.addr = fmt.Sprintf("127.0.0.1:%d", port)
	waitFor(t, name+" answers", 10*time.Second, func() error {
		c := redis.NewClient(&redis.Options{Addr: p.addr, MaxRetries: -1})
		defer c.Close()
		return c.Ping(context.Background()).Err()
	})
	return p
}

// sentinel starts a redis-sentinel (redis-server in sentinel mode: the
// same binary Debian's redis-sentinel runs) watching master as name, quick
// to call it down.
func sentinel(t *testing.T, name, masterName, master string) *process {
	t.Helper()
	port := freePort(t)
	host, masterPort, _ := strings.Cut(master, ":")
	dir := t.TempDir()
	conf := filepath.Join(dir, "sentinel.conf")
	text := fmt.Sprintf(`port %d
bind 127.0.0.1
dir %s
sentinel monitor %s %s %s 2
sentinel down-after-milliseconds %[3]s 1000
sentinel failover-timeout %[3]s 5000
sentinel parallel-syncs %[3]s 1
`, port, dir, masterName, host, masterPort)
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	p := command(t, name, "redis-server", conf, "--sentinel")
	p.addr = fmt.Sprintf("127.0.0.1:%d", port)
	return p
}

// waitFor polls check until it succeeds, failing the test after limit.
func waitFor(t *testing.T, what string, limit time.Duration, check func() error) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %s: %v", what, limit, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
