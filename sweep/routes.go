package sweep

import (
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/orbt/orbt/app"
	"github.com/orbt/orbt/store"
)

// probe is how the sweep calls one route of the router.
type probe struct {
	method, path string
	// skip, when set, says why the sweep sends the route nothing: it takes
	// no id and no credential that could be misused (an asset, a probe).
	skip string
	// build is the request acting on w's objects, valid in every other
	// respect, so that a refusal can only be about whose they are.
	build func(w *tenant) request
	// grant is the console grant the route needs ("" for none).
	grant string
	// token routes take a secret in their path (a consumer link, an
	// invitation) instead of a session: the credentials check sends them
	// forged, expired, revoked and used ones.
	token bool
	// operator routes take the admin token and span every workspace.
	operator bool
	// bodyIDs: the request names objects in its body (a wallet to pay),
	// which another workspace's caller must not reach either.
	bodyIDs bool
}

func (p probe) String() string { return p.method + " " + p.path }

// hasParam reports whether a route's path takes a parameter.
func (p probe) hasParam() bool { return strings.ContainsAny(p.path, ":*") }

// Console grants (package console's roles.go).
const (
	seeMoney   = "seeMoney"
	moveMoney  = "moveMoney"
	integrate  = "integrate"
	manageTeam = "manageTeam"
)

// roleGrants are what each console role may do.
var roleGrants = map[string][]string{
	"admin":      {seeMoney, moveMoney, integrate, manageTeam},
	"finance":    {seeMoney, moveMoney},
	"technology": {seeMoney, integrate},
}

func get(path string) func(*tenant) request {
	return func(*tenant) request { return request{method: "GET", path: path} }
}

