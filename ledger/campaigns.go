package ledger

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/orbt/orbt/store"
)

// Campaign statuses.
const (
	CampaignActive = "active"
	CampaignPaused = "paused"
	CampaignEnded  = "ended"
)

// Campaign is a named promotion with an optional budget. Credits to its
// wallets count against the budget; debits from them give it back.
type Campaign struct {
	ID        string   `json:"id"`
	Name      string   `json:"name"`
	Currency  Currency `json:"currency"`
	Status    string   `json:"status"`
	Budget    *int64   `json:"budget"`
	Credited  int64    `json:"credited"`
	Debited   int64    `json:"debited"`
	Remaining *int64   `json:"remaining"`
	// Redeemed is what its wallets spent on gift cards (captured redemptions).
	Redeemed int64 `json:"redeemed"`
	// Wallets is how many wallets the campaign has.
	Wallets       int64      `json:"wallets"`
	StartsAt      *time.Time `json:"startsAt"`
	EndsAt        *time.Time `json:"endsAt"`
	AllowedBrands []string   `json:"allowedBrands"`
	CreatedAt     time.Time  `json:"createdAt"`
}

// CampaignFields are the settable fields of a campaign; nil leaves one as it is.
type CampaignFields struct {
	Name          *string
	Status        *string
	Budget        *int64
	StartsAt      *time.Time
	EndsAt        *time.Time
	AllowedBrands *[]string
}

const campaignColumns = `id, name, currency, status, budget, credited, debited, starts_at, ends_at, allowed_brands, created_at,
	redeemed, (SELECT count(*) FROM wallets w WHERE w.campaign_id = campaigns.id)`

func scanCampaign(row pgx.Row) (Campaign, error) {
	var c Campaign
	err := row.Scan(&c.ID, &c.Name, &c.Currency, &c.Status, &c.Budget, &c.Credited, &c.Debited,
		&c.StartsAt, &c.EndsAt, &c.AllowedBrands, &c.CreatedAt, &c.Redeemed, &c.Wallets)
	if c.Budget != nil {
		remaining := *c.Budget - (c.Credited - c.Debited)
		c.Remaining = &remaining
	}
	return c, err
}

// CreateCampaign creates an active campaign.
func (l *Ledger) CreateCampaign(ctx context.Context, workspaceID string, cur Currency, f CampaignFields) (Campaign, error) {
	brands := []string{}
	if f.AllowedBrands != nil {
		brands = *f.AllowedBrands
	}
	status := CampaignActive
	if f.Status != nil {
		status = *f.Status
	}
	c, err := scanCampaign(l.pool.QueryRow(ctx, `
		INSERT INTO campaigns (id, workspace_id, name, currency, status, budget, starts_at, ends_at, allowed_brands)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING `+campaignColumns,
		store.NewID("cmp"), workspaceID, deref(f.Name), cur, status, f.Budget, f.StartsAt, f.EndsAt, brands))
	if err != nil {
		return Campaign{}, fmt.Errorf("create campaign: %w", err)
	}
	return c, nil
}

// Campaign returns one campaign of the workspace.
func (l *Ledger) Campaign(ctx context.Context, workspaceID, id string) (Campaign, error) {
	c, err := scanCampaign(l.pool.QueryRow(ctx,
		`SELECT `+campaignColumns+` FROM campaigns WHERE id = $1 AND workspace_id = $2`, id, workspaceID))
	if err != nil {
		return Campaign{}, fmt.Errorf("campaign %s: %w", id, store.NoRows(err, ErrCampaignNotFound))
	}
	return c, nil
}

// Campaigns lists the workspace's campaigns, newest first.
func (l *Ledger) Campaigns(ctx context.Context, workspaceID, cursor string, limit int) ([]Campaign, error) {
	list, err := store.List(ctx, l.reads, func(r pgx.CollectableRow) (Campaign, error) { return scanCampaign(r) }, `SELECT `+campaignColumns+` FROM campaigns
		WHERE workspace_id = $1 AND ($2 = '' OR id < $2) ORDER BY id DESC LIMIT $3`, workspaceID, cursor, limit)
	if err != nil {
		return nil, fmt.Errorf("list campaigns: %w", err)
	}
	return list, nil
}

// UpdateCampaign changes the given fields. Lowering the budget below what
// is already credited is refused; the row lock serialises this with the
// ledger's application of credits.
func (l *Ledger) UpdateCampaign(ctx context.Context, workspaceID, id string, f CampaignFields) (Campaign, error) {
	c, err := scanCampaign(l.pool.QueryRow(ctx, `
		UPDATE campaigns SET
			name = COALESCE($3, name),
			status = COALESCE($4, status),
			budget = COALESCE($5, budget),
			starts_at = COALESCE($6, starts_at),
			ends_at = COALESCE($7, ends_at),
			allowed_brands = COALESCE($8, allowed_brands)
		WHERE id = $1 AND workspace_id = $2
		RETURNING `+campaignColumns,
		id, workspaceID, f.Name, f.Status, f.Budget, f.StartsAt, f.EndsAt, f.AllowedBrands))
	switch {
	case store.IsCheckViolation(err, "campaigns_budget_covers_used"):
		return Campaign{}, fmt.Errorf("update campaign %s: %w", id, ErrBudgetBelowUsed)
	case store.IsCheckViolation(err, "campaigns_window_in_order"):
		return Campaign{}, fmt.Errorf("update campaign %s: %w", id, ErrCampaignWindow)
	}
	if err != nil {
		return Campaign{}, fmt.Errorf("update campaign %s: %w", id, store.NoRows(err, ErrCampaignNotFound))
	}
	return c, nil
}

// CampaignNames returns the names of the workspace's campaigns among ids.
func (l *Ledger) CampaignNames(ctx context.Context, workspaceID string, ids []string) (map[string]string, error) {
	names := make(map[string]string, len(ids))
	if len(ids) == 0 {
		return names, nil
	}
	rows, err := l.pool.Query(ctx, `SELECT id, name FROM campaigns WHERE workspace_id = $1 AND id = ANY ($2)`, workspaceID, ids)
	if err != nil {
		return nil, fmt.Errorf("campaign names: %w", err)
	}
	var id, name string
	if _, err := pgx.ForEachRow(rows, []any{&id, &name}, func() error {
		names[id] = name
		return nil
	}); err != nil {
		return nil, fmt.Errorf("campaign names: %w", err)
	}
	return names, nil
}
