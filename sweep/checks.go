package sweep

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/orbt/orbt/partnerapi"
	"github.com/orbt/orbt/store"
)

// withCSRF adds a session's form token to a form request.
func withCSRF(r request, csrf string) request {
	if r.contentType != "application/x-www-form-urlencoded" {
		return r
	}
	form, _ := url.ParseQuery(string(r.body))
	form.Set("csrf", csrf)
	r.body = []byte(form.Encode())
	return r
}

// partner sends a request signed as Orbt's partner API wants it.
func (s *sweep) partner(key, clientID, secret string, at time.Time, r request) answer {
	return s.api.do(r, signed(r, key, clientID, secret, at))
}

func (s *sweep) asConsumer(c *consumer, r request) answer {
	return c.session.do(withCSRF(r, c.csrf), nil)
}

func (s *sweep) asMember(m *member, r request) answer { return m.do(withCSRF(r, m.csrf), nil) }

// counter counts the checks made per surface, for the log.
type counter map[string]int

func (c counter) String() string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, c[k])
	}
	return strings.Join(parts, ", ")
}

// crossWorkspace calls every route that takes an id with workspace A's
// credentials on workspace B's objects (and, on the consumer pages, with
// one consumer's session on another's of the same workspace): each must
// answer 404, as for an object that does not exist.
func (s *sweep) crossWorkspace(table []probe) {
	a, b := s.a, s.b
	routes := counter{}
	for _, p := range table {
		if p.skip != "" || p.token || p.operator || p.build == nil || !(p.hasParam() || p.bodyIDs) {
			continue
		}
		check := func(who string, ans answer) {
			s.t.Helper()
			if p.hasParam() {
				s.expect(p, who, ans, http.StatusNotFound)
			} else {
				s.refused(p, who, ans)
			}
		}
		switch surfaceOf(p.path) {
		case "v1":
			check("with another workspace's key", s.call(a.writeKey, p.build(b)))
		case "api/partner/v1":
			check("signed by another workspace", s.partner(a.writeKey, a.id, a.signingSecret, time.Now(), p.build(b)))
		case "c":
			check("in another workspace's consumer session", s.asConsumer(&a.consumer, p.build(b)))
			check("in another consumer's session", s.asConsumer(&a.other, p.build(a)))
		case "console":
			check("in another workspace's admin session", s.asMember(a.admin, p.build(b)))
		default:
			s.t.Errorf("%s: the sweep has no cross-workspace check for its surface", p)
		}
		routes[surfaceOf(p.path)]++
	}
	s.t.Logf("routes called with another workspace's (or consumer's) credentials: %s", routes)

	// Ids in bodies and queries: another workspace's objects are not
	// found, and lists filtered by them list nothing of theirs.
	key := func(r request) answer { return s.call(a.writeKey, r) }
	notFound := func(what string, ans answer) {
		s.t.Helper()
		if ans.status != http.StatusNotFound {
			s.t.Errorf("%s: want 404, got %s", what, ans)
		}
	}
	hides := func(what string, ans answer, ids ...string) {
		s.t.Helper()
		if ans.status/100 != 2 && ans.status != http.StatusBadRequest && ans.status != http.StatusNotFound &&
			ans.status != http.StatusUnprocessableEntity {
			s.t.Errorf("%s: want an answer, got %s", what, ans)
		}
		for _, id := range ids {
			if strings.Contains(string(ans.body), id) {
				s.t.Errorf("%s shows another workspace's %s: %s", what, id, ans)
			}
		}
	}
	notFound("POST /v1/consumers/:id/wallets naming another workspace's campaign",
		key(jsonRequest("POST", "/v1/consumers/"+a.consumer.id+"/wallets", map[string]any{"currency": "USD", "type": "campaign", "campaignId": b.campaign})))
	notFound("POST /v1/events/:id/redeliver to another workspace's endpoint",
		key(jsonRequest("POST", "/v1/events/"+a.event+"/redeliver", map[string]any{"endpointId": b.endpoint})))
	notFound("DELETE /v1/consumers/:id/links/:linkId of another workspace's link",
		key(request{method: "DELETE", path: "/v1/consumers/" + a.consumer.id + "/links/" + b.consumer.linkID}))
	hides("GET /v1/transactions?walletId= another workspace's wallet", key(get("/v1/transactions?walletId="+b.wallet)(a)), b.txn)
	hides("GET /v1/transactions?batchId= another workspace's batch", key(get("/v1/transactions?batchId="+b.batch)(a)), b.txn, b.wallet)
	hides("GET /v1/redemptions?walletId= another workspace's wallet", key(get("/v1/redemptions?walletId="+b.wallet)(a)), b.redemption)
	hides("GET /v1/events?after= another workspace's event", key(get("/v1/events?after="+b.event)(a)), b.txn, b.wallet)
	hides("GET /api/partner/v1/customer", s.partner(a.writeKey, a.id, a.signingSecret, time.Now(), get("/api/partner/v1/customer?size=50")(a)),
		b.consumer.id, b.wallet)
	hides("GET /console/consumers/:id?txn= another workspace's transaction", s.asMember(a.admin, get("/console/consumers/"+a.consumer.id+"?txn="+b.txn)(a)), b.txn)
	hides("GET /console/transactions?walletId= another workspace's wallet", s.asMember(a.admin, get("/console/transactions?walletId="+b.wallet)(a)), b.txn)
	hides("GET /console/transactions?batchId= another workspace's batch", s.asMember(a.admin, get("/console/transactions?batchId="+b.batch)(a)), b.txn)
	for what, r := range map[string]request{
		"POST /console/consumers/:id/transactions naming another workspace's wallet": formRequest("POST", "/console/consumers/"+a.consumer.id+"/transactions",
			url.Values{"walletId": {b.wallet}, "type": {"debit"}, "amount": {"0.01"}, "referenceId": {"console-" + store.Token(8)}}),
		"POST /console/consumers/:id/wallets naming another workspace's campaign": formRequest("POST", "/console/consumers/"+a.consumer.id+"/wallets",
			url.Values{"campaignId": {b.campaign}}),
		"POST /console/webhooks/:id/redeliver naming another workspace's event": formRequest("POST", "/console/webhooks/"+a.endpoint+"/redeliver",
			url.Values{"eventId": {b.event}}),
	} {
		ans := s.asMember(a.admin, r)
		if ans.status < 400 || ans.status >= 500 {
			s.t.Errorf("%s: want a 4xx refusal, got %s", what, ans)
		}
	}
}

