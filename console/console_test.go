package console_test

import (
	"bytes"
	"context"
	"html"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/orbt/orbt/app"
	"github.com/orbt/orbt/testenv"
	"github.com/orbt/orbt/teststack"
	"github.com/orbt/orbt/workspace"
)

// redisDB is this package's Redis database index (see the Makefile).
const redisDB = 10

var db *testenv.Database

func TestMain(m *testing.M) {
	// Cheaper password hashes: the parameters are not what these tests
	// are about, and -race makes argon2 slow.
	workspace.PasswordParams.Memory, workspace.PasswordParams.Iterations = 1024, 1
	os.Exit(testenv.Main(m, "console", &db))
}

// mail is an address of the test's own: members' addresses are unique
// across workspaces, and the tests share one database.
func mail(t *testing.T, local string) string {
	return local + "@" + strings.ToLower(strings.ReplaceAll(t.Name(), "/", ".")) + ".example"
}

// password is one that passes the console's checks.
const password = "copper kettle marches north"

func stackFor(t *testing.T, o teststack.Options) *teststack.Stack {
	return teststack.Start(t, db.Pool, redisDB, o)
}

// partner is a workspace: its API client and its first admin's invitation.
type partner struct {
	id, apiKey, inviteURL string
}

func newPartner(t *testing.T, s *teststack.Stack, fund int64) partner {
	t.Helper()
	ctx := context.Background()
	var ws struct{ ID, APIKey, ConsoleInviteURL string }
	teststack.OK(t)(s.Admin.Call(ctx, "POST", "/admin/v1/workspaces", map[string]any{"name": "Shop " + t.Name()}, 201, &ws))
	if !strings.HasPrefix(ws.ConsoleInviteURL, s.URL+"/console/invite/") {
		t.Fatalf("consoleInviteUrl %q", ws.ConsoleInviteURL)
	}
	if fund > 0 {
		res, err := s.Admin.Do(ctx, "POST", "/admin/v1/workspaces/"+ws.ID+"/fundings",
			map[string]any{"referenceId": "f1", "currency": "USD", "amount": fund}, http.Header{"Prefer": {"wait=10"}})
		if err != nil || res.Status != 200 {
			t.Fatalf("fund: %v %v", err, res)
		}
	}
	return partner{id: ws.ID, apiKey: ws.APIKey, inviteURL: ws.ConsoleInviteURL}
}

// member is a signed-in browser without JavaScript.
type member struct {
	*teststack.Visitor
	t    *testing.T
	csrf string
}

var (
	csrfField  = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
	secretCode = regexp.MustCompile(`id="(?:new-link|new-key|consumer-link|new-signing-secret)" data-copy>([^<]+)<`)
)

func csrfOf(t *testing.T, page string) string {
	t.Helper()
	m := csrfField.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no CSRF token in the page:\n%s", page)
	}
	return m[1]
}

// join accepts an invitation (or a reset) as email and returns the
// signed-in member.
func join(t *testing.T, base, inviteURL, email string) *member {
	t.Helper()
	v := teststack.NewVisitor(t, base)
	status, _, page := v.Do("GET", inviteURL, nil, nil)
	if status != 200 {
		t.Fatalf("invitation page: %d\n%s", status, page)
	}
	status, h, page := v.Do("POST", inviteURL, url.Values{"csrf": {csrfOf(t, page)}, "email": {email},
		"password": {password}, "confirm": {password}}, nil)
	if status != http.StatusSeeOther || h.Get("Location") != "/console/" {
		t.Fatalf("accepting the invitation: %d %v\n%s", status, h, page)
	}
	m := &member{Visitor: v, t: t}
	status, _, page = v.Do("GET", "/console/", nil, nil)
	if status != 200 {
		status, _, page = v.Do("GET", "/console/consumers", nil, nil)
	}
	m.csrf = csrfOf(t, page)
	return m
}

// post sends a console form with the member's CSRF token.
func (m *member) post(path string, form url.Values) (int, http.Header, string) {
	m.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	form.Set("csrf", m.csrf)
	return m.Do("POST", path, form, nil)
}

