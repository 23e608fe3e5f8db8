package ledger

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Wallet types.
const (
	WalletStandard = "standard"
	WalletCampaign = "campaign"
)

// Wallet is a consumer's balance in one currency, standard or tied to a campaign.
type Wallet struct {
	ID         string    `json:"id"`
	ConsumerID string    `json:"consumerId"`
	Type       string    `json:"type"`
	Currency   Currency  `json:"currency"`
	CampaignID *string   `json:"campaignId"`
	Balance    int64     `json:"balance"`
	Status     string    `json:"status"`
	CreatedAt  time.Time `json:"createdAt"`
}

const walletColumns = `w.id, w.consumer_id, w.type, w.currency, w.campaign_id, a.balance, w.status, w.created_at`

func scanWallet(row pgx.Row) (Wallet, error) {
	var w Wallet
	err := row.Scan(&w.ID, &w.ConsumerID, &w.Type, &w.Currency, &w.CampaignID, &w.Balance, &w.Status, &w.CreatedAt)
	return w, err
}

// CreateWallet opens a wallet for a consumer of the workspace: at most one
// standard wallet per currency, one campaign wallet per campaign.
func (l *Ledger) CreateWallet(ctx context.Context, workspaceID, consumerID, walletType string, cur Currency, campaignID *string) (Wallet, error) {
	tx, err := l.pool.Begin(ctx)
	if err != nil {
		return Wallet{}, fmt.Errorf("create wallet: %w", err)
	}
	defer tx.Rollback(ctx)
	w, err := createWallet(ctx, tx, workspaceID, consumerID, walletType, cur, campaignID)
	if err != nil {
		return Wallet{}, err
	}
	return w, tx.Commit(ctx)
}

