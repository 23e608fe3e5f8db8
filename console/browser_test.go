package console_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/orbt/orbt/teststack"
)

// A partner's admin runs the console in a real browser, at phone width:
// accepts the invitation, signs out and in, registers a consumer, opens a
// wallet and credits it, uploads a payout file with a bad row, fixes it and
// watches the payout complete, issues a consumer link, invites a finance
// member, who then cannot open the API keys page. Each page's screenshot
// lands in the test's output folder.
func TestConsoleInABrowser(t *testing.T) {
	ctx := teststack.Browser(t, "console pages", 412, 915)
	s := stackFor(t, teststack.Options{})
	p := newPartner(t, s, 500_000)
	admin, fin := mail(t, "admin"), mail(t, "fin")
	do := func(step string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		stepCtx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		if err := chromedp.Do(stepCtx, actions...); err != nil {
			t.Fatalf("%s: %v", step, err)
		}
	}
	shot := func(name string) { t.Helper(); teststack.Screenshot(t, ctx, name) }
	text := func(sel string) string { t.Helper(); return teststack.Text(t, ctx, sel) }

	// The invitation: a weak password is refused beside its field.
	do("open the invitation", chromedp.Navigate(p.inviteURL), chromedp.WaitVisible("#password"))
	shot("01-invitation.png")
	do("weak password",
		chromedp.SendKeys("#email", admin), chromedp.SendKeys("#password", "password1234"), chromedp.SendKeys("#confirm", "password1234"),
		chromedp.Click("form button[type=submit]"), chromedp.WaitVisible("#password-error"))
	shot("02-invitation-weak-password.png")
	do("accept", chromedp.SetValue("#password", password), chromedp.SetValue("#confirm", password),
		chromedp.Click("form button[type=submit]"), chromedp.WaitVisible("#balance-USD"))
	if got := text("#balance-USD"); got != "5,000.00 USD" && got != "5000.00 USD" {
		t.Fatalf("partner balance %q", got)
	}
	shot("03-overview.png")

	// Sign out, and back in.
	do("sign out", chromedp.Click(".who button"), chromedp.WaitVisible("#email"))
	shot("04-sign-in.png")
	do("sign in", chromedp.SendKeys("#email", admin), chromedp.SendKeys("#password", password),
		chromedp.Click("form button[type=submit]"), chromedp.WaitVisible("#balance-USD"))

	// Register a consumer; open a wallet; credit it.
	do("consumers", chromedp.Navigate(s.URL+"/console/consumers"), chromedp.WaitVisible("#externalId"))
	labelled, err := chromedp.Run(ctx, chromedp.Evaluate[bool](
		`[...document.querySelectorAll('input:not([type=hidden]), select')].every(e => e.labels.length > 0)`))
	if err != nil || !labelled {
		t.Fatalf("every field has a label: %v %v", labelled, err)
	}
	do("register", chromedp.SendKeys("#externalId", "member-7"), chromedp.SendKeys("#name", "Ada Lovelace"),
		chromedp.Click("#register button"), chromedp.WaitVisible("#add-wallet"))
	do("add wallet", chromedp.SendKeys("#wallet-currency", "USD"), chromedp.Click("#add-wallet button"),
		chromedp.WaitVisible("#move"))
	reference := text("#move-reference")
	if !strings.HasPrefix(reference, "console-") {
		t.Fatalf("the credit form shows reference %q", reference)
	}
	do("a bad amount", chromedp.SendKeys("#move-amount", "25.001"), chromedp.Click("#move button[type=submit]"),
		chromedp.WaitVisible("#amount-error"))
	shot("05-credit-error.png")
	do("credit", chromedp.SetValue("#move-amount", "25.00"), chromedp.Click("#move button[type=submit]"),
		chromedp.WaitVisible("#moved"))
	if got := text("#moved"); !strings.Contains(got, "completed") || !strings.Contains(got, reference) {
		t.Fatalf("after the credit: %q", got)
	}
	if got := text("[id^='balance-wal_']"); got != "25.00 USD" {
		t.Fatalf("wallet balance %q", got)
	}
	shot("06-consumer.png")
	do("issue a link", chromedp.Click("#issue-link button"), chromedp.WaitVisible("#consumer-link"))
	if link := text("#consumer-link"); !strings.HasPrefix(link, s.URL+"/c/l/") {
		t.Fatalf("consumer link %q", link)
	}
	shot("07-consumer-link.png")

	// A payout file with a bad row: its error, nothing paid; fixed: paid.
	dir := t.TempDir()
	bad, good := filepath.Join(dir, "payout.csv"), filepath.Join(dir, "payout-fixed.csv")
	rows := "consumerExternalId,amount,currency,type,referenceId\nmember-7,10.00,USD,credit,june-1\nmember-8,%s,USD,credit,june-2\nmember-9,7.25,USD,credit,june-3\n"
	os.WriteFile(bad, []byte(strings.Replace(rows, "%s", "ten", 1)), 0o644)
	os.WriteFile(good, []byte(strings.Replace(rows, "%s", "10.00", 1)), 0o644)
	do("payouts", chromedp.Navigate(s.URL+"/console/payouts"), chromedp.WaitVisible("#upload"))
	do("upload the bad file", chromedp.SetUploadFiles("#file", []string{bad}), chromedp.Click("#upload button"),
		chromedp.WaitVisible("#row-errors"))
	if got := text("#row-errors"); !strings.Contains(got, "must be a decimal number such as 12.50") {
		t.Fatalf("row errors %q", got)
	}
	shot("08-payout-row-errors.png")
	do("upload the fixed file", chromedp.SetUploadFiles("#file", []string{good}), chromedp.Click("#upload button"),
		chromedp.WaitVisible("#submit-payout"))
	shot("09-payout-review.png")
	do("submit", chromedp.Click("#submit-payout button"), chromedp.WaitVisible("#batch-status"))
	deadline := time.Now().Add(30 * time.Second)
	for text("#batch-status") != "completed" { // the page refreshes itself
		if time.Now().After(deadline) {
			t.Fatalf("the payout stays %q", text("#batch-status"))
		}
		time.Sleep(500 * time.Millisecond)
		do("reload", chromedp.WaitVisible("#batch-status"))
	}
	if got := text("#batch-counts"); !strings.Contains(got, "3 completed, 0 failed") {
		t.Fatalf("payout counts %q", got)
	}
	shot("10-payout.png")

	// The rest of the pages, as the admin sees them.
	for _, page := range []struct{ path, wait, shot string }{
		{"/console/transactions", "#list-h", "11-transactions.png"},
		{"/console/campaigns", "#list-h", "12-campaigns.png"},
		{"/console/keys", "#keys", "13-api-keys.png"},
		{"/console/webhooks", "#list-h", "14-webhooks.png"},
		{"/console/settings", "form", "15-signing-secret.png"},
	} {
		do(page.path, chromedp.Navigate(s.URL+page.path), chromedp.WaitVisible(page.wait))
		shot(page.shot)
	}
	do("a transaction", chromedp.Navigate(s.URL+"/console/transactions"), chromedp.Click("table a[href^='/console/transactions/txn_']"),
		chromedp.WaitVisible("#entries"))
	shot("16-transaction.png")

	// Invite a finance member.
	do("team", chromedp.Navigate(s.URL+"/console/team"), chromedp.WaitVisible("#invite"),
		chromedp.SendKeys("#invite-email", fin), chromedp.SetValue("#invite-role", "finance"),
		chromedp.Click("#invite button"), chromedp.WaitVisible("#new-link"))
	invitation := text("#new-link")
	shot("17-team.png")
	do("audit", chromedp.Navigate(s.URL+"/console/audit"), chromedp.WaitVisible("#audit"))
	if got := text("#audit"); !strings.Contains(got, "member.invited") || !strings.Contains(got, "payout.submitted") || !strings.Contains(got, admin) {
		t.Fatalf("audit log %q", got)
	}
	shot("18-audit.png")

	// The finance member joins, and cannot open the API keys page.
	do("sign out", chromedp.Click(".who button"), chromedp.WaitVisible("#email"))
	do("finance joins", chromedp.Navigate(invitation), chromedp.WaitVisible("#password"),
		chromedp.SendKeys("#password", password), chromedp.SendKeys("#confirm", password),
		chromedp.Click("form button[type=submit]"), chromedp.WaitVisible("#balance-USD"))
	if got := text("#member-email"); got != fin {
		t.Fatalf("signed in as %q, want %s", got, fin)
	}
	hasKeysLink, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`!!document.querySelector("a[href='/console/keys']")`))
	if err != nil || hasKeysLink {
		t.Fatalf("finance's navigation links the API keys page: %v %v", hasKeysLink, err)
	}
	do("finance opens the keys page", chromedp.Navigate(s.URL+"/console/keys"), chromedp.WaitVisible("h1"))
	if got := text("h1"); got != "Not for your role" {
		t.Fatalf("finance on the API keys page sees %q", got)
	}
	shot("19-finance-refused.png")
	if err := s.App.Ledger.CheckInvariants(context.Background()); err != nil {
		t.Fatal(err)
	}
}