func (m *member) get(path string) (int, string) {
	m.t.Helper()
	status, _, page := m.Do("GET", path, nil, nil)
	return status, page
}

// shown is the secret a page shows once (a link, a key).
func shown(t *testing.T, page string) string {
	t.Helper()
	m := secretCode.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no secret shown in the page:\n%s", page)
	}
	return html.UnescapeString(m[1])
}

// invite has an admin invite email with role and returns the link shown.
func (m *member) invite(email, role string) string {
	m.t.Helper()
	status, _, page := m.post("/console/team/invites", url.Values{"email": {email}, "role": {role}})
	if status != http.StatusCreated {
		m.t.Fatalf("invite %s: %d\n%s", email, status, page)
	}
	return shown(m.t, page)
}

// upload posts a payout file to the review step.
func (m *member) upload(reference, csv string) (int, string) {
	m.t.Helper()
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	w.WriteField("csrf", m.csrf)
	w.WriteField("referenceId", reference)
	f, _ := w.CreateFormFile("file", "payout.csv")
	f.Write([]byte(csv))
	w.Close()
	req, _ := http.NewRequest("POST", m.URL()+"/console/payouts/review", &body)
	req.Header.Set("Content-Type", w.FormDataContentType())
	status, _, page := m.Send(req, nil)
	return status, page
}

// A workspace's first admin joins by the invitation its creation
// returned; the link works once, and an expired one never.
func TestInvitationLetsTheFirstAdminIn(t *testing.T) {
	s := stackFor(t, teststack.Options{})
	p := newPartner(t, s, 100_000)

	// A weak password is refused beside its field, and the invitation
	// stays usable.
	v := teststack.NewVisitor(t, s.URL)
	_, _, page := v.Do("GET", p.inviteURL, nil, nil)
	for _, weak := range []string{"short", "password1234", "qwertyuiop123"} {
		status, _, page := v.Do("POST", p.inviteURL, url.Values{"csrf": {csrfOf(t, page)}, "email": {mail(t, "ada")},
			"password": {weak}, "confirm": {weak}}, nil)
		if status != http.StatusUnprocessableEntity || !strings.Contains(page, `id="password-error"`) {
			t.Fatalf("password %q: %d", weak, status)
		}
	}
	// Without the form's CSRF token: refused.
	if status, _, _ := v.Do("POST", p.inviteURL, url.Values{"email": {mail(t, "ada")}, "password": {password}, "confirm": {password}}, nil); status != 403 {
		t.Fatalf("invitation accepted without its CSRF token: %d", status)
	}

	ada := join(t, s.URL, p.inviteURL, mail(t, "ada"))
	status, page := ada.get("/console/")
	if status != 200 || !strings.Contains(page, `id="balance-USD">1,000.00 USD<`) && !strings.Contains(page, `id="balance-USD">1000.00 USD<`) {
		t.Fatalf("overview: %d\n%s", status, page)
	}
	// Used once: the link opens nothing now.
	if status, _, page := teststack.NewVisitor(t, s.URL).Do("GET", p.inviteURL, nil, nil); status != 404 || !strings.Contains(page, "This link does not work") {
		t.Fatalf("a used invitation: %d", status)
	}

	// An expired invitation opens nothing either.
	link := ada.invite(mail(t, "bob"), workspace.RoleFinance)
	if _, err := db.Pool.Exec(context.Background(), `UPDATE console_invites SET expires_at = now() - interval '1 second' WHERE email = $1`, mail(t, "bob")); err != nil {
		t.Fatal(err)
	}
	if status, _, _ := teststack.NewVisitor(t, s.URL).Do("GET", link, nil, nil); status != 404 {
		t.Fatalf("an expired invitation: %d", status)
	}
	// An invitation is for the address invited, whatever the form says.
	link = ada.invite(mail(t, "cy"), workspace.RoleFinance)
	cy := join(t, s.URL, link, "mallory@evil.example")
	if _, page := cy.get("/console/"); !strings.Contains(page, mail(t, "cy")) {
		t.Fatalf("an invitation for cy signed in someone else:\n%s", page)
	}
}