// scopes calls every write of /v1 and of the partner API with a read-only
// key (403), and every console route a role lacks with a member of that
// role (403).
func (s *sweep) scopes(table []probe) {
	a := s.a
	n := counter{}
	for _, p := range table {
		if p.skip != "" || p.token || p.operator || p.build == nil {
			continue
		}
		switch surface := surfaceOf(p.path); {
		case surface == "v1" && p.method != "GET":
			ans := s.call(a.readKey, p.build(a))
			s.expect(p, "with a read-only key", ans, http.StatusForbidden)
			if ans.status == http.StatusForbidden && !strings.Contains(string(ans.body), "insufficient_scope") {
				s.t.Errorf("%s with a read-only key: 403 without insufficient_scope: %s", p, ans)
			}
			n["v1 writes"]++
		case surface == "api/partner/v1" && p.method != "GET":
			s.expect(p, "signed with a read-only key", s.partner(a.readKey, a.id, a.signingSecret, time.Now(), p.build(a)), http.StatusForbidden)
			n["partner writes"]++
		case surface == "console" && p.grant != "":
			for _, m := range []*member{a.admin, a.finance, a.tech} {
				if !slices.Contains(roleGrants[m.role], p.grant) {
					s.expect(p, "as a "+m.role+" member", s.asMember(m, p.build(a)), http.StatusForbidden)
					n["console routes refused to a role"]++
				}
			}
		}
	}
	// A read key sees a redemption, not its card.
	ans := s.call(a.readKey, get("/v1/redemptions/"+a.redemption)(a))
	if ans.status != http.StatusOK || strings.Contains(string(ans.body), `"code"`) {
		s.t.Errorf("GET /v1/redemptions/:id with a read-only key: want 200 without the card, got %s", ans)
	}
	s.t.Logf("refused for scope or role: %s", n)
}

