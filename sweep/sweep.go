// Package sweep is a security sweep of a running Orbt, for tests: given
// its public URL, its admin token, its database and its logs, Run makes
// two workspaces of its own (keys, consumers, wallets, money, a gift
// card, links, endpoints, console members) and checks, through HTTP the
// way an attacker would reach it:
//
//  1. every route that takes an id, on every surface (/v1,
//     /api/partner/v1, the consumer pages, the console), answers 404 to
//     another workspace's key, consumer or member, and writes nothing;
//     the routes come from the router itself (app.Routes), so a route the
//     sweep does not know fails it;
//  2. every write of /v1 and of the partner API refuses a read-only key
//     (403), and every console write and settings page refuses a member
//     whose role lacks it (403), writing nothing;
//  3. revoked, malformed and unknown keys, a stale signature, expired,
//     revoked and forged consumer links, and console sessions signed out,
//     expired, tampered with or of a revoked member are refused (401,
//     403, the link's "no longer works" page, the sign-in page), never a
//     2xx and never a 5xx;
//  4. webhook endpoints at loopback, private, link-local and metadata
//     addresses, in every spelling (decimal, octal, hex, IPv6 forms,
//     names resolving to loopback), are refused or never dialled: a
//     loopback listener counts the connections and must count none;
//  5. no secret the sweep made or was shown (API keys, the admin token,
//     webhook and signing secrets, link, invitation and session tokens,
//     passwords, gift card codes) is in any log line or in clear text in
//     a pg_dump --data-only of the database.
//
// The Orbt under sweep runs with ORBT_WEBHOOK_ALLOW_PRIVATE=false (the
// default) and its sandbox gift card provider. The sweep writes to the
// database for one thing only: to age a consumer link and a console
// session past their expiry (there is no waiting a day over HTTP).
package sweep

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/orbt/orbt/store"
)

// Target is a running Orbt.
type Target struct {
	// BaseURL is the public listener of a running Orbt: it serves /v1,
	// /admin/v1, /api/partner/v1, the consumer pages and /console.
	BaseURL    string
	AdminToken string
	// DatabaseURL is its database, for pg_dump --data-only of the whole
	// of it (and for ageing a link and a session past their expiry).
	DatabaseURL string
	// Logs returns every log line the Orbt processes have written so far.
	Logs func() []byte
}

// Run sweeps target, reporting every failure with t.Errorf naming the
// route, what was sent and the status answered.
func Run(t *testing.T, target Target) {
	t.Helper()
	if target.BaseURL == "" || target.AdminToken == "" || target.DatabaseURL == "" || target.Logs == nil {
		t.Fatal("sweep: a Target needs BaseURL, AdminToken, DatabaseURL and Logs")
	}
	s := &sweep{t: t, target: target, api: newAgent(target.BaseURL, false), run: store.Token(5)}
	s.keep("admin token", target.AdminToken)
	routes := s.routeTable()
	s.a, s.b = s.newTenant("A"), s.newTenant("B")

	before := s.snapshot()
	t.Run("cross-workspace", func(t *testing.T) { s.withT(t, func() { s.crossWorkspace(routes) }) })
	t.Run("read-scope-and-roles", func(t *testing.T) { s.withT(t, func() { s.scopes(routes) }) })
	s.withT(t, func() {
		s.compare(before, s.snapshot(), "after another workspace's and read-only callers")
		for _, c := range []*consumer{&s.a.consumer, &s.a.other, &s.b.consumer, &s.b.other} {
			if ans := c.session.do(request{method: "GET", path: "/c/"}, nil); ans.status != http.StatusOK {
				t.Errorf("a consumer's session ended after another workspace's and read-only callers (its link revoked?): GET /c/ answers %s", ans)
			}
		}
	})

	t.Run("credentials", func(t *testing.T) { s.withT(t, func() { s.credentials(routes) }) })
	t.Run("ssrf", func(t *testing.T) { s.withT(t, s.ssrf) })
	t.Run("secrets", func(t *testing.T) { s.withT(t, s.secretsAtRest) })
}

// sweep is one run's state.
type sweep struct {
	t      *testing.T
	target Target
	// api sends requests without cookies: a partner's code.
	api *agent
	// run tells this run's names and addresses from an earlier run's
	// (console members' addresses are unique across the deployment).
	run     string
	a, b    *tenant
	secrets []secret
}