// Forms are refused without the session's CSRF token or from another
// site; each role is refused what it may not do, on the server.
func TestFormsAndRolesAreEnforced(t *testing.T) {
	s := stackFor(t, teststack.Options{})
	p := newPartner(t, s, 0)
	admin := join(t, s.URL, p.inviteURL, mail(t, "admin"))
	finance := join(t, s.URL, admin.invite(mail(t, "fin"), workspace.RoleFinance), mail(t, "fin"))
	tech := join(t, s.URL, admin.invite(mail(t, "tech"), workspace.RoleTechnology), mail(t, "tech"))

	consumer := url.Values{"externalId": {"u-1"}}
	if status, _, _ := admin.Do("POST", "/console/consumers", consumer, nil); status != 403 {
		t.Fatalf("a form without its CSRF token: %d", status)
	}
	consumer.Set("csrf", admin.csrf)
	if status, _, _ := admin.Do("POST", "/console/consumers", consumer, http.Header{"Origin": {"https://evil.example"}}); status != 403 {
		t.Fatalf("a form from another site: %d", status)
	}
	consumer.Set("csrf", finance.csrf) // another member's token
	if status, _, _ := admin.Do("POST", "/console/consumers", consumer, nil); status != 403 {
		t.Fatalf("a form with another session's token: %d", status)
	}

	refused := []struct {
		who          *member
		method, path string
	}{
		{finance, "GET", "/console/keys"},
		{finance, "POST", "/console/keys"},
		{finance, "GET", "/console/webhooks"},
		{finance, "POST", "/console/webhooks"},
		{finance, "GET", "/console/team"},
		{finance, "POST", "/console/team/invites"},
		{finance, "GET", "/console/audit"},
		{finance, "POST", "/console/settings/signing-secret"},
		{tech, "POST", "/console/consumers"},
		{tech, "POST", "/console/payouts/review"},
		{tech, "POST", "/console/campaigns"},
		{tech, "GET", "/console/team"},
		{tech, "POST", "/console/team/invites"},
		{tech, "GET", "/console/settings"},
	}
	for _, r := range refused {
		var status int
		var page string
		if r.method == "GET" {
			status, page = r.who.get(r.path)
		} else {
			status, _, page = r.who.post(r.path, url.Values{"name": {"x"}, "scope": {"write"}, "externalId": {"x"},
				"email": {"z@shop.example"}, "role": {"admin"}})
		}
		if status != 403 || !strings.Contains(page, "Not for your role") {
			t.Errorf("%s %s as %s: %d", r.method, r.path, r.who.t.Name(), status)
		}
	}
	// What each may do, they can.
	for _, ok := range []struct {
		who  *member
		path string
	}{{finance, "/console/consumers"}, {finance, "/console/payouts"}, {tech, "/console/keys"}, {tech, "/console/webhooks"},
		{tech, "/console/transactions"}, {admin, "/console/team"}, {admin, "/console/audit"}} {
		if status, _ := ok.who.get(ok.path); status != 200 {
			t.Errorf("GET %s: %d", ok.path, status)
		}
	}
	// The navigation shows a member only what their role opens.
	if _, page := finance.get("/console/"); strings.Contains(page, `href="/console/keys"`) {
		t.Error("finance's navigation links the API keys page")
	}
	// Nothing was made by the refused writes.
	if _, page := admin.get("/console/consumers"); strings.Contains(page, ">x<") {
		t.Error("a refused form created a consumer")
	}
}

