package loadtest

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/orbt/orbt/client"
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
	return c.submit(ctx, o, "/v1/redemptions", reqs, r, func() error {
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
		return nil
	})
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
	t := newTally(r)
	err := client.ListAll(ctx, c.api.WithKey(p.key), "/v1/redemptions?limit=500", func(x redemption) {
		if strings.HasPrefix(x.ReferenceID, run+"-r-") && t.completed(x.ReferenceID, x.Status, x.CreatedAt, x.CompletedAt) {
			want[x.WalletID] -= x.Amount
		}
	})
	if err != nil {
		return err
	}
	if err := t.check("redemptions"); err != nil {
		return err
	}
	if r.Failed > 0 {
		return fmt.Errorf("%d redemptions failed", r.Failed)
	}
	if err := c.checkWallets(ctx, p, want); err != nil {
		return err
	}
	r.Verified = append(r.Verified, "every referenceId stored once and completed",
		"every wallet balance = opening − completed redemptions, nothing held")
	return nil
}
