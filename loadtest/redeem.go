package loadtest

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"
)

// The redeem scenario: Count gift card redemptions of the sandbox's
// Sandbox Coffee brand, redeemAmount each, spread over the wallets, each
// wallet credited beforehand with what its share costs. It measures
// accepted/s and redemptions completed per second end to end (hold,
// provider call, capture), then verifies every wallet paid exactly its
// completed redemptions and nothing is left held.

const (
	redeemBrand  = "sandbox-coffee"
	redeemAmount = 500 // the brand's minimum
)

// redemptionsPerWallet is the most redemptions one wallet makes.
func redemptionsPerWallet(o Options) int64 {
	return int64((o.Count + o.Wallets - 1) / o.Wallets)
}

type redemption struct {
	ID          string     `json:"id"`
	ReferenceID string     `json:"referenceId"`
	WalletID    string     `json:"walletId"`
	Amount      int64      `json:"amount"`
	Status      string     `json:"status"`
	CreatedAt   time.Time  `json:"createdAt"`
	CompletedAt *time.Time `json:"completedAt"`
}

func (c *runner) redeem(ctx context.Context, o Options, run string, partners []*partner, r *Report) error {
	p := partners[0]
	if err := c.prepareRedemptions(ctx, o, run, p); err != nil {
		return fmt.Errorf("set up redemptions: %w", err)
	}
	reqs := make([]request, o.Count)
	for i := range reqs {
		reqs[i] = request{partner: p, body: map[string]any{"referenceId": fmt.Sprintf("%s-r-%d", run, i),
			"walletId": p.wallets[i%len(p.wallets)], "brandId": redeemBrand, "amount": redeemAmount}}
		reqs[i].raw, _ = json.Marshal(reqs[i].body)
	}
	fmt.Fprintf(o.Log, "submitting %d redemptions, concurrency %d\n", len(reqs), o.Concurrency)
	start := time.Now()
	lat, errs, err := c.fire(ctx, o, "/v1/redemptions", reqs, func(http.Header) error { return nil })
	if err != nil {
		return err
	}
	lastAccept := time.Now()
	r.AcceptedPS = float64(len(reqs)-errs) / lastAccept.Sub(start).Seconds()
	r.AcceptLatency = percentiles(lat)
	r.Errors = errs
	fmt.Fprintf(o.Log, "accepted %.0f/s; waiting for every redemption to be final\n", r.AcceptedPS)
	deadline := time.Now().Add(o.Timeout)
	for _, status := range []string{"pending", "processing"} {
		for {
			var page struct{ Data []redemption }
			if _, err := c.do(ctx, "GET", "/v1/redemptions?limit=1&status="+status, p.key, nil, &page); err != nil {
				return fmt.Errorf("poll redemptions: %w", err)
			}
			if len(page.Data) == 0 {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("redemptions still %s %s after the run", status, o.Timeout)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	final := time.Now()
	r.AppliedPS = float64(len(reqs)) / final.Sub(start).Seconds()
	r.FinalAfterLastAccept = final.Sub(lastAccept)
	return nil
}

// prepareRedemptions enables the brand (with the admin token) or checks
// that it is, and credits every wallet with its share's cost in one batch.
func (c *runner) prepareRedemptions(ctx context.Context, o Options, run string, p *partner) error {
	if p.id != "" {
		if _, err := c.do(ctx, "PUT", "/admin/v1/workspaces/"+p.id+"/brands", o.AdminToken,
			map[string]any{"brandIds": []string{redeemBrand}}, nil); err != nil {
			return err
		}
	} else {
		var brands struct{ Data []struct{ ID string } }
		if _, err := c.do(ctx, "GET", "/v1/brands", p.key, nil, &brands); err != nil {
			return err
		}
		if !slices.ContainsFunc(brands.Data, func(b struct{ ID string }) bool { return b.ID == redeemBrand }) {
			return fmt.Errorf("the workspace cannot redeem %s: enable it (PUT /admin/v1/workspaces/{id}/brands) or give --admin-token", redeemBrand)
		}
	}
	share := redemptionsPerWallet(o) * redeemAmount
	for start := 0; start < len(p.wallets); start += o.BatchSize {
		var items []map[string]any
		for i := start; i < min(len(p.wallets), start+o.BatchSize); i++ {
			items = append(items, map[string]any{"referenceId": fmt.Sprintf("%s-fill-%d", run, i), "type": "credit",
				"walletId": p.wallets[i], "amount": share, "currency": "USD"})
		}
		var b batch
		if _, err := c.do(ctx, "POST", "/v1/batches", p.key,
			map[string]any{"referenceId": fmt.Sprintf("%s-fill-%d", run, start), "items": items}, &b); err != nil {
			return err
		}
		done, err := c.awaitBatch(ctx, p, b.ID)
		if err != nil {
			return err
		}
		if done.Counts.Failed > 0 {
			return fmt.Errorf("%d wallet credits failed", done.Counts.Failed)
		}
		for i := start; i < min(len(p.wallets), start+o.BatchSize); i++ {
			p.opening[p.wallets[i]] += share
		}
	}
	return nil
}

// verifyRedemptions reads back every redemption of the run and every
// wallet: each referenceId stored once and final, every wallet's balance
// its opening balance less its completed redemptions, nothing held.
func (c *runner) verifyRedemptions(ctx context.Context, run string, partners []*partner, r *Report) error {
	p := partners[0]
	want := maps.Clone(p.opening)
	seen := make(map[string]bool)
	var toFinal []time.Duration
	cursor := ""
	for {
		var page struct {
			Data       []redemption
			NextCursor *string
		}
		u := "/v1/redemptions?limit=500"
		if cursor != "" {
			u += "&cursor=" + cursor
		}
		if _, err := c.do(ctx, "GET", u, p.key, nil, &page); err != nil {
			return err
		}
		for _, x := range page.Data {
			if !strings.HasPrefix(x.ReferenceID, run+"-r-") {
				continue
			}
			if seen[x.ReferenceID] {
				r.Errors++
				continue
			}
			seen[x.ReferenceID] = true
			switch x.Status {
			case "completed":
				r.Completed++
				want[x.WalletID] -= x.Amount
			case "failed":
				r.Failed++
			default:
				r.Errors++
			}
			if x.CompletedAt != nil {
				toFinal = append(toFinal, x.CompletedAt.Sub(x.CreatedAt))
			}
		}
		if page.NextCursor == nil {
			break
		}
		cursor = *page.NextCursor
	}
	if got := r.Completed + r.Failed; got != r.Count-r.Errors {
		return fmt.Errorf("%d redemptions of the run are final, want %d", got, r.Count-r.Errors)
	}
	if r.Errors > 0 || r.Failed > 0 {
		return fmt.Errorf("%d requests failed or were stored twice, %d redemptions failed", r.Errors, r.Failed)
	}
	if err := c.checkWallets(ctx, p, want); err != nil {
		return err
	}
	r.AcceptToFinal = percentiles(toFinal)
	r.Verified = append(r.Verified, "every referenceId stored once and completed",
		"every wallet balance = opening − completed redemptions, nothing held")
	return nil
}