// withT runs f reporting to t (a subtest's).
func (s *sweep) withT(t *testing.T, f func()) {
	outer := s.t
	s.t = t
	defer func() { s.t = outer }()
	f()
}

// secret is something that must never be seen again outside the answer
// that showed it.
type secret struct{ kind, value string }

func (s *sweep) keep(kind, value string) {
	if value != "" {
		s.secrets = append(s.secrets, secret{kind, value})
	}
}

// call sends a request with an API key (or the admin token).
func (s *sweep) call(key string, r request) answer { return s.api.do(r, bearer(key)) }

// must fails the sweep (its setup cannot go on) unless ans has status
// want, and decodes a JSON body into out (when not nil).
func (s *sweep) must(ans answer, want int, what string, out any) {
	s.t.Helper()
	if ans.status != want {
		s.t.Fatalf("sweep setup: %s: want %d, got %s", what, want, ans)
	}
	if out != nil {
		if err := ans.decode(out); err != nil {
			s.t.Fatalf("sweep setup: %s: %v: %s", what, err, ans)
		}
	}
}

// waitFor polls f until it reports done, failing the setup after the
// deadline.
func (s *sweep) waitFor(what string, f func() bool) {
	s.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			s.t.Fatalf("sweep setup: %s: gave up after 30 s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// snapshot reads what each workspace holds, with its own write key and
// its admin's console session, to show that refused requests wrote
// nothing. Times of a key's last use are left out (using a key is not
// writing through it).
func (s *sweep) snapshot() map[string]string {
	s.t.Helper()
	snap := map[string]string{}
	for _, w := range []*tenant{s.a, s.b} {
		paths := []string{"/v1/workspace", "/v1/api-keys?limit=500", "/v1/consumers?limit=500", "/v1/campaigns?limit=500",
			"/v1/transactions?limit=500", "/v1/batches?limit=500", "/v1/redemptions?limit=500", "/v1/events?limit=500",
			"/v1/webhook-endpoints?limit=500", "/v1/brands?limit=500",
			"/v1/consumers/" + w.consumer.id + "/wallets", "/v1/consumers/" + w.other.id + "/wallets",
			"/v1/webhook-endpoints/" + w.endpoint + "/deliveries"}
		for _, p := range paths {
			ans := s.call(w.writeKey, request{method: "GET", path: p})
			snap[w.label+" GET "+p] = normalized(ans)
		}
		for _, p := range []string{"/console/team", "/console/audit"} {
			ans := w.admin.do(request{method: "GET", path: p}, nil)
			snap[w.label+" console GET "+p] = ans.String() + csrfField.ReplaceAllString(string(ans.body), "")
		}
		// A member signed out, or a key revoked, would end these (and a
		// link revoked the consumers' sessions: checkSessions).
		for _, m := range []*member{w.admin, w.finance, w.tech} {
			snap[w.label+" console "+m.role] = statusOnly(m.do(request{method: "GET", path: "/console/"}, nil))
		}
		snap[w.label+" spare key"] = statusOnly(s.call(w.spareKey, request{method: "GET", path: "/v1/workspace"}))
	}
	return snap
}

func statusOnly(a answer) string { return http.StatusText(a.status) }

// normalized is a JSON answer without lastUsedAt, whatever its depth.
func normalized(a answer) string {
	var v any
	if err := json.Unmarshal(a.body, &v); err != nil {
		return a.String()
	}
	var strip func(any)
	strip = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			delete(x, "lastUsedAt")
			for _, e := range x {
				strip(e)
			}
		case []any:
			for _, e := range x {
				strip(e)
			}
		}
	}
	strip(v)
	b, _ := json.Marshal(v)
	return http.StatusText(a.status) + " " + string(b)
}

func (s *sweep) compare(before, after map[string]string, when string) {
	s.t.Helper()
	for k, b := range before {
		if a := after[k]; a != b {
			s.t.Errorf("something was written %s: %s changed\n  before: %.600s\n  after:  %.600s", when, k, b, a)
		}
	}
}

// ctx is the context of the sweep's own database work.
func ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 30*time.Second)
}

// surfaceOf names the surface a route belongs to by its path.
func surfaceOf(path string) string {
	for _, p := range []string{"/v1/", "/admin/v1/", "/api/partner/v1/", "/c/", "/console/", "/ops/"} {
		if strings.HasPrefix(path, p) {
			return strings.Trim(p, "/")
		}
	}
	return "other"
}
