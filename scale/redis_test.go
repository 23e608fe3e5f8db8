package scale_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/orbt/orbt/app"
	"github.com/orbt/orbt/config"
	"github.com/orbt/orbt/giftcard"
	"github.com/orbt/orbt/ledger"
	"github.com/orbt/orbt/loadtest"
	"github.com/orbt/orbt/server"
	"github.com/orbt/orbt/testproc"
	"github.com/orbt/orbt/teststack"
)

// checkLedger is the ledger's and the gift cards' invariant scan over the
// package's database.
func checkLedger(ctx context.Context) error {
	l := ledger.New(db.Pool, nil)
	return errors.Join(l.CheckInvariants(ctx), giftcard.NewStore(db.Pool, l, nil).CheckInvariants(ctx))
}

// Orbt on Redis behind three sentinels (REDIS_URL in its Sentinel form):
// the master is killed while credits stream in; the sentinels promote the
// replica, the API and the worker follow it, and every accepted credit is
// applied exactly once (the load test checks every balance and the
// ledger's invariants). Credits whose task died with the master, or was
// never replicated, are applied by the relay from Postgres.
func TestRedisSentinelFailoverLosesNothing(t *testing.T) {
	const masterName = "orbt"
	master := testproc.Redis(t, "master")
	replica := testproc.Redis(t, "replica", "--replicaof", "127.0.0.1", strings.TrimPrefix(master.Addr, "127.0.0.1:"))
	testproc.WaitFor(t, "replica in sync", 10*time.Second, func() error {
		info, err := redis.NewClient(&redis.Options{Addr: replica.Addr}).Info(context.Background(), "replication").Result()
		if err == nil && !strings.Contains(info, "master_link_status:up") {
			err = errors.New("link down")
		}
		return err
	})
	var sentinels []string
	for i := range 3 {
		sentinels = append(sentinels, testproc.Sentinel(t, fmt.Sprintf("sentinel-%d", i), masterName, master.Addr).Addr)
	}
	// Each sentinel sees the replica and the two others before the test
	// relies on them to agree.
	for _, addr := range sentinels {
		testproc.WaitFor(t, "sentinel "+addr+" ready", 20*time.Second, func() error {
			s := redis.NewSentinelClient(&redis.Options{Addr: addr})
			defer s.Close()
			ctx := context.Background()
			m, err := s.Master(ctx, masterName).Result()
			if err != nil {
				return err
			}
			if m["num-other-sentinels"] != "2" || m["num-slaves"] != "1" {
				return fmt.Errorf("sees %s other sentinels and %s replicas", m["num-other-sentinels"], m["num-slaves"])
			}
			return s.CkQuorum(ctx, masterName).Err()
		})
	}

	redisOpt, err := config.ParseRedisURL("redis-sentinel://" + strings.Join(sentinels, ",") + "?master=" + masterName)
	if err != nil {
		t.Fatal(err)
	}
	stack := teststack.Start(t, db.Pool, -1, teststack.Options{Redis: redisOpt})

	// 1,200 credits at 150 a second: the master dies 2 s in, and the run
	// goes on for seconds after the failover.
	type result struct {
		report loadtest.Report
		err    error
	}
	done := make(chan result, 1)
	go func() {
		r, err := loadtest.Run(context.Background(), loadtest.Options{API: stack.URL, AdminToken: teststack.AdminToken,
			Scenario: loadtest.ScenarioHot, Count: 1200, Concurrency: 8, Rate: 150, Wallets: 100,
			Timeout: 90 * time.Second, CheckLedger: checkLedger})
		done <- result{r, err}
	}()
	time.Sleep(2 * time.Second)
	master.Kill()
	killedAt := time.Now()

	// The sentinels promote the replica.
	s := redis.NewSentinelClient(&redis.Options{Addr: sentinels[0]})
	defer s.Close()
	testproc.WaitFor(t, "failover to the replica", 30*time.Second, func() error {
		addr, err := s.GetMasterAddrByName(context.Background(), masterName).Result()
		if err == nil && strings.Join(addr, ":") != replica.Addr {
			err = fmt.Errorf("master is %v", addr)
		}
		return err
	})
	t.Logf("failover done %s after the kill", time.Since(killedAt).Round(10*time.Millisecond))
	processedAtFailover := processed(t, replica.Addr)

	res := <-done
	if res.err != nil {
		t.Fatalf("load test across the failover: %v", res.err)
	}
	if r := res.report; r.Completed != 1200 || r.Errors != 0 {
		t.Fatalf("report %+v: want 1200 completed and no errors", r)
	}
	// The queue itself came back: the worker took tasks from the promoted
	// replica through the sentinels, not only the relay from Postgres.
	if after := processed(t, replica.Addr); after <= processedAtFailover {
		t.Errorf("tasks processed on the promoted replica: %d at the failover, %d after the run", processedAtFailover, after)
	}
}