func createWallet(ctx context.Context, tx pgx.Tx, workspaceID, consumerID, walletType string, cur Currency, campaignID *string) (Wallet, error) {
	var exists bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM consumers WHERE id = $1 AND workspace_id = $2)`,
		consumerID, workspaceID).Scan(&exists); err != nil {
		return Wallet{}, fmt.Errorf("create wallet: %w", err)
	}
	if !exists {
		return Wallet{}, ErrConsumerNotFound
	}
	if campaignID != nil {
		var campaignCurrency Currency
		err := tx.QueryRow(ctx, `SELECT currency FROM campaigns WHERE id = $1 AND workspace_id = $2`,
			*campaignID, workspaceID).Scan(&campaignCurrency)
		if err != nil {
			return Wallet{}, fmt.Errorf("create wallet: %w", noRows(err, ErrCampaignNotFound))
		}
		if campaignCurrency != cur {
			return Wallet{}, ErrCampaignCurrency
		}
	}
	if err := ensureLaneAccounts(ctx, tx, workspaceID, cur); err != nil {
		return Wallet{}, err
	}
	w := Wallet{ID: NewID("wal"), ConsumerID: consumerID, Type: walletType, Currency: cur, CampaignID: campaignID, Status: "active"}
	err := tx.QueryRow(ctx, `
		WITH acct AS (
			INSERT INTO ledger_accounts (workspace_id, kind, currency) VALUES ($2, 'wallet', $5) RETURNING id
		)
		INSERT INTO wallets (id, workspace_id, consumer_id, type, currency, campaign_id, account_id)
		SELECT $1, $2, $3, $4, $5, $6, acct.id FROM acct
		RETURNING created_at`,
		w.ID, workspaceID, consumerID, walletType, cur, campaignID).Scan(&w.CreatedAt)
	if isUniqueViolation(err, "") {
		return Wallet{}, ErrWalletExists
	}
	if err != nil {
		return Wallet{}, fmt.Errorf("create wallet: %w", err)
	}
	return w, nil
}

// Wallet returns one wallet of the workspace with its balance.
func (l *Ledger) Wallet(ctx context.Context, workspaceID, id string) (Wallet, error) {
	w, err := scanWallet(l.pool.QueryRow(ctx, `SELECT `+walletColumns+`
		FROM wallets w JOIN ledger_accounts a ON a.id = w.account_id
		WHERE w.id = $1 AND w.workspace_id = $2`, id, workspaceID))
	if err != nil {
		return Wallet{}, fmt.Errorf("wallet %s: %w", id, noRows(err, ErrWalletNotFound))
	}
	return w, nil
}

// ConsumerWallets lists a consumer's wallets in creation order.
func (l *Ledger) ConsumerWallets(ctx context.Context, workspaceID, consumerID, cursor string, limit int) ([]Wallet, error) {
	rows, err := l.pool.Query(ctx, `SELECT `+walletColumns+`
		FROM wallets w JOIN ledger_accounts a ON a.id = w.account_id
		WHERE w.consumer_id = $1 AND w.workspace_id = $2 AND ($3 = '' OR w.id > $3)
		ORDER BY w.id LIMIT $4`, consumerID, workspaceID, cursor, limit)
	if err != nil {
		return nil, fmt.Errorf("list wallets: %w", err)
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Wallet, error) { return scanWallet(r) })
	if err != nil {
		return nil, fmt.Errorf("list wallets: %w", err)
	}
	return list, nil
}

// StatementLine is one entry of a wallet's statement.
type StatementLine struct {
	EntryID       int64     `json:"entryId,string"`
	TransactionID string    `json:"transactionId"`
	ReferenceID   string    `json:"referenceId"`
	Type          string    `json:"type"`
	Amount        int64     `json:"amount"`
	BalanceAfter  int64     `json:"balanceAfter"`
	Description   *string   `json:"description"`
	CreatedAt     time.Time `json:"createdAt"`
}

// Statement lists a wallet's entries, newest first, each with the balance
// it left; cursor is an entry id.
func (l *Ledger) Statement(ctx context.Context, workspaceID, walletID string, cursor int64, limit int) ([]StatementLine, error) {
	if _, err := l.Wallet(ctx, workspaceID, walletID); err != nil {
		return nil, err
	}
	rows, err := l.pool.Query(ctx, `
		SELECT e.id, t.id, t.reference_id, t.type, e.amount, e.balance_after, t.description, e.created_at
		FROM wallets w
		JOIN ledger_entries e ON e.account_id = w.account_id
		JOIN transactions t ON t.id = e.transaction_id
		WHERE w.id = $1 AND ($2 = 0 OR e.id < $2)
		ORDER BY e.id DESC LIMIT $3`, walletID, cursor, limit)
	if err != nil {
		return nil, fmt.Errorf("statement %s: %w", walletID, err)
	}
	lines, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (StatementLine, error) {
		var s StatementLine
		err := r.Scan(&s.EntryID, &s.TransactionID, &s.ReferenceID, &s.Type, &s.Amount, &s.BalanceAfter, &s.Description, &s.CreatedAt)
		return s, err
	})
	if err != nil {
		return nil, fmt.Errorf("statement %s: %w", walletID, err)
	}
	return lines, nil
}

// Balance is a partner balance in one currency.
type Balance struct {
	Currency  Currency `json:"currency"`
	Available int64    `json:"available"`
}

// PartnerBalances returns the workspace's partner balances per currency.
func (l *Ledger) PartnerBalances(ctx context.Context, workspaceID string) ([]Balance, error) {
	rows, err := l.pool.Query(ctx, `SELECT currency, balance FROM ledger_accounts
		WHERE workspace_id = $1 AND kind = 'partner' ORDER BY currency`, workspaceID)
	if err != nil {
		return nil, fmt.Errorf("partner balances: %w", err)
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Balance, error) {
		var b Balance
		return b, r.Scan(&b.Currency, &b.Available)
	})
	if err != nil {
		return nil, fmt.Errorf("partner balances: %w", err)
	}
	return list, nil
}
