package api_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/orbt/orbt/giftcard"
	"github.com/orbt/orbt/teststack"
)

// Every malformed request gets a 4xx problem naming the field, and changes
// nothing.
func TestMalformedRequestsAre4xxAndChangeNothing(t *testing.T) {
	s := getStack(t)
	p := newPartner(t, s.URL, 10_000)
	w := p.wallet()
	valid := func(ref, extra string) string {
		return fmt.Sprintf(`{"referenceId":%q,"type":"credit","walletId":%q,"amount":100,"currency":"USD"%s}`, ref, w, extra)
	}
	long := strings.Repeat("x", 256)
	cases := []struct {
		name   string
		body   string
		status int
		field  string
	}{
		{"not JSON", `{"referenceId":`, 400, ""},
		{"empty body", ``, 400, ""},
		{"an array", `[1,2]`, 400, ""},
		{"two objects", valid("v1", "") + `{}`, 400, ""},
		{"unknown field", valid("v2", `,"balance":5`), 400, "balance"},
		{"mass-assigned status", valid("v3", `,"status":"completed"`), 400, "status"},
		// One body means one thing to every reader: no second amount, no
		// name matched by case alone.
		{"amount given twice", valid("v4", `,"amount":100000`), 400, "amount"},
		{"amount in capitals", valid("v5", `,"AMOUNT":100000`), 400, "AMOUNT"},
		{"type in another case", `{"referenceId":"v6","Type":"debit","type":"credit","walletId":"` + w + `","amount":100,"currency":"USD"}`, 400, "Type"},
		{"metadata key twice", valid("v7", `,"metadata":{"a":"1","a":"2"}`), 400, "metadata.a"},
		{"invalid UTF-8", valid("v8", ",\"description\":\"\xff\""), 400, "description"},
		{"amount as string", `{"referenceId":"a1","type":"credit","walletId":"` + w + `","amount":"100","currency":"USD"}`, 400, "amount"},
		{"fractional amount", `{"referenceId":"a2","type":"credit","walletId":"` + w + `","amount":10.5,"currency":"USD"}`, 400, "amount"},
		{"zero amount", `{"referenceId":"a3","type":"credit","walletId":"` + w + `","amount":0,"currency":"USD"}`, 400, "amount"},
		{"negative amount", `{"referenceId":"a4","type":"credit","walletId":"` + w + `","amount":-5,"currency":"USD"}`, 400, "amount"},
		{"absurd amount", `{"referenceId":"a5","type":"credit","walletId":"` + w + `","amount":1000000000000000,"currency":"USD"}`, 400, "amount"},
		{"overflowing amount", `{"referenceId":"a6","type":"credit","walletId":"` + w + `","amount":99999999999999999999,"currency":"USD"}`, 400, "amount"},
		{"exponent amount", `{"referenceId":"a7","type":"credit","walletId":"` + w + `","amount":1e3,"currency":"USD"}`, 400, "amount"},
		{"unknown currency", `{"referenceId":"a8","type":"credit","walletId":"` + w + `","amount":1,"currency":"ABC"}`, 400, "currency"},
		{"lower-case currency", `{"referenceId":"a9","type":"credit","walletId":"` + w + `","amount":1,"currency":"usd"}`, 400, "currency"},
		{"missing currency", `{"referenceId":"b1","type":"credit","walletId":"` + w + `","amount":1}`, 400, "currency"},
		{"unknown type", `{"referenceId":"b2","type":"refund","walletId":"` + w + `","amount":1,"currency":"USD"}`, 400, "type"},
		{"missing referenceId", `{"type":"credit","walletId":"` + w + `","amount":1,"currency":"USD"}`, 400, "referenceId"},
		{"over-long referenceId", `{"referenceId":"` + long + `","type":"credit","walletId":"` + w + `","amount":1,"currency":"USD"}`, 400, "referenceId"},
		{"referenceId with spaces", `{"referenceId":"a b","type":"credit","walletId":"` + w + `","amount":1,"currency":"USD"}`, 400, "referenceId"},
		{"over-long description", `{"referenceId":"b3","type":"credit","walletId":"` + w + `","amount":1,"currency":"USD","description":"` + strings.Repeat("d", 501) + `"}`, 400, "description"},
		{"NUL in description", `{"referenceId":"b4","type":"credit","walletId":"` + w + `","amount":1,"currency":"USD","description":"a\u0000b"}`, 400, "description"},
		{"metadata not strings", `{"referenceId":"b5","type":"credit","walletId":"` + w + `","amount":1,"currency":"USD","metadata":{"a":1}}`, 400, "metadata.a"},
		{"metadata as array", `{"referenceId":"b6","type":"credit","walletId":"` + w + `","amount":1,"currency":"USD","metadata":[]}`, 400, "metadata"},
		{"wallet id over-long", `{"referenceId":"b7","type":"credit","walletId":"` + long + `","amount":1,"currency":"USD"}`, 400, "walletId"},
		{"unknown wallet", `{"referenceId":"b8","type":"credit","walletId":"wal_nope","amount":1,"currency":"USD"}`, 404, "walletId"},
		{"oversized body", `{"referenceId":"b9","type":"credit","walletId":"` + w + `","amount":1,"currency":"USD","description":"` + strings.Repeat("x", 2<<20) + `"}`, 413, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := p.call("POST", "/v1/transactions", c.body)
			if r.status != c.status {
				t.Fatalf("status %d, want %d: %s", r.status, c.status, r.raw)
			}
			if r.str("code") == "" || r.num("status") != int64(c.status) || r.str("type") == "" {
				t.Errorf("not a problem response: %s", r.raw)
			}
			if c.field != "" && !strings.Contains(r.raw, `"field":"`+c.field+`"`) {
				t.Errorf("problem does not name field %q: %s", c.field, r.raw)
			}
		})
	}
	list := expect(t, p.call("GET", "/v1/transactions", nil), 200)
	if n := len(list.body["data"].([]any)); n != 1 { // the funding only
		t.Errorf("%d transactions stored after bad requests, want 1 (the funding)", n)
	}
	if b := p.balance(w); b != 0 {
		t.Errorf("wallet balance %d, want 0", b)
	}
	if b := p.partnerBalance(); b != 10_000 {
		t.Errorf("partner balance %d, want 10000", b)
	}
}

