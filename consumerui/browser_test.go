package consumerui_test

import (
	"context"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/orbt/orbt/client"
	"github.com/orbt/orbt/giftcard"
	"github.com/orbt/orbt/testenv"
	"github.com/orbt/orbt/teststack"
)

// redisDB is this package's Redis database index (see the Makefile).
const redisDB = 5

var db *testenv.Database

func TestMain(m *testing.M) {
	os.Exit(testenv.Main(m, "consumerui", &db))
}

func browser(t *testing.T) context.Context {
	return teststack.Browser(t, "consumer pages", 412, 915) // a phone
}

func screenshot(t *testing.T, ctx context.Context, name string) { teststack.Screenshot(t, ctx, name) }

func text(t *testing.T, ctx context.Context, sel string) string { return teststack.Text(t, ctx, sel) }

// consumer is a funded consumer with a credited USD wallet, seen through
// the partner's API.
type consumer struct {
	api      *client.Client
	id       string
	walletID string
}

func newConsumer(t *testing.T, s *teststack.Stack, name string, balance int64) consumer {
	t.Helper()
	ctx := context.Background()
	var ws struct{ ID, APIKey string }
	teststack.OK(t)(s.Admin.Call(ctx, "POST", "/admin/v1/workspaces", map[string]any{"name": "shop"}, 201, &ws))
	teststack.OK(t)(s.Admin.Call(ctx, "PUT", "/admin/v1/workspaces/"+ws.ID+"/brands",
		map[string]any{"brandIds": []string{giftcard.BrandSandboxCoffee, giftcard.BrandSandboxBooks}}, 200, nil))
	wait := http.Header{"Prefer": {"wait=10"}}
	res, err := s.Admin.Do(ctx, "POST", "/admin/v1/workspaces/"+ws.ID+"/fundings",
		map[string]any{"referenceId": "f1", "currency": "USD", "amount": 1_000_000}, wait)
	if err != nil || res.Status != 200 {
		t.Fatalf("fund: %v %v", err, res)
	}
	api := s.Client(ws.APIKey)
	var c, w struct{ ID string }
	teststack.OK(t)(api.Call(ctx, "POST", "/v1/consumers", map[string]any{"externalId": name, "name": name}, 201, &c))
	teststack.OK(t)(api.Call(ctx, "POST", "/v1/consumers/"+c.ID+"/wallets", map[string]any{"currency": "USD", "type": "standard"}, 201, &w))
	res, err = api.Do(ctx, "POST", "/v1/transactions", map[string]any{"referenceId": "c1", "type": "credit", "walletId": w.ID,
		"amount": balance, "currency": "USD"}, wait)
	if err != nil || res.Status != 200 {
		t.Fatalf("credit: %v %v", err, res)
	}
	return consumer{api: api, id: c.ID, walletID: w.ID}
}

// sibling is another consumer of the same partner, with a USD wallet
// holding balance.
func (c consumer) sibling(t *testing.T, name string, balance int64) consumer {
	t.Helper()
	ctx := context.Background()
	var other, w struct{ ID string }
	teststack.OK(t)(c.api.Call(ctx, "POST", "/v1/consumers", map[string]any{"externalId": name, "name": name}, 201, &other))
	teststack.OK(t)(c.api.Call(ctx, "POST", "/v1/consumers/"+other.ID+"/wallets", map[string]any{"currency": "USD", "type": "standard"}, 201, &w))
	res, err := c.api.Do(ctx, "POST", "/v1/transactions", map[string]any{"referenceId": "c-" + name, "type": "credit",
		"walletId": w.ID, "amount": balance, "currency": "USD"}, http.Header{"Prefer": {"wait=10"}})
	if err != nil || res.Status != 200 {
		t.Fatalf("credit: %v %v", err, res)
	}
	return consumer{api: c.api, id: other.ID, walletID: w.ID}
}

func (c consumer) link(t *testing.T, expiresIn int) (url, id string) {
	t.Helper()
	var l struct{ ID, URL string }
	body := map[string]any{}
	if expiresIn > 0 {
		body["expiresInSeconds"] = expiresIn
	}
	teststack.OK(t)(c.api.Call(context.Background(), "POST", "/v1/consumers/"+c.id+"/links", body, 201, &l))
	return l.URL, l.ID
}