// Another workspace's objects are not found, whatever the page.
func TestAnotherWorkspacesIDsAreNotFound(t *testing.T) {
	s := stackFor(t, teststack.Options{})
	mine, theirs := newPartner(t, s, 10_000), newPartner(t, s, 10_000)
	me := join(t, s.URL, mine.inviteURL, mail(t, "me"))
	them := join(t, s.URL, theirs.inviteURL, mail(t, "them"))
	ctx := context.Background()
	api := s.Client(theirs.apiKey)
	var c, w, key, ep, b struct{ ID string }
	teststack.OK(t)(api.Call(ctx, "POST", "/v1/consumers", map[string]any{"externalId": "x"}, 201, &c))
	teststack.OK(t)(api.Call(ctx, "POST", "/v1/consumers/"+c.ID+"/wallets", map[string]any{"currency": "USD", "type": "standard"}, 201, &w))
	var txn struct{ ID string }
	teststack.OK(t)(api.Call(ctx, "POST", "/v1/transactions", map[string]any{"referenceId": "t1", "type": "credit", "walletId": w.ID,
		"amount": 100, "currency": "USD"}, 202, &txn))
	teststack.OK(t)(api.Call(ctx, "POST", "/v1/api-keys", map[string]any{"name": "k", "scope": "read"}, 201, &key))
	teststack.OK(t)(api.Call(ctx, "POST", "/v1/webhook-endpoints", map[string]any{"url": "http://127.0.0.1:1/hook", "events": []string{"transaction.completed"}}, 201, &ep))
	teststack.OK(t)(api.Call(ctx, "POST", "/v1/batches", map[string]any{"referenceId": "b1", "items": []map[string]any{
		{"referenceId": "b1-1", "type": "credit", "walletId": w.ID, "amount": 1, "currency": "USD"}}}, 202, &b))
	var members []workspace.Member
	members, err := s.App.Workspaces.Members(ctx, theirs.id)
	if err != nil || len(members) != 1 {
		t.Fatal(members, err)
	}
	_ = them

	for _, path := range []string{"/console/consumers/" + c.ID, "/console/transactions/" + txn.ID, "/console/payouts/" + b.ID,
		"/console/payouts/" + b.ID + "/failed.csv", "/console/webhooks/" + ep.ID, "/console/consumers/%00", "/console/transactions/%ff"} {
		if status, page := me.get(path); status != 404 || strings.Contains(page, "x<") {
			t.Errorf("GET %s: %d", path, status)
		}
	}
	for _, path := range []string{"/console/consumers/" + c.ID + "/wallets", "/console/consumers/" + c.ID + "/links",
		"/console/keys/" + key.ID + "/revoke", "/console/webhooks/" + ep.ID + "/redeliver",
		"/console/team/members/" + members[0].ID + "/revoke", "/console/team/members/" + members[0].ID + "/reset",
		"/console/campaigns/cmp_nope/status"} {
		if status, _, _ := me.post(path, url.Values{"currency": {"USD"}, "days": {"1"}, "status": {"paused"}, "eventId": {"evt_x"}}); status != 404 {
			t.Errorf("POST %s: %d", path, status)
		}
	}
	// A credit to their wallet from my consumer's page: refused beside the field.
	teststack.OK(t)(s.Client(mine.apiKey).Call(ctx, "POST", "/v1/consumers", map[string]any{"externalId": "mine"}, 201, &c))
	teststack.OK(t)(s.Client(mine.apiKey).Call(ctx, "POST", "/v1/consumers/"+c.ID+"/wallets", map[string]any{"currency": "USD", "type": "standard"}, 201, nil))
	status, _, page := me.post("/console/consumers/"+c.ID+"/transactions", url.Values{"walletId": {w.ID}, "type": {"credit"},
		"amount": {"1.00"}, "referenceId": {"console-abc"}})
	if status != 422 || !strings.Contains(page, `id="walletId-error"`) {
		t.Fatalf("crediting another workspace's wallet: %d", status)
	}
	// Their key still works, their member is still in.
	if status, _ := them.get("/console/"); status != 200 {
		t.Fatalf("the other workspace's admin: %d", status)
	}
}

