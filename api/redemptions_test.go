package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orbt/orbt/app"
	"github.com/orbt/orbt/giftcard"
	"github.com/orbt/orbt/store"
	"github.com/orbt/orbt/testenv"
	"github.com/orbt/orbt/teststack"
	"github.com/orbt/orbt/webhooksig"
)

var sandboxBrands = []string{giftcard.BrandSandboxCoffee, giftcard.BrandSandboxBooks, giftcard.BrandSandboxDeclines, giftcard.BrandSandboxSlow}

// enableBrands sets the partner's enabled brands through the admin API.
func (p *partner) enableBrands(ids ...string) {
	p.t.Helper()
	expect(p.t, call(p.t, p.base, "PUT", "/admin/v1/workspaces/"+p.id+"/brands", adminToken, map[string]any{"brandIds": ids}), 200)
}

// newRedeemer is a partner funded with funding, with the brands enabled,
// and a new USD wallet of theirs holding balance.
func newRedeemer(t *testing.T, base string, funding, balance int64, brands ...string) (*partner, string) {
	t.Helper()
	p := newPartner(t, base, funding)
	p.enableBrands(brands...)
	w := p.wallet()
	p.credit(w, balance)
	return p, w
}

// credit puts amount in a wallet and waits until it is applied.
func (p *partner) credit(walletID string, amount int64) {
	p.t.Helper()
	r := expect(p.t, p.transact(store.NewID("ref"), "credit", walletID, amount), 202)
	if got := p.await(r.str("id")); got.str("status") != "completed" {
		p.t.Fatalf("credit: %s", got.raw)
	}
}

// redeem asks for a card, waiting up to 10 s for the outcome, and returns
// the final redemption (polling past the wait should it still be open).
func (p *partner) redeem(ref, walletID, brandID string, amount int64) response {
	p.t.Helper()
	r := callWith(p.t, p.base, "POST", "/v1/redemptions", p.key, map[string]any{
		"referenceId": ref, "walletId": walletID, "brandId": brandID, "amount": amount}, http.Header{"Prefer": {"wait=10"}})
	if r.status != 200 && r.status != 202 {
		p.t.Fatalf("redeem: %d %s", r.status, r.raw)
	}
	return p.awaitRedemption(r.str("id"))
}

