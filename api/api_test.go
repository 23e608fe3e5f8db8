package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/orbt/orbt/client"
	"github.com/orbt/orbt/ledger"
	"github.com/orbt/orbt/store"
	"github.com/orbt/orbt/testenv"
	"github.com/orbt/orbt/teststack"
)

// redisDB is this package's Redis database index (see the Makefile).
const redisDB = 1

const adminToken = teststack.AdminToken

var (
	db    *testenv.Database
	stack *teststack.Stack
)

func TestMain(m *testing.M) {
	os.Exit(testenv.Main(m, "api", &db, func() int {
		// Every response the package's tests drew from the shared stack
		// must match the OpenAPI document.
		if stack == nil {
			return 0
		}
		violations := stack.SpecViolations()
		for _, v := range violations {
			fmt.Fprintln(os.Stderr, "a response does not match openapi.yaml:", v)
		}
		return len(violations)
	}))
}

// getStack starts the package's shared stack (API and worker) once.
func getStack(t *testing.T) *teststack.Stack {
	t.Helper()
	if stack != nil {
		return stack
	}
	// The shared stack lives for the whole package run; TestMain drops the DB.
	s, err := teststack.New(db.Pool, testenv.AsynqRedis(testenv.Redis(t, redisDB)), teststack.Options{})
	if err != nil {
		t.Fatal(err)
	}
	stack = s
	return stack
}

// newServer starts an API alone (no worker) over the package database,
// enqueueing into the given Redis, and returns its URL.
func newServer(t *testing.T, redis asynq.RedisClientOpt, o teststack.Options) string {
	t.Helper()
	o.NoWorker = true
	s, err := teststack.New(db.Pool, redis, o)
	if err != nil {
		t.Fatal(err)
	}
	s.StopWithTest(t)
	return s.URL
}

// response is a decoded HTTP answer.
type response struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func (r response) str(key string) string {
	s, _ := r.body[key].(string)
	return s
}

func (r response) num(key string) int64 {
	f, _ := r.body[key].(float64)
	return int64(f)
}

// call sends a request; body may be a string (sent as is) or a value (sent as JSON).
func call(t *testing.T, base, method, path, key string, body any) response {
	t.Helper()
	return callWith(t, base, method, path, key, body, nil)
}

// callWith is call with the request's headers given (Content-Type among them).
func callWith(t *testing.T, base, method, path, key string, body any, header http.Header) response {
	t.Helper()
	res, err := client.New(base, key, 1).Do(context.Background(), method, path, body, header)
	if err != nil {
		t.Fatal(err)
	}
	r := response{status: res.Status, header: res.Header, raw: string(res.Body)}
	json.Unmarshal(res.Body, &r.body)
	if res.Header.Get("X-Request-Id") == "" {
		t.Errorf("%s %s: no X-Request-Id", method, path)
	}
	if res.Status >= 400 && res.Header.Get("Content-Type") != "application/problem+json" {
		t.Errorf("%s %s: %d with Content-Type %q, want a problem response", method, path, res.Status, res.Header.Get("Content-Type"))
	}
	return r
}

func expect(t *testing.T, r response, status int) response {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.raw)
	}
	return r
}

// partner is one workspace seen through its API key.
type partner struct {
	t    *testing.T
	base string
	id   string
	key  string
}

func newPartner(t *testing.T, base string, funding int64) *partner {
	t.Helper()
	r := expect(t, call(t, base, "POST", "/admin/v1/workspaces", adminToken, map[string]any{"name": "acme"}), 201)
	p := &partner{t: t, base: base, id: r.str("id"), key: r.str("apiKey")}
	if funding > 0 {
		p.fund(store.NewID("fund"), funding)
	}
	return p
}

// fund credits the partner balance and waits until it is applied.
func (p *partner) fund(ref string, amount int64) response {
	p.t.Helper()
	r := expect(p.t, call(p.t, p.base, "POST", "/admin/v1/workspaces/"+p.id+"/fundings", adminToken,
		map[string]any{"referenceId": ref, "currency": "USD", "amount": amount}), 202)
	if got := p.await(r.str("id")); got.str("status") != "completed" {
		p.t.Fatalf("funding: %s", got.raw)
	}
	return r
}