// Revoking a member ends their session at once; a reset link sets a new
// password and ends the member's other sessions; sessions time out.
func TestSessionsEnd(t *testing.T) {
	s := stackFor(t, teststack.Options{Settings: app.Settings{ConsoleSessions: workspace.SessionTimeouts{Idle: 2 * time.Second, Max: time.Hour}}})
	p := newPartner(t, s, 0)
	admin := join(t, s.URL, p.inviteURL, mail(t, "admin"))
	fin := join(t, s.URL, admin.invite(mail(t, "fin"), workspace.RoleFinance), mail(t, "fin"))
	members, err := s.App.Workspaces.Members(context.Background(), p.id)
	if err != nil {
		t.Fatal(err)
	}
	var finID, adminID string
	for _, m := range members {
		if m.Email == mail(t, "fin") {
			finID = m.ID
		} else {
			adminID = m.ID
		}
	}
	// The last admin cannot be revoked (nor revoke themself from the page).
	if status, _, page := admin.post("/console/team/members/"+adminID+"/revoke", nil); status != 409 || !strings.Contains(page, "at least one admin") {
		t.Fatalf("revoking the last admin: %d", status)
	}

	// A reset link: the new password works, the old session ends.
	status, _, page := admin.post("/console/team/members/"+finID+"/reset", nil)
	if status != http.StatusCreated {
		t.Fatalf("reset link: %d", status)
	}
	reset := shown(t, page)
	fin2 := join(t, s.URL, reset, mail(t, "fin"))
	if status, h, _ := fin.Do("GET", "/console/consumers", nil, nil); status != http.StatusSeeOther || !strings.HasPrefix(h.Get("Location"), "/console/login") {
		t.Fatalf("the old session after a password reset: %d", status)
	}

	// An admin's invitations die with them: a second admin is made, invites
	// someone, is revoked; the invitation opens nothing.
	admin2 := join(t, s.URL, admin.invite(mail(t, "admin2"), workspace.RoleAdmin), mail(t, "admin2"))
	pending := admin2.invite(mail(t, "friend"), workspace.RoleAdmin)
	members, _ = s.App.Workspaces.Members(context.Background(), p.id)
	for _, m := range members {
		if m.Email == mail(t, "admin2") {
			if status, _, _ := admin.post("/console/team/members/"+m.ID+"/revoke", nil); status != http.StatusSeeOther {
				t.Fatalf("revoke the second admin: %d", status)
			}
		}
	}
	if status, _, _ := teststack.NewVisitor(t, s.URL).Do("GET", pending, nil, nil); status != 404 {
		t.Fatalf("an invitation from a revoked admin: %d", status)
	}
	if status, _ := admin.get("/console/audit?before=3000000000"); status != 200 {
		t.Fatalf("the audit log before a large id: %d", status)
	}

	// Revocation: the member's session ends at once, and sign-in fails.
	if status, _, _ := admin.post("/console/team/members/"+finID+"/revoke", nil); status != http.StatusSeeOther {
		t.Fatalf("revoke: %d", status)
	}
	if status, h, _ := fin2.Do("GET", "/console/consumers", nil, nil); status != http.StatusSeeOther || !strings.HasPrefix(h.Get("Location"), "/console/login") {
		t.Fatalf("a revoked member's session: %d %v", status, h)
	}
	if status, _, _ := fin2.post("/console/consumers", url.Values{"externalId": {"late"}}); status != http.StatusSeeOther {
		t.Fatalf("a revoked member's form: %d", status)
	}
	v := teststack.NewVisitor(t, s.URL)
	_, _, login := v.Do("GET", "/console/login", nil, nil)
	if status, _, _ := v.Do("POST", "/console/login", url.Values{"csrf": {csrfOf(t, login)}, "email": {mail(t, "fin")}, "password": {password}}, nil); status != 401 {
		t.Fatalf("a revoked member signs in: %d", status)
	}

	// Idle timeout (2 s here).
	if status, _ := admin.get("/console/"); status != 200 {
		t.Fatal(status)
	}
	time.Sleep(2500 * time.Millisecond)
	if status, h, _ := admin.Do("GET", "/console/", nil, nil); status != http.StatusSeeOther || h.Get("Location") != "/console/login" {
		t.Fatalf("after the idle timeout: %d %v", status, h)
	}
	// Sign-out ends the session server-side: its cookie replayed is refused.
	again := signIn(t, s.URL, mail(t, "admin"), password)
	cookie := sessionCookie(t, again)
	if status, _, _ := again.post("/console/logout", nil); status != http.StatusSeeOther {
		t.Fatal(status)
	}
	req, _ := http.NewRequest("GET", s.URL+"/console/", nil)
	req.AddCookie(cookie)
	if status, _, _ := teststack.NewVisitor(t, s.URL).Send(req, nil); status != http.StatusSeeOther {
		t.Fatalf("a signed-out session's cookie: %d", status)
	}
}

