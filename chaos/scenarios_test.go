package chaos_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/orbt/orbt/client"
	"github.com/orbt/orbt/sweep"
	"github.com/orbt/orbt/testproc"
)

// batchItemsMax is the API's batch size (ORBT_BATCH_ITEMS_MAX's default).
const batchItemsMax = 10_000

// creditLoad sends n single credits from the partners, round robin, with
// seeded wallets and amounts, at the given concurrency and pace.
func creditLoad(ctx context.Context, s *system, tr *traffic, rng *rand.Rand, prefix string, partners []*partner, n, concurrency, rate int) {
	type plan struct {
		wallet int
		amount int64
	}
	plans := make([]plan, n)
	for i := range plans {
		plans[i] = plan{rng.IntN(1 << 20), 1 + rng.Int64N(100)}
	}
	tr.run(ctx, n, concurrency, rate, func(i int) {
		p := partners[i%len(partners)]
		tr.credit(ctx, s, p, fmt.Sprintf("%s-%d", prefix, i), p.wallets[plans[i].wallet%len(p.wallets)], plans[i].amount)
	})
}

// startLoad runs creditLoad in the background; the channel closes when
// it is done. The load draws from a stream of its own, split from rng
// here, so the scenario's own draws meanwhile stay seeded (and unraced).
func startLoad(ctx context.Context, s *system, tr *traffic, rng *rand.Rand, prefix string, partners []*partner, n, concurrency, rate int) <-chan struct{} {
	loadRng := rand.New(rand.NewPCG(rng.Uint64(), rng.Uint64()))
	done := make(chan struct{})
	go func() {
		defer close(done)
		creditLoad(ctx, s, tr, loadRng, prefix, partners, n, concurrency, rate)
	}()
	return done
}

// partners makes n funded partners subscribed at rcv, wallets each.
func partners(t *testing.T, ctx context.Context, s *system, tr *traffic, rcv *receiver, name string, n, wallets int, funds int64) []*partner {
	var ps []*partner
	for i := range n {
		ps = append(ps, newPartner(t, ctx, s, tr, fmt.Sprintf("%s-%d", name, i), rcv, funds, wallets))
	}
	return ps
}

// seconds formats a duration for a figure.
func seconds(d time.Duration) string { return fmt.Sprintf("%.1f s", d.Seconds()) }

