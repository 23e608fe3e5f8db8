package console_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/orbt/orbt/store"
	"github.com/orbt/orbt/testenv"
	"github.com/orbt/orbt/teststack"
	"github.com/orbt/orbt/workspace"
)

// fuzzTarget is what every input of a fuzzing process shares: a stack
// (teststack.ForFuzz) behind a trusted proxy, so that each request can
// claim an address of its own and the sign-in limit per address never
// hides the handler; and, made at the first input, a signed-in admin and
// one object of each kind for forms and paths to name.
type fuzzTarget struct {
	stack *teststack.Stack
	// log holds the stack's errors: a panic after a page began (its
	// status sent) shows only there.
	log *testenv.SyncBuffer
	// session and csrf are the admin's session cookie and form token.
	session, csrf string
	ids           *strings.Replacer
	// workspaceID, adminID, suffix: what a new invitation needs.
	workspaceID, adminID, suffix string
	// invite is the token of an open invitation, issued anew once one is
	// accepted (invitations are the invitation route's invite_x).
	invite  string
	invites int
}

// fuzzAddress numbers the client addresses requests claim.
var fuzzAddress atomic.Uint32

// signedOutToken is the fuzz's signed-out form token: its cookie's and
// its form's.
const signedOutToken = "fuzz-signed-out-form-token"

func newFuzzTarget(f *testing.F) *fuzzTarget {
	s, log := teststack.ForFuzzPages(f, db.Pool)
	return &fuzzTarget{stack: s, log: log}
}

// ready makes the fixtures at the first input.
func (ft *fuzzTarget) ready(t *testing.T) {
	t.Helper()
	if ft.ids != nil {
		return
	}
	ctx := context.Background()
	s := ft.stack
	p := newPartner(t, s, 1_000_000)
	suffix := strings.ToLower(store.Token(8)) // members' addresses are unique across workspaces
	admin := join(t, s.URL, p.inviteURL, "fuzz-admin-"+suffix+"@shop.example")
	join(t, s.URL, admin.invite("fuzz-finance-"+suffix+"@shop.example", workspace.RoleFinance), "fuzz-finance-"+suffix+"@shop.example")

	api := s.Client(p.apiKey)
	var c, w, cmp, ep, key struct{ ID string }
	teststack.OK(t)(api.Call(ctx, "POST", "/v1/consumers", map[string]any{"externalId": "fuzz"}, 201, &c))
	teststack.OK(t)(api.Call(ctx, "POST", "/v1/consumers/"+c.ID+"/wallets", map[string]any{"currency": "USD", "type": "standard"}, 201, &w))
	teststack.OK(t)(api.Call(ctx, "POST", "/v1/campaigns", map[string]any{"name": "fuzz", "currency": "USD", "budget": 100_000}, 201, &cmp))
	// Nothing listens on the discard port: deliveries fail at once.
	teststack.OK(t)(api.Call(ctx, "POST", "/v1/webhook-endpoints",
		map[string]any{"url": "http://127.0.0.1:9/fuzz", "events": []string{"transaction.completed"}}, 201, &ep))
	teststack.OK(t)(api.Call(ctx, "POST", "/v1/api-keys", map[string]any{"name": "fuzz", "scope": "read"}, 201, &key))
	res, err := api.Do(ctx, "POST", "/v1/transactions", map[string]any{"referenceId": "fuzz-1", "type": "credit", "walletId": w.ID,
		"amount": 100_000, "currency": "USD"}, http.Header{"Prefer": {"wait=10"}})
	if err != nil || res.Status != 200 {
		t.Fatalf("credit: %v %+v", err, res)
	}
	var events struct{ Data []struct{ ID string } }
	teststack.OK(t)(api.Call(ctx, "GET", "/v1/events?type=transaction.completed", nil, 200, &events))
	members, err := s.App.Workspaces.Members(ctx, p.id)
	if err != nil {
		t.Fatal(err)
	}
	var adminID, financeID string
	for _, m := range members {
		switch m.Email {
		case "fuzz-admin-" + suffix + "@shop.example":
			adminID = m.ID
		case "fuzz-finance-" + suffix + "@shop.example":
			financeID = m.ID
		}
	}
	pending, _, err := s.App.Workspaces.Invite(ctx, p.id, "fuzz-pending-"+suffix+"@shop.example", workspace.RoleFinance, adminID)
	if err != nil {
		t.Fatal(err)
	}
	var session string
	u, _ := url.Parse(s.URL + "/console/")
	for _, ck := range admin.Cookies(u) {
		if ck.Name == "orbt_console" {
			session = ck.Value
		}
	}
	if session == "" || financeID == "" || len(events.Data) == 0 {
		t.Fatalf("fuzz fixtures: session %q, finance member %q, %d events", session, financeID, len(events.Data))
	}
	ft.session, ft.csrf, ft.ids = session, admin.csrf, strings.NewReplacer(
		"csm_x", c.ID, "wal_x", w.ID, "cmp_x", cmp.ID, "whk_x", ep.ID, "key_x", key.ID, "evt_x", events.Data[0].ID,
		"mem_x", financeID, "inv_x", pending.ID)
	ft.workspaceID, ft.adminID, ft.suffix = p.id, adminID, suffix
	ft.newInvite(t)
}

