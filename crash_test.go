package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/orbt/orbt/app"
	"github.com/orbt/orbt/client"
	"github.com/orbt/orbt/giftcard"
	"github.com/orbt/orbt/ledger"
	"github.com/orbt/orbt/seal"
	"github.com/orbt/orbt/store"
	"github.com/orbt/orbt/testenv"
	"github.com/orbt/orbt/teststack"
)

// redisDB is this package's Redis database index (see the Makefile).
const redisDB = 6

// runAsOrbt makes the test binary act as the orbt binary, so a test can
// run a real worker process and kill it.
const runAsOrbt = "ORBT_TEST_RUN_AS_ORBT"

var db *testenv.Database

func TestMain(m *testing.M) {
	if os.Getenv(runAsOrbt) == "1" {
		if err := run(os.Args[1:]); err != nil {
			fmt.Fprintln(os.Stderr, "orbt:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(testenv.Main(m, "main", &db))
}

// startWorker runs `orbt worker` as a process of its own.
func startWorker(t *testing.T, env []string, out *testenv.SyncBuffer) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "worker")
	cmd.Env = append(os.Environ(), append(env, runAsOrbt+"=1")...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd
}

// A worker killed with kill -9 between the hold and the provider's answer
// loses nothing: after a restart the redemption completes with one card,
// bought with the same idempotency key, even when every attempt was spent
// and the provider had issued the card before the kill.
func TestWorkerKilledMidRedemptionBuysOneCard(t *testing.T) {
	ctx := context.Background()
	key := store.RandomBytes(seal.DataKeySize)
	redis := testenv.Redis(t, redisDB)
	s, err := teststack.New(db.Pool, testenv.AsynqRedis(redis), teststack.Options{NoWorker: true,
		Settings: app.Settings{DataKey: key}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	env := []string{"DATABASE_URL=" + db.URL, fmt.Sprintf("REDIS_URL=redis://%s/%d", redis.Addr, redisDB),
		"ORBT_DATA_KEY=" + base64.StdEncoding.EncodeToString(key), "ORBT_PROVIDER_TIMEOUT=4s", "ORBT_RELAY_AFTER=1s",
		"ORBT_PROVIDER_RETRY_DELAY=50ms"}
	var logs testenv.SyncBuffer
	worker := startWorker(t, env, &logs)

	// A partner, a consumer with 50.00, and the slow sandbox brand, whose
	// first call for a key hangs until the call times out.
	var ws struct{ ID, APIKey string }
	teststack.OK(t)(s.Admin.Call(ctx, "POST", "/admin/v1/workspaces", map[string]any{"name": "crash"}, 201, &ws))
	teststack.OK(t)(s.Admin.Call(ctx, "PUT", "/admin/v1/workspaces/"+ws.ID+"/brands", map[string]any{"brandIds": []string{giftcard.BrandSandboxSlow}}, 200, nil))
	wait := http.Header{"Prefer": {"wait=10"}}
	final := func(res *client.Response, err error) {
		t.Helper()
		if err != nil || res.Status != 200 {
			t.Fatalf("want a final answer: %v %v", err, res)
		}
	}
	final(s.Admin.Do(ctx, "POST", "/admin/v1/workspaces/"+ws.ID+"/fundings", map[string]any{"referenceId": "f", "currency": "USD", "amount": 100_000}, wait))
	api := s.Client(ws.APIKey)
	var c, w, r struct{ ID string }
	teststack.OK(t)(api.Call(ctx, "POST", "/v1/consumers", map[string]any{"externalId": "ada"}, 201, &c))
	teststack.OK(t)(api.Call(ctx, "POST", "/v1/consumers/"+c.ID+"/wallets", map[string]any{"currency": "USD", "type": "standard"}, 201, &w))
	final(api.Do(ctx, "POST", "/v1/transactions", map[string]any{"referenceId": "c", "type": "credit", "walletId": w.ID, "amount": 5_000, "currency": "USD"}, wait))
	teststack.OK(t)(api.Call(ctx, "POST", "/v1/redemptions", map[string]any{"referenceId": "r", "walletId": w.ID, "brandId": giftcard.BrandSandboxSlow, "amount": 2_000}, 202, &r))

	// Kill the worker while the provider call is in flight.
	calls := func() int {
		var n int
		db.Pool.QueryRow(ctx, `SELECT calls FROM sandbox_cards WHERE idempotency_key = $1`, "orbt-"+r.ID).Scan(&n)
		return n
	}
	for deadline := time.Now().Add(20 * time.Second); calls() == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the provider was never called; worker log:\n%s", logs.String())
		}
	}
	if err := worker.Process.Kill(); err != nil { // SIGKILL
		t.Fatal(err)
	}
	worker.Wait()
	var held struct {
		Balance, Held int64
	}
	teststack.OK(t)(api.Call(ctx, "GET", "/v1/wallets/"+w.ID, nil, 200, &held))
	var status string
	db.Pool.QueryRow(ctx, `SELECT status FROM redemptions WHERE id = $1`, r.ID).Scan(&status)
	if status != giftcard.StatusProcessing || held.Balance != 3_000 || held.Held != 2_000 {
		t.Fatalf("after the kill: redemption %s, wallet %+v; want processing with 2000 held", status, held)
	}

	// Make it the worst moment: every attempt spent, and the provider had
	// issued the card (as if the last attempt did, just before the kill).
	// Giving up now would pay the card back to the wallet; the restart must
	// ask once more with the same key and capture it.
	if _, err := db.Pool.Exec(ctx, `UPDATE redemptions SET provider_attempts = 4 WHERE id = $1`, r.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Pool.Exec(ctx, `UPDATE sandbox_cards SET issued_at = date_trunc('second', now()), calls = calls + 1
		WHERE idempotency_key = $1`, "orbt-"+r.ID); err != nil {
		t.Fatal(err)
	}

	// Restart: the relay finds the redemption and finishes it.
	startWorker(t, env, &logs)
	var got struct {
		Status        string
		FailureReason *string
		Code          *string
	}
	for deadline := time.Now().Add(45 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		teststack.OK(t)(api.Call(ctx, "GET", "/v1/redemptions/"+r.ID, nil, 200, &got))
		if got.Status == giftcard.StatusCompleted || got.Status == giftcard.StatusFailed {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("redemption still %s after the restart; worker log:\n%s", got.Status, logs.String())
		}
	}
	if got.Status != giftcard.StatusCompleted || got.Code == nil {
		t.Fatalf("redemption %s (%v), want completed with a card; worker log:\n%s", got.Status, deref(got.FailureReason), logs.String())
	}
	var issued int
	db.Pool.QueryRow(ctx, `SELECT count(*) FROM sandbox_cards WHERE idempotency_key = $1 AND issued_at IS NOT NULL`, "orbt-"+r.ID).Scan(&issued)
	if n := calls(); n != 3 || issued != 1 {
		t.Fatalf("provider saw %d calls and issued %d cards, want 3 calls and 1 card", n, issued)
	}
	teststack.OK(t)(api.Call(ctx, "GET", "/v1/wallets/"+w.ID, nil, 200, &held))
	if held.Balance != 3_000 || held.Held != 0 {
		t.Fatalf("wallet %+v, want 3000 and nothing held", held)
	}
	if err := ledger.New(db.Pool, nil).CheckInvariants(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.App.GiftCards.CheckInvariants(ctx); err != nil {
		t.Fatal(err)
	}
	if l := logs.String(); strings.Contains(l, *got.Code) || strings.Contains(l, base64.StdEncoding.EncodeToString(key)) {
		t.Fatalf("a worker logged the card code or the data key:\n%s", l)
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