// 1. A bulk payout while workers are killed with kill -9 at seeded moments
// of the run (fractions of its work: items applied, then events
// delivered) and restarted.
func TestBulkPayoutWhileWorkersAreKilled(t *testing.T) {
	rng := scenario(t)
	ctx := scenarioContext(t, 15*time.Minute)
	s := newSystem(t, systemOptions{apis: 1, workers: 2})
	rcv, tr := newReceiver(t), newTraffic()
	items := prof.bulkItems
	p := newPartner(t, ctx, s, tr, "bulk", rcv, int64(items)*100+10_000, min(2_000, items/10))
	moments := make([]float64, prof.workerKills)
	for i := range moments {
		// Within the first 85% of the work: a delivery a killed worker had
		// claimed waits out its claim (30 s) before another worker sends it,
		// so kills at the very end measure that wait over and over.
		moments[i] = 0.05 + 0.8*rng.Float64()
	}
	slices.Sort(moments)

	var setupDelivered int
	s.pool.QueryRow(ctx, `SELECT count(*) FROM webhook_deliveries WHERE status = 'succeeded'`).Scan(&setupDelivered)
	start := time.Now()
	var batches []string
	for b := 0; b*batchItemsMax < items; b++ {
		var chunk []map[string]any
		for i := b * batchItemsMax; i < min(items, (b+1)*batchItemsMax); i++ {
			ref, wallet, amount := fmt.Sprintf("bulk-%d", i), p.wallets[rng.IntN(len(p.wallets))], 1+rng.Int64N(100)
			chunk = append(chunk, map[string]any{"referenceId": ref, "type": "credit", "walletId": wallet, "amount": amount, "currency": "USD"})
			tr.expectCredit(p.id, ref, wallet, amount)
		}
		batches = append(batches, tr.batch(t, ctx, s, p, fmt.Sprintf("payout-%d", b), chunk))
	}
	// The work is each item applied and each event delivered.
	work := float64(2*items + len(batches))
	progress := func() float64 {
		var n int
		s.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM transactions WHERE batch_id = ANY($1) AND status <> 'pending')
			+ (SELECT count(*) FROM webhook_deliveries WHERE status = 'succeeded') - $2`, batches, setupDelivered).Scan(&n)
		return float64(n) / work
	}
	var kills []string
	for _, m := range moments {
		for progress() < m && ctx.Err() == nil {
			time.Sleep(10 * time.Millisecond)
		}
		var up []*orbtProcess
		for _, w := range s.workers {
			if w.Running() {
				up = append(up, w)
			}
		}
		if len(up) == 0 {
			s.checkProcesses()
			t.Fatal("no worker is running")
		}
		w := up[rng.IntN(len(up))]
		w.Kill()
		kills = append(kills, fmt.Sprintf("%.0f%%", 100*progress()))
		t.Logf("%s killed at %s of the work, %s after the first POST", w.Name, kills[len(kills)-1], seconds(time.Since(start)))
		time.Sleep(time.Duration(50+rng.IntN(450)) * time.Millisecond)
		w.Restart(t)
	}
	api := client.New(s.liveAPI(0).base, p.key, 4)
	for _, b := range batches {
		awaitBatch(t, ctx, api, b)
	}
	applied := time.Since(start)
	for _, w := range s.workers {
		s.waitUp(w)
	}
	drained := time.Since(start) + s.audit(t, ctx, tr, rcv, []*partner{p})
	figure(t, "%d-item payout in %d batches, 2 workers, %d kill -9s at %v of the work: every batch completed %s after the first POST, "+
		"every event delivered (drained) %s after it; audit passed", items, len(batches), len(kills), kills, seconds(applied), seconds(drained))
}

// 2. Redis loses everything twice under load: FLUSHALL at 25% of the
// credits, SHUTDOWN NOSAVE and a restart (empty) at 60%.
func TestRedisFlushedAndRestartedEmpty(t *testing.T) {
	rng := scenario(t)
	ctx := scenarioContext(t, 10*time.Minute)
	s := newSystem(t, systemOptions{apis: 2, workers: 2})
	rcv, tr := newReceiver(t), newTraffic()
	ps := partners(t, ctx, s, tr, rcv, "redis", 4, 50, int64(prof.credits)*100)
	n := prof.credits
	done := startLoad(ctx, s, tr, rng, "r", ps, n, 32, 0)
	rc := s.redisClient()
	tr.awaitDone(ctx, n/4)
	if err := rc.FlushAll(ctx).Err(); err != nil {
		t.Fatalf("FLUSHALL: %v", err)
	}
	tr.awaitDone(ctx, n*6/10)
	rc.ShutdownNoSave(ctx) // answers with the connection closing
	if err := s.redis.WaitExit(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	down := time.Duration(500+rng.IntN(1500)) * time.Millisecond
	time.Sleep(down)
	s.redis.Restart(t)
	testproc.WaitRedis(t, s.redis)
	<-done
	quiet := s.audit(t, ctx, tr, rcv, ps)
	figure(t, "%d credits from 4 partners at 32 clients on 2 api + 2 workers; FLUSHALL at 25%%, SHUTDOWN NOSAVE at 60%% and Redis back empty %s later: "+
		"answers %s; every 202 final %s after the last, zero duplicates; audit passed", n, seconds(down), tr.answers(), seconds(quiet))
}

// 3. Redis down for a long outage while credits keep coming: the API
// answers 202 (Postgres holds them) or 503, never a 500, and everything
// is applied once Redis is back.
func TestRedisDownDuringIngestion(t *testing.T) {
	rng := scenario(t)
	ctx := scenarioContext(t, 10*time.Minute)
	s := newSystem(t, systemOptions{apis: 2, workers: 2})
	hook, tr := newReceiver(t), newTraffic()
	ps := partners(t, ctx, s, tr, hook, "ingest", 2, 50, 10_000_000)
	lead := 3 * time.Second
	n := int((lead + prof.redisDown + 5*time.Second).Seconds() * float64(prof.rate))
	done := startLoad(ctx, s, tr, rng, "i", ps, n, 16, prof.rate)
	time.Sleep(lead)
	before := tr.done.Load()
	s.redisClient().ShutdownNoSave(ctx)
	if err := s.redis.WaitExit(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	time.Sleep(prof.redisDown)
	during := tr.done.Load() - before
	s.redis.Restart(t)
	testproc.WaitRedis(t, s.redis)
	back := time.Now()
	<-done
	s.audit(t, ctx, tr, hook, ps)
	tr.mu.Lock()
	for st := range tr.statuses {
		if st != 200 && st != 202 && st != 503 {
			t.Errorf("answered %d: only 202 (or 200 for a replay) or 503 may be", st)
		}
	}
	tr.mu.Unlock()
	figure(t, "%d credits at %d/s; Redis down %s (%d credits sent meanwhile): answers %s; all applied and delivered %s after Redis was back; audit passed",
		n, prof.rate, seconds(prof.redisDown), during, tr.answers(), seconds(time.Since(back)))
}

// 4. Postgres restarted under load, in fast and immediate mode: the API
// answers 503 with Retry-After meanwhile, nothing else 5xx, nothing half
// applied, and the service is back within 10 s of Postgres.
func TestPostgresRestartedUnderLoad(t *testing.T) {
	rng := scenario(t)
	ctx := scenarioContext(t, 10*time.Minute)
	s := newSystem(t, systemOptions{apis: 2, workers: 2})
	rcv, tr := newReceiver(t), newTraffic()
	ps := partners(t, ctx, s, tr, rcv, "pg", 2, 50, 10_000_000)
	loadCtx, stopLoad := context.WithCancel(ctx)
	done := startLoad(loadCtx, s, tr, rng, "pg", ps, 1_000_000, 16, prof.rate)
	// Each mode at least once, the rest seeded.
	modes := make([]bool, prof.postgresRestarts) // true: immediate
	for i := range modes {
		modes[i] = rng.IntN(2) == 1
	}
	first := rng.IntN(len(modes))
	modes[first], modes[(first+1)%len(modes)] = true, false
	var restarts []string
	var worst time.Duration
	for i, immediate := range modes {
		time.Sleep(time.Duration(2000+rng.IntN(2000)) * time.Millisecond)
		mode, sig := "fast", syscall.SIGINT // what pg_ctl stop -m fast sends
		if immediate {
			mode, sig = "immediate", syscall.SIGQUIT // pg_ctl stop -m immediate
		}
		if err := s.pg.Stop(sig, 30*time.Second); err != nil && !strings.Contains(err.Error(), "exit status") {
			t.Fatalf("stop Postgres (%s): %v", mode, err)
		}
		outage := time.Duration(500+rng.IntN(2500)) * time.Millisecond
		time.Sleep(outage)
		s.pg.Restart(t)
		s.pg.WaitReady(t, 60*time.Second)
		back := s.backAfter(t, ctx, tr, ps[0], fmt.Sprintf("probe-%d", i))
		worst = max(worst, back)
		restarts = append(restarts, fmt.Sprintf("%s (down %s, back %s)", mode, seconds(outage), seconds(back)))
		if back > backWithin {
			t.Errorf("restart %d (%s): a credit through every api was applied %s after Postgres was up; want within %s", i, mode, back, backWithin)
		}
	}
	stopLoad()
	<-done
	quiet := s.audit(t, ctx, tr, rcv, ps)
	figure(t, "credits at %d/s on 2 api + 2 workers, Postgres restarted %d times: %v; answers %s; worst back (a credit accepted and applied after Postgres was up) %s; quiet %s after the load; audit passed",
		prof.rate, len(restarts), restarts, tr.answers(), seconds(worst), seconds(quiet))
}

// backWithin is how soon after Postgres is back the service must be.
const backWithin = 10 * time.Second

// backAfter sends a credit through each api process (through the driver,
// so its answers are counted) as soon as Postgres answers, and returns how
// long until the last of them was applied.
func (s *system) backAfter(t *testing.T, ctx context.Context, tr *traffic, p *partner, ref string) time.Duration {
	t.Helper()
	up := time.Now()
	var wg sync.WaitGroup
	for i, api := range s.apis {
		wg.Go(func() {
			ref, wallet := fmt.Sprintf("%s-%d", ref, i), p.wallets[i%len(p.wallets)]
			tr.expectCredit(p.id, ref, wallet, 1)
			body, _ := json.Marshal(map[string]any{"referenceId": ref, "type": "credit", "walletId": wallet, "amount": 1, "currency": "USD"})
			for ctx.Err() == nil {
				res := tr.sendVia(ctx, func(int) *orbtProcess { return api }, p, "POST", "/v1/transactions", body,
					http.Header{"Prefer": {"wait=1"}}, ref)
				if res != nil && res.Status == http.StatusOK {
					return // final, and completed: the partner is funded far beyond the load
				}
				time.Sleep(50 * time.Millisecond) // 202: asked again, the replay answers once it is applied
			}
		})
	}
	wg.Wait()
	if ctx.Err() != nil {
		t.Fatalf("not back %s after Postgres was up", time.Since(up))
	}
	return time.Since(up)
}

// 5. A webhook receiver down, then slow (10 s answers), then up: every
// event delivered once, under the same webhook-id, signatures valid.
func TestWebhookReceiverDownThenSlow(t *testing.T) {
	rng := scenario(t)
	ctx := scenarioContext(t, 10*time.Minute)
	s := newSystem(t, systemOptions{apis: 1, workers: 2})
	rcv, tr := newReceiver(t), newTraffic()
	p := newPartner(t, ctx, s, tr, "hooks", rcv, 10_000_000, 100)
	rcv.setMode(receiverDown)
	n := prof.webhookCredits
	span := prof.receiverDown + prof.receiverSlow + 5*time.Second
	done := startLoad(ctx, s, tr, rng, "w", []*partner{p}, n, 8, int(float64(n)/span.Seconds()))
	time.Sleep(prof.receiverDown)
	rcv.setMode(receiverSlow)
	time.Sleep(prof.receiverSlow)
	rcv.setMode(receiverUp)
	up := time.Now()
	<-done
	s.audit(t, ctx, tr, rcv, []*partner{p})
	last := time.Since(up)
	events, doubled := rcv.counts()
	if doubled > 0 {
		t.Errorf("%d of %d events were answered 2xx more than once", doubled, events)
	}
	reached := rcv.reached()
	var attempts, maxAttempts int
	var slowestApply time.Duration
	s.pool.QueryRow(ctx, `SELECT COALESCE(sum(n), 0), COALESCE(max(n), 0) FROM (SELECT delivery_id, count(*) AS n FROM webhook_attempts GROUP BY 1) a`).Scan(&attempts, &maxAttempts)
	// A slow receiver holds webhook tasks, never the ledger's.
	s.pool.QueryRow(ctx, `SELECT COALESCE(max(completed_at - created_at), '0') FROM transactions WHERE reference_id LIKE 'w-%'`).Scan(&slowestApply)
	if slowestApply >= slowAnswer/2 {
		t.Errorf("a credit took %s to be applied while the receiver answered in %s: the ledger waited on webhook deliveries", slowestApply, slowAnswer)
	}
	figure(t, "%d credits while the receiver was down %s, then slow (10 s answers) %s, then up: %d events each delivered once under one webhook-id, "+
		"every signature valid (%d attempts, up to %d for one event; %d reached the receiver); the last delivered %s after the receiver was up; "+
		"slowest credit accepted→applied meanwhile %s; audit passed",
		n, seconds(prof.receiverDown), seconds(prof.receiverSlow), events, attempts, maxAttempts, reached, seconds(last), seconds(slowestApply))
}

// 6. Double spend: a wallet holding 1,000.00 takes 500 concurrent debits
// of 10.00 and 50 concurrent redemptions of 100.00: exactly 1,000.00 is
// applied, nothing is left and nothing held.
func TestDoubleSpend(t *testing.T) {
	rng := scenario(t)
	ctx := scenarioContext(t, 5*time.Minute)
	s := newSystem(t, systemOptions{apis: 2, workers: 2})
	rcv, tr := newReceiver(t), newTraffic()
	p := newPartner(t, ctx, s, tr, "spend", rcv, 1_000_000, 1)
	mustCall(t, ctx, s.admin(), "PUT", "/admin/v1/workspaces/"+p.id+"/brands", map[string]any{"brandIds": []string{"sandbox-coffee"}}, 200, nil)
	w := p.wallets[0]
	api := client.New(s.liveAPI(0).base, p.key, 4)
	res, err := api.Do(ctx, "POST", "/v1/transactions", map[string]any{"referenceId": "fill", "type": "credit", "walletId": w,
		"amount": 100_000 - 1, "currency": "USD"}, http.Header{"Prefer": {"wait=30"}}) // the wallet opened with 0.01
	if err != nil || res.Status != 200 {
		t.Fatalf("fill the wallet: %v %+v", err, res)
	}
	const debits, redemptions = 500, 50
	order := rng.Perm(debits + redemptions)
	tr.run(ctx, len(order), 64, 0, func(i int) {
		k := order[i]
		if k < debits {
			body := fmt.Sprintf(`{"referenceId":"d-%d","type":"debit","walletId":"%s","amount":1000,"currency":"USD"}`, k, w)
			tr.send(ctx, s, p, "POST", "/v1/transactions", []byte(body), nil, fmt.Sprintf("d-%d", k))
			return
		}
		body := fmt.Sprintf(`{"referenceId":"x-%d","walletId":"%s","brandId":"sandbox-coffee","amount":10000}`, k, w)
		tr.send(ctx, s, p, "POST", "/v1/redemptions", []byte(body), nil, fmt.Sprintf("x-%d", k))
	})
	s.audit(t, ctx, tr, rcv, []*partner{p})
	var debited, redeemed, debitsDone, redemptionsDone int64
	s.pool.QueryRow(ctx, `SELECT COALESCE(sum(amount), 0), count(*) FROM transactions WHERE wallet_id = $1 AND type = 'debit' AND status = 'completed'`, w).Scan(&debited, &debitsDone)
	s.pool.QueryRow(ctx, `SELECT COALESCE(sum(amount), 0), count(*) FROM redemptions WHERE wallet_id = $1 AND status = 'completed'`, w).Scan(&redeemed, &redemptionsDone)
	var otherFailures int
	s.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM transactions WHERE wallet_id = $1 AND status = 'failed' AND failure_reason <> 'insufficient_funds')
		+ (SELECT count(*) FROM redemptions WHERE wallet_id = $1 AND status = 'failed' AND failure_reason <> 'insufficient_funds')`, w).Scan(&otherFailures)
	if otherFailures > 0 {
		t.Errorf("%d debits or redemptions failed for another reason than insufficient_funds", otherFailures)
	}
	var wallet struct{ Balance, Held int64 }
	mustCall(t, ctx, api, "GET", "/v1/wallets/"+w, nil, 200, &wallet)
	if debited+redeemed != 100_000 || wallet.Balance != 0 || wallet.Held != 0 {
		t.Errorf("debited %d + redeemed %d, want 100000 in all; wallet %+v, want 0 and nothing held", debited, redeemed, wallet)
	}
	figure(t, "a wallet of 1,000.00; %d debits of 10.00 and %d redemptions of 100.00 at once through 2 api + 2 workers: %d debits and %d redemptions completed (%.2f in all), "+
		"the rest failed; balance 0, held 0; answers %s; audit passed", debits, redemptions, debitsDone, redemptionsDone, float64(debited+redeemed)/100, tr.answers())
}

