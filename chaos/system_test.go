package chaos_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/orbt/orbt/client"
	"github.com/orbt/orbt/testproc"
)

// system is one Orbt deployment of a scenario's own: a Postgres cluster, a
// redis-server, and orbt api and worker processes of the binary under test.
type system struct {
	t          *testing.T
	pg         *testproc.Postgres
	redis      *testproc.Process
	env        []string
	adminToken string
	apis       []*orbtProcess
	workers    []*orbtProcess
	pool       *pgxpool.Pool // the test's own reads of the database
}

// orbtProcess is one orbt api or worker process.
type orbtProcess struct {
	*testproc.Process
	base string // http://addr of its listener (the ops listener of a worker)
	// leftDown marks a process a scenario killed and left down; the audit
	// requires every other one to be running.
	leftDown bool
}

type systemOptions struct {
	apis, workers int
	env           []string // settings of every orbt process, after the defaults
}

func newSystem(t *testing.T, o systemOptions) *system {
	t.Helper()
	s := &system{t: t}
	s.pg = testproc.InitPostgres(t, "postgres", "max_connections=200")
	s.pg.CreateDatabase(t, "orbt")
	s.redis = testproc.Redis(t, "redis", "--maxmemory-policy", "noeviction")
	s.adminToken = "adm_" + randomHex(16)
	dataKey := make([]byte, 32)
	rand.Read(dataKey)
	s.env = append([]string{
		"DATABASE_URL=" + s.pg.URL("orbt"),
		"REDIS_URL=redis://" + s.redis.Addr + "/0",
		"ORBT_ADMIN_TOKEN=" + s.adminToken,
		"ORBT_DATA_KEY=" + base64.StdEncoding.EncodeToString(dataKey),
		"ORBT_LOG_LEVEL=info",
		// Faults are over in seconds here, not hours: work Redis lost is
		// found again after 1 s, webhook retries come quickly.
		"ORBT_RELAY_AFTER=1s",
		"ORBT_WEBHOOK_RETRY_SCHEDULE=1s,2s,4s,8s,8s,8s,8s,8s,8s,8s",
		"ORBT_WEBHOOK_ALLOW_PRIVATE=true",
		"ORBT_PROVIDER_TIMEOUT=1s",
		"ORBT_PROVIDER_RETRY_DELAY=100ms",
		// The rate limiter is on (it fails open when Redis is down) with
		// budgets the load never reaches.
		"ORBT_RATE_LIMIT_READ=100000", "ORBT_RATE_LIMIT_WRITE=100000",
		"ORBT_DATABASE_MAX_CONNS=20",
	}, o.env...)
	migrate := exec.Command(orbtBin, "migrate", "up")
	migrate.Env = append(os.Environ(), s.env...)
	if out, err := migrate.CombinedOutput(); err != nil {
		t.Fatalf("orbt migrate: %v\n%s", err, out)
	}
	s.pool = s.pg.Pool(t, "orbt")
	for i := range max(1, o.apis) {
		s.apis = append(s.apis, s.start(fmt.Sprintf("api-%d", i), "api", "ORBT_HTTP_ADDR"))
	}
	for i := range o.workers {
		s.workers = append(s.workers, s.start(fmt.Sprintf("worker-%d", i), "worker", "ORBT_OPS_ADDR"))
	}
	return s
}

// start runs one orbt process listening where its addrVar says, and waits
// until it answers.
func (s *system) start(name, command, addrVar string) *orbtProcess {
	s.t.Helper()
	addr := fmt.Sprintf("127.0.0.1:%d", testproc.FreePort(s.t))
	env := append(append(os.Environ(), s.env...), addrVar+"="+addr)
	p := &orbtProcess{Process: testproc.Start(s.t, name, func() *exec.Cmd {
		cmd := exec.Command(orbtBin, command)
		cmd.Env = env
		return cmd
	}), base: "http://" + addr}
	p.Addr = addr
	s.waitUp(p)
	return p
}

// waitUp waits until the process answers /healthz.
func (s *system) waitUp(p *orbtProcess) {
	s.t.Helper()
	testproc.WaitFor(s.t, p.Name+" up", 30*time.Second, func() error {
		if !p.Running() {
			return fmt.Errorf("%s exited:\n%s", p.Name, testproc.Tail(string(p.Output()), 2000))
		}
		res, err := http.Get(p.base + "/healthz")
		if err != nil {
			return err
		}
		res.Body.Close()
		if res.StatusCode != 200 {
			return fmt.Errorf("status %d", res.StatusCode)
		}
		return nil
	})
}

// restart starts an exited orbt process again and waits until it answers.
func (s *system) restart(p *orbtProcess) {
	s.t.Helper()
	p.Restart(s.t)
	s.waitUp(p)
}

// admin is a client of the admin API through the first live api process.
func (s *system) admin() *client.Client { return client.New(s.liveAPI(0).base, s.adminToken, 4) }

// liveAPI is the i-th running api process, counting round the running
// ones, as a load balancer would pick one.
func (s *system) liveAPI(i int) *orbtProcess {
	var live []*orbtProcess
	for _, a := range s.apis {
		if a.Running() {
			live = append(live, a)
		}
	}
	if len(live) == 0 {
		return s.apis[0]
	}
	return live[i%len(live)]
}

// redisClient talks to the scenario's redis-server.
func (s *system) redisClient() *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: s.redis.Addr, MaxRetries: -1})
	s.t.Cleanup(func() { c.Close() })
	return c
}

// logs is everything every orbt process has written.
func (s *system) logs() []byte {
	var all []byte
	for _, p := range append(append([]*orbtProcess{}, s.apis...), s.workers...) {
		all = append(all, p.Output()...)
	}
	return all
}

// checkProcesses fails the test when an orbt process a scenario did not
// leave down has exited (a fault it should have ridden out ended it), or
// any wrote a panic or a Go runtime crash.
func (s *system) checkProcesses() {
	s.t.Helper()
	for _, p := range append(append([]*orbtProcess{}, s.apis...), s.workers...) {
		if !p.leftDown && !p.Running() {
			s.t.Errorf("%s exited:\n%s", p.Name, testproc.Tail(string(p.Output()), 2000))
		}
		out := string(p.Output())
		for _, bad := range []string{"panic", "fatal error:", "DATA RACE"} {
			if i := strings.Index(out, bad); i >= 0 {
				s.t.Errorf("%s wrote %q:\n%s", p.Name, bad, testproc.Tail(out[:min(len(out), i+2000)], 4000))
				break
			}
		}
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// scenarioContext is a scenario's context, bounded so a hung scenario fails rather
// than eating the suite's time.
func scenarioContext(t *testing.T, limit time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	t.Cleanup(cancel)
	return ctx
}
