package partnerapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orbt/orbt/app"
	"github.com/orbt/orbt/partnerapi"
	"github.com/orbt/orbt/server"
	"github.com/orbt/orbt/store"
	"github.com/orbt/orbt/testenv"
	"github.com/orbt/orbt/teststack"
)

// A client written against Orbt's hosted API creates a customer with
// initial funds, credits and debits it with referenceIds, and sees in
// /v1 the balances it was told.
func TestAHostedClientMovesMoneyAsOnOrbt(t *testing.T) {
	p := newPartner(t, "USD:10000")
	created := expect(t, p.do("POST", "/customer",
		`{"fullName": "Jane Doe", "email": "jane@example.com", "currency": "USD", "initialFunds": 50.00}`), 200)
	if !strings.Contains(created.raw, `"walletBalance":50.00`) {
		t.Fatalf("walletBalance is not the exact decimal 50.00: %s", created.raw)
	}
	d := created.data()
	if _, err := d["id"].(json.Number).Int64(); err != nil {
		t.Fatalf("id %v is not a JSON integer", d["id"])
	}
	walletID, _ := d["walletId"].(string)
	if !strings.HasPrefix(walletID, "wal_") || d["email"] != "jane@example.com" || d["fullName"] != "Jane Doe" || d["currency"] != "USD" {
		t.Fatalf("created: %s", created.raw)
	}
	if got := p.partnerBalance("USD"); got != 5000 {
		t.Fatalf("partner balance %d after initial funds of 50.00 from 100.00", got)
	}

	credit := expect(t, p.transact(walletID, "CREDIT", "order-1", "10.25"), 200).data()
	if text(credit["walletBalance"]) != "60.25" || text(credit["amount"]) != "10.25" || credit["status"] != "COMPLETED" ||
		credit["transactionType"] != "CREDIT" || credit["referenceId"] != "order-1" || credit["walletId"] != walletID {
		t.Fatalf("credit: %v", credit)
	}
	refused := expect(t, p.transact(walletID, "DEBIT", "order-2", "100"), 402)
	if refused.errorCode() != "BUSINESS_RULE_ERROR" || refused.reason() != "insufficient_funds" {
		t.Fatalf("overdraft: %s", refused.raw)
	}
	debit := expect(t, p.transact(walletID, "DEBIT", "order-3", "0.25"), 200).data()
	if text(debit["walletBalance"]) != "60.00" {
		t.Fatalf("debit: %v", debit)
	}

	// A replay answers the original's outcome: same transaction, the
	// balance it left then, not the balance now.
	replay := expect(t, p.transact(walletID, "CREDIT", "order-1", "10.25"), 200)
	if replay.data()["transactionId"] != credit["transactionId"] || text(replay.data()["walletBalance"]) != "60.25" ||
		replay.header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("replay: %s", replay.raw)
	}
	if again := expect(t, p.transact(walletID, "DEBIT", "order-2", "100"), 402); again.reason() != "insufficient_funds" {
		t.Fatalf("replayed refusal: %s", again.raw)
	}
	conflict := expect(t, p.transact(walletID, "CREDIT", "order-1", "10.26"), 403)
	if conflict.errorCode() != "BUSINESS_RULE_ERROR" || conflict.reason() != "idempotency_conflict" ||
		!slices.Contains(conflict.fields(), "amount") {
		t.Fatalf("conflicting reuse: %s", conflict.raw)
	}
	if typ := expect(t, p.transact(walletID, "DEBIT", "order-1", "10.25"), 403); !slices.Contains(typ.fields(), "transactionType") {
		t.Fatalf("reuse as a debit: %s", typ.raw)
	}

	// The same money seen through the native API.
	if w := p.nativeWallet(walletID); w.Balance != 6000 || w.Currency != "USD" {
		t.Fatalf("native wallet: %+v", w)
	}
	if got := p.partnerBalance("USD"); got != 10000-6000 {
		t.Fatalf("partner balance %d", got)
	}
	var txns struct {
		Data []struct{ ReferenceID, Status string }
	}
	teststack.OK(t)(p.native.Call(context.Background(), "GET", "/v1/transactions?walletId="+walletID, nil, 200, &txns))
	if len(txns.Data) != 4 { // initial funds, order-1, order-2 (failed), order-3
		t.Fatalf("native transactions: %+v", txns.Data)
	}

	// Orbt's hosted API answers 500 here; a client's input never gets a 5xx.
	short := expect(t, p.transact(walletID, "CREDIT", "order-4", "40.01"), 402)
	if short.reason() != "insufficient_partner_funds" {
		t.Fatalf("credit past the partner balance: %s", short.raw)
	}
	if got := expect(t, p.do("GET", "/customer/999999999/wallets", nil), 404); got.errorCode() != "NOT_FOUND" {
		t.Fatalf("unknown customer: %s", got.raw)
	}
	if got := expect(t, p.transact("wal_nope", "CREDIT", "order-5", "1"), 404); got.errorCode() != "NOT_FOUND" {
		t.Fatalf("unknown wallet: %s", got.raw)
	}
	if got := expect(t, p.do("GET", "/no-such-route", nil), 404); got.errorCode() != "NOT_FOUND" {
		t.Fatalf("unknown route: %s", got.raw)
	}
}

