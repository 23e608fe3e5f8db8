package sweep

import (
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"

	"github.com/orbt/orbt/store"
)

// tenant is one workspace the sweep made, with one of each object its
// routes take an id of.
type tenant struct {
	label string
	id    string
	// writeKey is the workspace's first key; readKey is read-only;
	// revokedKey was revoked; spareKey (spareKeyID) is a live key another
	// workspace tries to revoke.
	writeKey, readKey, revokedKey, spareKey string
	spareKeyID                              string
	signingSecret                           string
	// consumer has the wallet, the money and the gift card; other is a
	// second consumer of the same workspace (each with a page session).
	consumer, other consumer
	campaign        string
	wallet          string
	txn, batch      string
	redemption      string
	event           string
	endpoint        string
	// members of the console, one per role; pendingInvite is an
	// invitation nobody accepted.
	admin, finance, tech *member
	pendingInvite        string
	// adminInvite is the token of the first admin's (used) invitation;
	// pendingInviteToken the pending one's.
	adminInvite, pendingInviteToken string
}

// consumer is a consumer with its own page session, opened from a link.
type consumer struct {
	id     string
	number int64
	// linkID and linkToken are the link that opened the session.
	linkID, linkToken string
	// session is the consumer's browser; csrf its forms' token.
	session *agent
	csrf    string
}

// member is a console member signed in in a browser of its own.
type member struct {
	*agent
	id, email, password, role string
	csrf                      string
}

// post sends a console form with the member's CSRF token.
func (m *member) post(path string, form url.Values) answer {
	if form == nil {
		form = url.Values{}
	}
	form.Set("csrf", m.csrf)
	return m.do(formRequest("POST", path, form), nil)
}

// brand is the sandbox brand every new database has, which issues a card.
const brand = "sandbox-coffee"

// newTenant makes a workspace with everything the sweep needs of it.
func (s *sweep) newTenant(label string) *tenant {
	s.t.Helper()
	w := &tenant{label: label}
	var created struct {
		ID, APIKey, SigningSecret, ConsoleInviteURL string
	}
	s.must(s.call(s.target.AdminToken, jsonRequest("POST", "/admin/v1/workspaces", map[string]any{"name": "Sweep " + label + " " + s.run})),
		http.StatusCreated, "create workspace", &created)
	w.id, w.writeKey, w.signingSecret = created.ID, created.APIKey, created.SigningSecret
	s.keep("API key", created.APIKey)
	s.keep("signing secret", created.SigningSecret)
	w.adminInvite = tokenOf(created.ConsoleInviteURL)
	s.keep("console invitation token", w.adminInvite)
	fund := s.api.do(jsonRequest("POST", "/admin/v1/workspaces/"+w.id+"/fundings",
		map[string]any{"referenceId": "sweep-fund", "currency": "USD", "amount": 1_000_000}),
		http.Header{"Authorization": {"Bearer " + s.target.AdminToken}, "Prefer": {"wait=10"}})
	var funding struct{ ID, Status string }
	if fund.status != http.StatusOK && fund.status != http.StatusAccepted {
		s.t.Fatalf("sweep setup: fund %s: %s", label, fund)
	}
	s.must(fund, fund.status, "fund", &funding)
	s.final(w.writeKey, "/v1/transactions/"+funding.ID)
	s.must(s.call(s.target.AdminToken, jsonRequest("PUT", "/admin/v1/workspaces/"+w.id+"/brands", map[string]any{"brandIds": []string{brand}})),
		http.StatusOK, "enable brands", nil)

	var key struct{ ID, Key string }
	s.must(s.call(w.writeKey, jsonRequest("POST", "/v1/api-keys", map[string]any{"name": "sweep read", "scope": "read"})), http.StatusCreated, "read key", &key)
	w.readKey = key.Key
	s.keep("API key", key.Key)
	s.must(s.call(w.writeKey, jsonRequest("POST", "/v1/api-keys", map[string]any{"name": "sweep revoked", "scope": "write"})), http.StatusCreated, "key", &key)
	w.revokedKey = key.Key
	s.keep("API key", key.Key)
	s.must(s.call(w.writeKey, request{method: "DELETE", path: "/v1/api-keys/" + key.ID}), http.StatusNoContent, "revoke key", nil)
	s.must(s.call(w.writeKey, jsonRequest("POST", "/v1/api-keys", map[string]any{"name": "sweep spare", "scope": "write"})), http.StatusCreated, "key", &key)
	w.spareKey, w.spareKeyID = key.Key, key.ID
	s.keep("API key", key.Key)

	w.consumer = s.newConsumer(w, "one")
	w.other = s.newConsumer(w, "two")
	var obj struct{ ID string }
	s.must(s.call(w.writeKey, jsonRequest("POST", "/v1/campaigns", map[string]any{"name": "Sweep", "currency": "USD", "budget": 100_000})),
		http.StatusCreated, "campaign", &obj)
	w.campaign = obj.ID
	w.wallet = s.newWallet(w, w.consumer.id)
	w.txn = s.credit(w, w.wallet, "sweep-credit", 10_000)
	s.credit(w, s.newWallet(w, w.other.id), "sweep-credit-other", 5_000)

	s.must(s.call(w.writeKey, jsonRequest("POST", "/v1/batches", map[string]any{"referenceId": "sweep-batch", "items": []map[string]any{
		{"referenceId": "sweep-batch-1", "walletId": w.wallet, "type": "credit", "amount": 100, "currency": "USD"}}})),
		http.StatusAccepted, "batch", &obj)
	w.batch = obj.ID
	s.waitFor("batch "+w.batch, func() bool {
		var b struct{ Status string }
		ans := s.call(w.writeKey, request{method: "GET", path: "/v1/batches/" + w.batch})
		return ans.decode(&b) == nil && b.Status == "completed"
	})

	redeem := s.api.do(jsonRequest("POST", "/v1/redemptions", map[string]any{"referenceId": "sweep-card", "walletId": w.wallet,
		"brandId": brand, "amount": 500}), http.Header{"Authorization": {"Bearer " + w.writeKey}, "Prefer": {"wait=10"}})
	var card struct{ ID, Status, Code string }
	s.must(redeem, redeem.status, "redeem", &card)
	w.redemption = card.ID
	s.waitFor("redemption "+card.ID, func() bool {
		ans := s.call(w.writeKey, request{method: "GET", path: "/v1/redemptions/" + card.ID})
		return ans.decode(&card) == nil && card.Status == "completed"
	})
	s.keep("gift card code", card.Code)

	var endpoint struct{ ID, Secret string }
	// Nothing the sweep does fails a redemption: the endpoint is never
	// sent anything (and its name resolves nowhere).
	s.must(s.call(w.writeKey, jsonRequest("POST", "/v1/webhook-endpoints", map[string]any{
		"url": "https://orbt-sweep.invalid/hooks/" + label, "events": []string{"redemption.failed"}})), http.StatusCreated, "endpoint", &endpoint)
	w.endpoint = endpoint.ID
	s.keep("webhook secret", endpoint.Secret)
	s.must(s.call(w.writeKey, request{method: "POST", path: "/v1/webhook-endpoints/" + w.endpoint + "/rotate-secret"}),
		http.StatusOK, "rotate webhook secret", &endpoint)
	s.keep("webhook secret", endpoint.Secret)
	var rotated struct{ SigningSecret string }
	s.must(s.call(w.writeKey, request{method: "POST", path: "/v1/workspace/signing-secret/rotate"}), http.StatusOK, "rotate signing secret", &rotated)
	w.signingSecret = rotated.SigningSecret
	s.keep("signing secret", rotated.SigningSecret)

	var events struct{ Data []struct{ ID string } }
	s.must(s.call(w.writeKey, request{method: "GET", path: "/v1/events?limit=1"}), http.StatusOK, "events", &events)
	if len(events.Data) == 0 {
		s.t.Fatal("sweep setup: no event")
	}
	w.event = events.Data[0].ID

	s.openPage(w, &w.consumer)
	s.openPage(w, &w.other)
	s.console(w, created.ConsoleInviteURL)
	return w
}