// The other write routes validate the same way.
func TestMalformedObjectsAre4xx(t *testing.T) {
	s := getStack(t)
	p := newPartner(t, s.URL, 0)
	c := expect(t, p.call("POST", "/v1/consumers", map[string]any{"externalId": "ok-1"}), 201).str("id")
	cases := []struct {
		method, path, body string
		status             int
		field              string
	}{
		{"POST", "/v1/consumers", `{"externalId":""}`, 400, "externalId"},
		{"POST", "/v1/consumers", `{"externalId":"x","email":"not-an-email"}`, 400, "email"},
		{"POST", "/v1/consumers", `{"externalId":"ok-1"}`, 409, "externalId"},
		{"POST", "/v1/consumers", `{"externalId":"y","id":"csm_mine"}`, 400, "id"},
		{"PATCH", "/v1/consumers/" + c, `{"externalId":"z"}`, 400, "externalId"},
		{"POST", "/v1/consumers/" + c + "/wallets", `{"currency":"USD","type":"gold"}`, 400, "type"},
		{"POST", "/v1/consumers/" + c + "/wallets", `{"currency":"USD","type":"campaign"}`, 400, "campaignId"},
		{"POST", "/v1/consumers/" + c + "/wallets", `{"currency":"USD","type":"campaign","campaignId":"cmp_nope"}`, 404, "campaignId"},
		{"POST", "/v1/consumers/" + c + "/wallets", `{"currency":"USD","type":"standard","balance":100}`, 400, "balance"},
		{"POST", "/v1/campaigns", `{"name":"x","currency":"USD","budget":-1}`, 400, "budget"},
		{"POST", "/v1/campaigns", `{"name":"x","currency":"USD","startsAt":"tomorrow"}`, 400, "startsAt"},
		{"POST", "/v1/campaigns", `{"name":"x","currency":"USD","startsAt":"2026-02-01T00:00:00Z","endsAt":"2026-01-01T00:00:00Z"}`, 400, "endsAt"},
		{"POST", "/v1/campaigns", `{"currency":"USD"}`, 400, "name"},
		{"POST", "/v1/api-keys", `{"name":"k","scope":"admin"}`, 400, "scope"},
		{"GET", "/v1/transactions?limit=0", ``, 400, "limit"},
		{"GET", "/v1/transactions?limit=501", ``, 400, "limit"},
		{"GET", "/v1/transactions?status=weird", ``, 400, "status"},
		{"GET", "/v1/consumers/%00", ``, 404, ""},
		{"GET", "/v1/wallets/" + strings.Repeat("w", 100), ``, 404, ""},
		{"GET", "/v1/nowhere", ``, 404, ""},
		{"PUT", "/v1/transactions", `{}`, 405, ""},
	}
	for _, tc := range cases {
		t.Run(tc.method+" "+tc.path+" "+tc.body, func(t *testing.T) {
			r := p.call(tc.method, tc.path, tc.body)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.raw)
			}
			if tc.field != "" && !strings.Contains(r.raw, `"field":"`+tc.field+`"`) {
				t.Errorf("problem does not name field %q: %s", tc.field, r.raw)
			}
		})
	}
}

