package api_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"
)

// Every list pages by the key it sorts by: rows created at distinct times,
// read two at a time, come back each exactly once. A cursor the server did
// not issue, or issued by another list, is a 400 naming cursor.
func TestEveryListPagesCompletelyAndRefusesForeignCursors(t *testing.T) {
	s := getStack(t)
	p := newPartner(t, s.URL, 100_000)
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.Copy(io.Discard, r.Body) }))
	defer rcv.Close()

	const n = 5
	pause := func() { time.Sleep(3 * time.Millisecond) } // distinct creation times
	consumer := expect(t, p.call("POST", "/v1/consumers", map[string]any{"externalId": "pager"}), 201).str("id")
	var wallet, endpoint, batch, eventID string
	for i, cur := range []string{"USD", "EUR", "GBP", "JPY", "CHF"} {
		w := expect(t, p.call("POST", "/v1/consumers/"+consumer+"/wallets", map[string]any{"currency": cur, "type": "standard"}), 201)
		if i == 0 {
			wallet = w.str("id")
		}
		pause()
	}
	for i := range n {
		expect(t, p.call("POST", "/v1/consumers", map[string]any{"externalId": fmt.Sprint("pager-", i)}), 201)
		expect(t, p.call("POST", "/v1/api-keys", map[string]any{"name": fmt.Sprint("k", i), "scope": "read"}), 201)
		expect(t, p.call("POST", "/v1/campaigns", map[string]any{"name": fmt.Sprint("c", i), "currency": "USD"}), 201)
		e := expect(t, p.call("POST", "/v1/webhook-endpoints", map[string]any{"url": rcv.URL, "events": []string{"batch.completed"}}), 201)
		endpoint = e.str("id")
		txn := expect(t, p.transact(fmt.Sprint("page-", i), "credit", wallet, 10), 202)
		p.await(txn.str("id"))
		expect(t, p.call("POST", "/v1/redemptions", map[string]any{"referenceId": fmt.Sprint("page-red-", i), "walletId": wallet,
			"brandId": "not-enabled", "amount": 1}), 202)
		batch = expect(t, p.call("POST", "/v1/batches", map[string]any{"referenceId": fmt.Sprint("page-batch-", i),
			"items": []map[string]any{{"referenceId": fmt.Sprint("page-item-", i), "walletId": wallet, "type": "credit", "amount": 1, "currency": "USD"}}}), 202).str("id")
		pause()
	}
	events := p.events("transaction.completed")
	eventID = events[0].(map[string]any)["id"].(string)
	for range n - 1 { // n deliveries of one event to the last endpoint, at distinct times
		expect(t, p.call("POST", "/v1/events/"+eventID+"/redeliver", map[string]any{"endpointId": endpoint}), 202)
		pause()
	}
	expect(t, p.call("POST", "/v1/events/"+eventID+"/redeliver", map[string]any{"endpointId": endpoint}), 202)

	lists := map[string]int{ // path: rows at least
		"/v1/api-keys": n, "/v1/consumers": n, "/v1/campaigns": n, "/v1/transactions": n, "/v1/batches": n,
		"/v1/events": n, "/v1/webhook-endpoints": n, "/v1/webhook-endpoints/" + endpoint + "/deliveries": n,
		"/v1/consumers/" + consumer + "/wallets": 5, "/v1/wallets/" + wallet + "/transactions": n,
		"/v1/batches/" + batch + "/transactions": 1, "/v1/redemptions": n,
	}
	var cursors []string
	for path, least := range lists {
		seen := map[string]bool{}
		rows, cursor := 0, ""
		for pages := 0; ; pages++ {
			q := "?limit=2"
			if cursor != "" {
				q += "&cursor=" + url.QueryEscape(cursor)
			}
			r := expect(t, p.call("GET", path+q, nil), 200)
			for _, row := range r.body["data"].([]any) {
				m := row.(map[string]any)
				id := fmt.Sprint(m["id"], m["entryId"])
				if seen[id] {
					t.Errorf("%s: row %s on two pages", path, id)
				}
				seen[id] = true
				rows++
			}
			next, _ := r.body["nextCursor"].(string)
			if next == "" || pages > 100 {
				break
			}
			cursor = next
			cursors = append(cursors, path+" "+next)
		}
		if rows < least {
			t.Errorf("%s: %d rows paged, want at least %d", path, rows, least)
		}
		r := expect(t, p.call("GET", path+"?cursor=%25%25%25garbage", nil), 400)
		if fields := fieldsOf(r); len(fields) != 1 || fields[0] != "cursor" {
			t.Errorf("%s with a garbage cursor: %s", path, r.raw)
		}
	}
	// A cursor of the transactions list means nothing to the consumers list.
	for _, c := range cursors {
		var path, cursor string
		fmt.Sscan(c, &path, &cursor)
		if path == "/v1/transactions" {
			expect(t, p.call("GET", "/v1/consumers?cursor="+url.QueryEscape(cursor), nil), 400)
			break
		}
	}
	expect(t, p.call("GET", "/v1/events?after=evt_never_issued", nil), 400)
}