// credentials sends every route bad credentials: none, malformed, unknown,
// revoked, another workspace's, stale; then ends sessions and links every
// way they end (signed out, expired, revoked) and sends them again.
func (s *sweep) credentials(table []probe) {
	a, b := s.a, s.b
	n := counter{}
	unknownKey := "orbt_sk_" + store.Token(25)
	keys := map[string]string{
		"no Authorization":  "",
		"Basic credentials": "Basic " + "b3JidDpvcmJ0",
		"an empty bearer":   "Bearer ",
		"a malformed key":   "Bearer not a key",
		"an over-long key":  "Bearer " + strings.Repeat("k", 600),
		"a revoked key":     "Bearer " + a.revokedKey,
		"an unknown key":    "Bearer " + unknownKey,
		"the admin token":   "Bearer " + s.target.AdminToken,
		"a signing secret":  "Bearer " + a.signingSecret,
	}
	operatorKeys := map[string]string{
		"no Authorization":   "",
		"a workspace's key":  "Bearer " + a.writeKey,
		"a wrong token":      "Bearer " + s.target.AdminToken + "x",
		"Basic without it":   "Basic b3JidDpvcmJ0",
		"a truncated token":  "Bearer " + s.target.AdminToken[:len(s.target.AdminToken)-1],
		"a read-only key":    "Bearer " + a.readKey,
		"an over-long token": "Bearer " + strings.Repeat("t", 600),
	}
	now := time.Now()
	signings := map[string]func(request) http.Header{
		"unsigned":                     func(request) http.Header { return nil },
		"signed with a revoked key":    func(r request) http.Header { return signed(r, a.revokedKey, a.id, a.signingSecret, now) },
		"signed with an unknown key":   func(r request) http.Header { return signed(r, unknownKey, a.id, a.signingSecret, now) },
		"with another workspace's key": func(r request) http.Header { return signed(r, b.writeKey, a.id, a.signingSecret, now) },
		"signed with another workspace's secret": func(r request) http.Header {
			return signed(r, a.writeKey, a.id, b.signingSecret, now)
		},
		"signed 6 minutes ago": func(r request) http.Header {
			return signed(r, a.writeKey, a.id, a.signingSecret, now.Add(-6*time.Minute))
		},
		"signed 6 minutes ahead": func(r request) http.Header {
			return signed(r, a.writeKey, a.id, a.signingSecret, now.Add(6*time.Minute))
		},
		"with a body hash of another body": func(r request) http.Header {
			h := signed(r, a.writeKey, a.id, a.signingSecret, now)
			h.Set("x-body-hash", partnerapi.BodyHash([]byte("another body")))
			return h
		},
		"with a signature over another method": func(r request) http.Header {
			other := r
			other.method = map[string]string{"GET": "POST", "POST": "GET"}[r.method]
			return signed(other, a.writeKey, a.id, a.signingSecret, now)
		},
	}
	consumerCookie := a.consumer.session.cookie("/c/", "orbt_consumer")
	consoleCookie := a.admin.cookie("/console/", "orbt_console")
	// (The consumer pages are rate limited per address, 5 a second after
	// 40: their variants are the fewest that try each check.)
	badCookies := map[string]string{
		"no cookie":           "",
		"a tampered cookie":   flip(consumerCookie),
		"an over-long cookie": strings.Repeat("c", 200),
	}
	badConsole := map[string]string{
		"no cookie":           "",
		"a tampered cookie":   flip(consoleCookie),
		"an unknown cookie":   store.Token(32),
		"an over-long cookie": strings.Repeat("c", 200),
	}
	sessionRoutes := func(surface string) []probe {
		var out []probe
		for _, p := range table {
			if p.skip == "" && !p.token && p.build != nil && surfaceOf(p.path) == surface {
				out = append(out, p)
			}
		}
		return out
	}
	consumerRoute := func(p probe, who, cookie string) {
		s.t.Helper()
		var h http.Header
		if cookie != "" {
			h = cookieHeader("orbt_consumer", cookie)
		}
		ans := s.api.do(withCSRF(p.build(a), a.consumer.csrf), h)
		s.expect(p, who, ans, http.StatusNotFound)
		n["consumer pages"]++
	}
	consoleRoute := func(p probe, who, cookie, csrf string) {
		s.t.Helper()
		var h http.Header
		if cookie != "" {
			h = cookieHeader("orbt_console", cookie)
		}
		ans := s.api.do(withCSRF(p.build(a), csrf), h)
		if !redirectsToSignIn(ans) {
			s.t.Errorf("%s %s: want the sign-in page (303 to /console/login), got %s", p, who, ans)
		}
		n["console"]++
	}

	for _, p := range table {
		if p.skip != "" || p.build == nil {
			continue
		}
		switch surface := surfaceOf(p.path); {
		case p.operator:
			for who, auth := range operatorKeys {
				var h http.Header
				if auth != "" {
					h = http.Header{"Authorization": {auth}}
				}
				ans := s.api.do(p.build(a), h)
				if p.method == "HEAD" {
					ans.body = nil
				}
				s.expect(p, "with "+who, ans, http.StatusUnauthorized)
				n[surface]++
			}
		case surface == "v1":
			for who, auth := range keys {
				var h http.Header
				if auth != "" {
					h = http.Header{"Authorization": {auth}}
				}
				s.expect(p, "with "+who, s.api.do(p.build(a), h), http.StatusUnauthorized)
				n["v1"]++
			}
		case surface == "api/partner/v1":
			for who, sign := range signings {
				r := p.build(a)
				s.expect(p, who, s.api.do(r, sign(r)), http.StatusForbidden)
				n["partner"]++
			}
		case surface == "c":
			for who, cookie := range badCookies {
				consumerRoute(p, "with "+who, cookie)
			}
		case surface == "console":
			for who, cookie := range badConsole {
				consoleRoute(p, "with "+who, cookie, a.admin.csrf)
			}
		}
	}

	// Links and invitations: forged ones.
	consumerLink := probe{method: "GET", path: "/c/l/:token"}
	for who, token := range map[string]string{"a forged link": store.Token(20), "an over-long link": strings.Repeat("l", 300)} {
		s.expect(consumerLink, who, s.api.do(get("/c/l/"+token)(a), nil), http.StatusNotFound)
		n["consumer links"]++
	}
	invite := func(who, token string) {
		s.t.Helper()
		// A browser signed out, with the form token the sign-in page gave
		// it: only the invitation's own token is wrong.
		browser := newAgent(s.target.BaseURL, true)
		form := csrfField.FindSubmatch(browser.do(get("/console/login")(a), nil).body)
		if form == nil {
			s.t.Fatal("sweep: no form on the sign-in page")
		}
		for _, method := range []string{"GET", "POST"} {
			p := probe{method: method, path: "/console/invite/:token"}
			r := request{method: method, path: "/console/invite/" + token}
			if method == "POST" {
				password := "sweep " + store.Token(10) + " Quartz!"
				r = formRequest("POST", r.path, url.Values{"csrf": {string(form[1])}, "email": {"someone." + s.run + "@sweep.example"},
					"password": {password}, "confirm": {password}})
			}
			s.expect(p, who, browser.do(r, nil), http.StatusNotFound)
			n["console invitations"]++
		}
	}
	invite("with a forged invitation", store.Token(32))
	invite("with a used invitation", a.adminInvite)

	// Then every way a session or a link ends, each sent again.
	db, cancel := s.database()
	defer cancel()
	ended := map[string]string{}
	// Signed out.
	ended["a signed-out consumer session"] = a.other.session.cookie("/c/", "orbt_consumer")
	s.must(s.asConsumer(&a.other, formRequest("POST", "/c/signout", url.Values{})), http.StatusOK, "consumer sign-out", nil)
	// Revoked: the link, and with it every session it opened.
	s.must(s.call(a.writeKey, request{method: "DELETE", path: "/v1/consumers/" + a.consumer.id + "/links/" + a.consumer.linkID}),
		http.StatusOK, "revoke link", nil)
	ended["a revoked link's session"] = consumerCookie
	// Expired: a link aged past its expiry.
	var link struct{ ID, URL string }
	s.must(s.call(a.writeKey, jsonRequest("POST", "/v1/consumers/"+a.other.id+"/links", nil)), http.StatusCreated, "link", &link)
	s.keep("consumer link token", tokenOf(link.URL))
	expiring := newAgent(s.target.BaseURL, true)
	s.must(expiring.do(get(pathOf(link.URL))(a), nil), http.StatusSeeOther, "open link", nil)
	ended["an expired link's session"] = expiring.cookie("/c/", "orbt_consumer")
	s.keep("consumer session token", ended["an expired link's session"])
	s.age(db, `UPDATE consumer_links SET expires_at = now() - interval '1 second' WHERE id = $1`, link.ID)
	for who, cookie := range ended {
		for _, p := range sessionRoutes("c") {
			consumerRoute(p, "with "+who, cookie)
		}
	}
	for who, token := range map[string]string{"a revoked link": a.consumer.linkToken, "an expired link": tokenOf(link.URL)} {
		s.expect(consumerLink, who, s.api.do(get("/c/l/"+token)(a), nil), http.StatusNotFound)
		n["consumer links"]++
	}

	// Console: signed out (a second session of the admin), expired (the
	// finance member's, aged), a revoked member's (technology's).
	second := &member{agent: newAgent(s.target.BaseURL, true), role: "admin", email: a.admin.email, password: a.admin.password}
	login := second.do(get("/console/login")(a), nil)
	form := csrfField.FindSubmatch(login.body)
	if form == nil {
		s.t.Fatalf("sweep: no form on the sign-in page: %s", login)
	}
	s.must(second.do(formRequest("POST", "/console/login", url.Values{"csrf": {string(form[1])}, "email": {second.email},
		"password": {second.password}, "next": {"/console/"}}), nil), http.StatusSeeOther, "sign in", nil)
	signedOut := second.cookie("/console/", "orbt_console")
	s.keep("console session token", signedOut)
	home := second.do(get("/console/")(a), nil)
	if m := csrfField.FindSubmatch(home.body); m != nil {
		second.csrf = string(m[1])
	}
	if !redirectsToSignIn(second.post("/console/logout", nil)) {
		s.t.Fatal("sweep: signing out of the console did not lead to the sign-in page")
	}
	s.age(db, `UPDATE console_sessions SET expires_at = now() - interval '1 second' WHERE member_id = $1`, a.finance.id)
	s.must(a.admin.post("/console/team/members/"+a.tech.id+"/revoke", nil), http.StatusSeeOther, "revoke member", nil)
	for _, e := range []struct {
		who          string
		cookie, csrf string
	}{
		{"a signed-out session", signedOut, second.csrf},
		{"an expired session", a.finance.cookie("/console/", "orbt_console"), a.finance.csrf},
		{"a revoked member's session", a.tech.cookie("/console/", "orbt_console"), a.tech.csrf},
	} {
		for _, p := range sessionRoutes("console") {
			consoleRoute(p, "with "+e.who, e.cookie, e.csrf)
		}
	}
	// An invitation withdrawn.
	s.must(a.admin.post("/console/team/invites/"+a.pendingInvite+"/revoke", nil), http.StatusSeeOther, "withdraw invitation", nil)
	invite("with a withdrawn invitation", a.pendingInviteToken)
	s.t.Logf("bad credentials refused: %s", n)
}

// flip changes a token's last character, as a tampered cookie would.
func flip(token string) string {
	if token == "" {
		return "x"
	}
	last := token[len(token)-1]
	if last == 'a' {
		return token[:len(token)-1] + "b"
	}
	return token[:len(token)-1] + "a"
}

// database connects to the target's database, for ageing what the sweep
// cannot wait for over HTTP.
func (s *sweep) database() (*pgx.Conn, func()) {
	s.t.Helper()
	c, cancel := ctx()
	conn, err := pgx.Connect(c, s.target.DatabaseURL)
	if err != nil {
		cancel()
		s.t.Fatalf("sweep: database: %v", err)
	}
	return conn, func() { conn.Close(c); cancel() }
}

// age runs one statement that moves an expiry into the past.
func (s *sweep) age(db *pgx.Conn, sql string, args ...any) {
	s.t.Helper()
	c, cancel := ctx()
	defer cancel()
	tag, err := db.Exec(c, sql, args...)
	if err != nil || tag.RowsAffected() == 0 {
		s.t.Fatalf("sweep: age %q: %v (%d rows)", sql, err, tag.RowsAffected())
	}
}