// FuzzCreateTransaction throws arbitrary bodies at the transaction endpoint;
// none may produce a 5xx. `go test` runs the seeds; `go test -fuzz` explores.
func FuzzCreateTransaction(f *testing.F) {
	for _, seed := range []string{
		`{"referenceId":"f1","type":"credit","walletId":"wal_x","amount":1,"currency":"USD"}`,
		`{"referenceId":"f2","type":"debit","walletId":"wal_x","amount":9223372036854775807,"currency":"JPY"}`,
		`{"referenceId":"\u0000","type":"credit","walletId":"\ud800","amount":1,"currency":"USD","metadata":{"":""}}`,
		`{"amount":-9223372036854775808}`, `null`, `"str"`, `{"metadata":{"k":"` + strings.Repeat("v", 600) + `"}}`,
		`{"description":null,"metadata":null}`, "\xff\xfe", `{"referenceId":"f3","type":"credit","walletId":"wal_x","amount":1,"currency":"XXX"}`,
	} {
		f.Add(seed)
	}
	s := newFuzzStack(f)
	f.Fuzz(func(t *testing.T, body string) {
		p := s.fuzzPartner(t)
		body = strings.ReplaceAll(body, "wal_x", p.walletID)
		res, err := s.Client(p.key).Do(context.Background(), "POST", "/v1/transactions", body, nil)
		if err != nil {
			t.Fatal(err)
		}
		if res.Status >= 500 {
			t.Fatalf("body %q: status %d", body, res.Status)
		}
	})
}

// fuzzStack is a fuzz target's stack (teststack.ForFuzz) with its fuzz
// partner, made at the first input and shared by every input a fuzzing
// process tries.
type fuzzStack struct {
	*teststack.Stack
	partner *fuzzTarget
}

// fuzzTarget is the fuzz partner: a workspace with one object of each
// kind for requests to name (bodies and paths say wal_x, csm_x, cmp_x,
// whk_x, evt_x, ws_x).
type fuzzTarget struct {
	key, walletID string
	ids           *strings.Replacer
}

func newFuzzStack(f *testing.F) *fuzzStack {
	return &fuzzStack{Stack: teststack.ForFuzz(f, db.Pool, teststack.Options{})}
}