func TestConsumerRedeemsThroughTheirLink(t *testing.T) {
	ctx := browser(t)
	s, err := teststack.New(db.Pool, testenv.AsynqRedis(testenv.Redis(t, redisDB)), teststack.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	ada := newConsumer(t, s, "Ada", 5_000)
	url, linkID := ada.link(t, 0)
	w := ada.walletID

	// Open the link: the home page, the balance in major units.
	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		t.Fatal(err)
	}
	if got := text(t, ctx, "#balance-"+w); got != "USD 50.00" {
		t.Fatalf("balance %q, want USD 50.00", got)
	}
	if loc, _ := chromedp.Run(ctx, chromedp.Location()); strings.Contains(loc, "/c/l/") {
		t.Errorf("the link's token stays in the address bar: %s", loc)
	}
	labelled, err := chromedp.Run(ctx, chromedp.Evaluate[bool](
		`[...document.querySelectorAll('input:not([type=hidden]), select')].every(e => e.labels.length > 0)`))
	if err != nil || !labelled {
		t.Fatalf("every field has a label: %v %v", labelled, err)
	}
	screenshot(t, ctx, "home.png")

	// A mistake is shown beside its field, and nothing is redeemed.
	if err := chromedp.Do(ctx,
		chromedp.SetValue(chromedp.CSS("#brand-"+w), giftcard.BrandSandboxCoffee),
		chromedp.SetValue(chromedp.CSS("#amount-"+w), "12.345"),
		chromedp.Click(chromedp.CSS("form.redeem button")),
		chromedp.WaitVisible(chromedp.CSS("#amount-error-"+w))); err != nil {
		t.Fatal(err)
	}
	if got := text(t, ctx, "#amount-error-"+w); !strings.Contains(got, "Enter an amount") {
		t.Fatalf("amount error %q", got)
	}
	screenshot(t, ctx, "form-error.png")

	// Redeem: the progress page ends with the card.
	if err := chromedp.Do(ctx,
		chromedp.SetValue(chromedp.CSS("#amount-"+w), "12.50"),
		chromedp.Click(chromedp.CSS("form.redeem button")),
		chromedp.WaitVisible(chromedp.CSS("#code"))); err != nil {
		t.Fatal(err)
	}
	code := text(t, ctx, "#code")
	if !strings.HasPrefix(code, "SBX-") {
		t.Fatalf("code %q", code)
	}
	screenshot(t, ctx, "redemption.png")

	// Back home: the balance went down and the card is listed with its code.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS("main a[href='/c/']")), chromedp.WaitVisible(chromedp.CSS("#past"))); err != nil {
		t.Fatal(err)
	}
	if got := text(t, ctx, "#balance-"+w); got != "USD 37.50" {
		t.Fatalf("balance after redeeming %q, want USD 37.50", got)
	}
	if got := text(t, ctx, ".past"); !strings.Contains(got, code) {
		t.Fatalf("past redemptions %q lack the code", got)
	}
	var wallet struct{ Balance, Held int64 }
	teststack.OK(t)(ada.api.Call(context.Background(), "GET", "/v1/wallets/"+w, nil, 200, &wallet))
	if wallet.Balance != 3_750 || wallet.Held != 0 {
		t.Fatalf("wallet %+v, want balance 3750 held 0", wallet)
	}

	// Another consumer of the same partner: their redemption is not there
	// for Ada, neither by its address nor in her list.
	bob := ada.sibling(t, "Bob", 2_000)
	res, err := bob.api.Do(context.Background(), "POST", "/v1/redemptions", map[string]any{"referenceId": "b1",
		"walletId": bob.walletID, "brandId": giftcard.BrandSandboxCoffee, "amount": 1_000}, http.Header{"Prefer": {"wait=10"}})
	if err != nil || res.Status != 200 {
		t.Fatalf("bob redeems: %v %v", err, res)
	}
	var bobs struct{ ID string }
	res.Decode(&bobs)
	if err := chromedp.Do(ctx, chromedp.Navigate(s.URL+"/c/redemptions/"+bobs.ID)); err != nil {
		t.Fatal(err)
	}
	if got := text(t, ctx, "h1"); got != "Not found" {
		t.Fatalf("another consumer's redemption shows %q", got)
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(s.URL+"/c/")); err != nil {
		t.Fatal(err)
	}
	if got := text(t, ctx, ".past"); strings.Contains(got, "10.00") || strings.Count(got, "SBX-") != 1 {
		t.Fatalf("Ada's list shows another consumer's card: %q", got)
	}

	// The partner revokes the link: the session ends with it.
	teststack.OK(t)(ada.api.Call(context.Background(), "DELETE", "/v1/consumers/"+ada.id+"/links/"+linkID, nil, 200, nil))
	if err := chromedp.Do(ctx, chromedp.Navigate(s.URL+"/c/")); err != nil {
		t.Fatal(err)
	}
	if got := text(t, ctx, "h1"); got != "This link does not work" {
		t.Fatalf("after revocation %q", got)
	}
	screenshot(t, ctx, "revoked.png")

	// An expired link, and a forged one, open nothing.
	expired, expiredID := ada.link(t, 60)
	if _, err := db.Pool.Exec(context.Background(), `UPDATE consumer_links SET expires_at = now() - interval '1 second' WHERE id = $1`, expiredID); err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{expired, s.URL + "/c/l/forgedtokenforgedtokenforgedtoken"} {
		if err := chromedp.Do(ctx, chromedp.Navigate(u)); err != nil {
			t.Fatal(err)
		}
		if got := text(t, ctx, "h1"); got != "This link does not work" {
			t.Fatalf("%s shows %q", u, got)
		}
		if body := text(t, ctx, "main"); strings.Contains(body, "Ada") || strings.Contains(body, "USD") {
			t.Fatalf("a dead link shows consumer data: %q", body)
		}
	}
	screenshot(t, ctx, "expired.png")
	if err := s.App.GiftCards.CheckInvariants(context.Background()); err != nil {
		t.Fatal(err)
	}
}