// tokenOf is the last segment of a link's path: its token.
func tokenOf(link string) string {
	p := pathOf(link)
	return p[strings.LastIndex(p, "/")+1:]
}

func (s *sweep) newConsumer(w *tenant, name string) consumer {
	s.t.Helper()
	var c struct {
		ID     string
		Number int64
	}
	s.must(s.call(w.writeKey, jsonRequest("POST", "/v1/consumers", map[string]any{"externalId": "sweep-" + name,
		"email": name + "." + s.run + "@sweep.example", "name": "Sweep " + name})), http.StatusCreated, "consumer", &c)
	return consumer{id: c.ID, number: c.Number}
}

func (s *sweep) newWallet(w *tenant, consumerID string) string {
	s.t.Helper()
	var obj struct{ ID string }
	s.must(s.call(w.writeKey, jsonRequest("POST", "/v1/consumers/"+consumerID+"/wallets", map[string]any{"currency": "USD", "type": "standard"})),
		http.StatusCreated, "wallet", &obj)
	return obj.ID
}

// credit pays a wallet and waits for the credit to complete.
func (s *sweep) credit(w *tenant, walletID, ref string, amount int64) string {
	s.t.Helper()
	var txn struct{ ID string }
	ans := s.api.do(jsonRequest("POST", "/v1/transactions", map[string]any{"referenceId": ref, "type": "credit",
		"walletId": walletID, "amount": amount, "currency": "USD"}), http.Header{"Authorization": {"Bearer " + w.writeKey}, "Prefer": {"wait=10"}})
	s.must(ans, ans.status, "credit", &txn)
	s.final(w.writeKey, "/v1/transactions/"+txn.ID)
	return txn.ID
}

// final waits until the transaction at path is completed.
func (s *sweep) final(key, path string) {
	s.t.Helper()
	s.waitFor(path, func() bool {
		var t struct{ Status string }
		ans := s.call(key, request{method: "GET", path: path})
		if ans.decode(&t) == nil && t.Status == "failed" {
			s.t.Fatalf("sweep setup: %s failed: %s", path, ans)
		}
		return t.Status == "completed"
	})
}