// 7. The gift card provider fails 30% of calls and times out on 10%:
// every redemption ends completed (one card) or failed with its hold
// released.
func TestProviderFailingAndTimingOut(t *testing.T) {
	scenario(t)
	ctx := scenarioContext(t, 10*time.Minute)
	s := newSystem(t, systemOptions{apis: 1, workers: 2,
		env: []string{fmt.Sprintf("ORBT_SANDBOX_FAULTS=unavailable=0.3,timeout=0.1,seed=%d", seedBase)}})
	rcv, tr := newReceiver(t), newTraffic()
	n := prof.redemptions
	p := newPartner(t, ctx, s, tr, "cards", rcv, int64(n)*2_000+1_000_000, 0)
	mustCall(t, ctx, s.admin(), "PUT", "/admin/v1/workspaces/"+p.id+"/brands", map[string]any{"brandIds": []string{"sandbox-coffee"}}, 200, nil)
	// One wallet per 5 redemptions, each holding enough for all of them.
	var items []map[string]any
	for i := range (n + 4) / 5 {
		items = append(items, map[string]any{"referenceId": fmt.Sprintf("fill-%d", i), "type": "credit",
			"consumerExternalId": fmt.Sprintf("card-member-%d", i), "amount": 5 * 1_000, "currency": "USD"})
	}
	api := client.New(s.liveAPI(0).base, p.key, 4)
	b := tr.batch(t, ctx, s, p, "fill", items)
	awaitBatch(t, ctx, api, b)
	for _, txn := range listAll[struct{ WalletID string }](t, ctx, api, "/v1/batches/"+b+"/transactions?limit=500") {
		p.wallets = append(p.wallets, txn.WalletID)
	}
	start := time.Now()
	tr.run(ctx, n, 16, 0, func(i int) {
		body := fmt.Sprintf(`{"referenceId":"red-%d","walletId":"%s","brandId":"sandbox-coffee","amount":1000}`, i, p.wallets[i%len(p.wallets)])
		tr.send(ctx, s, p, "POST", "/v1/redemptions", []byte(body), nil, fmt.Sprintf("red-%d", i))
	})
	quiet := s.audit(t, ctx, tr, rcv, []*partner{p})
	final := time.Since(start)
	var completed, failed, calls int
	s.pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE status = 'completed'), count(*) FILTER (WHERE status = 'failed') FROM redemptions`).Scan(&completed, &failed)
	s.pool.QueryRow(ctx, `SELECT COALESCE(sum(provider_attempts), 0) FROM redemptions`).Scan(&calls)
	if completed+failed != n || completed == 0 {
		t.Errorf("%d completed and %d failed of %d", completed, failed, n)
	}
	figure(t, "%d redemptions, provider failing 30%% and timing out 10%% of %d calls (1 s timeout, 4 attempts): %d completed with one card each, %d failed with the hold released; all final %s after the first (quiet after %s); audit passed",
		n, calls, completed, failed, seconds(final), seconds(quiet))
}

// 8. Two api and two worker processes; one of each is killed mid-run and
// stays down: nothing lost, nothing applied twice.
func TestAPIAndWorkerKilledMidRun(t *testing.T) {
	rng := scenario(t)
	ctx := scenarioContext(t, 10*time.Minute)
	s := newSystem(t, systemOptions{apis: 2, workers: 2})
	rcv, tr := newReceiver(t), newTraffic()
	ps := partners(t, ctx, s, tr, rcv, "procs", 3, 50, int64(prof.credits)*100)
	n := prof.credits
	done := startLoad(ctx, s, tr, rng, "k", ps, n, 32, 0)
	at := 0.3 + 0.3*rng.Float64()
	tr.awaitDone(ctx, int(at*float64(n)))
	api, worker := s.apis[rng.IntN(2)], s.workers[rng.IntN(2)]
	api.Kill()
	worker.Kill()
	api.leftDown, worker.leftDown = true, true
	<-done
	quiet := s.audit(t, ctx, tr, rcv, ps)
	figure(t, "%d credits at 32 clients; %s and %s killed with kill -9 at %.0f%%: answers %s; every credit applied once, quiet %s after the last answer; audit passed",
		n, api.Name, worker.Name, 100*at, tr.answers(), seconds(quiet))
}

// 9. The security sweep (package sweep) against real processes: every
// route that takes an id refuses another workspace's key, consumer or
// member; every write refuses a read-only key or role; revoked,
// malformed and expired credentials are refused; no SSRF target is
// dialled; no secret is in a log line or in clear text in a pg_dump.
func TestSecuritySweep(t *testing.T) {
	scenario(t)
	ctx := scenarioContext(t, 10*time.Minute)
	// Private webhook addresses refused, as in production.
	s := newSystem(t, systemOptions{apis: 2, workers: 2, env: []string{"ORBT_WEBHOOK_ALLOW_PRIVATE=false"}})
	start := time.Now()
	sweep.Run(t, sweep.Target{BaseURL: s.apis[0].base, AdminToken: s.adminToken, DatabaseURL: s.pg.URL("orbt"), Logs: s.logs})
	swept := time.Since(start)
	s.audit(t, ctx, newTraffic(), nil, nil)
	if !t.Failed() {
		figure(t, "the security sweep against 2 api + 2 worker processes passed in %s (every route by surface, scopes and roles, bad credentials, SSRF spellings, secrets in logs and pg_dump); audit passed", seconds(swept))
	}
}
