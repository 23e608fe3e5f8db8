package api_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/orbt/orbt/teststack"
)

// /docs renders the OpenAPI document in a real Chromium, under its own
// Content-Security-Policy: the title, the operations and their schemas.
func TestDocsRenderInABrowser(t *testing.T) {
	s := getStack(t)
	ctx := teststack.Browser(t, "API reference pages", 1280, 900)
	step, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := chromedp.Do(step, chromedp.Navigate(s.URL+"/docs"), chromedp.WaitVisible(chromedp.CSS("h1"))); err != nil {
		t.Fatalf("render /docs: %v", err)
	}
	if title := teststack.Text(t, ctx, "h1"); !strings.HasPrefix(title, "Orbt API") {
		t.Errorf("title %q", title)
	}
	body := teststack.Text(t, ctx, "body")
	for _, want := range []string{"Credit or debit a wallet", "Submit a bulk payout", "Redeem a wallet's balance for a gift card", "idempotency_conflict"} {
		if !strings.Contains(body, want) {
			t.Errorf("the rendered reference lacks %q", want)
		}
	}
	teststack.Screenshot(t, ctx, "api-docs.png")
}