// openPage issues a link for the consumer and opens it in a browser of
// the consumer's own.
func (s *sweep) openPage(w *tenant, c *consumer) {
	s.t.Helper()
	var link struct{ ID, URL string }
	s.must(s.call(w.writeKey, jsonRequest("POST", "/v1/consumers/"+c.id+"/links", map[string]any{"expiresInSeconds": 3600})),
		http.StatusCreated, "link", &link)
	c.linkID, c.linkToken, c.session = link.ID, tokenOf(link.URL), newAgent(s.target.BaseURL, true)
	s.keep("consumer link token", c.linkToken)
	s.must(c.session.do(request{method: "GET", path: pathOf(link.URL)}, nil), http.StatusSeeOther, "open link", nil)
	s.keep("consumer session token", c.session.cookie("/c/", "orbt_consumer"))
	home := c.session.do(request{method: "GET", path: "/c/"}, nil)
	s.must(home, http.StatusOK, "consumer page", nil)
	m := csrfField.FindSubmatch(home.body)
	if m == nil {
		s.t.Fatalf("sweep setup: no form on the consumer page: %s", home)
	}
	c.csrf = string(m[1])
}

// memberRow is a row of the console's team page (split at <tr>): email,
// role and member id.
var memberRow = regexp.MustCompile(`(?s)^<td>([^<]+)</td><td>([a-z]+)</td>.*?/console/team/members/([^/"]+)/reset`)

var inviteRow = regexp.MustCompile(`/console/team/invites/([^/"]+)/revoke`)

// console lets the workspace's first admin in through its invitation,
// and through the team page a finance and a technology member; an
// invitation more stays pending.
func (s *sweep) console(w *tenant, inviteURL string) {
	s.t.Helper()
	email := func(local string) string {
		return local + "." + strings.ToLower(w.label) + "." + s.run + "@sweep.example"
	}
	w.admin = s.join(inviteURL, email("admin"))
	invite := func(role, local string) (string, string) {
		page := w.admin.post("/console/team/invites", url.Values{"email": {email(local)}, "role": {role}})
		s.must(page, http.StatusCreated, "console invitation", nil)
		m := shownOnce.FindSubmatch(page.body)
		if m == nil {
			s.t.Fatalf("sweep setup: no invitation link shown: %s", page)
		}
		link := html.UnescapeString(string(m[1]))
		s.keep("console invitation token", tokenOf(link))
		return link, email(local)
	}
	w.finance = s.join(invite("finance", "finance"))
	w.finance.role = "finance"
	w.tech = s.join(invite("technology", "technology"))
	w.tech.role = "technology"
	pending, _ := invite("admin", "pending") // never accepted
	w.pendingInviteToken = tokenOf(pending)

	team := w.admin.do(request{method: "GET", path: "/console/team"}, nil)
	s.must(team, http.StatusOK, "team page", nil)
	for _, row := range strings.Split(string(team.body), "<tr>") {
		m := memberRow.FindStringSubmatch(row)
		for _, mb := range []*member{w.finance, w.tech} {
			if m != nil && html.UnescapeString(m[1]) == mb.email {
				mb.id = m[3]
			}
		}
	}
	if m := inviteRow.FindSubmatch(team.body); m != nil {
		w.pendingInvite = string(m[1])
	}
	if w.finance.id == "" || w.tech.id == "" || w.pendingInvite == "" {
		s.t.Fatalf("sweep setup: members or invitation not on the team page: %s", team)
	}
}

// join accepts an invitation as email, in a browser of its own, and
// returns the member signed in.
func (s *sweep) join(inviteURL, email string) *member {
	s.t.Helper()
	m := &member{agent: newAgent(s.target.BaseURL, true), role: "admin", email: email,
		password: "sweep " + store.Token(10) + " Quartz!"}
	s.keep("console password", m.password)
	path := pathOf(inviteURL)
	page := m.do(request{method: "GET", path: path}, nil)
	s.must(page, http.StatusOK, "invitation page", nil)
	form := csrfField.FindSubmatch(page.body)
	if form == nil {
		s.t.Fatalf("sweep setup: no form on the invitation page: %s", page)
	}
	ans := m.do(formRequest("POST", path, url.Values{"csrf": {string(form[1])}, "email": {m.email},
		"password": {m.password}, "confirm": {m.password}}), nil)
	if ans.status != http.StatusSeeOther {
		s.t.Fatalf("sweep setup: accept invitation of %s: %s", email, ans)
	}
	s.keep("console session token", m.cookie("/console/", "orbt_console"))
	home := m.do(request{method: "GET", path: "/console/"}, nil)
	s.must(home, http.StatusOK, "console overview", nil)
	csrf := csrfField.FindSubmatch(home.body)
	if csrf == nil {
		s.t.Fatalf("sweep setup: no form on the console overview: %s", home)
	}
	m.csrf = string(csrf[1])
	return m
}