func (s *fuzzStack) fuzzPartner(t *testing.T) *fuzzTarget {
	if s.partner != nil {
		return s.partner
	}
	p := newPartner(t, s.URL, 1_000_000)
	p.enableBrands(giftcard.BrandSandboxCoffee, giftcard.BrandSandboxBooks, giftcard.BrandSandboxDeclines)
	w := p.wallet()
	p.credit(w, 100_000)
	consumer := expect(t, p.call("GET", "/v1/wallets/"+w, nil), 200).str("consumerId")
	campaign := expect(t, p.call("POST", "/v1/campaigns", map[string]any{"name": "fuzz", "currency": "USD", "budget": 100_000}), 201).str("id")
	// Nothing listens on the discard port: deliveries fail at once.
	endpoint := expect(t, p.call("POST", "/v1/webhook-endpoints",
		map[string]any{"url": "http://127.0.0.1:9/fuzz", "events": []string{"batch.completed"}}), 201).str("id")
	event := p.events("transaction.completed")[0].(map[string]any)["id"].(string)
	s.partner = &fuzzTarget{key: p.key, walletID: w, ids: strings.NewReplacer("wal_x", w, "csm_x", consumer, "cmp_x", campaign,
		"whk_x", endpoint, "evt_x", event, "ws_x", p.id)}
	return s.partner
}

// fuzzRoutes are the write routes of /v1 and /admin/v1 that read a body
// (and the rotations, which must ignore one), with the objects they name.
var fuzzRoutes = []struct {
	method, path string
	// csv sends the body as text/csv, with the fuzzed header as its
	// Idempotency-Key; admin sends the admin token.
	csv, admin bool
}{
	{method: "POST", path: "/v1/consumers"},
	{method: "PATCH", path: "/v1/consumers/csm_x"},
	{method: "POST", path: "/v1/consumers/csm_x/wallets"},
	{method: "POST", path: "/v1/consumers/csm_x/links"},
	{method: "POST", path: "/v1/campaigns"},
	{method: "PATCH", path: "/v1/campaigns/cmp_x"},
	{method: "POST", path: "/v1/transactions"},
	{method: "POST", path: "/v1/batches"},
	{method: "POST", path: "/v1/batches", csv: true},
	{method: "POST", path: "/v1/redemptions"},
	{method: "POST", path: "/v1/api-keys"},
	{method: "POST", path: "/v1/webhook-endpoints"},
	{method: "PATCH", path: "/v1/webhook-endpoints/whk_x"},
	{method: "POST", path: "/v1/webhook-endpoints/whk_x/rotate-secret"},
	{method: "POST", path: "/v1/events/evt_x/redeliver"},
	{method: "POST", path: "/v1/workspace/signing-secret/rotate"},
	{method: "POST", path: "/admin/v1/workspaces", admin: true},
	{method: "POST", path: "/admin/v1/workspaces/ws_x/fundings", admin: true},
	{method: "PUT", path: "/admin/v1/workspaces/ws_x/brands", admin: true},
}