// probes is the sweep's table of every route the public listener serves.
func (s *sweep) probes() []probe {
	ref := func(prefix string) string { return prefix + store.Token(8) }
	v1 := []probe{
		{method: "GET", path: "/v1/workspace", build: get("/v1/workspace")},
		{method: "POST", path: "/v1/workspace/signing-secret/rotate", build: func(*tenant) request {
			return request{method: "POST", path: "/v1/workspace/signing-secret/rotate"}
		}},
		{method: "POST", path: "/v1/api-keys", build: func(*tenant) request {
			return jsonRequest("POST", "/v1/api-keys", map[string]any{"name": "made by the sweep", "scope": "write"})
		}},
		{method: "GET", path: "/v1/api-keys", build: get("/v1/api-keys")},
		{method: "DELETE", path: "/v1/api-keys/:id", build: func(w *tenant) request {
			return request{method: "DELETE", path: "/v1/api-keys/" + w.spareKeyID}
		}},
		{method: "POST", path: "/v1/consumers", build: func(*tenant) request {
			return jsonRequest("POST", "/v1/consumers", map[string]any{"externalId": ref("sweep-new-")})
		}},
		{method: "GET", path: "/v1/consumers", build: get("/v1/consumers")},
		{method: "GET", path: "/v1/consumers/:id", build: func(w *tenant) request { return get("/v1/consumers/" + w.consumer.id)(w) }},
		{method: "PATCH", path: "/v1/consumers/:id", build: func(w *tenant) request {
			return jsonRequest("PATCH", "/v1/consumers/"+w.consumer.id, map[string]any{"name": "Renamed by the sweep"})
		}},
		{method: "POST", path: "/v1/consumers/:id/wallets", build: func(w *tenant) request {
			return jsonRequest("POST", "/v1/consumers/"+w.consumer.id+"/wallets", map[string]any{"currency": "EUR", "type": "standard"})
		}},
		{method: "GET", path: "/v1/consumers/:id/wallets", build: func(w *tenant) request { return get("/v1/consumers/" + w.consumer.id + "/wallets")(w) }},
		{method: "POST", path: "/v1/consumers/:id/links", build: func(w *tenant) request {
			return jsonRequest("POST", "/v1/consumers/"+w.consumer.id+"/links", map[string]any{"expiresInSeconds": 600})
		}},
		{method: "DELETE", path: "/v1/consumers/:id/links/:linkId", build: func(w *tenant) request {
			return request{method: "DELETE", path: "/v1/consumers/" + w.consumer.id + "/links/" + w.consumer.linkID}
		}},
		{method: "POST", path: "/v1/campaigns", build: func(*tenant) request {
			return jsonRequest("POST", "/v1/campaigns", map[string]any{"name": "Made by the sweep", "currency": "USD"})
		}},
		{method: "GET", path: "/v1/campaigns", build: get("/v1/campaigns")},
		{method: "GET", path: "/v1/campaigns/:id", build: func(w *tenant) request { return get("/v1/campaigns/" + w.campaign)(w) }},
		{method: "PATCH", path: "/v1/campaigns/:id", build: func(w *tenant) request {
			return jsonRequest("PATCH", "/v1/campaigns/"+w.campaign, map[string]any{"status": "paused"})
		}},
		{method: "GET", path: "/v1/wallets/:id", build: func(w *tenant) request { return get("/v1/wallets/" + w.wallet)(w) }},
		{method: "GET", path: "/v1/wallets/:id/transactions", build: func(w *tenant) request { return get("/v1/wallets/" + w.wallet + "/transactions")(w) }},
		{method: "POST", path: "/v1/transactions", bodyIDs: true, build: func(w *tenant) request {
			return jsonRequest("POST", "/v1/transactions", map[string]any{"referenceId": ref("sweep-"), "type": "debit",
				"walletId": w.wallet, "amount": 1, "currency": "USD"})
		}},
		{method: "GET", path: "/v1/transactions", build: get("/v1/transactions")},
		{method: "GET", path: "/v1/transactions/:id", build: func(w *tenant) request { return get("/v1/transactions/" + w.txn)(w) }},
		{method: "POST", path: "/v1/batches", bodyIDs: true, build: func(w *tenant) request {
			return jsonRequest("POST", "/v1/batches", map[string]any{"referenceId": ref("sweep-"), "items": []map[string]any{
				{"referenceId": ref("sweep-"), "walletId": w.wallet, "type": "debit", "amount": 1, "currency": "USD"}}})
		}},
		{method: "GET", path: "/v1/batches", build: get("/v1/batches")},
		{method: "GET", path: "/v1/batches/:id", build: func(w *tenant) request { return get("/v1/batches/" + w.batch)(w) }},
		{method: "GET", path: "/v1/batches/:id/transactions", build: func(w *tenant) request { return get("/v1/batches/" + w.batch + "/transactions")(w) }},
		{method: "GET", path: "/v1/brands", build: get("/v1/brands")},
		{method: "POST", path: "/v1/redemptions", bodyIDs: true, build: func(w *tenant) request {
			return jsonRequest("POST", "/v1/redemptions", map[string]any{"referenceId": ref("sweep-"), "walletId": w.wallet,
				"brandId": brand, "amount": 500})
		}},
		{method: "GET", path: "/v1/redemptions", build: get("/v1/redemptions")},
		{method: "GET", path: "/v1/redemptions/:id", build: func(w *tenant) request { return get("/v1/redemptions/" + w.redemption)(w) }},
		{method: "GET", path: "/v1/events", build: get("/v1/events")},
		{method: "GET", path: "/v1/events/:id", build: func(w *tenant) request { return get("/v1/events/" + w.event)(w) }},
		{method: "POST", path: "/v1/events/:id/redeliver", build: func(w *tenant) request {
			return request{method: "POST", path: "/v1/events/" + w.event + "/redeliver"}
		}},
		{method: "POST", path: "/v1/webhook-endpoints", build: func(*tenant) request {
			return jsonRequest("POST", "/v1/webhook-endpoints", map[string]any{"url": "https://orbt-sweep.invalid/new", "events": []string{"redemption.failed"}})
		}},
		{method: "GET", path: "/v1/webhook-endpoints", build: get("/v1/webhook-endpoints")},
		{method: "GET", path: "/v1/webhook-endpoints/:id", build: func(w *tenant) request { return get("/v1/webhook-endpoints/" + w.endpoint)(w) }},
		{method: "PATCH", path: "/v1/webhook-endpoints/:id", build: func(w *tenant) request {
			return jsonRequest("PATCH", "/v1/webhook-endpoints/"+w.endpoint, map[string]any{"description": "changed by the sweep"})
		}},
		{method: "DELETE", path: "/v1/webhook-endpoints/:id", build: func(w *tenant) request {
			return request{method: "DELETE", path: "/v1/webhook-endpoints/" + w.endpoint}
		}},
		{method: "POST", path: "/v1/webhook-endpoints/:id/rotate-secret", build: func(w *tenant) request {
			return request{method: "POST", path: "/v1/webhook-endpoints/" + w.endpoint + "/rotate-secret"}
		}},
		{method: "GET", path: "/v1/webhook-endpoints/:id/deliveries", build: func(w *tenant) request {
			return get("/v1/webhook-endpoints/" + w.endpoint + "/deliveries")(w)
		}},
	}
	admin := []probe{
		{method: "POST", path: "/admin/v1/workspaces", operator: true, build: func(*tenant) request {
			return jsonRequest("POST", "/admin/v1/workspaces", map[string]any{"name": "made by the sweep"})
		}},
		{method: "POST", path: "/admin/v1/workspaces/:id/fundings", operator: true, build: func(w *tenant) request {
			return jsonRequest("POST", "/admin/v1/workspaces/"+w.id+"/fundings", map[string]any{"referenceId": ref("sweep-"), "currency": "USD", "amount": 1})
		}},
		{method: "GET", path: "/admin/v1/brands", operator: true, build: get("/admin/v1/brands")},
		{method: "PUT", path: "/admin/v1/workspaces/:id/brands", operator: true, build: func(w *tenant) request {
			return jsonRequest("PUT", "/admin/v1/workspaces/"+w.id+"/brands", map[string]any{"brandIds": []string{}})
		}},
	}
	partner := []probe{
		{method: "POST", path: "/api/partner/v1/customer", build: func(*tenant) request {
			return jsonRequest("POST", "/api/partner/v1/customer", map[string]any{"fullName": "Made By The Sweep",
				"email": ref("sweep.") + "@sweep.example", "currency": "USD"})
		}},
		{method: "GET", path: "/api/partner/v1/customer", build: get("/api/partner/v1/customer?size=50")},
		{method: "GET", path: "/api/partner/v1/customer/:customerId/wallets", build: func(w *tenant) request {
			return get("/api/partner/v1/customer/" + itoa(w.consumer.number) + "/wallets")(w)
		}},
		{method: "POST", path: "/api/partner/v1/wallets/:walletId/transactions", build: func(w *tenant) request {
			return jsonRequest("POST", "/api/partner/v1/wallets/"+w.wallet+"/transactions", map[string]any{"amount": "0.01",
				"transactionType": "DEBIT", "referenceId": ref("sweep-")})
		}},
	}
	consumerPages := []probe{
		{method: "GET", path: "/c/assets/style.css", skip: "a public asset"},
		{method: "GET", path: "/c/l/:token", token: true},
		{method: "GET", path: "/c/", build: get("/c/")},
		{method: "POST", path: "/c/redeem", bodyIDs: true, build: func(w *tenant) request {
			return formRequest("POST", "/c/redeem", url.Values{"walletId": {w.wallet}, "referenceId": {ref("consumer-")},
				"brandId": {brand}, "amount": {"5.00"}})
		}},
		{method: "GET", path: "/c/redemptions/:id", build: func(w *tenant) request { return get("/c/redemptions/" + w.redemption)(w) }},
		{method: "POST", path: "/c/signout", build: func(*tenant) request { return formRequest("POST", "/c/signout", url.Values{}) }},
	}
	form := func(path string, values url.Values) func(*tenant) request {
		return func(*tenant) request { return formRequest("POST", path, values) }
	}
	consolePages := []probe{
		{method: "GET", path: "/console/assets/style.css", skip: "a public asset"},
		{method: "GET", path: "/console/assets/console.js", skip: "a public asset"},
		{method: "GET", path: "/console/login", skip: "the sign-in page"},
		{method: "POST", path: "/console/login", skip: "sign-in takes a password, not a session; its limits and lockout are console/console_test.go's"},
		{method: "GET", path: "/console/invite/:token", token: true},
		{method: "POST", path: "/console/invite/:token", token: true},
		{method: "POST", path: "/console/logout", build: form("/console/logout", url.Values{})},
		{method: "GET", path: "/console/", grant: seeMoney, build: get("/console/")},
		{method: "GET", path: "/console/consumers", grant: seeMoney, build: get("/console/consumers")},
		{method: "GET", path: "/console/consumers/:id", grant: seeMoney, build: func(w *tenant) request { return get("/console/consumers/" + w.consumer.id)(w) }},
		{method: "GET", path: "/console/campaigns", grant: seeMoney, build: get("/console/campaigns")},
		{method: "GET", path: "/console/payouts", grant: seeMoney, build: get("/console/payouts")},
		{method: "GET", path: "/console/payouts/:id", grant: seeMoney, build: func(w *tenant) request { return get("/console/payouts/" + w.batch)(w) }},
		{method: "GET", path: "/console/payouts/:id/failed.csv", grant: seeMoney, build: func(w *tenant) request {
			return get("/console/payouts/" + w.batch + "/failed.csv")(w)
		}},
		{method: "GET", path: "/console/transactions", grant: seeMoney, build: get("/console/transactions")},
		{method: "GET", path: "/console/transactions/:id", grant: seeMoney, build: func(w *tenant) request { return get("/console/transactions/" + w.txn)(w) }},
		{method: "POST", path: "/console/consumers", grant: moveMoney, build: func(*tenant) request {
			return formRequest("POST", "/console/consumers", url.Values{"externalId": {ref("sweep-console-")}})
		}},
		{method: "POST", path: "/console/consumers/:id/wallets", grant: moveMoney, build: func(w *tenant) request {
			return formRequest("POST", "/console/consumers/"+w.consumer.id+"/wallets", url.Values{"currency": {"EUR"}})
		}},
		{method: "POST", path: "/console/consumers/:id/transactions", grant: moveMoney, build: func(w *tenant) request {
			return formRequest("POST", "/console/consumers/"+w.consumer.id+"/transactions", url.Values{"walletId": {w.wallet},
				"type": {"debit"}, "amount": {"0.01"}, "referenceId": {ref("console-")}})
		}},
		{method: "POST", path: "/console/consumers/:id/links", grant: moveMoney, build: func(w *tenant) request {
			return formRequest("POST", "/console/consumers/"+w.consumer.id+"/links", url.Values{"days": {"1"}})
		}},
		{method: "POST", path: "/console/campaigns", grant: moveMoney, build: form("/console/campaigns", url.Values{"name": {"Made by the sweep"}, "currency": {"USD"}})},
		{method: "POST", path: "/console/campaigns/:id/status", grant: moveMoney, build: func(w *tenant) request {
			return formRequest("POST", "/console/campaigns/"+w.campaign+"/status", url.Values{"status": {"paused"}})
		}},
		{method: "POST", path: "/console/payouts/review", grant: moveMoney, build: func(*tenant) request {
			return formRequest("POST", "/console/payouts/review", url.Values{"referenceId": {ref("console-")}})
		}},
		{method: "POST", path: "/console/payouts", grant: moveMoney, bodyIDs: true, build: func(w *tenant) request {
			return formRequest("POST", "/console/payouts", url.Values{"referenceId": {ref("console-")},
				"csv": {"referenceId,walletId,type,amount,currency\n" + ref("sweep-") + "," + w.wallet + ",debit,0.01,USD\n"}})
		}},
		{method: "GET", path: "/console/keys", grant: integrate, build: get("/console/keys")},
		{method: "GET", path: "/console/webhooks", grant: integrate, build: get("/console/webhooks")},
		{method: "GET", path: "/console/webhooks/:id", grant: integrate, build: func(w *tenant) request { return get("/console/webhooks/" + w.endpoint)(w) }},
		{method: "POST", path: "/console/keys", grant: integrate, build: form("/console/keys", url.Values{"name": {"made by the sweep"}, "scope": {"write"}})},
		{method: "POST", path: "/console/keys/:id/revoke", grant: integrate, build: func(w *tenant) request {
			return formRequest("POST", "/console/keys/"+w.spareKeyID+"/revoke", url.Values{})
		}},
		{method: "POST", path: "/console/webhooks", grant: integrate, build: form("/console/webhooks", url.Values{
			"url": {"https://orbt-sweep.invalid/console"}, "events": {"redemption.failed"}})},
		{method: "POST", path: "/console/webhooks/:id/redeliver", grant: integrate, build: func(w *tenant) request {
			return formRequest("POST", "/console/webhooks/"+w.endpoint+"/redeliver", url.Values{"eventId": {w.event}})
		}},
		{method: "GET", path: "/console/team", grant: manageTeam, build: get("/console/team")},
		{method: "GET", path: "/console/audit", grant: manageTeam, build: get("/console/audit")},
		{method: "GET", path: "/console/settings", grant: manageTeam, build: get("/console/settings")},
		{method: "POST", path: "/console/team/invites", grant: manageTeam, build: func(*tenant) request {
			return formRequest("POST", "/console/team/invites", url.Values{"email": {ref("invited.") + "@sweep.example"}, "role": {"admin"}})
		}},
		{method: "POST", path: "/console/team/invites/:id/revoke", grant: manageTeam, build: func(w *tenant) request {
			return formRequest("POST", "/console/team/invites/"+w.pendingInvite+"/revoke", url.Values{})
		}},
		{method: "POST", path: "/console/team/members/:id/revoke", grant: manageTeam, build: func(w *tenant) request {
			return formRequest("POST", "/console/team/members/"+w.finance.id+"/revoke", url.Values{})
		}},
		{method: "POST", path: "/console/team/members/:id/reset", grant: manageTeam, build: func(w *tenant) request {
			return formRequest("POST", "/console/team/members/"+w.finance.id+"/reset", url.Values{})
		}},
		{method: "POST", path: "/console/settings/signing-secret", grant: manageTeam, build: form("/console/settings/signing-secret", url.Values{})},
	}
	ops := []probe{
		{method: "GET", path: "/healthz", skip: "a probe"},
		{method: "GET", path: "/readyz", skip: "a probe (names no address: api/ops_test.go)"},
		{method: "GET", path: "/metrics", skip: "Prometheus' scrape (on ORBT_OPS_ADDR in production)"},
		{method: "GET", path: "/openapi.json", skip: "the public API reference"},
		{method: "GET", path: "/docs", skip: "the public API reference"},
		{method: "GET", path: "/docs/redoc.standalone.js", skip: "the public API reference"},
		{method: "GET", path: "/ops/debug/pprof/*name", operator: true, build: get("/ops/debug/pprof/")},
	}
	for _, m := range []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE"} {
		ops = append(ops, probe{method: m, path: "/ops/queues/*path", operator: true, build: func(*tenant) request {
			return request{method: m, path: "/ops/queues/api/queues"}
		}})
	}
	return slices.Concat(v1, admin, partner, consumerPages, consolePages, ops)
}

