package api_test

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/orbt/orbt/app"
	"github.com/orbt/orbt/logging"
	"github.com/orbt/orbt/seal"
	"github.com/orbt/orbt/store"
	"github.com/orbt/orbt/testenv"
	"github.com/orbt/orbt/teststack"
)

// Every request leaves one JSON access line naming its route, status,
// request id and, once known, its workspace, key and transaction; no line
// holds a key, the admin token, a signing secret or a consumer link's
// token, though each was sent or answered.
func TestLogsNameTheRequestAndNoSecret(t *testing.T) {
	shared := getStack(t) // its worker applies what this API accepts
	var out testenv.SyncBuffer
	log, err := logging.New(&out, logging.FormatJSON, "debug")
	if err != nil {
		t.Fatal(err)
	}
	// The shared worker seals the card code: this process opens it with the same key.
	base := newServer(t, testenv.AsynqRedis(testenv.RedisOptions(redisDB)), teststack.Options{Logger: log,
		Settings: app.Settings{DataKey: shared.App.Settings.DataKey}})
	created := expect(t, call(t, base, "POST", "/admin/v1/workspaces", adminToken, map[string]any{"name": "logged"}), 201)
	p := &partner{t: t, base: base, id: created.str("id"), key: created.str("apiKey")}
	p.fund("log-fund", 1_000)
	w := p.wallet()
	txn := expect(t, p.transact("log-credit", "credit", w, 900), 202)
	p.await(txn.str("id"))
	consumer := expect(t, p.call("GET", "/v1/wallets/"+w, nil), 200).str("consumerId")
	link := expect(t, p.call("POST", "/v1/consumers/"+consumer+"/links", map[string]any{}), 201).str("url")
	res, err := http.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	call(t, base, "GET", "/v1/workspace", "key_not_a_real_one_"+store.Token(8), nil)
	endpoint := expect(t, p.call("POST", "/v1/webhook-endpoints",
		map[string]any{"url": "http://127.0.0.1:1/hook", "events": []string{"transaction.completed"}}), 201)
	p.enableBrands("sandbox-coffee")
	redemption := expect(t, p.call("POST", "/v1/redemptions", map[string]any{"referenceId": "log-redeem",
		"walletId": w, "brandId": "sandbox-coffee", "amount": 500}), 202)
	var card response
	for deadline := time.Now().Add(10 * time.Second); card.str("code") == "" && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		card = expect(t, p.call("GET", "/v1/redemptions/"+redemption.str("id"), nil), 200)
	}
	if card.str("code") == "" {
		t.Fatalf("no card code: %s", card.raw)
	}

	secrets := map[string]string{"API key": p.key, "admin token": adminToken,
		"signing secret": created.str("signingSecret"), "link token": link[strings.LastIndex(link, "/")+1:],
		"webhook secret": endpoint.str("secret"), "card code": card.str("code"), "card pin": card.str("pin")}
	var access []map[string]any
	for line := range strings.Lines(out.String()) {
		for what, secret := range secrets {
			if secret != "" && strings.Contains(line, secret) {
				t.Errorf("a log line holds the %s: %s", what, line)
			}
		}
		var entry map[string]any
		if err := json.Unmarshal([]byte(line), &entry); err != nil {
			t.Fatalf("not a JSON line: %q", line)
		}
		if entry["msg"] == "request" {
			access = append(access, entry)
		}
	}
	var found bool
	for _, e := range access {
		if e["route"] == "/v1/transactions" && e["method"] == "POST" {
			found = true
			if e[logging.RequestID] != txn.header.Get("X-Request-Id") || e[logging.WorkspaceID] != p.id ||
				e[logging.TransactionID] != txn.str("id") || e["status"] != float64(202) || e[logging.KeyID] == nil {
				t.Errorf("the credit's access line: %v", e)
			}
		}
		if r, _ := e["route"].(string); strings.HasPrefix(r, "/c/l/") && r != "/c/l/:token" {
			t.Errorf("a consumer link logged by its path: %v", e)
		}
	}
	if !found || len(access) < 8 {
		t.Fatalf("%d access lines, the credit's among them: %v", len(access), found)
	}
}

// With ORBT_OPS_ADDR the metrics and ops pages listen apart: the public
// listener keeps the probes only, the ops listener serves everything ops.
func TestOpsListenApart(t *testing.T) {
	a, err := app.New(db.Pool, testenv.AsynqRedis(testenv.RedisOptions(redisDB)),
		app.Settings{AdminToken: adminToken, DataKey: store.RandomBytes(seal.DataKeySize), PublicURL: "http://localhost"},
		nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	public, err := a.Handler(true)
	if err != nil {
		t.Fatal(err)
	}
	opsOnly, err := a.OpsHandler()
	if err != nil {
		t.Fatal(err)
	}
	pub, ops := httptest.NewServer(public), httptest.NewServer(opsOnly)
	defer pub.Close()
	defer ops.Close()
	for _, c := range []struct {
		base, path string
		status     int
	}{
		{pub.URL, "/healthz", 200}, {pub.URL, "/readyz", 200}, {pub.URL, "/metrics", 404}, {pub.URL, "/ops/queues/", 404},
		{ops.URL, "/healthz", 200}, {ops.URL, "/readyz", 200}, {ops.URL, "/metrics", 200}, {ops.URL, "/ops/queues/", 200},
		{ops.URL, "/v1/workspace", 404},
	} {
		r := call(t, c.base, "GET", c.path, adminToken, nil)
		if r.status != c.status {
			t.Errorf("%s%s: %d, want %d", c.base, c.path, r.status, c.status)
		}
	}
	// Both listeners' requests land in one histogram; the queues are measured.
	metrics := call(t, ops.URL, "GET", "/metrics", "", nil).raw
	for _, want := range []string{`route="/healthz"`, "asynq_queue_size", "orbt_database_replica_lag_seconds",
		"orbt_transactions_pending ", "orbt_transactions_pending_oldest_seconds ", "orbt_webhook_deliveries_overdue_seconds ",
		"orbt_redemptions_open_oldest_seconds "} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