func (p *partner) call(method, path string, body any) response {
	p.t.Helper()
	return call(p.t, p.base, method, path, p.key, body)
}

// wallet creates a consumer and a standard USD wallet and returns the wallet id.
func (p *partner) wallet() string {
	p.t.Helper()
	c := expect(p.t, p.call("POST", "/v1/consumers", map[string]any{"externalId": store.NewID("user")}), 201)
	w := expect(p.t, p.call("POST", "/v1/consumers/"+c.str("id")+"/wallets", map[string]any{"currency": "USD", "type": "standard"}), 201)
	return w.str("id")
}

func (p *partner) transact(ref, typ, walletID string, amount int64) response {
	p.t.Helper()
	return p.call("POST", "/v1/transactions", map[string]any{
		"referenceId": ref, "type": typ, "walletId": walletID, "amount": amount, "currency": "USD"})
}

// await polls a transaction until it leaves pending.
func (p *partner) await(id string) response {
	p.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		r := expect(p.t, p.call("GET", "/v1/transactions/"+id, nil), 200)
		if r.str("status") != "pending" {
			return r
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("transaction %s still pending", id)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (p *partner) balance(walletID string) int64 {
	p.t.Helper()
	return expect(p.t, p.call("GET", "/v1/wallets/"+walletID, nil), 200).num("balance")
}

func (p *partner) partnerBalance() int64 {
	p.t.Helper()
	r := expect(p.t, p.call("GET", "/v1/workspace", nil), 200)
	for _, b := range r.body["balances"].([]any) {
		m := b.(map[string]any)
		if m["currency"] == "USD" {
			return int64(m["available"].(float64))
		}
	}
	return 0
}

// events lists the partner's events of one type (they are written in the
// same commit as the outcomes they report).
func (p *partner) events(eventType string) []any {
	p.t.Helper()
	r := expect(p.t, p.call("GET", "/v1/events?type="+eventType, nil), 200)
	return r.body["data"].([]any)
}

func assertInvariants(t *testing.T) {
	t.Helper()
	if err := ledger.New(db.Pool, nil).CheckInvariants(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestPartnerCreditsAndDebitsEndToEnd(t *testing.T) {
	s := getStack(t)
	p := newPartner(t, s.URL, 10_000)
	w := p.wallet()

	credit := expect(t, p.transact("order-1", "credit", w, 2_500), 202)
	if credit.str("status") != "pending" || !strings.HasPrefix(credit.str("id"), "txn_") {
		t.Fatalf("credit accepted as %s", credit.raw)
	}
	if got := p.await(credit.str("id")); got.str("status") != "completed" {
		t.Fatalf("credit: %s", got.raw)
	}
	debit := expect(t, p.transact("order-2", "debit", w, 1_000), 202)
	if got := p.await(debit.str("id")); got.str("status") != "completed" {
		t.Fatalf("debit: %s", got.raw)
	}
	over := expect(t, p.transact("order-3", "debit", w, 1_501), 202)
	if got := p.await(over.str("id")); got.str("status") != "failed" || got.str("failureReason") != "insufficient_funds" {
		t.Fatalf("overdraft: %s", got.raw)
	}
	tooMuch := expect(t, p.transact("order-4", "credit", w, 8_501), 202)
	if got := p.await(tooMuch.str("id")); got.str("failureReason") != "insufficient_partner_funds" {
		t.Fatalf("credit past partner balance: %s", got.raw)
	}
	if b := p.balance(w); b != 1_500 {
		t.Errorf("wallet balance %d, want 1500", b)
	}
	if b := p.partnerBalance(); b != 8_500 {
		t.Errorf("partner balance %d, want 8500", b)
	}

	// The statement shows each entry with the balance it left.
	st := expect(t, p.call("GET", "/v1/wallets/"+w+"/transactions", nil), 200)
	lines := st.body["data"].([]any)
	if len(lines) != 2 || lines[0].(map[string]any)["balanceAfter"].(float64) != 1_500 {
		t.Errorf("statement: %s", st.raw)
	}
	// Lists filter and paginate.
	failed := expect(t, p.call("GET", "/v1/transactions?status=failed&walletId="+w, nil), 200)
	if n := len(failed.body["data"].([]any)); n != 2 {
		t.Errorf("%d failed transactions listed, want 2", n)
	}
	first := expect(t, p.call("GET", "/v1/transactions?limit=3", nil), 200)
	if len(first.body["data"].([]any)) != 3 || first.body["nextCursor"] == nil {
		t.Fatalf("first page: %s", first.raw)
	}
	rest := expect(t, p.call("GET", "/v1/transactions?limit=3&cursor="+first.body["nextCursor"].(string), nil), 200)
	if len(rest.body["data"].([]any)) != 2 || rest.body["nextCursor"] != nil { // 4 transactions and the funding
		t.Errorf("second page: %s", rest.raw)
	}
	if events := p.events("transaction.failed"); len(events) != 2 {
		t.Errorf("%d transaction.failed events, want 2", len(events))
	}
	assertInvariants(t)
}

func TestCampaignWalletsRespectBudgetAndStatus(t *testing.T) {
	s := getStack(t)
	p := newPartner(t, s.URL, 10_000)
	cmp := expect(t, p.call("POST", "/v1/campaigns", map[string]any{"name": "Spring", "currency": "USD", "budget": 1_000}), 201)
	c := expect(t, p.call("POST", "/v1/consumers", map[string]any{"externalId": "u-1"}), 201)
	w := expect(t, p.call("POST", "/v1/consumers/"+c.str("id")+"/wallets",
		map[string]any{"currency": "USD", "type": "campaign", "campaignId": cmp.str("id")}), 201).str("id")
	expect(t, p.call("POST", "/v1/consumers/"+c.str("id")+"/wallets",
		map[string]any{"currency": "USD", "type": "campaign", "campaignId": cmp.str("id")}), 409)

	ok := expect(t, p.transact("c-1", "credit", w, 800), 202)
	if got := p.await(ok.str("id")); got.str("status") != "completed" {
		t.Fatalf("within budget: %s", got.raw)
	}
	over := expect(t, p.transact("c-2", "credit", w, 201), 202)
	if got := p.await(over.str("id")); got.str("failureReason") != "campaign_budget_exceeded" {
		t.Fatalf("over budget: %s", got.raw)
	}
	expect(t, p.call("PATCH", "/v1/campaigns/"+cmp.str("id"), map[string]any{"status": "paused"}), 200)
	paused := expect(t, p.transact("c-3", "credit", w, 1), 202)
	if got := p.await(paused.str("id")); got.str("failureReason") != "campaign_inactive" {
		t.Fatalf("paused campaign: %s", got.raw)
	}
	got := expect(t, p.call("GET", "/v1/campaigns/"+cmp.str("id"), nil), 200)
	if got.num("credited") != 800 || got.num("remaining") != 200 || got.str("status") != "paused" {
		t.Errorf("campaign: %s", got.raw)
	}
	r := expect(t, p.call("PATCH", "/v1/campaigns/"+cmp.str("id"), map[string]any{"budget": 500}), 422)
	if r.str("code") != "budget_below_used" {
		t.Errorf("lowering the budget below use: %s", r.raw)
	}
}

func TestConcurrentDuplicatesPayOnce(t *testing.T) {
	s := getStack(t)
	p := newPartner(t, s.URL, 10_000)
	w := p.wallet()
	const clients = 32
	results := make(chan response, clients)
	for range clients {
		go func() { results <- p.transact("dup-1", "credit", w, 700) }()
	}
	ids := map[string]bool{}
	replayed := 0
	for range clients {
		r := <-results
		if r.status != 202 {
			t.Fatalf("duplicate: %d %s", r.status, r.raw)
		}
		ids[r.str("id")] = true
		if r.header.Get("Idempotent-Replayed") == "true" {
			replayed++
		}
	}
	if len(ids) != 1 || replayed != clients-1 {
		t.Fatalf("%d distinct transactions, %d replays; want 1 and %d", len(ids), replayed, clients-1)
	}
	for id := range ids {
		p.await(id)
	}
	if b := p.balance(w); b != 700 {
		t.Errorf("balance %d after 32 identical requests, want 700", b)
	}
	// A replay after completion answers the original with its current status.
	again := expect(t, p.transact("dup-1", "credit", w, 700), 202)
	if again.str("status") != "completed" || again.header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("late replay: %s", again.raw)
	}
	// The same referenceId with another payload is refused and moves nothing.
	conflict := expect(t, p.transact("dup-1", "credit", w, 701), 422)
	if conflict.str("code") != "idempotency_conflict" || !strings.Contains(conflict.raw, `"field":"amount"`) {
		t.Errorf("conflict: %s", conflict.raw)
	}
	other := p.wallet()
	conflict = expect(t, p.transact("dup-1", "debit", other, 700), 422)
	if !strings.Contains(conflict.raw, `"field":"type"`) || !strings.Contains(conflict.raw, `"field":"walletId"`) {
		t.Errorf("conflict fields: %s", conflict.raw)
	}
	time.Sleep(100 * time.Millisecond)
	if b := p.balance(w); b != 700 {
		t.Errorf("balance %d after conflicting reuse, want 700", b)
	}
	assertInvariants(t)
}

func TestKeysScopesAndRevocation(t *testing.T) {
	s := getStack(t)
	p := newPartner(t, s.URL, 1_000)
	w := p.wallet()
	rk := expect(t, p.call("POST", "/v1/api-keys", map[string]any{"name": "dashboard", "scope": "read"}), 201)
	readKey := rk.str("key")
	if !strings.HasPrefix(readKey, rk.str("prefix")) || rk.str("scope") != "read" {
		t.Fatalf("read key: %s", rk.raw)
	}
	reader := &partner{t: t, base: s.URL, id: p.id, key: readKey}
	expect(t, reader.call("GET", "/v1/wallets/"+w, nil), 200)
	r := expect(t, reader.transact("ro-1", "credit", w, 1), 403)
	if r.str("code") != "insufficient_scope" {
		t.Errorf("read key write: %s", r.raw)
	}
	expect(t, reader.call("POST", "/v1/consumers", map[string]any{"externalId": "x"}), 403)

	list := expect(t, p.call("GET", "/v1/api-keys", nil), 200)
	if strings.Contains(list.raw, readKey) || !strings.Contains(list.raw, rk.str("prefix")) {
		t.Errorf("key list shows secrets or hides prefixes: %s", list.raw)
	}
	if !strings.Contains(list.raw, `"lastUsedAt":"`) {
		t.Errorf("lastUsedAt not recorded: %s", list.raw)
	}
	expect(t, p.call("DELETE", "/v1/api-keys/"+rk.str("id"), nil), 204)
	expect(t, reader.call("GET", "/v1/wallets/"+w, nil), 401)
	expect(t, call(t, s.URL, "GET", "/v1/workspace", "", nil), 401)
	expect(t, call(t, s.URL, "GET", "/v1/workspace", "orbt_sk_nonsense", nil), 401)
	expect(t, call(t, s.URL, "POST", "/admin/v1/workspaces", p.key, map[string]any{"name": "x"}), 401)
	if n := p.balance(w); n != 0 {
		t.Errorf("balance %d, want 0", n)
	}
}

func TestWorkspacesAreIsolated(t *testing.T) {
	s := getStack(t)
	a := newPartner(t, s.URL, 1_000)
	b := newPartner(t, s.URL, 1_000)
	w := a.wallet()
	txn := expect(t, a.transact("iso-1", "credit", w, 10), 202)
	a.await(txn.str("id"))
	consumers := expect(t, a.call("GET", "/v1/consumers", nil), 200)
	consumerID := consumers.body["data"].([]any)[0].(map[string]any)["id"].(string)

	for _, path := range []string{"/v1/wallets/" + w, "/v1/wallets/" + w + "/transactions", "/v1/transactions/" + txn.str("id"),
		"/v1/consumers/" + consumerID, "/v1/consumers/" + consumerID + "/wallets", "/v1/wallets/wal_never_existed"} {
		r := expect(t, b.call("GET", path, nil), 404)
		if r.body["errors"] != nil && strings.Contains(r.raw, a.id) {
			t.Errorf("%s leaks the other workspace: %s", path, r.raw)
		}
	}
	// Paying into another workspace's wallet is the same 404 as a wallet that never existed.
	theirs := expect(t, b.transact("iso-2", "credit", w, 10), 404)
	never := expect(t, b.transact("iso-3", "credit", "wal_never_existed", 10), 404)
	if theirs.str("code") != never.str("code") || theirs.str("code") != "wallet_not_found" {
		t.Errorf("other workspace's wallet %s, unknown wallet %s", theirs.raw, never.raw)
	}
	expect(t, b.call("POST", "/v1/consumers/"+consumerID+"/wallets", map[string]any{"currency": "USD", "type": "standard"}), 404)
	if list := expect(t, b.call("GET", "/v1/transactions", nil), 200); strings.Contains(list.raw, txn.str("id")) {
		t.Errorf("other workspace's transaction listed")
	}
	if bal := a.balance(w); bal != 10 {
		t.Errorf("balance %d, want 10", bal)
	}
}

// A transaction whose task never reached Redis is applied by the relay.
func TestRelayAppliesTransactionsRedisLost(t *testing.T) {
	getStack(t) // the shared worker runs the relay every half second
	// An API whose queue is a Redis database no worker reads.
	lost := testenv.AsynqRedis(testenv.Redis(t, redisDB+10))
	base := newServer(t, lost, teststack.Options{})
	p := newPartner(t, base, 1_000)
	w := p.wallet()
	r := expect(t, p.transact("lost-1", "credit", w, 300), 202)
	if got := p.await(r.str("id")); got.str("status") != "completed" {
		t.Fatalf("relayed transaction: %s", got.raw)
	}
}

// With Redis unreachable the API still accepts (Postgres has the
// transaction), and the relay applies it.
func TestRedisDownStillAccepts(t *testing.T) {
	getStack(t)
	base := newServer(t, asynq.RedisClientOpt{Addr: "127.0.0.1:1", DialTimeout: 100 * time.Millisecond}, teststack.Options{})
	p := newPartner(t, base, 1_000)
	w := p.wallet()
	for i := range 3 {
		r := expect(t, p.transact(fmt.Sprintf("redis-down-%d", i), "credit", w, 100), 202)
		p.await(r.str("id"))
	}
	if b := p.balance(w); b != 300 {
		t.Errorf("balance %d, want 300", b)
	}
}

// A task deleted from Redis (flushed, archived and trimmed) is covered by the relay.
func TestRelayCoversDeletedTask(t *testing.T) {
	s := getStack(t)
	// A second API whose queue is a Redis database no worker reads: the
	// task sits there, as good as lost.
	ro := testenv.Redis(t, redisDB+11)
	base := newServer(t, testenv.AsynqRedis(ro), teststack.Options{})
	p := newPartner(t, base, 1_000)
	w := p.wallet()
	r := expect(t, p.transact("orphan-1", "credit", w, 50), 202)
	insp := asynq.NewInspector(asynq.RedisClientOpt{Addr: ro.Addr, DB: ro.DB})
	if err := insp.DeleteTask("ledger", r.str("id")); err != nil {
		t.Fatalf("delete task: %v", err)
	}
	if got := p.await(r.str("id")); got.str("status") != "completed" {
		t.Fatalf("transaction after its task was deleted: %s", got.raw)
	}
	_ = s
}

// With Postgres unreachable the API answers 503 with Retry-After.
func TestPostgresDownIs503(t *testing.T) {
	pool, err := testenv.UnreachablePool()
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	down, err := teststack.New(pool, testenv.AsynqRedis(testenv.Redis(t, redisDB)), teststack.Options{NoWorker: true})
	if err != nil {
		t.Fatal(err)
	}
	defer down.CheckSpec(t)
	defer down.Stop()
	ts := struct{ URL string }{down.URL}
	for _, path := range []string{"/v1/workspace", "/readyz"} {
		r := call(t, ts.URL, "GET", path, "orbt_sk_anything", nil)
		if r.status != 503 || r.header.Get("Retry-After") == "" {
			t.Errorf("%s with Postgres down: %d Retry-After %q", path, r.status, r.header.Get("Retry-After"))
		}
	}
	r := call(t, ts.URL, "POST", "/admin/v1/workspaces", adminToken, map[string]any{"name": "x"})
	if r.status != 503 || r.str("code") != "service_unavailable" {
		t.Errorf("admin write with Postgres down: %d %s", r.status, r.raw)
	}
	// /readyz names the dependency that is down and nothing about it: no
	// user, database, host or port from the driver's error.
	ready := call(t, ts.URL, "GET", "/readyz", "", nil)
	if !strings.Contains(ready.raw, "postgres") {
		t.Errorf("/readyz does not say postgres is down: %s", ready.raw)
	}
	for _, secret := range []string{"127.0.0.1", ":1", "user=", "database=", "orbt?", "dial", "connect"} {
		if strings.Contains(ready.raw, secret) {
			t.Errorf("/readyz tells anyone %q: %s", secret, ready.raw)
		}
	}
}

// Postgres refusing writes (read-only, or in recovery right after a
// failover: SQLSTATE class 25) is a 503 with Retry-After, never a 500.
func TestReadOnlyPostgresIs503(t *testing.T) {
	s := getStack(t)
	p := newPartner(t, s.URL, 0)
	cfg := db.Pool.Config().Copy()
	cfg.ConnConfig.RuntimeParams["default_transaction_read_only"] = "on"
	pool, err := pgxpool.NewWithConfig(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	ro, err := teststack.New(pool, testenv.AsynqRedis(testenv.RedisOptions(redisDB)), teststack.Options{NoWorker: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.CheckSpec(t)
	defer ro.Stop()
	r := call(t, ro.URL, "POST", "/v1/consumers", p.key, map[string]any{"externalId": "read-only"})
	if r.status != 503 || r.header.Get("Retry-After") == "" {
		t.Errorf("write to a read-only Postgres: %d Retry-After %q %s", r.status, r.header.Get("Retry-After"), r.raw)
	}
}

// Each refusal names what is wrong: a campaign window out of order is not a
// budget problem, and a wallet naming an unknown campaign is not an unknown
// consumer.
func TestRefusalsNameTheRealProblem(t *testing.T) {
	s := getStack(t)
	p := newPartner(t, s.URL, 0)
	cmp := expect(t, p.call("POST", "/v1/campaigns", map[string]any{"name": "Window", "currency": "USD",
		"budget": 100, "endsAt": "2030-01-01T00:00:00Z"}), 201)
	r := expect(t, p.call("PATCH", "/v1/campaigns/"+cmp.str("id"), map[string]any{"startsAt": "2031-01-01T00:00:00Z"}), 400)
	if r.str("code") != "validation_error" || !strings.Contains(r.raw, `"field":"endsAt"`) {
		t.Errorf("startsAt after the stored endsAt: %s", r.raw)
	}
	c := expect(t, p.call("POST", "/v1/consumers", map[string]any{"externalId": "labels"}), 201)
	r = expect(t, p.call("POST", "/v1/consumers/"+c.str("id")+"/wallets",
		map[string]any{"currency": "USD", "type": "campaign", "campaignId": "cmp_never_existed"}), 404)
	if r.str("code") != "campaign_not_found" || !strings.Contains(r.raw, `"field":"campaignId"`) {
		t.Errorf("wallet of an unknown campaign: %s", r.raw)
	}
	r = expect(t, p.call("POST", "/v1/consumers/csm_never_existed/wallets",
		map[string]any{"currency": "USD", "type": "campaign", "campaignId": cmp.str("id")}), 404)
	if r.str("code") != "consumer_not_found" || strings.Contains(r.raw, "campaignId") {
		t.Errorf("wallet of an unknown consumer: %s", r.raw)
	}
}

// Funding is a money movement like any other: accepted (202, pending),
// applied by the worker, answered once per referenceId.
func TestFundingIsAcceptedThenApplied(t *testing.T) {
	s := getStack(t)
	p := newPartner(t, s.URL, 0)
	path := "/admin/v1/workspaces/" + p.id + "/fundings"
	body := map[string]any{"referenceId": "topup-1", "currency": "USD", "amount": 5_000}
	r := expect(t, call(t, s.URL, "POST", path, adminToken, body), 202)
	if r.str("type") != "funding" || (r.str("status") != "pending" && r.str("status") != "completed") {
		t.Fatalf("funding accepted as %s", r.raw)
	}
	if got := p.await(r.str("id")); got.str("status") != "completed" {
		t.Fatalf("funding: %s", got.raw)
	}
	again := expect(t, call(t, s.URL, "POST", path, adminToken, body), 202)
	if again.str("id") != r.str("id") || again.header.Get("Idempotent-Replayed") != "true" || again.str("status") != "completed" {
		t.Errorf("replayed funding: %s", again.raw)
	}
	body["amount"] = 5_001
	expect(t, call(t, s.URL, "POST", path, adminToken, body), 422)
	if b := p.partnerBalance(); b != 5_000 {
		t.Errorf("partner balance %d after a funding, its replay and a conflict; want 5000", b)
	}
	assertInvariants(t)
}

// Prefer: wait=N answers 200 with the final transaction when the worker
// applies it within N seconds, and the usual 202 when it does not.
func TestPreferWaitAnswersTheOutcome(t *testing.T) {
	s := getStack(t)
	p := newPartner(t, s.URL, 0)
	wait := http.Header{"Prefer": {"wait=5"}}
	funding := callWith(t, s.URL, "POST", "/admin/v1/workspaces/"+p.id+"/fundings", adminToken,
		map[string]any{"referenceId": "wait-fund", "currency": "USD", "amount": 1_000}, wait)
	if funding.status != 200 || funding.str("status") != "completed" || funding.header.Get("Preference-Applied") != "wait=5" {
		t.Fatalf("funding with Prefer: wait: %d %s", funding.status, funding.raw)
	}
	w := p.wallet()
	body := map[string]any{"referenceId": "wait-1", "type": "credit", "walletId": w, "amount": 400, "currency": "USD"}
	r := callWith(t, s.URL, "POST", "/v1/transactions", p.key, body, wait)
	if r.status != 200 || r.str("status") != "completed" {
		t.Fatalf("credit with Prefer: wait: %d %s", r.status, r.raw)
	}
	over := callWith(t, s.URL, "POST", "/v1/transactions", p.key, map[string]any{"referenceId": "wait-2", "type": "debit",
		"walletId": w, "amount": 401, "currency": "USD"}, wait)
	if over.status != 200 || over.str("failureReason") != "insufficient_funds" {
		t.Errorf("failing debit with Prefer: wait: %d %s", over.status, over.raw)
	}
	// A replay of a final transaction answers it at once.
	again := callWith(t, s.URL, "POST", "/v1/transactions", p.key, body, wait)
	if again.status != 200 || again.header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("replay with Prefer: wait: %d %s", again.status, again.raw)
	}
	// No worker reads this API's queue: the wait runs out and the answer is 202.
	alone := newServer(t, testenv.AsynqRedis(testenv.Redis(t, redisDB+12)), teststack.Options{})
	pending := callWith(t, alone, "POST", "/v1/transactions", p.key, map[string]any{"referenceId": "wait-3", "type": "credit",
		"walletId": w, "amount": 1, "currency": "USD"}, http.Header{"Prefer": {"wait=1"}})
	if pending.status != 202 || pending.str("status") != "pending" {
		t.Errorf("Prefer: wait with nothing applying: %d %s", pending.status, pending.raw)
	}
	p.await(pending.str("id")) // the shared worker's relay applies it in the end

	// Two requests wait on one transaction (a client retrying): one leaves
	// (its client gives up long before the relay can apply anything); the
	// other is still woken when the relay applies it.
	retry := map[string]any{"referenceId": "wait-4", "type": "credit", "walletId": w, "amount": 1, "currency": "USD"}
	long := make(chan response)
	go func() {
		long <- callWith(t, alone, "POST", "/v1/transactions", p.key, retry, http.Header{"Prefer": {"wait=10"}})
	}()
	time.Sleep(50 * time.Millisecond)
	gaveUp, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := client.New(alone, p.key, 1).Do(gaveUp, "POST", "/v1/transactions", retry, http.Header{"Prefer": {"wait=10"}}); err == nil {
		t.Fatal("the client that gave up got an answer")
	}
	if got := <-long; got.status != 200 || got.str("status") != "completed" {
		t.Errorf("the long wait, after the short one left: %d %s", got.status, got.raw)
	}
}
