package partnerapi_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/orbt/orbt/partnerapi"
	"github.com/orbt/orbt/teststack"
)

// fuzzStack is a fuzz target's stack (teststack.ForFuzz) with its fuzz
// partner, made at the first input and shared by every input a fuzzing
// process tries: its signing credentials and a customer's wallets in
// currencies of 2, 0 and 3 decimals.
type fuzzStack struct {
	*teststack.Stack
	apiKey, clientID, secret string
	wallets                  *strings.Replacer
}

func (s *fuzzStack) client(t *testing.T) *orbtClient {
	return &orbtClient{t: t, base: s.URL + partnerapi.Prefix, apiKey: s.apiKey, clientID: s.clientID, secret: s.secret}
}

// partner makes the fuzz partner at the first input.
func (s *fuzzStack) partner(t *testing.T) {
	if s.wallets != nil {
		return
	}
	ctx := context.Background()
	var created struct{ ID, APIKey, SigningSecret string }
	teststack.OK(t)(s.Admin.Call(ctx, "POST", "/admin/v1/workspaces", map[string]any{"name": "fuzz"}, 201, &created))
	for _, cur := range []string{"USD", "JPY", "KWD"} {
		res, err := s.Admin.Do(ctx, "POST", "/admin/v1/workspaces/"+created.ID+"/fundings",
			map[string]any{"referenceId": "fund-" + cur, "currency": cur, "amount": 100_000_000}, http.Header{"Prefer": {"wait=10"}})
		if err != nil || res.Status != 200 {
			t.Fatalf("funding %s: %v %+v", cur, err, res)
		}
	}
	s.apiKey, s.clientID, s.secret = created.APIKey, created.ID, created.SigningSecret
	wallets := map[string]string{}
	for cur, funds := range map[string]string{"USD": "100", "JPY": "1000", "KWD": "1.5"} {
		d := expect(t, s.client(t).do("POST", "/customer",
			`{"fullName": "Fuzz", "email": "fuzz@example.com", "currency": "`+cur+`", "initialFunds": `+funds+`}`), 200).data()
		wallets["wal_"+strings.ToLower(cur)] = d["walletId"].(string)
	}
	s.wallets = strings.NewReplacer("wal_usd", wallets["wal_usd"], "wal_jpy", wallets["wal_jpy"], "wal_kwd", wallets["wal_kwd"])
}

// fuzzRoutes are the partner API's write routes; their paths name the
// fuzz partner's wallets.
var fuzzRoutes = []string{"/customer", "/wallets/wal_usd/transactions", "/wallets/wal_jpy/transactions", "/wallets/wal_kwd/transactions"}

// FuzzPartnerWrites sends arbitrary bodies, signed as Orbt documents, to
// the partner API's write routes (route picks one of fuzzRoutes), so each
// reaches the body's decoding: none may answer 5xx (which a panic would
// be), and every answer is the Orbt envelope, success agreeing with the
// status.
func FuzzPartnerWrites(f *testing.F) {
	for _, seed := range []struct {
		route uint8
		body  string
	}{
		{0, `{"fullName": "Jane Doe", "email": "jane@example.com", "currency": "USD", "initialFunds": 12.50}`},
		{0, `{"fullName": "Jane Doe", "email": "Jane@Example.com", "currency": "JPY", "initialFunds": "1000"}`},
		{0, `{"fullName": "Jane Doe", "email": "jane@example.com", "currency": "KWD", "initialFunds": 0.001}`},
		{0, `{"fullName": "J", "email": "j@example.com", "currency": "USD", "initialFunds": 10000000000.01}`},
		{0, `{"fullName": "J", "email": "j@example.com", "currency": "USD", "initialFunds": 1e2}`},
		{1, `{"amount": 10.50, "transactionType": "CREDIT", "referenceId": "fz-1", "description": "reward"}`},
		{1, `{"amount": "0.01", "transactionType": "DEBIT", "referenceId": "fz-2"}`},
		{1, `{"amount": 10.5, "transactionType": "CREDIT", "referenceId": "fz-1"}`},
		{1, `{"amount": 10.505, "transactionType": "CREDIT", "referenceId": "fz-3"}`},
		{2, `{"amount": 1000, "transactionType": "DEBIT", "referenceId": "fz-4"}`},
		{2, `{"amount": 0.5, "transactionType": "CREDIT", "referenceId": "fz-5"}`},
		{3, `{"amount": 1.234, "transactionType": "CREDIT", "referenceId": "fz-6"}`},
		{3, `{"amount": -1, "transactionType": "CREDIT", "referenceId": "fz-7"}`},
		{3, `{"amount": 99999999999999999999, "transactionType": "DEBIT", "referenceId": "fz-8"}`},
		{1, ``}, {1, `null`}, {0, `{"fullName": null}`},
	} {
		f.Add(seed.route, seed.body)
	}
	s := &fuzzStack{Stack: teststack.ForFuzz(f, db.Pool, teststack.Options{})}
	f.Fuzz(func(t *testing.T, route uint8, body string) {
		s.partner(t)
		o := s.client(t)
		path := s.wallets.Replace(fuzzRoutes[int(route)%len(fuzzRoutes)])
		a := o.send(o.signed("POST", path, []byte(body), time.Now())) // which checks the envelope
		if a.status >= 500 {
			t.Fatalf("POST %s %q: %d %s", path, body, a.status, a.raw)
		}
	})
}