// FuzzWriteRoutes throws arbitrary bodies at every write route of the
// native API (route picks one of fuzzRoutes; header is a CSV batch's
// Idempotency-Key): none may answer 5xx, which a panic would be, and the
// API may take nothing the OpenAPI document refuses.
func FuzzWriteRoutes(f *testing.F) {
	for _, seed := range []struct {
		route        uint8
		body, header string
	}{
		{0, `{"externalId":"fz-1","email":"ada@example.com","name":"Ada","metadata":{"tier":"gold"}}`, ""},
		{1, `{"email":"ada@example.org","metadata":{}}`, ""},
		{2, `{"currency":"USD","type":"campaign","campaignId":"cmp_x"}`, ""},
		{3, `{"expiresInSeconds":3600}`, ""},
		{4, `{"name":"spring","currency":"KWD","budget":1,"startsAt":"2026-01-01T00:00:00Z","allowedBrands":["sandbox-coffee"]}`, ""},
		{5, `{"status":"paused","endsAt":"2999-01-01T00:00:00+14:00"}`, ""},
		{6, `{"referenceId":"fz-t1","type":"debit","walletId":"wal_x","amount":1,"currency":"USD","metadata":{"k":"v"}}`, ""},
		{7, `{"referenceId":"fz-b1","items":[{"referenceId":"fz-b1-1","walletId":"wal_x","type":"credit","amount":1,"currency":"USD"},` +
			`{"referenceId":"fz-b1-2","consumerExternalId":"fz-c1","campaignId":"cmp_x","type":"credit","amount":1,"currency":"USD"}]}`, ""},
		{8, "referenceId,walletId,type,amount,currency\nfz-c1,wal_x,credit,1,USD\n", "fz-csv-1"},
		{8, "\ufeffamount,referenceId,consumerExternalId,type,currency,description\n1,fz-c2,fz-c2,credit,JPY,\"a,b\"\n", "fz-csv-2"},
		{9, `{"referenceId":"fz-r1","walletId":"wal_x","brandId":"sandbox-coffee","amount":500}`, ""},
		{10, `{"name":"fuzz","scope":"read"}`, ""},
		{11, `{"url":"https://hooks.example.com/x","events":["transaction.completed"],"description":"d"}`, ""},
		{12, `{"enabled":false,"events":["batch.completed"]}`, ""},
		{13, ``, ""},
		{14, `{"endpointId":"whk_x"}`, ""},
		{15, `{}`, ""},
		{16, `{"name":"fuzz workspace"}`, ""},
		{17, `{"referenceId":"fz-f1","currency":"EUR","amount":5}`, ""},
		{18, `{"brandIds":["sandbox-coffee","sandbox-books","sandbox-declines"]}`, ""},
	} {
		f.Add(seed.route, seed.body, seed.header)
	}
	s := newFuzzStack(f)
	f.Fuzz(func(t *testing.T, route uint8, body, header string) {
		p := s.fuzzPartner(t)
		r := fuzzRoutes[int(route)%len(fuzzRoutes)]
		path, body := p.ids.Replace(r.path), p.ids.Replace(body)
		h := http.Header{}
		if r.csv {
			if !validHeaderValue(header) {
				t.Skip("not a value an HTTP client sends")
			}
			h.Set("Content-Type", "text/csv")
			h.Set("Idempotency-Key", p.ids.Replace(header))
		}
		key := p.key
		if r.admin {
			key = adminToken
		}
		before := len(s.SpecViolations())
		res, err := s.Client(key).Do(context.Background(), r.method, path, body, h)
		if err != nil {
			t.Fatal(err)
		}
		if res.Status >= 500 {
			t.Fatalf("%s %s %q: status %d: %s", r.method, path, body, res.Status, res.Body)
		}
		if v := s.SpecViolations(); len(v) > before {
			t.Fatalf("%s %s %q: %s", r.method, path, body, v[len(v)-1])
		}
	})
}

// validHeaderValue reports whether an HTTP client would send s as a
// header's value: no control characters but tab.
func validHeaderValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if (s[i] < 0x20 && s[i] != '\t') || s[i] == 0x7f {
			return false
		}
	}
	return true
}