// One wallet per email and currency: a second create for the same email
// and currency is a 400; another currency adds a wallet to the same
// customer; a create the partner balance cannot cover leaves nothing.
func TestCustomersAreKnownByEmail(t *testing.T) {
	p := newPartner(t, "USD:10000", "EUR:10000")
	id, usd := p.customer("Sam@Example.com", "USD", "0")
	dup := expect(t, p.do("POST", "/customer", `{"fullName": "Sam", "email": "sam@example.com", "currency": "USD", "initialFunds": 5}`), 400)
	if dup.errorCode() != "VALIDATION_ERROR" || !slices.Contains(dup.fields(), "email") ||
		dup.detail("walletId") != usd || text(dup.detail("customerId")) != fmt.Sprint(id) {
		t.Fatalf("second USD wallet: %s", dup.raw)
	}
	if got := p.partnerBalance("USD"); got != 10000 {
		t.Fatalf("a refused create moved money: partner balance %d", got)
	}
	id2, eur := p.customer("sam@example.com", "EUR", "12.5")
	if id2 != id || eur == usd {
		t.Fatalf("EUR wallet: customer %d (want %d), wallet %s", id2, id, eur)
	}
	if w := p.nativeWallet(eur); w.Balance != 1250 || w.Currency != "EUR" {
		t.Fatalf("EUR wallet: %+v", w)
	}

	poor := expect(t, p.do("POST", "/customer", `{"fullName": "Pat", "email": "pat@example.com", "currency": "USD", "initialFunds": 100.01}`), 402)
	if poor.errorCode() != "BUSINESS_RULE_ERROR" || poor.reason() != "insufficient_partner_funds" {
		t.Fatalf("create past the partner balance: %s", poor.raw)
	}
	var consumers struct{ Data []struct{ Email *string } }
	teststack.OK(t)(p.native.Call(context.Background(), "GET", "/v1/consumers?externalId=email:pat@example.com", nil, 200, &consumers))
	if len(consumers.Data) != 0 {
		t.Fatalf("a refused create left a consumer: %+v", consumers.Data)
	}

	// A native consumer whose externalId is the address does not take it
	// from the consumer that has it as its email.
	ctx := context.Background()
	teststack.OK(t)(p.native.Call(ctx, "POST", "/v1/consumers", map[string]any{"externalId": "lee@example.com", "name": "Other"}, 201, nil))
	var lee struct{ ID string }
	teststack.OK(t)(p.native.Call(ctx, "POST", "/v1/consumers", map[string]any{"externalId": "lee-1", "email": "Lee@Example.com"}, 201, &lee))
	teststack.OK(t)(p.native.Call(ctx, "POST", "/v1/consumers/"+lee.ID+"/wallets", map[string]any{"currency": "USD", "type": "standard"}, 201, nil))
	if a := expect(t, p.do("POST", "/customer", `{"fullName": "Lee", "email": "lee@example.com", "currency": "USD"}`), 400); a.reason() != "wallet_exists" {
		t.Fatalf("an email with a USD wallet got another: %s", a.raw)
	}
	// Nor is a native consumer whose externalId is an address, with
	// another email, ever given that address's customer or its money.
	teststack.OK(t)(p.native.Call(ctx, "POST", "/v1/consumers", map[string]any{"externalId": "carol@example.com", "email": "dave@example.org", "name": "Dave"}, 201, nil))
	carol := expect(t, p.do("POST", "/customer", `{"fullName": "Carol", "email": "carol@example.com", "currency": "USD", "initialFunds": 1}`), 200).data()
	if carol["fullName"] != "Carol" || carol["email"] != "carol@example.com" {
		t.Fatalf("carol's customer: %v", carol)
	}

	// Concurrent first creates for one address make one customer with one
	// wallet, funded once.
	const n = 8
	var wg sync.WaitGroup
	statuses := make([]int, n)
	for i := range n {
		wg.Go(func() {
			statuses[i] = p.do("POST", "/customer", `{"fullName": "Kim", "email": "kim@example.com", "currency": "USD", "initialFunds": 1}`).status
		})
	}
	wg.Wait()
	slices.Sort(statuses)
	if statuses[n-1] != 400 || statuses[n-2] != 400 || slices.Index(statuses, 200) != 0 || slices.Contains(statuses[1:], 200) {
		t.Fatalf("concurrent creates: %v, want one 200 and the rest 400", statuses)
	}
	if got := p.partnerBalance("USD"); got != 10000-100-100 {
		t.Fatalf("concurrent creates funded %d", 10000-100-got)
	}
	if err := getStack(t).App.Ledger.CheckInvariants(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// The same credit sent many times at once pays once, and every answer is
// that one credit's.
func TestConcurrentReplaysPayOnce(t *testing.T) {
	p := newPartner(t, "USD:10000")
	_, w := p.customer("ann@example.com", "USD", "0")
	const n = 16
	var wg sync.WaitGroup
	answers := make([]answer, n)
	for i := range n {
		wg.Go(func() { answers[i] = p.transact(w, "CREDIT", "bonus-1", "7.77") })
	}
	wg.Wait()
	for _, a := range answers {
		if a.status != 200 || a.data()["transactionId"] != answers[0].data()["transactionId"] || text(a.data()["walletBalance"]) != "7.77" {
			t.Fatalf("concurrent duplicate: %d %s (first %s)", a.status, a.raw, answers[0].raw)
		}
	}
	if b := p.nativeWallet(w); b.Balance != 777 {
		t.Fatalf("wallet %d after %d duplicates of 7.77", b.Balance, n)
	}
}

// Numbered pages: hasNext is right at the edges, size is capped at 50,
// and a malformed page, size or customer id is a 422.
func TestPagesAreNumberedAsOnOrbt(t *testing.T) {
	p := newPartner(t, "USD:10000")
	var ids []int64
	for i := range 5 {
		id, _ := p.customer(fmt.Sprintf("page%d@example.com", i), "USD", "0")
		ids = append(ids, id)
	}
	page := func(q string) (got []int64, hasNext bool, size string) {
		t.Helper()
		a := expect(t, p.do("GET", "/customer"+q, nil), 200)
		list, _ := a.data()["content"].([]any)
		for _, c := range list {
			id, _ := c.(map[string]any)["id"].(json.Number).Int64()
			got = append(got, id)
		}
		return got, a.data()["hasNext"] == true, text(a.data()["size"])
	}
	for _, tc := range []struct {
		query   string
		want    []int64
		hasNext bool
	}{
		{"?page=0&size=2", ids[0:2], true},
		{"?page=1&size=2", ids[2:4], true},
		{"?page=2&size=2", ids[4:5], false},
		{"?page=3&size=2", nil, false},
		{"?size=5", ids, false},
		{"?size=4", ids[:4], true},
		{"", ids, false},
	} {
		got, hasNext, _ := page(tc.query)
		if !slices.Equal(got, tc.want) || hasNext != tc.hasNext {
			t.Errorf("%s: %v hasNext %v, want %v %v", tc.query, got, hasNext, tc.want, tc.hasNext)
		}
	}
	if _, _, size := page("?size=500"); size != "50" {
		t.Errorf("size=500 served as %s, want 50", size)
	}
	for _, q := range []string{"?page=-1", "?page=x", "?page=1.5", "?size=0", "?size=-3", "?size=ten", "?page=99999999999999999999"} {
		a := expect(t, p.do("GET", "/customer"+q, nil), 422)
		if a.errorCode() != "VALIDATION_ERROR" || len(a.fields()) != 1 {
			t.Errorf("%s: %s", q, a.raw)
		}
	}
	for _, id := range []string{"abc", "0", "-4", "1.0", strings.Repeat("9", 80)} {
		if a := expect(t, p.do("GET", "/customer/"+id+"/wallets", nil), 422); !slices.Contains(a.fields(), "customerId") {
			t.Errorf("customer %q: %s", id, a.raw)
		}
	}
	// Another workspace's customer is not found.
	other := newPartner(t)
	if a := expect(t, other.do("GET", fmt.Sprintf("/customer/%d/wallets", ids[0]), nil), 404); a.errorCode() != "NOT_FOUND" {
		t.Fatalf("another workspace's customer: %s", a.raw)
	}
}

// A customer's wallets list its campaign wallets with the campaign.
func TestWalletsShowTheirCampaign(t *testing.T) {
	p := newPartner(t, "USD:10000", "EUR:10000")
	id, usd := p.customer("cam@example.com", "USD", "1")
	_, eur := p.customer("cam@example.com", "EUR", "2")
	ctx := context.Background()
	var campaign struct{ ID string }
	teststack.OK(t)(p.native.Call(ctx, "POST", "/v1/campaigns", map[string]any{"name": "Spring promo", "currency": "USD"}, 201, &campaign))
	var consumers struct{ Data []struct{ ID string } }
	teststack.OK(t)(p.native.Call(ctx, "GET", "/v1/consumers?externalId=email:cam@example.com", nil, 200, &consumers))
	if len(consumers.Data) != 1 {
		t.Fatalf("consumers: %+v", consumers)
	}
	var cw struct{ ID string }
	teststack.OK(t)(p.native.Call(ctx, "POST", "/v1/consumers/"+consumers.Data[0].ID+"/wallets",
		map[string]any{"currency": "USD", "type": "campaign", "campaignId": campaign.ID}, 201, &cw))

	first := expect(t, p.do("GET", fmt.Sprintf("/customer/%d/wallets?size=2", id), nil), 200).data()
	second := expect(t, p.do("GET", fmt.Sprintf("/customer/%d/wallets?size=2&page=1", id), nil), 200).data()
	if first["hasNext"] != true || second["hasNext"] != false {
		t.Fatalf("wallet pages: %v / %v", first, second)
	}
	all := append(first["content"].([]any), second["content"].([]any)...)
	byID := map[string]map[string]any{}
	for _, w := range all {
		m := w.(map[string]any)
		byID[m["walletId"].(string)] = m
	}
	if w := byID[usd]; w["walletType"] != "STANDARD" || text(w["balance"]) != "1.00" || w["currency"] != "USD" || w["status"] != "ENABLED" {
		t.Errorf("USD wallet: %v", w)
	}
	if w := byID[eur]; w["walletType"] != "STANDARD" || text(w["balance"]) != "2.00" {
		t.Errorf("EUR wallet: %v", w)
	}
	if w := byID[cw.ID]; w["walletType"] != "CAMPAIGN" || w["campaignId"] != campaign.ID || w["campaignName"] != "Spring promo" {
		t.Errorf("campaign wallet: %v", w)
	}
	if _, has := byID[usd]["campaignId"]; has {
		t.Errorf("a standard wallet names a campaign: %v", byID[usd])
	}
	// A campaign wallet's credit counts against its budget, here as natively.
	credit := expect(t, p.transact(cw.ID, "CREDIT", store.NewID("ref"), "3"), 200).data()
	if text(credit["walletBalance"]) != "3.00" {
		t.Fatalf("campaign credit: %v", credit)
	}
	var after struct{ Credited int64 }
	teststack.OK(t)(p.native.Call(ctx, "GET", "/v1/campaigns/"+campaign.ID, nil, 200, &after))
	if after.Credited != 300 {
		t.Fatalf("campaign credited %d", after.Credited)
	}
	teststack.OK(t)(p.native.Call(ctx, "PATCH", "/v1/campaigns/"+campaign.ID, map[string]any{"status": "paused"}, 200, nil))
	if a := expect(t, p.transact(cw.ID, "CREDIT", store.NewID("ref"), "1"), 402); a.reason() != "campaign_inactive" {
		t.Fatalf("credit to a paused campaign: %s", a.raw)
	}
}

// Decimal amounts become minor units by the currency's exponent, exactly,
// and anything else is a 400 naming the field that moves nothing.
func TestDecimalAmountsAreExact(t *testing.T) {
	p := newPartner(t, "USD:100000", "JPY:100000", "KWD:100000")
	wallets := map[string]string{}
	for _, cur := range []string{"USD", "JPY", "KWD"} {
		_, wallets[cur] = p.customer("dec-"+strings.ToLower(cur)+"@example.com", cur, "0")
	}
	var credited = map[string]int64{}
	for _, tc := range []struct {
		cur, amount string
		minor       int64
		balance     string
	}{
		{"USD", "0.1", 10, "0.10"},
		{"USD", "10.25", 1025, "10.35"},
		{"USD", `"1.05"`, 105, "11.40"},
		{"USD", "3", 300, "14.40"},
		{"JPY", "100", 100, "100"},
		{"JPY", `"250"`, 250, "350"},
		{"KWD", "1.234", 1234, "1.234"},
		{"KWD", "0.001", 1, "1.235"},
		{"KWD", "2.5", 2500, "3.735"},
	} {
		a := expect(t, p.transact(wallets[tc.cur], "CREDIT", store.NewID("ref"), tc.amount), 200).data()
		credited[tc.cur] += tc.minor
		if text(a["walletBalance"]) != tc.balance || a["currency"] != tc.cur {
			t.Errorf("%s %s: %v, want balance %s", tc.cur, tc.amount, a, tc.balance)
		}
	}
	for _, tc := range []struct{ cur, amount string }{
		{"USD", "10.255"}, {"USD", "1.000"}, {"USD", "-5"}, {"USD", "-0.01"}, {"USD", "0"}, {"USD", "0.00"},
		{"USD", "1e2"}, {"USD", "1E-2"}, {"USD", "12345678901234567890"}, {"USD", "10000000000.01"}, {"USD", `"12,50"`},
		{"USD", `"abc"`}, {"USD", `""`}, {"USD", `" 1"`}, {"USD", `"1.00 "`}, {"USD", `"0001.00"`}, {"USD", "true"}, {"USD", "null"}, {"USD", "[1]"}, {"USD", `{"v": 1}`},
		{"JPY", "100.5"}, {"JPY", "1.0"}, {"KWD", "1.2345"}, {"KWD", "0.0001"},
	} {
		a := expect(t, p.transact(wallets[tc.cur], "CREDIT", store.NewID("ref"), tc.amount), 400)
		if a.errorCode() != "VALIDATION_ERROR" || !slices.Equal(a.fields(), []string{"amount"}) {
			t.Errorf("%s %s: %s", tc.cur, tc.amount, a.raw)
		}
	}
	for cur, w := range wallets {
		if got := p.nativeWallet(w); got.Balance != credited[cur] {
			t.Errorf("%s wallet %d, want %d", cur, got.Balance, credited[cur])
		}
	}
	// initialFunds follows the same rules; zero is a customer without funds.
	for _, funds := range []string{"1.001", "-1", `"x"`, "1e3"} {
		body := fmt.Sprintf(`{"fullName": "D", "email": "d@example.com", "currency": "USD", "initialFunds": %s}`, funds)
		if a := expect(t, p.do("POST", "/customer", body), 400); !slices.Equal(a.fields(), []string{"initialFunds"}) {
			t.Errorf("initialFunds %s: %s", funds, a.raw)
		}
	}
}

// Every malformed body is a 4xx in the envelope, and nothing moves.
func TestMalformedBodiesMoveNothing(t *testing.T) {
	p := newPartner(t, "USD:10000")
	id, w := p.customer("mal@example.com", "USD", "5")
	before := p.partnerBalance("USD")
	huge := `{"amount": 1, "transactionType": "CREDIT", "referenceId": "x", "description": "` + strings.Repeat("a", 1<<20) + `"}`
	for _, tc := range []struct {
		path, body string
		status     int
	}{
		{"/wallets/" + w + "/transactions", ``, 400},
		{"/wallets/" + w + "/transactions", `not json`, 400},
		{"/wallets/" + w + "/transactions", `[]`, 400},
		{"/wallets/" + w + "/transactions", `{"amount": 1, "transactionType": "CREDIT", "referenceId": "a"} {}`, 400},
		{"/wallets/" + w + "/transactions", `{"amount": 1, "transactionType": "CREDIT", "referenceId": "a", "extra": 1}`, 400},
		{"/wallets/" + w + "/transactions", `{"amount": 1, "transactionType": "credit", "referenceId": "a"}`, 400},
		{"/wallets/" + w + "/transactions", `{"amount": 1, "transactionType": "REFUND", "referenceId": "a"}`, 400},
		{"/wallets/" + w + "/transactions", `{"amount": 1, "transactionType": "CREDIT"}`, 400},
		{"/wallets/" + w + "/transactions", `{"amount": 1, "transactionType": "CREDIT", "referenceId": "has space"}`, 400},
		{"/wallets/" + w + "/transactions", `{"amount": 1, "transactionType": "CREDIT", "referenceId": 7}`, 400},
		{"/wallets/" + w + "/transactions", `{"amount": 1, "transactionType": "CREDIT", "referenceId": "a", "description": ""}`, 400},
		{"/wallets/" + w + "/transactions", `{"amount": 1, "transactionType": "CREDIT", "referenceId": "a", "description": "\u0000"}`, 400},
		{"/wallets/" + w + "/transactions", huge, 413},
		{"/wallets/" + w + "/transactions", `{"amount": 1, "transactionType": "CREDIT", "referenceId": "a", "amount": 40}`, 400},
		{"/wallets/" + w + "/transactions", `{"amount": 1, "transactionType": "CREDIT", "referenceId": "a", "AMOUNT": 40}`, 400},
		{"/wallets/" + w + "/transactions", `{"amount": 1, "TransactionType": "DEBIT", "transactionType": "CREDIT", "referenceId": "a"}`, 400},
		{"/customer", `{}`, 400},
		{"/customer", `{"fullName": "A", "email": "not-an-email", "currency": "USD"}`, 400},
		{"/customer", `{"fullName": "A", "email": "a@example.com", "currency": "usd"}`, 400},
		{"/customer", `{"fullName": "A", "email": "a@example.com", "currency": "XXY"}`, 400},
		{"/customer", `{"fullName": "", "email": "a@example.com", "currency": "USD"}`, 400},
		{"/customer", `{"fullName": "` + strings.Repeat("n", 201) + `", "email": "a@example.com", "currency": "USD"}`, 400},
		{"/customer", `{"fullName": "A", "email": "a@example.com", "currency": "USD", "initialFunds": 1, "id": 5}`, 400},
		{"/customer", `{"fullName": ["A"], "email": "a@example.com", "currency": "USD"}`, 400},
	} {
		a := p.do("POST", tc.path, tc.body)
		if a.status != tc.status || a.errorCode() != "VALIDATION_ERROR" {
			t.Errorf("POST %s %.80s: %d %.300s", tc.path, tc.body, a.status, a.raw)
		}
	}
	if got := p.partnerBalance("USD"); got != before {
		t.Fatalf("malformed requests moved the partner balance: %d, was %d", got, before)
	}
	if got := p.nativeWallet(w); got.Balance != 500 {
		t.Fatalf("malformed requests moved the wallet: %d", got.Balance)
	}
	wallets := expect(t, p.do("GET", fmt.Sprintf("/customer/%d/wallets", id), nil), 200).data()["content"].([]any)
	customers := expect(t, p.do("GET", "/customer", nil), 200).data()["content"].([]any)
	if len(wallets) != 1 || len(customers) != 1 {
		t.Fatalf("malformed creates left %d customers, %d wallets", len(customers), len(wallets))
	}
}

// When the outcome is not final within the wait, the answer is 202 with
// status PENDING: here the worker never hears of the credit (the API
// enqueues into a Redis database no worker reads).
func TestAnOutcomeNotFinalInTheWaitIs202Pending(t *testing.T) {
	t.Parallel() // it waits for the relay; the others run meanwhile
	p := newPartner(t, "USD:10000")
	_, w := p.customer("slow@example.com", "USD", "0")
	testenv.Redis(t, idleRedisDB) // empty of earlier runs' tasks
	idle := secondStack(t)
	c := *p.orbtClient
	c.base = idle + "/api/partner/v1"
	req := c.signed("POST", "/wallets/"+w+"/transactions",
		[]byte(`{"amount": 2, "transactionType": "CREDIT", "referenceId": "late-1"}`), time.Now())
	req.Header.Set("Prefer", "wait=1")
	a := expect(t, c.send(req), 202)
	if a.data()["status"] != "PENDING" || text(a.data()["walletBalance"]) != "0.00" || a.data()["transactionId"] == nil {
		t.Fatalf("pending: %s", a.raw)
	}
	// A customer's initial funds the same: 202 and initialFundsStatus
	// PENDING, the wallet made; a second create is a 400 naming it.
	req = c.signed("POST", "/customer", []byte(`{"fullName": "Late", "email": "late@example.com", "currency": "USD", "initialFunds": 3}`), time.Now())
	req.Header.Set("Prefer", "wait=1")
	created := expect(t, c.send(req), 202).data()
	if created["initialFundsStatus"] != "PENDING" || text(created["walletBalance"]) != "0.00" || created["walletId"] == nil {
		t.Fatalf("pending create: %v", created)
	}
	if again := expect(t, p.do("POST", "/customer", `{"fullName": "Late", "email": "late@example.com", "currency": "USD", "initialFunds": 3}`), 400); again.detail("walletId") != created["walletId"] {
		t.Fatalf("create again: %s", again.raw)
	}

	// The partner balance spent between a create's check and its credit
	// (here by a credit accepted earlier, still pending): the create is a
	// 402 naming the customer and wallet it made.
	q := newPartner(t, "USD:1000")
	cq := *q.orbtClient
	cq.base = idle + "/api/partner/v1"
	req = cq.signed("POST", "/customer", []byte(`{"fullName": "A", "email": "a@example.com", "currency": "USD", "initialFunds": 8}`), time.Now())
	req.Header.Set("Prefer", "wait=1")
	expect(t, cq.send(req), 202)
	late := expect(t, q.do("POST", "/customer", `{"fullName": "B", "email": "b@example.com", "currency": "USD", "initialFunds": 8}`), 402)
	if late.reason() != "insufficient_partner_funds" || late.detail("walletId") == nil || late.detail("customerId") == nil {
		t.Fatalf("a create whose credit lost the race: %s", late.raw)
	}
	if got := q.partnerBalance("USD"); got != 200 {
		t.Fatalf("partner balance %d after one 8.00 of 10.00 paid", got)
	}

	// The relay of the shared stack's worker applies them; a replay then
	// answers the outcome.
	deadline := time.Now().Add(20 * time.Second)
	for {
		r := p.transact(w, "CREDIT", "late-1", "2")
		if r.status == 200 {
			if text(r.data()["walletBalance"]) != "2.00" || r.data()["transactionId"] != a.data()["transactionId"] {
				t.Fatalf("replay after the outcome: %s", r.raw)
			}
			break
		}
		if r.status != 202 || time.Now().After(deadline) {
			t.Fatalf("replay: %d %s", r.status, r.raw)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for p.nativeWallet(created["walletId"].(string)).Balance != 300 {
		if time.Now().After(deadline) {
			t.Fatal("the pending initial funds were never applied")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// A hosted client past its key's budget gets Orbt's envelope with
// RATE_LIMITED, Retry-After and the RateLimit headers.
func TestRateLimitedInOrbtsEnvelope(t *testing.T) {
	p := newPartner(t)
	p.base = secondStackWith(t, app.Settings{RateLimits: server.RateLimits{Read: 1, Write: 1}}) + partnerapi.Prefix
	var last answer
	for range 4 {
		if last = p.do("GET", "/customer", nil); last.status == 429 {
			break
		}
		expect(t, last, 200)
	}
	expect(t, last, 429)
	if last.errorCode() != "RATE_LIMITED" || last.header.Get("Retry-After") == "" || last.header.Get("RateLimit-Limit") != "1" {
		t.Errorf("refusal: %s %v", last.raw, last.header)
	}
}
