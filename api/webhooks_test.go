package api_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orbt/orbt/webhooksig"
)

// A partner registers an endpoint, receives signed events, reads the
// delivery log, redelivers, rotates the secret and deletes the endpoint.
func TestWebhookEndpointsThroughTheAPI(t *testing.T) {
	s := getStack(t)
	p := newPartner(t, s.URL, 1_000)
	rcv := newReceiver(t)

	ep := expect(t, p.call("POST", "/v1/webhook-endpoints", map[string]any{
		"url": rcv.URL, "events": []string{"transaction.completed"}, "description": "ops"}), 201)
	secret := ep.str("secret")
	if !strings.HasPrefix(secret, "whsec_") || !strings.HasPrefix(ep.str("id"), "whk_") {
		t.Fatalf("endpoint: %s", ep.raw)
	}
	if again := expect(t, p.call("GET", "/v1/webhook-endpoints/"+ep.str("id"), nil), 200); strings.Contains(again.raw, secret) {
		t.Error("the secret is shown again after creation")
	}
	w := p.wallet()
	txn := expect(t, p.transact("wh-1", "credit", w, 10), 202)
	p.await(txn.str("id"))

	deliveries := waitDeliveries(t, p, ep.str("id"), 1)
	d := deliveries[0].(map[string]any)
	if d["status"] != "succeeded" {
		t.Fatalf("delivery: %v", d)
	}
	got, bodies := rcv.received()
	if len(got) != 1 || webhooksig.Verify(bodies[0], got[0], secret) != nil {
		t.Errorf("receiver got %d deliveries, first verifies: %v", len(got), webhooksig.Verify(bodies[0], got[0], secret))
	}

	eventID := d["eventId"].(string)
	expect(t, p.call("POST", "/v1/events/"+eventID+"/redeliver", nil), 202)
	waitDeliveries(t, p, ep.str("id"), 2)
	expect(t, p.call("POST", "/v1/events/evt_nope/redeliver", nil), 404)

	rotated := expect(t, p.call("POST", "/v1/webhook-endpoints/"+ep.str("id")+"/rotate-secret", nil), 200)
	if rotated.str("secret") == secret || rotated.str("secret") == "" {
		t.Errorf("rotation: %s", rotated.raw)
	}
	upd := expect(t, p.call("PATCH", "/v1/webhook-endpoints/"+ep.str("id"), map[string]any{"enabled": false}), 200)
	if upd.body["enabled"] != false {
		t.Errorf("disable: %s", upd.raw)
	}
	expect(t, p.call("DELETE", "/v1/webhook-endpoints/"+ep.str("id"), nil), 204)
	expect(t, p.call("GET", "/v1/webhook-endpoints/"+ep.str("id"), nil), 404)

	other := newPartner(t, s.URL, 0)
	expect(t, other.call("GET", "/v1/webhook-endpoints/"+ep.str("id")+"/deliveries", nil), 404)
	expect(t, other.call("POST", "/v1/events/"+eventID+"/redeliver", nil), 404)

	for _, bad := range []struct{ body, field string }{
		{`{"url":"not a url","events":["transaction.completed"]}`, "url"},
		{`{"url":"https://example.com","events":["transaction.exploded"]}`, "events"},
		{`{"url":"https://example.com","events":[]}`, "events"},
		{`{"events":["transaction.completed"]}`, "url"},
		{`{"url":"https://example.com","events":["transaction.completed"],"secret":"whsec_mine"}`, "secret"},
	} {
		r := expect(t, p.call("POST", "/v1/webhook-endpoints", bad.body), 400)
		if !strings.Contains(r.raw, `"field":"`+bad.field+`"`) {
			t.Errorf("%s: %s", bad.body, r.raw)
		}
	}
}

// receiver is a webhook endpoint that records every delivery.
type receiver struct {
	URL     string
	mu      sync.Mutex
	headers []http.Header
	bodies  [][]byte
}

func newReceiver(t *testing.T) *receiver {
	rcv := &receiver{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rcv.mu.Lock()
		rcv.headers, rcv.bodies = append(rcv.headers, r.Header.Clone()), append(rcv.bodies, body)
		rcv.mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	rcv.URL = srv.URL
	return rcv
}

// received is what arrived so far: each delivery's headers and body.
func (r *receiver) received() ([]http.Header, [][]byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.headers), slices.Clone(r.bodies)
}

func waitDeliveries(t *testing.T, p *partner, endpointID string, n int) []any {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		r := expect(t, p.call("GET", "/v1/webhook-endpoints/"+endpointID+"/deliveries", nil), 200)
		list := r.body["data"].([]any)
		done := len(list) == n
		for _, d := range list {
			done = done && d.(map[string]any)["status"] != "pending"
		}
		if done {
			return list
		}
		if time.Now().After(deadline) {
			t.Fatalf("deliveries: %s", r.raw)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
