package testproc

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis starts a redis-server on a free loopback port, keeping nothing on
// disk, with extra configuration lines. Restart brings it back on the
// same port, empty.
func Redis(t testing.TB, name string, extra ...string) *Process {
	t.Helper()
	port := FreePort(t)
	args := []string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", t.TempDir()}
	p := Command(t, name, "redis-server", append(args, extra...)...)
	p.Addr = fmt.Sprintf("127.0.0.1:%d", port)
	WaitRedis(t, p)
	return p
}

// WaitRedis waits until the Redis at p.Addr answers a PING.
func WaitRedis(t testing.TB, p *Process) {
	t.Helper()
	WaitFor(t, p.Name+" answers", 10*time.Second, func() error {
		c := redis.NewClient(&redis.Options{Addr: p.Addr, MaxRetries: -1})
		defer c.Close()
		return c.Ping(context.Background()).Err()
	})
}

// Sentinel starts a redis-sentinel (redis-server in sentinel mode: the
// same binary Debian's redis-sentinel runs) watching master as masterName,
// quick to call it down.
func Sentinel(t testing.TB, name, masterName, master string) *Process {
	t.Helper()
	port := FreePort(t)
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
	p := Command(t, name, "redis-server", conf, "--sentinel")
	p.Addr = fmt.Sprintf("127.0.0.1:%d", port)
	return p
}