func signIn(t *testing.T, base, email, pw string) *member {
	t.Helper()
	v := teststack.NewVisitor(t, base)
	_, _, page := v.Do("GET", "/console/login", nil, nil)
	status, h, page := v.Do("POST", "/console/login", url.Values{"csrf": {csrfOf(t, page)}, "email": {email}, "password": {pw}}, nil)
	if status != http.StatusSeeOther {
		t.Fatalf("sign in as %s: %d\n%s", email, status, page)
	}
	_ = h
	_, _, page = v.Do("GET", "/console/transactions", nil, nil)
	return &member{Visitor: v, t: t, csrf: csrfOf(t, page)}
}

func sessionCookie(t *testing.T, m *member) *http.Cookie {
	t.Helper()
	u, _ := url.Parse(m.URL() + "/console/")
	for _, c := range m.Cookies(u) {
		if c.Name == "orbt_console" {
			return c
		}
	}
	t.Fatal("no session cookie")
	return nil
}

// Sign-in is limited: after five wrong passwords the account is locked,
// and while it is even the right password is refused.
func TestSignInLockout(t *testing.T) {
	s := stackFor(t, teststack.Options{NoWorker: true})
	p := newPartner(t, s, 0)
	join(t, s.URL, p.inviteURL, mail(t, "ada"))
	v := teststack.NewVisitor(t, s.URL)
	_, h, page := v.Do("GET", "/console/login", nil, nil)
	if c := h.Get("Set-Cookie"); !strings.Contains(c, "HttpOnly") || !strings.Contains(c, "SameSite=Strict") {
		t.Fatalf("form cookie %q", c)
	}
	token := csrfOf(t, page)
	attempt := func(pw string) (int, http.Header, string) {
		return v.Do("POST", "/console/login", url.Values{"csrf": {token}, "email": {strings.ToUpper(mail(t, "ada"))}, "password": {pw}}, nil)
	}
	for i := range 5 {
		status, _, page := attempt("wrong password " + string(rune('a'+i)))
		if status != 401 {
			t.Fatalf("wrong password %d: %d", i, status)
		}
		if i < 4 && !strings.Contains(page, "The email address or the password is wrong.") {
			t.Fatalf("wrong password %d: %s", i, page)
		}
	}
	status, h, page := attempt(password)
	if status != http.StatusTooManyRequests || h.Get("Retry-After") == "" || !strings.Contains(page, "locked") {
		t.Fatalf("the right password while locked: %d %v", status, h)
	}
	// Attempts sent at once are counted before their passwords are
	// checked: twenty at once on a fresh account leave it locked, and at
	// most five of them were tried.
	var wg sync.WaitGroup
	var tried atomic.Int32
	for range 20 {
		wg.Go(func() {
			w := teststack.NewVisitor(t, s.URL)
			_, _, pg := w.Do("GET", "/console/login", nil, nil)
			status, _, _ := w.Do("POST", "/console/login", url.Values{"csrf": {csrfOf(t, pg)}, "email": {mail(t, "eve")}, "password": {"guess"}}, nil)
			if status == 401 {
				tried.Add(1)
			}
		})
	}
	wg.Wait()
	if n := tried.Load(); n > 5 {
		t.Fatalf("%d passwords tried of 20 sent at once, want at most 5", n)
	}
	// An unknown address is locked the same way: a lockout tells nobody
	// that an account exists.
	for range 5 {
		v.Do("POST", "/console/login", url.Values{"csrf": {token}, "email": {mail(t, "nobody")}, "password": {"x"}}, nil)
	}
	if status, _, _ := v.Do("POST", "/console/login", url.Values{"csrf": {token}, "email": {mail(t, "nobody")}, "password": {"x"}}, nil); status != 429 {
		t.Fatalf("an unknown address after five failures: %d", status)
	}
	// The locks lift when their windows end (here: the counters removed;
	// this address has also spent its attempts).
	rdb := s.App.Redis
	keys, _ := rdb.Keys(context.Background(), "orbt:console:signin:*").Result()
	rdb.Del(context.Background(), keys...)
	status, h, _ = attempt(password)
	if status != http.StatusSeeOther || h.Get("Location") != "/console/" {
		t.Fatalf("signing in after the lockout: %d", status)
	}
	if c := h.Get("Set-Cookie"); !strings.Contains(c, "orbt_console=") || !strings.Contains(c, "HttpOnly") || !strings.Contains(c, "SameSite=Strict") {
		t.Fatalf("session cookie %q", c)
	}
}