// processed is how many tasks asynq counts as processed, over its queues,
// on the Redis at addr.
func processed(t *testing.T, addr string) int {
	t.Helper()
	insp := asynq.NewInspector(asynq.RedisClientOpt{Addr: addr})
	defer insp.Close()
	queues, err := insp.Queues()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, q := range queues {
		info, err := insp.GetQueueInfo(q)
		if err != nil {
			t.Fatal(err)
		}
		n += info.ProcessedTotal
	}
	return n
}

// Orbt on a three-node Redis Cluster (REDIS_URL in its Cluster form):
// asynq's queues, the rate limits and the console's counters all work
// across its slots, and credits are applied once each.
func TestRedisCluster(t *testing.T) {
	var nodes []string
	for i := range 3 {
		n := testproc.Redis(t, fmt.Sprintf("node-%d", i), "--cluster-enabled", "yes", "--cluster-node-timeout", "2000")
		nodes = append(nodes, n.Addr)
	}
	create := testproc.Command(t, "cluster-create", "redis-cli", append([]string{"--cluster", "create"},
		append(nodes, "--cluster-replicas", "0", "--cluster-yes")...)...)
	if err := create.Wait(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v", err)
	}
	for _, addr := range nodes {
		testproc.WaitFor(t, "cluster ok at "+addr, 20*time.Second, func() error {
			info, err := redis.NewClient(&redis.Options{Addr: addr}).ClusterInfo(context.Background()).Result()
			if err == nil && !strings.Contains(info, "cluster_state:ok") {
				err = errors.New("cluster state not ok")
			}
			return err
		})
	}
	redisOpt, err := config.ParseRedisURL("redis-cluster://" + strings.Join(nodes, ","))
	if err != nil {
		t.Fatal(err)
	}
	stack := teststack.Start(t, db.Pool, -1, teststack.Options{Redis: redisOpt,
		Settings: app.Settings{RateLimits: server.RateLimits{Read: 10_000, Write: 10_000}}})
	r, err := loadtest.Run(context.Background(), loadtest.Options{API: stack.URL, AdminToken: teststack.AdminToken,
		Scenario: loadtest.ScenarioSpread, Partners: 3, Count: 300, Concurrency: 8, Wallets: 20,
		Timeout: time.Minute, CheckLedger: checkLedger})
	if err != nil {
		t.Fatal(err)
	}
	if r.Completed != 300 || r.Errors != 0 {
		t.Fatalf("report %+v", r)
	}
	// Answers carried the rate limit, which was counted in the cluster.
	res, err := stack.Admin.Do(context.Background(), "POST", "/admin/v1/workspaces", map[string]any{"name": "rl"}, nil)
	if err != nil || res.Status != 201 {
		t.Fatalf("create workspace: %v %+v", err, res)
	}
	var ws struct{ APIKey string }
	res.Decode(&ws)
	res, err = stack.Client(ws.APIKey).Do(context.Background(), "GET", "/v1/workspace", nil, nil)
	if err != nil || res.Status != 200 || !strings.HasPrefix(res.Header.Get("RateLimit-Remaining"), "999") {
		t.Fatalf("a read on the cluster: %v %d %v", err, res.Status, res.Header)
	}
}
