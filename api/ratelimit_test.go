package api_test

import (
	"fmt"
	"io"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/orbt/orbt/app"
	"github.com/orbt/orbt/server"
	"github.com/orbt/orbt/testenv"
	"github.com/orbt/orbt/teststack"
)

// Each API key has its own write and read budgets, counted in Redis: a key
// past its write budget gets a 429 problem that says when to retry and
// writes nothing, while its reads, and other keys, go on.
func TestRateLimitsPerKey(t *testing.T) {
	limited := teststack.Options{Settings: app.Settings{RateLimits: server.RateLimits{Read: 50, Write: 1}}}
	base := newServer(t, testenv.AsynqRedis(testenv.RedisOptions(redisDB)), limited)
	p := newPartner(t, base, 0)

	start := time.Now()
	var created, refused int
	var last response
	for i := range 5 {
		r := p.call("POST", "/v1/consumers", map[string]any{"externalId": fmt.Sprintf("rl-%d", i)})
		if r.header.Get("RateLimit-Limit") != "1" || r.header.Get("RateLimit-Reset") == "" || r.header.Get("RateLimit-Remaining") == "" {
			t.Fatalf("write %d: RateLimit headers %v", i, r.header)
		}
		switch r.status {
		case 201:
			created++
		case 429:
			refused++
			last = r
		default:
			t.Fatalf("write %d: %d %s", i, r.status, r.raw)
		}
	}
	// A burst of one a second: at most one more for each second the loop took.
	if allowed := 1 + int(time.Since(start).Seconds()) + 1; refused == 0 || created > allowed {
		t.Fatalf("created %d and refused %d of 5 writes at a budget of 1/s", created, refused)
	}
	if last.str("code") != "rate_limited" || last.header.Get("RateLimit-Remaining") != "0" {
		t.Errorf("refusal: %s %v", last.raw, last.header)
	}
	wait, err := strconv.Atoi(last.header.Get("Retry-After"))
	if err != nil || wait < 1 || wait > 2 {
		t.Errorf("Retry-After %q, want 1 or 2 seconds", last.header.Get("Retry-After"))
	}

	// Reads have their own budget, and the refused writes wrote nothing.
	list := expect(t, p.call("GET", "/v1/consumers", nil), 200)
	if got := len(list.body["data"].([]any)); got != created {
		t.Errorf("%d consumers listed after %d created", got, created)
	}
	if list.header.Get("RateLimit-Limit") != "50" {
		t.Errorf("read budget header %q, want 50", list.header.Get("RateLimit-Limit"))
	}

	// Another key of the same workspace spends its own budget.
	other := expect(t, call(t, base, "POST", "/admin/v1/workspaces", adminToken, map[string]any{"name": "other"}), 201)
	expect(t, call(t, base, "POST", "/v1/consumers", other.str("apiKey"), map[string]any{"externalId": "rl-other"}), 201)

	// After Retry-After the key writes again.
	time.Sleep(time.Duration(wait) * time.Second)
	expect(t, p.call("POST", "/v1/consumers", map[string]any{"externalId": "rl-after"}), 201)
}

// With Redis down the limiter lets requests through: a partner is not
// refused for Orbt's own outage, and writes are still accepted (202).
func TestRateLimitsRedisDown(t *testing.T) {
	getStack(t) // its relay applies what this API accepts
	down := asynq.RedisClientOpt{Addr: "127.0.0.1:1", DialTimeout: 100 * time.Millisecond}
	base := newServer(t, down, teststack.Options{Settings: app.Settings{RateLimits: server.RateLimits{Read: 1, Write: 1}}})
	p := newPartner(t, base, 1_000)
	w := p.wallet()
	for i := range 3 {
		r := expect(t, p.transact(fmt.Sprintf("rl-redis-down-%d", i), "credit", w, 10), 202)
		if r.header.Get("RateLimit-Limit") != "" {
			t.Errorf("RateLimit headers without Redis: %v", r.header)
		}
	}
}

// A Redis that takes connections and never answers (a partition, a stalled
// failover) costs a request the limiter's short budget, not the Redis
// client's read timeout (3 s), and the writes are still accepted.
func TestRateLimitsRedisHangs(t *testing.T) {
	getStack(t) // its relay applies what this API accepts
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go io.Copy(io.Discard, c) // reads every command, answers none
		}
	}()
	hung := asynq.RedisClientOpt{Addr: ln.Addr().String()}
	base := newServer(t, hung, teststack.Options{Settings: app.Settings{RateLimits: server.RateLimits{Read: 100, Write: 100}}})
	p := newPartner(t, base, 1_000)
	w := p.wallet()
	start := time.Now()
	expect(t, p.transact("rl-redis-hangs", "credit", w, 10), 202)
	// The limiter's 200 ms and the enqueuer's 500 ms, with room for a slow
	// machine; a client ignoring its context would take 3 s for each.
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("a credit took %s with Redis hanging", took)
	}
}