var (
	consumerPath = regexp.MustCompile(`^/console/consumers/(csm_\w+)$`)
	batchPath    = regexp.MustCompile(`^/console/payouts/(bat_\w+)$`)
	formRef      = regexp.MustCompile(`name="referenceId" value="(console-\w+)"`)
)

// Money moves through the console as through the API: a consumer, a
// wallet, a credit under the form's referenceId (twice sent, paid once),
// a payout file checked row by row before it is submitted, and every
// write in the audit log.
func TestMoneyThroughTheConsole(t *testing.T) {
	s := stackFor(t, teststack.Options{})
	p := newPartner(t, s, 100_000)
	fin := join(t, s.URL, newAdminInvite(t, s, p), mail(t, "fin"))

	status, h, _ := fin.post("/console/consumers", url.Values{"externalId": {"u-42"}, "name": {"Ada"}, "email": {"ada@example.com"}})
	m := consumerPath.FindStringSubmatch(h.Get("Location"))
	if status != http.StatusSeeOther || m == nil {
		t.Fatalf("create consumer: %d %v", status, h)
	}
	consumer := m[1]
	if status, _, page := fin.post("/console/consumers", url.Values{"externalId": {"u-42"}}); status != 409 || !strings.Contains(page, `id="externalId-error"`) {
		t.Fatalf("a second consumer with the same externalId: %d", status)
	}
	if status, page := fin.get("/console/consumers?q=ADA@example.com"); status != 200 || !strings.Contains(page, consumer) {
		t.Fatalf("search by email: %d", status)
	}
	if status, _, _ := fin.post("/console/consumers/"+consumer+"/wallets", url.Values{"currency": {"USD"}}); status != http.StatusSeeOther {
		t.Fatalf("add wallet: %d", status)
	}
	if status, _, page := fin.post("/console/consumers/"+consumer+"/wallets", url.Values{"currency": {"USD"}}); status != 409 || !strings.Contains(page, "already has this wallet") {
		t.Fatalf("the same wallet again: %d", status)
	}
	_, page := fin.get("/console/consumers/" + consumer)
	ref := formRef.FindStringSubmatch(page)[1]
	wallet := regexp.MustCompile(`id="balance-(wal_\w+)"`).FindStringSubmatch(page)[1]

	// A bad amount is refused beside its field; then the credit, sent
	// twice, is paid once.
	credit := url.Values{"walletId": {wallet}, "type": {"credit"}, "amount": {"12.345"}, "referenceId": {ref}}
	if status, _, page := fin.post("/console/consumers/"+consumer+"/transactions", credit); status != 422 || !strings.Contains(page, `id="amount-error"`) {
		t.Fatalf("amount 12.345: %d", status)
	}
	credit.Set("amount", "12.50")
	for range 2 {
		status, h, _ := fin.post("/console/consumers/"+consumer+"/transactions", credit)
		if status != http.StatusSeeOther || !strings.Contains(h.Get("Location"), "?txn=txn_") {
			t.Fatalf("credit: %d %v", status, h)
		}
	}
	_, page = fin.get("/console/consumers/" + consumer)
	if !strings.Contains(page, `id="balance-`+wallet+`">12.50 USD<`) {
		t.Fatalf("the wallet after a credit sent twice:\n%s", page)
	}
	// More than the partner holds: refused, named.
	credit.Set("amount", "5000.00")
	credit.Set("referenceId", "console-big")
	_, h, _ = fin.post("/console/consumers/"+consumer+"/transactions", credit)
	if _, page := fin.get(h.Get("Location")); !strings.Contains(page, "your partner balance is too low (insufficient_partner_funds)") {
		t.Fatalf("a credit above the partner balance:\n%s", page)
	}

	// A payout file with bad rows: every row's error, nothing stored.
	bad := "consumerExternalId,amount,currency,type,referenceId\nu-42,1.00,USD,credit,p-1\nu-43,2.001,USD,credit,p-2\nu-44,3.00,XYZ,credit,p-3\n"
	status, page = fin.upload("console-payout1", bad)
	if status != 422 || !strings.Contains(page, `id="row-errors"`) || strings.Count(page, "<tr><td class=\"num\">") != 2 {
		t.Fatalf("a file with two bad rows: %d\n%s", status, page)
	}
	if !strings.Contains(page, ">3</td><td>amount<") || !strings.Contains(page, ">4</td><td>currency<") {
		t.Fatalf("row errors name the line and column:\n%s", page)
	}
	good := "consumerExternalId,amount,currency,type,referenceId\nu-42,1.00,USD,credit,p-1\nu-43,2.00,USD,credit,p-2\nu-44,3.00,USD,debit,p-3\n"
	status, page = fin.upload("console-payout1", good)
	if status != 200 || !strings.Contains(page, `id="submit-payout"`) {
		t.Fatalf("review: %d\n%s", status, page)
	}
	form := url.Values{"referenceId": {"console-payout1"}, "csv": {good}}
	var batch string
	for range 2 { // submitted twice: one payout
		status, h, _ := fin.post("/console/payouts", form)
		m := batchPath.FindStringSubmatch(h.Get("Location"))
		if status != http.StatusSeeOther || m == nil || (batch != "" && m[1] != batch) {
			t.Fatalf("submit: %d %v (first %s)", status, h, batch)
		}
		batch = m[1]
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		_, page = fin.get("/console/payouts/" + batch)
		if strings.Contains(page, `id="batch-status">completed<`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the payout did not complete:\n%s", page)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(page, "2 completed, 1 failed") {
		t.Fatalf("payout counts:\n%s", page)
	}
	status, hdr, csvBody := fin.Do("GET", "/console/payouts/"+batch+"/failed.csv", nil, nil)
	if status != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), "text/csv") || !strings.Contains(csvBody, "p-3,") || !strings.Contains(csvBody, "insufficient_funds") {
		t.Fatalf("failed rows CSV: %d\n%s", status, csvBody)
	}

	// A transaction's entries sum to zero.
	_, page = fin.get("/console/transactions?batchId=" + batch + "&status=completed")
	txn := regexp.MustCompile(`href="/console/transactions/(txn_\w+)"`).FindStringSubmatch(page)
	if txn == nil {
		t.Fatalf("the payout's transactions:\n%s", page)
	}
	_, page = fin.get("/console/transactions/" + txn[1])
	out := regexp.MustCompile(`<td>partner</td><td class="num">-(\d+\.\d\d) USD<`).FindStringSubmatch(page)
	if out == nil || !strings.Contains(page, `</code></td><td class="num">`+out[1]+` USD<`) {
		t.Fatalf("entries:\n%s", page)
	}
	if err := s.App.Ledger.CheckInvariants(context.Background()); err != nil {
		t.Fatal(err)
	}

	// The audit log names who did each write (the admin reads it).
	admin := signIn(t, s.URL, mail(t, "admin"), password)
	_, page = admin.get("/console/audit")
	for _, action := range []string{"consumer.created", "wallet.created", "transaction.credit", "payout.submitted", "member.invited", "member.joined"} {
		if !strings.Contains(page, ">"+action+"<") {
			t.Errorf("the audit log lacks %s", action)
		}
	}
	if n := strings.Count(page, ">transaction.credit<"); n != 2 {
		t.Errorf("%d credits in the audit log, want 2 (the replay is not a write)", n)
	}
}

// newAdminInvite lets the workspace's first admin in and has them invite a
// finance member; it returns that invitation.
func newAdminInvite(t *testing.T, s *teststack.Stack, p partner) string {
	t.Helper()
	admin := join(t, s.URL, p.inviteURL, mail(t, "admin"))
	return admin.invite(mail(t, "fin"), workspace.RoleFinance)
}
