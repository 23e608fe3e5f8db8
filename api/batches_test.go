package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/orbt/orbt/app"
	"github.com/orbt/orbt/testenv"
	"github.com/orbt/orbt/teststack"
	"github.com/orbt/orbt/webhooksig"
)

// postCSV sends a CSV batch with its Idempotency-Key.
func (p *partner) postCSV(key, body string) response {
	p.t.Helper()
	header := http.Header{"Content-Type": {"text/csv; charset=utf-8"}}
	if key != "" {
		header.Set("Idempotency-Key", key)
	}
	return callWith(p.t, p.base, "POST", "/v1/batches", p.key, body, header)
}

// awaitBatch polls a batch until it completes.
func (p *partner) awaitBatch(id string) response {
	p.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		r := expect(p.t, p.call("GET", "/v1/batches/"+id, nil), 200)
		if r.str("status") == "completed" {
			return r
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("batch %s still processing: %s", id, r.raw)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func counts(r response) map[string]int64 {
	out := map[string]int64{}
	for k, v := range r.body["counts"].(map[string]any) {
		out[k] = int64(v.(float64))
	}
	return out
}

// A partner pays a whole campaign in one request: new consumers get wallets,
// every item is applied by the worker, a failing item fails alone, and the
// batch completes and says so with a batch.completed event.
func TestBulkPayoutEndToEnd(t *testing.T) {
	s := getStack(t)
	p := newPartner(t, s.URL, 1_000_000)
	existing := p.wallet()
	var items []map[string]any
	for i := range 1000 {
		it := map[string]any{"referenceId": fmt.Sprintf("pay-%d", i), "type": "credit", "amount": 100, "currency": "USD"}
		if i%2 == 0 {
			it["consumerExternalId"] = fmt.Sprintf("member-%d", i)
		} else {
			it["walletId"] = existing
		}
		items = append(items, it)
	}
	items = append(items, map[string]any{"referenceId": "claw-back", "type": "debit", "walletId": p.wallet(), "amount": 1, "currency": "USD"})
	body := map[string]any{"referenceId": "spring-payout", "items": items}

	accepted := expect(t, p.call("POST", "/v1/batches", body), 202)
	if accepted.str("status") != "processing" || !strings.HasPrefix(accepted.str("id"), "bat_") || counts(accepted)["total"] != 1001 {
		t.Fatalf("accepted: %s", accepted.raw)
	}
	id := accepted.str("id")
	done := p.awaitBatch(id)
	if c := counts(done); c["completed"] != 1000 || c["failed"] != 1 || c["pending"] != 0 || done.str("completedAt") == "" {
		t.Fatalf("completed batch: %s", done.raw)
	}
	failed := expect(t, p.call("GET", "/v1/batches/"+id+"/transactions?status=failed", nil), 200)
	data := failed.body["data"].([]any)
	if len(data) != 1 || data[0].(map[string]any)["failureReason"] != "insufficient_funds" || data[0].(map[string]any)["batchId"] != id {
		t.Errorf("failed items: %s", failed.raw)
	}
	if b := p.balance(existing); b != 500*100 {
		t.Errorf("existing wallet %d, want %d", b, 500*100)
	}
	if b := p.partnerBalance(); b != 1_000_000-1000*100 {
		t.Errorf("partner balance %d", b)
	}
	member := expect(t, p.call("GET", "/v1/consumers?externalId=member-998", nil), 200)
	if len(member.body["data"].([]any)) != 1 {
		t.Errorf("consumer member-998 not created: %s", member.raw)
	}
	ev := p.events("batch.completed")
	if len(ev) != 1 || ev[0].(map[string]any)["data"].(map[string]any)["id"] != id {
		t.Errorf("batch.completed events: %v", ev)
	}

	replay := expect(t, p.call("POST", "/v1/batches", body), 202)
	if replay.str("id") != id || replay.header.Get("Idempotent-Replayed") != "true" || replay.str("status") != "completed" {
		t.Errorf("replay: %s", replay.raw)
	}
	items[3]["amount"] = 101
	conflict := expect(t, p.call("POST", "/v1/batches", body), 422)
	if conflict.str("code") != "idempotency_conflict" {
		t.Errorf("changed batch under the same referenceId: %s", conflict.raw)
	}
	assertInvariants(t)
}

func TestBulkPayoutFromCSV(t *testing.T) {
	s := getStack(t)
	p := newPartner(t, s.URL, 10_000)
	cmp := expect(t, p.call("POST", "/v1/campaigns", map[string]any{"name": "Launch", "currency": "USD", "budget": 500}), 201)
	csv := "amount,currency,type,consumerExternalId,referenceId,campaignId\n" +
		"300,USD,credit,csv-a,r1," + cmp.str("id") + "\n" +
		"300,USD,credit,csv-b,r2," + cmp.str("id") + "\n" + // over the campaign budget
		"250,USD,credit,csv-a,r3,\n"
	accepted := p.postCSV("csv-batch-1", csv)
	expect(t, accepted, 202)
	done := p.awaitBatch(accepted.str("id"))
	if c := counts(done); c["completed"] != 2 || c["failed"] != 1 {
		t.Fatalf("csv batch: %s", done.raw)
	}
	failed := expect(t, p.call("GET", "/v1/batches/"+accepted.str("id")+"/transactions?status=failed", nil), 200)
	if f := failed.body["data"].([]any); len(f) != 1 || f[0].(map[string]any)["failureReason"] != "campaign_budget_exceeded" {
		t.Errorf("failed: %s", failed.raw)
	}
	if r := p.postCSV("csv-batch-1", csv); r.status != 202 || r.header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("csv replay: %d %s", r.status, r.raw)
	}
	assertInvariants(t)
}

// fieldsOf lists the field of each error of a problem response.
func fieldsOf(r response) []string {
	var out []string
	errs, _ := r.body["errors"].([]any)
	for _, e := range errs {
		out = append(out, fmt.Sprint(e.(map[string]any)["field"]))
	}
	return out
}

// A malformed item refuses the whole batch with errors naming item and
// field (and the CSV line), and nothing is stored or moved.
func TestMalformedBatchesAreRefusedWhole(t *testing.T) {
	getStack(t) // its worker applies the funding
	base := newServer(t, testenv.AsynqRedis(testenv.RedisOptions(redisDB)), teststack.Options{Settings: app.Settings{BatchItemsMax: 5}})
	p := newPartner(t, base, 10_000)
	w := p.wallet()
	item := func(ref string, extra ...any) map[string]any {
		m := map[string]any{"referenceId": ref, "type": "credit", "walletId": w, "amount": 10, "currency": "USD"}
		for i := 0; i+1 < len(extra); i += 2 {
			if extra[i+1] == nil {
				delete(m, extra[i].(string))
			} else {
				m[extra[i].(string)] = extra[i+1]
			}
		}
		return m
	}
	cases := []struct {
		name   string
		body   any
		status int
		fields []string
	}{
		{"no items", map[string]any{"referenceId": "b"}, 400, []string{"items"}},
		{"too many items", map[string]any{"referenceId": "b", "items": []any{item("1"), item("2"), item("3"), item("4"), item("5"), item("6")}}, 400, []string{"items"}},
		{"no batch referenceId", map[string]any{"items": []any{item("1")}}, 400, []string{"referenceId"}},
		{"bad amounts", map[string]any{"referenceId": "b", "items": []any{item("1"), item("2", "amount", 0), item("3", "amount", -5)}}, 400,
			[]string{"items[1].amount", "items[2].amount"}},
		{"both wallet and consumer", map[string]any{"referenceId": "b", "items": []any{item("1", "consumerExternalId", "x")}}, 400, []string{"items[0].walletId"}},
		{"neither wallet nor consumer", map[string]any{"referenceId": "b", "items": []any{item("1", "walletId", nil)}}, 400, []string{"items[0].walletId"}},
		{"unknown currency", map[string]any{"referenceId": "b", "items": []any{item("1", "currency", "XYZ")}}, 400, []string{"items[0].currency"}},
		{"unknown field", map[string]any{"referenceId": "b", "items": []any{item("1", "balance", 5)}}, 400, []string{"items[0].balance"}},
		{"fractional amount", map[string]any{"referenceId": "b", "items": []any{item("1", "amount", 1.5)}}, 400, []string{"items[0].amount"}},
		{"duplicate item referenceIds", map[string]any{"referenceId": "b", "items": []any{item("1"), item("1")}}, 400, []string{"items[1].referenceId"}},
		{"unknown wallet", map[string]any{"referenceId": "b", "items": []any{item("1"), item("2", "walletId", "wal_nope")}}, 400, []string{"items[1].walletId"}},
		{"unknown campaign", map[string]any{"referenceId": "b", "items": []any{item("1", "walletId", nil, "consumerExternalId", "x", "campaignId", "cmp_nope")}}, 400, []string{"items[0].campaignId"}},
		{"not json", "{items:", 400, nil},
		{"oversized", `{"referenceId":"b","items":[` + strings.Repeat(`{"referenceId":"x"},`, 500_000) + `]}`, 413, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := p.call("POST", "/v1/batches", tc.body)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %.300s", r.status, tc.status, r.raw)
			}
			if got := fieldsOf(r); tc.fields != nil && fmt.Sprint(got) != fmt.Sprint(tc.fields) {
				t.Errorf("fields %v, want %v: %s", got, tc.fields, r.raw)
			}
		})
	}

	csvCases := []struct {
		name, key, body string
		status          int
		fields          []string
		line            float64
	}{
		{"no key", "", "referenceId,walletId,type,amount,currency\nr1," + w + ",credit,10,USD\n", 400, []string{"Idempotency-Key"}, 0},
		{"unknown column", "k", "referenceId,wallet,type,amount,currency\nr1," + w + ",credit,10,USD\n", 400, []string{"header"}, 0},
		{"bad amount on line 3", "k", "referenceId,walletId,type,amount,currency\nr1," + w + ",credit,10,USD\nr2," + w + ",credit,ten,USD\n", 400, []string{"items[1].amount"}, 3},
		{"ragged row", "k", "referenceId,walletId,type,amount,currency\nr1," + w + ",credit\n", 400, nil, 0},
		{"empty", "k", "", 400, nil, 0},
	}
	for _, tc := range csvCases {
		t.Run("csv "+tc.name, func(t *testing.T) {
			r := p.postCSV(tc.key, tc.body)
			if r.status != tc.status || r.header.Get("Content-Type") != "application/problem+json" {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.raw)
			}
			if got := fieldsOf(r); tc.fields != nil && fmt.Sprint(got) != fmt.Sprint(tc.fields) {
				t.Errorf("fields %v, want %v: %s", got, tc.fields, r.raw)
			}
			if tc.line > 0 && r.body["errors"].([]any)[0].(map[string]any)["line"] != tc.line {
				t.Errorf("line not reported: %s", r.raw)
			}
		})
	}

	var stored int
	db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM transactions t JOIN wallets w ON w.id = t.wallet_id
		WHERE w.id = $1`, w).Scan(&stored)
	if stored != 0 {
		t.Errorf("refused batches stored %d transactions", stored)
	}
	if b := p.partnerBalance(); b != 10_000 {
		t.Errorf("partner balance %d after refused batches", b)
	}
}

// batch.completed reaches a subscribed receiver through the webhook
// pipeline, signed, with the batch's final counts.
func TestBatchCompletedIsDeliveredAsAWebhook(t *testing.T) {
	s := getStack(t)
	p := newPartner(t, s.URL, 1_000)
	got := make(chan []byte, 4)
	var secret string
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if webhooksig.Verify(body, r.Header, secret) != nil {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		got <- body
	}))
	defer rcv.Close()
	ep := expect(t, p.call("POST", "/v1/webhook-endpoints", map[string]any{"url": rcv.URL, "events": []string{"batch.completed"}}), 201)
	secret = ep.str("secret")

	b := expect(t, p.call("POST", "/v1/batches", map[string]any{"referenceId": "hooked", "items": []any{
		map[string]any{"referenceId": "h1", "type": "credit", "consumerExternalId": "hook-1", "amount": 10, "currency": "USD"},
		map[string]any{"referenceId": "h2", "type": "debit", "consumerExternalId": "hook-2", "amount": 10, "currency": "USD"},
	}}), 202)
	select {
	case body := <-got:
		var ev struct {
			Type string `json:"type"`
			Data struct {
				ID     string         `json:"id"`
				Status string         `json:"status"`
				Counts map[string]int `json:"counts"`
			} `json:"data"`
		}
		if err := json.Unmarshal(body, &ev); err != nil {
			t.Fatal(err)
		}
		if ev.Type != "batch.completed" || ev.Data.ID != b.str("id") || ev.Data.Status != "completed" ||
			ev.Data.Counts["completed"] != 1 || ev.Data.Counts["failed"] != 1 {
			t.Errorf("event: %s", body)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no batch.completed delivery")
	}
}
