package consumerui_test

import (
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/orbt/orbt/testenv"
	"github.com/orbt/orbt/teststack"
)

// fuzzTarget is what every input of a fuzzing process shares: a stack
// (teststack.ForFuzz) behind a trusted proxy, so that each request can
// claim an address of its own and the per-address limits never hide a
// handler behind a 429; a consumer with a funded wallet, made at the
// first input; and their session.
type fuzzTarget struct {
	stack    *teststack.Stack
	consumer *consumer
	// log holds the stack's errors: a panic after a page began (its
	// status sent) shows only there.
	log *testenv.SyncBuffer
	// session is the consumer session's cookie and its form's CSRF token;
	// empty once a sign-out ended it.
	session, csrf string
}

// fuzzAddress numbers the client addresses requests claim.
var fuzzAddress atomic.Uint32

func newFuzzTarget(f *testing.F) *fuzzTarget {
	s, log := teststack.ForFuzzPages(f, db.Pool)
	return &fuzzTarget{stack: s, log: log}
}

// ready makes the consumer at the first input, and opens a session when
// none is open.
func (ft *fuzzTarget) ready(t *testing.T) {
	t.Helper()
	if ft.consumer == nil {
		c := newConsumer(t, ft.stack, "Fuzz", 900_000)
		ft.consumer = &c
	}
	if ft.session == "" {
		ft.openSession(t)
	}
}

var csrfValue = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// openSession opens a new link of the consumer and reads its session's
// cookie and CSRF token.
func (ft *fuzzTarget) openSession(t *testing.T) {
	t.Helper()
	link, _ := ft.consumer.link(t, 0)
	res := ft.send(t, "GET", link, "", "", "")
	var session string
	for _, c := range res.Cookies() {
		if c.Name == "orbt_consumer" {
			session = c.Value
		}
	}
	home := ft.send(t, "GET", ft.stack.URL+"/c/", "", "", session)
	page, _ := io.ReadAll(home.Body)
	m := csrfValue.FindSubmatch(page)
	if session == "" || m == nil {
		t.Fatalf("opening a session: %d, home %d: %s", res.StatusCode, home.StatusCode, page)
	}
	ft.session, ft.csrf = session, string(m[1])
}

// send sends a request from an address of its own, with the session's
// cookie when given, and does not follow redirects.
func (ft *fuzzTarget) send(t *testing.T, method, url, contentType, body, session string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	n := fuzzAddress.Add(1)
	req.Header.Set("X-Forwarded-For", fmt.Sprintf("10.%d.%d.%d", n>>16&0xff, n>>8&0xff, n&0xff))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if session != "" {
		req.AddCookie(&http.Cookie{Name: "orbt_consumer", Value: session})
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { res.Body.Close() })
	return res
}

// FuzzConsumerForms posts arbitrary form bodies to the consumer pages'
// POST routes (route: 0 redeem, 1 sign out) within a live session, so
// each reaches the form's decoding: a body that carries no csrf field is
// given the session's, and {csrf} and wal_x in a body are the session's
// token and the consumer's wallet. None may answer 5xx, which a panic
// would be (the pages' recovery logs it and answers 500).
func FuzzConsumerForms(f *testing.F) {
	for _, seed := range []struct {
		route uint8
		body  string
	}{
		{0, "walletId=wal_x&referenceId=consumer-fuzz-1&brandId=sandbox-coffee&amount=5"},
		{0, "walletId=wal_x&referenceId=consumer-fuzz-1&brandId=sandbox-coffee&amount=6"},
		{0, "walletId=wal_x&referenceId=consumer-fuzz-2&brandId=sandbox-books&amount=25.00"},
		{0, "walletId=wal_x&referenceId=consumer-fuzz-3&brandId=sandbox-books&amount=12.34"},
		{0, "walletId=wal_x&referenceId=consumer-fuzz-4&brandId=sandbox-coffee&amount=5.001"},
		{0, "walletId=wal_x&referenceId=consumer-fuzz-5&brandId=sandbox-coffee&amount=-5"},
		{0, "walletId=wal_x&referenceId=consumer-fuzz-6&brandId=sandbox-coffee&amount=99999999999999999999"},
		{0, "walletId=wal_x&referenceId=consumer-fuzz-7&brandId=sandbox-coffee&amount=%20%205%20"},
		{0, "walletId=wal_x&referenceId=consumer-fuzz-8&brandId=no-such&amount=5"},
		{0, "walletId=wal_other&referenceId=consumer-fuzz-9&brandId=sandbox-coffee&amount=5"},
		{0, "walletId=wal_x&referenceId=consumer-a%00b&brandId=sandbox-coffee&amount=5"},
		{0, "csrf=forged&walletId=wal_x&referenceId=consumer-fuzz-10&brandId=sandbox-coffee&amount=5"},
		{0, "csrf={csrf}&csrf=x&walletId=wal_x&walletId=wal_y&amount=%zz"},
		{0, ""},
		{1, "csrf=forged"},
		{1, "csrf={csrf}"},
	} {
		f.Add(seed.route, seed.body)
	}
	ft := newFuzzTarget(f)
	f.Fuzz(func(t *testing.T, route uint8, body string) {
		ft.ready(t)
		body = strings.NewReplacer("{csrf}", ft.csrf, "wal_x", ft.consumer.walletID).Replace(body)
		if !strings.Contains(body, "csrf=") {
			body = "csrf=" + ft.csrf + "&" + body
		}
		path := []string{"/c/redeem", "/c/signout"}[int(route)%2]
		logged := len(ft.log.String())
		res := ft.send(t, "POST", ft.stack.URL+path, "application/x-www-form-urlencoded", body, ft.session)
		page, _ := io.ReadAll(res.Body)
		if res.StatusCode >= 500 {
			t.Fatalf("POST %s %q: %d\n%s\n%s", path, body, res.StatusCode, page, ft.log.String()[logged:])
		}
		if l := ft.log.String()[logged:]; strings.Contains(l, "msg=panic") || strings.Contains(l, `msg="render consumer page"`) {
			t.Fatalf("POST %s %q: %d, and the log says:\n%s", path, body, res.StatusCode, l)
		}
		if path == "/c/signout" && res.StatusCode == http.StatusOK {
			ft.session = "" // signed out: the next input opens a new session
		}
	})
}