// routeTable is the sweep's table, checked against the router both ways:
// a route the sweep does not know, or a probe of a route that is gone,
// fails the sweep, so a new route cannot go unswept.
func (s *sweep) routeTable() []probe {
	s.t.Helper()
	routes, err := app.Routes()
	if err != nil {
		s.t.Fatalf("routes: %v", err)
	}
	table := s.probes()
	known := map[string]bool{}
	for _, p := range table {
		known[p.String()] = true
	}
	routed := map[string]bool{}
	for _, r := range routes {
		routed[r.Method+" "+r.Path] = true
		if !known[r.Method+" "+r.Path] {
			s.t.Errorf("route %s %s is not in the security sweep's table (sweep/routes.go): add how to call it with another workspace's credentials", r.Method, r.Path)
		}
	}
	for _, p := range table {
		if !routed[p.String()] {
			s.t.Errorf("the security sweep's table has %s, which the router does not serve", p)
		}
	}
	return table
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// expect reports a route answering anything but want.
func (s *sweep) expect(p probe, who string, ans answer, want int) {
	s.t.Helper()
	if ans.status != want {
		s.t.Errorf("%s %s: want %d, got %s", p, who, want, ans)
	}
}

// refused reports a route answering a 2xx, a 5xx or nothing.
func (s *sweep) refused(p probe, who string, ans answer) {
	s.t.Helper()
	if ans.status < 400 || ans.status >= 500 {
		s.t.Errorf("%s %s: want a 4xx refusal, got %s", p, who, ans)
	}
}