// newInvite issues the invitation the invitation route's inputs accept.
func (ft *fuzzTarget) newInvite(t *testing.T) {
	t.Helper()
	ft.invites++
	email := fmt.Sprintf("fuzz-invited-%d-%s@shop.example", ft.invites, ft.suffix)
	_, token, err := ft.stack.App.Workspaces.Invite(context.Background(), ft.workspaceID, email, workspace.RoleTechnology, ft.adminID)
	if err != nil {
		t.Fatal(err)
	}
	ft.invite = token
}

// The ways a fuzzed body is sent.
const (
	// asForm: the body is the form, with the admin's session; a body
	// without a csrf field is given the session's.
	asForm = iota
	// asFile: the body is a payout file, uploaded to the review step.
	asFile
	// asCSV: the body is the reviewed file the submit step carries.
	asCSV
	// asSignedOut: the body is a signed-out form (sign-in, invitation),
	// with the signed-out form token as cookie (and as csrf, unless the
	// body has one).
	asSignedOut
)

// fuzzRoutes are the console's POST routes (but sign-out, which ends the
// session every other input needs), with the objects they name.
var fuzzRoutes = []struct {
	path string
	as   int
}{
	{"/console/consumers", asForm},
	{"/console/consumers/csm_x/wallets", asForm},
	{"/console/consumers/csm_x/transactions", asForm},
	{"/console/consumers/csm_x/links", asForm},
	{"/console/campaigns", asForm},
	{"/console/campaigns/cmp_x/status", asForm},
	{"/console/payouts/review", asFile},
	{"/console/payouts", asCSV},
	{"/console/payouts", asForm},
	{"/console/keys", asForm},
	{"/console/keys/key_x/revoke", asForm},
	{"/console/webhooks", asForm},
	{"/console/webhooks/whk_x/redeliver", asForm},
	{"/console/team/invites", asForm},
	{"/console/team/invites/inv_x/revoke", asForm},
	{"/console/team/members/mem_x/revoke", asForm},
	{"/console/team/members/mem_x/reset", asForm},
	{"/console/settings/signing-secret", asForm},
	{"/console/login", asSignedOut},
	{"/console/invite/invite_x", asSignedOut},
}