// The gift card and consumer link routes validate the same way: a 4xx
// problem naming the field; nothing stored, held or moved.
func TestMalformedRedemptionsAndLinksAre4xxAndMoveNothing(t *testing.T) {
	s := getStack(t)
	p, w := newRedeemer(t, s.URL, 10_000, 5_000, sandboxBrands...)
	c := expect(t, p.call("GET", "/v1/wallets/"+w, nil), 200).str("consumerId")
	other := newPartner(t, s.URL, 0)
	foreign := other.wallet()
	red := func(ref, rest string) string {
		return `{"referenceId":"` + ref + `","walletId":"` + w + `"` + rest + `}`
	}
	long := strings.Repeat("x", 256)
	cases := []struct {
		method, path, key, body string
		status                  int
		field                   string
	}{
		{"POST", "/v1/redemptions", "", `{"referenceId":`, 400, ""},
		{"POST", "/v1/redemptions", "", red("r1", `,"brandId":"sandbox-coffee"`), 400, "amount"},
		{"POST", "/v1/redemptions", "", red("r2", `,"brandId":"sandbox-coffee","amount":"10.00"`), 400, "amount"},
		{"POST", "/v1/redemptions", "", red("r3", `,"brandId":"sandbox-coffee","amount":-500`), 400, "amount"},
		{"POST", "/v1/redemptions", "", red("r4", `,"brandId":"sandbox-coffee","amount":12.5`), 400, "amount"},
		{"POST", "/v1/redemptions", "", red("r5", `,"amount":500`), 400, "brandId"},
		{"POST", "/v1/redemptions", "", red("r6", `,"brandId":"`+long+`","amount":500`), 400, "brandId"},
		{"POST", "/v1/redemptions", "", red("r7", `,"brandId":"sandbox-coffee","amount":500,"status":"completed"`), 400, "status"},
		{"POST", "/v1/redemptions", "", red("r8", `,"brandId":"sandbox-coffee","amount":500,"code":"FREE"`), 400, "code"},
		{"POST", "/v1/redemptions", "", red("a b", `,"brandId":"sandbox-coffee","amount":500`), 400, "referenceId"},
		{"POST", "/v1/redemptions", "", `{"referenceId":"r9","brandId":"sandbox-coffee","amount":500}`, 400, "walletId"},
		{"POST", "/v1/redemptions", "", `{"referenceId":"r10","walletId":"wal_nope","brandId":"sandbox-coffee","amount":500}`, 404, "walletId"},
		{"POST", "/v1/redemptions", "", `{"referenceId":"r11","walletId":"` + foreign + `","brandId":"sandbox-coffee","amount":500}`, 404, "walletId"},
		{"GET", "/v1/redemptions?status=lost", "", ``, 400, "status"},
		{"GET", "/v1/redemptions?walletId=a%20b", "", ``, 400, "walletId"},
		{"GET", "/v1/redemptions?cursor=bm9wZQ", "", ``, 400, "cursor"},
		{"GET", "/v1/redemptions/red_nope", "", ``, 404, ""},
		{"POST", "/v1/consumers/" + c + "/links", "", `{"expiresInSeconds":0}`, 400, "expiresInSeconds"},
		{"POST", "/v1/consumers/" + c + "/links", "", `{"expiresInSeconds":2592001}`, 400, "expiresInSeconds"},
		{"POST", "/v1/consumers/" + c + "/links", "", `{"expiresInSeconds":"1h"}`, 400, "expiresInSeconds"},
		{"POST", "/v1/consumers/" + c + "/links", "", `{"consumerId":"csm_other"}`, 400, "consumerId"},
		{"POST", "/v1/consumers/csm_nope/links", "", `{}`, 404, ""},
		{"DELETE", "/v1/consumers/" + c + "/links/lnk_nope", "", ``, 404, ""},
		{"PUT", "/admin/v1/workspaces/" + p.id + "/brands", adminToken, `{}`, 400, "brandIds"},
		{"PUT", "/admin/v1/workspaces/" + p.id + "/brands", adminToken, `{"brandIds":"sandbox-coffee"}`, 400, "brandIds"},
		{"PUT", "/admin/v1/workspaces/" + p.id + "/brands", adminToken, `{"brandIds":["sandbox-coffee","no-such"]}`, 422, "brandIds[1]"},
		{"PUT", "/admin/v1/workspaces/" + p.id + "/brands", adminToken, `{"brandIds":["a b"]}`, 400, "brandIds[0]"},
		{"PUT", "/admin/v1/workspaces/ws_nope/brands", adminToken, `{"brandIds":[]}`, 404, ""},
		{"PUT", "/admin/v1/workspaces/" + p.id + "/brands", p.key, `{"brandIds":[]}`, 401, ""},
	}
	for _, tc := range cases {
		t.Run(tc.method+" "+tc.path+" "+tc.body, func(t *testing.T) {
			key := tc.key
			if key == "" {
				key = p.key
			}
			r := call(t, s.URL, tc.method, tc.path, key, tc.body)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.raw)
			}
			if tc.field != "" && !strings.Contains(r.raw, `"field":"`+tc.field+`"`) {
				t.Errorf("problem does not name field %q: %s", tc.field, r.raw)
			}
		})
	}
	if list := expect(t, p.call("GET", "/v1/redemptions", nil), 200); len(list.body["data"].([]any)) != 0 {
		t.Errorf("redemptions stored after bad requests: %s", list.raw)
	}
	if wr := p.wallet2(w); wr.num("balance") != 5_000 || wr.num("held") != 0 {
		t.Errorf("wallet after bad requests: %s", wr.raw)
	}
	if got := len(expect(t, p.call("GET", "/v1/brands", nil), 200).body["data"].([]any)); got != len(sandboxBrands) {
		t.Errorf("%d brands enabled after refused changes, want %d", got, len(sandboxBrands))
	}
	assertGiftCardInvariants(t, s)
}

