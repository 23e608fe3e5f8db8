package consumerui_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/orbt/orbt/app"
	"github.com/orbt/orbt/teststack"
)

var formField = regexp.MustCompile(`name="(csrf|walletId|referenceId)" value="([^"]*)"`)

// redeemForm reads the home page's redeem form (the first wallet's).
func redeemForm(t *testing.T, v *teststack.Visitor) url.Values {
	t.Helper()
	status, _, page := v.Do("GET", "/c/", nil, nil)
	if status != 200 {
		t.Fatalf("home: %d", status)
	}
	form := url.Values{}
	for _, m := range formField.FindAllStringSubmatch(page, -1) {
		if form.Get(m[1]) == "" {
			form.Set(m[1], m[2])
		}
	}
	return form
}

func stackFor(t *testing.T, o teststack.Options) *teststack.Stack {
	return teststack.Start(t, db.Pool, redisDB, o)
}

// The redeem form redeems once however often it is sent, only with its
// session's CSRF token, and never from another site; no path value
// reaches the database unchecked.
func TestRedeemFormIsSafe(t *testing.T) {
	s := stackFor(t, teststack.Options{})
	ada := newConsumer(t, s, "Ada", 5_000)
	link, _ := ada.link(t, 0)
	v := teststack.NewVisitor(t, s.URL)
	if status, h, _ := v.Do("GET", link, nil, nil); status != http.StatusSeeOther || h.Get("Location") != "/c/" {
		t.Fatalf("opening the link: %d %v", status, h)
	}
	form := redeemForm(t, v)
	form.Set("brandId", "sandbox-coffee")
	form.Set("amount", "5")

	refused := []struct {
		name   string
		change func(url.Values) url.Values
		header http.Header
		status int
	}{
		{"no CSRF token", func(f url.Values) url.Values { f.Del("csrf"); return f }, nil, 403},
		{"a forged token", func(f url.Values) url.Values { f.Set("csrf", strings.Repeat("A", 43)); return f }, nil, 403},
		{"another site", func(f url.Values) url.Values { return f }, http.Header{"Origin": {"https://evil.example"}}, 403},
		{"a withheld origin and a forged token", func(f url.Values) url.Values { f.Set("csrf", strings.Repeat("B", 43)); return f },
			http.Header{"Origin": {"null"}}, 403},
		{"NUL in referenceId", func(f url.Values) url.Values { f.Set("referenceId", "consumer-a\x00b"); return f }, nil, 400},
		{"another wallet", func(f url.Values) url.Values { f.Set("walletId", "wal_other"); return f }, nil, 400},
	}
	for _, tc := range refused {
		f := url.Values{}
		for k, vals := range form {
			f[k] = append([]string(nil), vals...)
		}
		if status, _, _ := v.Do("POST", "/c/redeem", tc.change(f), tc.header); status != tc.status {
			t.Errorf("%s: %d, want %d", tc.name, status, tc.status)
		}
	}
	for _, path := range []string{"/c/redemptions/%00", "/c/redemptions/%ff", "/c/l/%00"} {
		if status, _, _ := v.Do("GET", path, nil, nil); status != 404 {
			t.Errorf("GET %s: %d, want 404", path, status)
		}
	}

	// The same form sent three times redeems once (the last time from a
	// browser that withholds its origin: the token alone decides).
	var first string
	for i := range 3 {
		origin := s.URL
		if i == 2 {
			origin = "null"
		}
		status, h, _ := v.Do("POST", "/c/redeem", form, http.Header{"Origin": {origin}})
		if status != http.StatusSeeOther || !strings.HasPrefix(h.Get("Location"), "/c/redemptions/red_") {
			t.Fatalf("redeem: %d %v", status, h)
		}
		if first == "" {
			first = h.Get("Location")
		} else if h.Get("Location") != first {
			t.Fatalf("a double submit made a second redemption: %s and %s", first, h.Get("Location"))
		}
	}
	var list struct{ Data []struct{ ID, Status string } }
	teststack.OK(t)(ada.api.Call(context.Background(), "GET", "/v1/redemptions", nil, 200, &list))
	if len(list.Data) != 1 {
		t.Fatalf("%d redemptions after a triple submit (and refused forms), want 1", len(list.Data))
	}
	if status, _, page := v.Do("GET", first, nil, nil); status != 200 || !strings.Contains(page, `id="code"`) {
		t.Fatalf("progress page: %d", status)
	}
	if err := s.App.GiftCards.CheckInvariants(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// Pages are rate limited per client address, with Retry-After. The
// address is the connection's, whatever X-Forwarded-For claims, unless
// the connection comes from a trusted proxy.
func TestPagesAreRateLimited(t *testing.T) {
	openings := func(s *teststack.Stack, forwardedFor func(i int) string) (limited int) {
		v := teststack.NewVisitor(t, s.URL)
		for i := range 100 {
			status, h, page := v.Do("GET", "/c/l/no-such-token", nil, http.Header{"X-Forwarded-For": {forwardedFor(i)}})
			if status == http.StatusTooManyRequests {
				limited++
				if h.Get("Retry-After") == "" || !strings.Contains(page, "Slow down") {
					t.Fatalf("429 without Retry-After or its page: %v", h)
				}
			}
		}
		return limited
	}
	spoofed := func(i int) string { return fmt.Sprintf("203.0.113.%d", i) }
	// Each stack is a process of its own, with its own limiter.
	direct := stackFor(t, teststack.Options{NoWorker: true})
	if openings(direct, spoofed) == 0 {
		t.Fatal("100 link openings from one connection address, each claiming another client, were never limited")
	}
	proxied := stackFor(t, teststack.Options{NoWorker: true, Settings: app.Settings{TrustedProxies: []string{"127.0.0.1"}}})
	if n := openings(proxied, spoofed); n != 0 {
		t.Fatalf("100 clients behind a trusted proxy, one opening each: %d limited", n)
	}
	if openings(proxied, func(int) string { return "198.51.100.7" }) == 0 {
		t.Fatal("one client behind a trusted proxy was never limited")
	}
}