func (p *partner) awaitRedemption(id string) response {
	p.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		r := expect(p.t, p.call("GET", "/v1/redemptions/"+id, nil), 200)
		if s := r.str("status"); s == "completed" || s == "failed" {
			return r
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("redemption %s still %s", id, r.str("status"))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (p *partner) wallet2(walletID string) response {
	p.t.Helper()
	return expect(p.t, p.call("GET", "/v1/wallets/"+walletID, nil), 200)
}

// statementTypes lists the types of a wallet's statement lines, oldest first.
func (p *partner) statementTypes(walletID string) []string {
	p.t.Helper()
	r := expect(p.t, p.call("GET", "/v1/wallets/"+walletID+"/transactions", nil), 200)
	var types []string
	for _, l := range r.body["data"].([]any) {
		m := l.(map[string]any)
		types = append([]string{fmt.Sprintf("%s %v", m["type"], m["amount"])}, types...)
	}
	return types
}

// assertGiftCardInvariants checks the ledger's invariants and the
// redemptions' agreement with them.
func assertGiftCardInvariants(t *testing.T, s *teststack.Stack) {
	t.Helper()
	assertInvariants(t)
	if err := s.App.GiftCards.CheckInvariants(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestRedeemFromStandardWallet(t *testing.T) {
	s := getStack(t)
	p, w := newRedeemer(t, s.URL, 100_000, 10_000, sandboxBrands...)

	ref := store.NewID("order")
	body := map[string]any{"referenceId": ref, "walletId": w, "brandId": giftcard.BrandSandboxCoffee, "amount": 2500}
	r := callWith(t, s.URL, "POST", "/v1/redemptions", p.key, body, http.Header{"Prefer": {"wait=10"}})
	expect(t, r, 200)
	if r.str("status") != "completed" || !strings.HasPrefix(r.str("code"), "SBX-") || len(r.str("pin")) != 4 || r.str("expiresAt") == "" {
		t.Fatalf("redemption: %s", r.raw)
	}
	if r.header.Get("Preference-Applied") != "wait=10" {
		t.Errorf("Preference-Applied %q", r.header.Get("Preference-Applied"))
	}
	code := r.str("code")

	// Money: 2,500 left the wallet for good; nothing held; every step on the statement.
	wr := p.wallet2(w)
	if wr.num("balance") != 7_500 || wr.num("held") != 0 {
		t.Fatalf("wallet after redemption: %s", wr.raw)
	}
	if got, want := strings.Join(p.statementTypes(w), ","), "credit 10000,redemption_hold -2500,redemption_capture 0"; got != want {
		t.Fatalf("statement %s, want %s", got, want)
	}

	// The card shows in the redemption's own responses only.
	got := expect(t, p.call("GET", "/v1/redemptions/"+r.str("id"), nil), 200)
	if got.str("code") != code {
		t.Fatalf("GET shows code %q, want %q", got.str("code"), code)
	}
	list := expect(t, p.call("GET", "/v1/redemptions?walletId="+w, nil), 200)
	if strings.Contains(list.raw, code) || len(list.body["data"].([]any)) != 1 {
		t.Fatalf("list: %s", list.raw)
	}
	events := expect(t, p.call("GET", "/v1/events?type=redemption.completed", nil), 200)
	if strings.Contains(events.raw, code) || len(events.body["data"].([]any)) != 1 {
		t.Fatalf("events: %s", events.raw)
	}

	// The same request again answers the original; another payload under
	// the same referenceId is refused and changes nothing.
	again := expect(t, call(t, s.URL, "POST", "/v1/redemptions", p.key, body), 202)
	if again.str("id") != r.str("id") || again.header.Get("Idempotent-Replayed") != "true" || again.str("code") != code {
		t.Fatalf("replay: %s", again.raw)
	}
	body["amount"] = 5000
	conflict := expect(t, call(t, s.URL, "POST", "/v1/redemptions", p.key, body), 422)
	if conflict.str("code") != "idempotency_conflict" || !strings.Contains(conflict.raw, `"field":"amount"`) {
		t.Fatalf("conflict: %s", conflict.raw)
	}
	if b := p.balance(w); b != 7_500 {
		t.Fatalf("balance %d after replay and conflict, want 7500", b)
	}
	assertGiftCardInvariants(t, s)
}

func TestRedeemFromCampaignWallet(t *testing.T) {
	s := getStack(t)
	p := newPartner(t, s.URL, 100_000)
	p.enableBrands(sandboxBrands...)
	cmp := expect(t, p.call("POST", "/v1/campaigns", map[string]any{"name": "Spring books", "currency": "USD",
		"budget": 50_000, "allowedBrands": []string{giftcard.BrandSandboxBooks}}), 201)
	c := expect(t, p.call("POST", "/v1/consumers", map[string]any{"externalId": store.NewID("user")}), 201)
	w := expect(t, p.call("POST", "/v1/consumers/"+c.str("id")+"/wallets",
		map[string]any{"currency": "USD", "type": "campaign", "campaignId": cmp.str("id")}), 201).str("id")
	p.credit(w, 6_000)

	if r := p.redeem(store.NewID("order"), w, giftcard.BrandSandboxCoffee, 1_000); r.str("failureReason") != "brand_not_allowed" {
		t.Fatalf("coffee from a books campaign: %s", r.raw)
	}
	if r := p.redeem(store.NewID("order"), w, giftcard.BrandSandboxBooks, 2_500); r.str("status") != "completed" {
		t.Fatalf("books from a books campaign: %s", r.raw)
	}
	report := expect(t, p.call("GET", "/v1/campaigns/"+cmp.str("id"), nil), 200)
	if report.num("redeemed") != 2_500 || report.num("wallets") != 1 || report.num("credited") != 6_000 || report.num("remaining") != 44_000 {
		t.Fatalf("campaign report: %s", report.raw)
	}
	if wr := p.wallet2(w); wr.num("balance") != 3_500 || wr.num("held") != 0 {
		t.Fatalf("wallet: %s", wr.raw)
	}
	assertGiftCardInvariants(t, s)
}

func TestRedemptionFailuresMoveNothing(t *testing.T) {
	s := getStack(t)
	p, w := newRedeemer(t, s.URL, 100_000, 3_000, giftcard.BrandSandboxCoffee, giftcard.BrandSandboxBooks, giftcard.BrandSandboxDeclines)
	eur := func() string {
		c := expect(t, p.call("POST", "/v1/consumers", map[string]any{"externalId": store.NewID("user")}), 201)
		return expect(t, p.call("POST", "/v1/consumers/"+c.str("id")+"/wallets", map[string]any{"currency": "EUR", "type": "standard"}), 201).str("id")
	}()
	for _, tc := range []struct {
		name, wallet, brand string
		amount              int64
		reason              string
	}{
		{"brand not enabled", w, giftcard.BrandSandboxSlow, 1_000, "brand_not_enabled"},
		{"brand unknown", w, "no-such-brand", 1_000, "brand_not_enabled"},
		{"below the minimum", w, giftcard.BrandSandboxCoffee, 100, "amount_out_of_range"},
		{"not a denomination", w, giftcard.BrandSandboxBooks, 1_200, "amount_out_of_range"},
		{"more than the wallet holds", w, giftcard.BrandSandboxCoffee, 3_001, "insufficient_funds"},
		{"a brand of another currency", eur, giftcard.BrandSandboxCoffee, 1_000, "brand_not_allowed"},
		{"provider declines", w, giftcard.BrandSandboxDeclines, 1_000, "provider_declined"},
	} {
		r := p.redeem(store.NewID("order"), tc.wallet, tc.brand, tc.amount)
		if r.str("status") != "failed" || r.str("failureReason") != tc.reason || r.str("code") != "" {
			t.Errorf("%s: %s", tc.name, r.raw)
		}
		assertGiftCardInvariants(t, s)
	}
	if wr := p.wallet2(w); wr.num("balance") != 3_000 || wr.num("held") != 0 {
		t.Fatalf("wallet after failures: %s", wr.raw)
	}
	// Only the decline got as far as the money: held once, released once.
	if got, want := strings.Join(p.statementTypes(w), ","), "credit 3000,redemption_hold -1000,redemption_release 1000"; got != want {
		t.Fatalf("statement %s, want %s", got, want)
	}
	if n := len(p.events("redemption.failed")); n != 7 {
		t.Fatalf("%d redemption.failed events, want 7", n)
	}
	assertGiftCardInvariants(t, s)
}

func TestSlowProviderCompletesWithOneCardAfterARetry(t *testing.T) {
	s := getStack(t)
	p, w := newRedeemer(t, s.URL, 100_000, 5_000, giftcard.BrandSandboxSlow)
	r := p.redeem(store.NewID("order"), w, giftcard.BrandSandboxSlow, 2_000)
	if r.str("status") != "completed" || r.str("code") == "" {
		t.Fatalf("slow: %s", r.raw)
	}
	var calls int
	var issued bool
	err := db.Pool.QueryRow(context.Background(), `SELECT calls, issued_at IS NOT NULL FROM sandbox_cards WHERE idempotency_key = $1`,
		"orbt-"+r.str("id")).Scan(&calls, &issued)
	if err != nil || calls != 2 || !issued {
		t.Fatalf("sandbox saw %d calls (issued %v, err %v), want 2 and one card", calls, issued, err)
	}
	if b := p.balance(w); b != 3_000 {
		t.Fatalf("balance %d, want 3000", b)
	}
	assertGiftCardInvariants(t, s)
}

func TestConcurrentRedemptionsSpendOnlyWhatIsThere(t *testing.T) {
	s := getStack(t)
	p, w := newRedeemer(t, s.URL, 100_000, 5_000, giftcard.BrandSandboxCoffee)
	results := make([]response, 20)
	var wg sync.WaitGroup
	for i := range results {
		wg.Go(func() { results[i] = p.redeem(fmt.Sprintf("order-%d", i), w, giftcard.BrandSandboxCoffee, 1_000) })
	}
	wg.Wait()
	outcomes := map[string]int{}
	for _, r := range results {
		outcomes[r.str("status")+" "+r.str("failureReason")]++
	}
	if outcomes["completed "] != 5 || outcomes["failed insufficient_funds"] != 15 {
		t.Fatalf("outcomes %v, want 5 completed and 15 insufficient_funds", outcomes)
	}
	if wr := p.wallet2(w); wr.num("balance") != 0 || wr.num("held") != 0 {
		t.Fatalf("wallet: %s", wr.raw)
	}
	assertGiftCardInvariants(t, s)
}

func TestUnavailableProviderReleasesTheHold(t *testing.T) {
	down, err := teststack.New(db.Pool, testenv.AsynqRedis(testenv.Redis(t, redisDB+13)),
		teststack.Options{Settings: app.Settings{SandboxFaults: giftcard.SandboxFaults{Unavailable: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	down.StopWithTest(t)
	p, w := newRedeemer(t, down.URL, 100_000, 5_000, giftcard.BrandSandboxCoffee)
	r := p.redeem(store.NewID("order"), w, giftcard.BrandSandboxCoffee, 1_000)
	if r.str("status") != "failed" || r.str("failureReason") != "provider_unavailable" {
		t.Fatalf("redemption: %s", r.raw)
	}
	if wr := p.wallet2(w); wr.num("balance") != 5_000 || wr.num("held") != 0 {
		t.Fatalf("wallet: %s", wr.raw)
	}
	assertGiftCardInvariants(t, down)
}

// Redemption outcomes reach a subscribed endpoint as signed webhooks,
// without the card.
func TestRedemptionOutcomesAreDeliveredAsWebhooks(t *testing.T) {
	s := getStack(t)
	p, w := newRedeemer(t, s.URL, 100_000, 5_000, giftcard.BrandSandboxCoffee, giftcard.BrandSandboxDeclines)
	rcv := newReceiver(t)
	ep := expect(t, p.call("POST", "/v1/webhook-endpoints", map[string]any{
		"url": rcv.URL, "events": []string{"redemption.completed", "redemption.failed"}}), 201)

	done := p.redeem(store.NewID("order"), w, giftcard.BrandSandboxCoffee, 1_000)
	declined := p.redeem(store.NewID("order"), w, giftcard.BrandSandboxDeclines, 1_000)
	if done.str("code") == "" || declined.str("failureReason") != "provider_declined" {
		t.Fatalf("redemptions: %s %s", done.raw, declined.raw)
	}
	waitDeliveries(t, p, ep.str("id"), 2)
	headers, bodies := rcv.received()
	types := map[string]string{}
	for i, body := range bodies {
		if err := webhooksig.Verify(body, headers[i], ep.str("secret")); err != nil {
			t.Fatalf("delivery %d does not verify: %v", i, err)
		}
		if strings.Contains(string(body), done.str("code")) || strings.Contains(string(body), `"pin"`) {
			t.Fatalf("a webhook carries the card: %s", body)
		}
		var ev struct {
			Type string
			Data struct{ ID string }
		}
		json.Unmarshal(body, &ev)
		types[ev.Data.ID] = ev.Type
	}
	if types[done.str("id")] != "redemption.completed" || types[declined.str("id")] != "redemption.failed" {
		t.Fatalf("delivered %v", types)
	}
}