// A read key may look but not redeem, see a card or open links; links are
// shown once and revoked by the partner.
func TestRedemptionAndLinkScopes(t *testing.T) {
	s := getStack(t)
	p := newPartner(t, s.URL, 10_000)
	p.enableBrands(giftcard.BrandSandboxCoffee)
	w := p.wallet()
	c := expect(t, p.call("GET", "/v1/wallets/"+w, nil), 200).str("consumerId")
	read := expect(t, p.call("POST", "/v1/api-keys", map[string]any{"name": "ro", "scope": "read"}), 201).str("key")
	for _, tc := range []struct{ method, path, body string }{
		{"POST", "/v1/redemptions", `{"referenceId":"x","walletId":"` + w + `","brandId":"sandbox-coffee","amount":500}`},
		{"POST", "/v1/consumers/" + c + "/links", `{}`},
	} {
		if r := call(t, s.URL, tc.method, tc.path, read, tc.body); r.status != 403 || r.str("code") != "insufficient_scope" {
			t.Errorf("%s %s with a read key: %s", tc.method, tc.path, r.raw)
		}
	}
	expect(t, call(t, s.URL, "GET", "/v1/brands", read, nil), 200)
	p.credit(w, 1_000)
	card := p.redeem("scoped", w, giftcard.BrandSandboxCoffee, 500)
	if card.str("code") == "" {
		t.Fatalf("redemption: %s", card.raw)
	}
	if seen := expect(t, call(t, s.URL, "GET", "/v1/redemptions/"+card.str("id"), read, nil), 200); seen.str("code") != "" || seen.str("pin") != "" ||
		seen.str("status") != "completed" {
		t.Fatalf("a read key sees the card: %s", seen.raw)
	}
	link := expect(t, p.call("POST", "/v1/consumers/"+c+"/links", map[string]any{"expiresInSeconds": 3600}), 201)
	if !strings.HasPrefix(link.str("url"), s.URL+"/c/l/") || link.str("expiresAt") == "" {
		t.Fatalf("link: %s", link.raw)
	}
	revoked := expect(t, p.call("DELETE", "/v1/consumers/"+c+"/links/"+link.str("id"), nil), 200)
	if revoked.str("revokedAt") == "" || revoked.str("url") != "" {
		t.Fatalf("revoked link: %s", revoked.raw)
	}
	res, err := http.Get(link.str("url"))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 404 {
		t.Fatalf("revoked link opens with %d", res.StatusCode)
	}
}