// FuzzConsoleForms posts arbitrary bodies to the console's POST routes
// (route picks one of fuzzRoutes) as a signed-in admin, so each reaches
// the form's decoding; {csrf} and csm_x, wal_x, … in a body are the
// session's token and the fixtures' ids. None may answer 5xx, which a
// panic would be (the console's recovery logs it and answers 500).
func FuzzConsoleForms(f *testing.F) {
	for _, seed := range []struct {
		route uint8
		body  string
	}{
		{0, "externalId=fuzz-c1&email=ada%40example.com&name=Ada"},
		{0, "externalId=+fuzz-c2+&email=&name=%00"},
		{1, "currency=eur"},
		{1, "campaignId=cmp_x"},
		{2, "walletId=wal_x&type=credit&amount=12.50&description=thanks&referenceId=console-fuzz-1"},
		{2, "walletId=wal_x&type=debit&amount=0.001&referenceId=console-fuzz-2"},
		{2, "walletId=wal_x&type=credit&amount=1e3&referenceId=console-fuzz-3"},
		{2, "walletId=wal_x&type=credit&amount=12.50&referenceId=console-fuzz-1&description=changed"},
		{2, "walletId=wal_nope&type=credit&amount=1&referenceId=console-%00"},
		{3, "days=7"},
		{3, "days=-1"},
		{4, "name=Spring&currency=jpy&budget=1000"},
		{4, "name=Spring&currency=KWD&budget=1.2345"},
		{5, "status=paused"},
		{5, "status=ended"},
		{6, "referenceId,walletId,type,amount,currency\nfuzz-p1,wal_x,credit,1.50,USD\n"},
		{6, "referenceId,consumerExternalId,type,amount,currency,description\nfuzz-p2,fuzz-c9,credit,1000,JPY,\"a,b\"\nfuzz-p3,,credit,0.5,JPY,\n"},
		{7, "referenceId,walletId,type,amount,currency\nfuzz-p4,wal_x,credit,2.00,USD\n"},
		{8, "referenceId=console-fuzz-p5&csv=referenceId%2CwalletId%2Ctype%2Camount%2Ccurrency%0Afuzz-p5%2Cwal_x%2Ccredit%2C1%2CUSD%0A"},
		{9, "name=ci&scope=write"},
		{10, ""},
		{11, "url=https%3A%2F%2Fhooks.example.com%2Fx&events=transaction.completed&events=batch.completed&description=d"},
		{11, "url=http%3A%2F%2F169.254.169.254%2F&events=nope"},
		{12, "eventId=evt_x"},
		{12, "eventId=evt_%00"},
		{13, "email=new%40shop.example&role=finance"},
		{13, "email=new%40shop.example&role=owner"},
		{14, ""},
		{15, ""},
		{16, ""},
		{17, ""},
		{18, "email=nobody%40shop.example&password=wrong+password+here&next=%2Fconsole%2Fkeys"},
		{18, "email=&password=&next=https%3A%2F%2Fevil.example"},
		{19, "email=x%40shop.example&password=copper+kettle+marches+north&confirm=copper+kettle+marches+north"},
		{19, "password=short&confirm=other"},
		{0, "csrf=forged&externalId=fuzz-c3"},
		{0, "%zz"},
	} {
		f.Add(seed.route, seed.body)
	}
	ft := newFuzzTarget(f)
	f.Fuzz(func(t *testing.T, route uint8, body string) {
		ft.ready(t)
		r := fuzzRoutes[int(route)%len(fuzzRoutes)]
		path := strings.ReplaceAll(ft.ids.Replace(r.path), "invite_x", ft.invite)
		body = strings.ReplaceAll(ft.ids.Replace(body), "{csrf}", ft.csrf)
		req := ft.request(t, r.as, path, body)
		logged := len(ft.log.String())
		res, err := fuzzClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		page, _ := io.ReadAll(res.Body)
		if res.StatusCode >= 500 {
			t.Fatalf("POST %s %q: %d\n%s\n%s", path, body, res.StatusCode, page, ft.log.String()[logged:])
		}
		if l := ft.log.String()[logged:]; strings.Contains(l, "msg=panic") || strings.Contains(l, `msg="render console page"`) {
			t.Fatalf("POST %s %q: %d, and the log says:\n%s", path, body, res.StatusCode, l)
		}
		if strings.HasPrefix(r.path, "/console/invite/") && res.StatusCode == http.StatusSeeOther {
			ft.newInvite(t) // accepted: the next input gets an open one
		}
	})
}

// fuzzClient does not follow redirects: each answer is the handler's.
var fuzzClient = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// request builds the POST of a fuzzed body, sent as as says, from a
// client address of its own.
func (ft *fuzzTarget) request(t *testing.T, as int, path, body string) *http.Request {
	t.Helper()
	var (
		content     io.Reader
		contentType = "application/x-www-form-urlencoded"
		cookie      = &http.Cookie{Name: "orbt_console", Value: ft.session}
	)
	// A payout's referenceId, one per file: the same file is the same payout.
	sum := sha256.Sum256([]byte(body))
	reference := "console-fuzz-" + hex.EncodeToString(sum[:8])
	switch as {
	case asForm, asSignedOut:
		csrf := ft.csrf
		if as == asSignedOut {
			csrf, cookie = signedOutToken, &http.Cookie{Name: "orbt_console_form", Value: signedOutToken}
		}
		if !strings.Contains(body, "csrf=") {
			body = "csrf=" + csrf + "&" + body
		}
		content = strings.NewReader(body)
	case asCSV:
		content = strings.NewReader(url.Values{"csrf": {ft.csrf}, "referenceId": {reference}, "csv": {body}}.Encode())
	case asFile:
		var b bytes.Buffer
		w := multipart.NewWriter(&b)
		w.WriteField("csrf", ft.csrf)
		w.WriteField("referenceId", reference)
		file, _ := w.CreateFormFile("file", "payout.csv")
		file.Write([]byte(body))
		w.Close()
		content, contentType = &b, w.FormDataContentType()
	}
	req, err := http.NewRequest("POST", ft.stack.URL+path, content)
	if err != nil {
		t.Fatal(err)
	}
	n := fuzzAddress.Add(1)
	req.Header.Set("X-Forwarded-For", fmt.Sprintf("10.%d.%d.%d", n>>16&0xff, n>>8&0xff, n&0xff))
	req.Header.Set("Content-Type", contentType)
	req.AddCookie(cookie)
	return req
}
