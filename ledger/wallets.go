package ledger

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/orbt/orbt/store"
)

// Wallet types.
const (
	WalletStandard = "standard"
	WalletCampaign = "campaign"
)

// Wallet is a consumer's balance in one currency, standard or tied to a campaign.
type Wallet struct {
	ID         string   `json:"id"`
	ConsumerID string   `json:"consumerId"`
	Type       string   `json:"type"`
	Currency   Currency `json:"currency"`
	CampaignID *string  `json:"campaignId"`
	Balance    int64    `json:"balance"`
	// Held is what open redemptions hold, already out of Balance.
	Held      int64     `json:"held"`
	Status    string    `json:"status"`
	CreatedAt time.Time `json:"createdAt"`
}

const walletColumns = `w.id, w.consumer_id, w.type, w.currency, w.campaign_id, a.balance, a.held, w.status, w.created_at`

func scanWallet(row pgx.Row) (Wallet, error) {
	var w Wallet
	err := row.Scan(&w.ID, &w.ConsumerID, &w.Type, &w.Currency, &w.CampaignID, &w.Balance, &w.Held, &w.Status, &w.CreatedAt)
	return w, err
}

// CreateWallet opens a wallet for a consumer of the workspace: at most one
// standard wallet per currency, one campaign wallet per campaign. The
// caller has checked, through the workspace store that owns consumers,
// that the consumer is the workspace's.
func (l *Ledger) CreateWallet(ctx context.Context, workspaceID, consumerID, walletType string, cur Currency, campaignID *string) (Wallet, error) {
	w, _, err := l.createWallet(ctx, workspaceID, consumerID, walletType, cur, campaignID, nil)
	return w, err
}

// CreateFundedWallet opens a standard wallet and accepts its first credit
// (pending, for the worker to apply) in one database transaction, so
// neither exists without the other. credit's WalletID is the new wallet's.
func (l *Ledger) CreateFundedWallet(ctx context.Context, workspaceID, consumerID string, cur Currency, credit TransactionRequest) (Wallet, Transaction, error) {
	w, txn, err := l.createWallet(ctx, workspaceID, consumerID, WalletStandard, cur, nil, &credit)
	if err != nil {
		return Wallet{}, Transaction{}, err
	}
	return w, *txn, nil
}

func (l *Ledger) createWallet(ctx context.Context, workspaceID, consumerID, walletType string, cur Currency, campaignID *string,
	credit *TransactionRequest) (Wallet, *Transaction, error) {
	tx, err := l.pool.Begin(ctx)
	if err != nil {
		return Wallet{}, nil, fmt.Errorf("create wallet: %w", err)
	}
	defer tx.Rollback(ctx)
	key := walletKey{consumerID: consumerID, currency: cur}
	if walletType == WalletCampaign && campaignID != nil {
		key.campaignID = *campaignID
		var campaignCurrency Currency
		err := tx.QueryRow(ctx, `SELECT currency FROM campaigns WHERE id = $1 AND workspace_id = $2`,
			*campaignID, workspaceID).Scan(&campaignCurrency)
		if err != nil {
			return Wallet{}, nil, fmt.Errorf("create wallet: %w", store.NoRows(err, ErrCampaignNotFound))
		}
		if campaignCurrency != cur {
			return Wallet{}, nil, ErrCampaignCurrency
		}
	}
	if err := ensureLaneAccounts(ctx, tx, workspaceID, cur); err != nil {
		return Wallet{}, nil, err
	}
	created, err := walletInsert(ctx, tx, workspaceID, []walletKey{key})
	if err != nil {
		return Wallet{}, nil, err
	}
	if created[0] == "" {
		return Wallet{}, nil, ErrWalletExists
	}
	var txn *Transaction
	if credit != nil {
		credit.WalletID = created[0]
		inserted, err := transactionInsert(ctx, tx, []newTransaction{{id: store.NewID("txn"), req: *credit, fp: credit.fingerprint()}})
		if err != nil {
			return Wallet{}, nil, fmt.Errorf("create wallet: first credit: %w", err)
		}
		if len(inserted) == 0 { // the referenceId is taken
			return Wallet{}, nil, &ConflictError{Fields: []string{"referenceId"}}
		}
		txn = &inserted[0]
	}
	// Read inside the transaction: once it commits, there is nothing left
	// to fail and answer 5xx for what was stored.
	w, err := wallet(ctx, tx, workspaceID, created[0])
	if err != nil {
		return Wallet{}, nil, err
	}
	if err := tx.Commit(ctx); err != nil {
		return Wallet{}, nil, fmt.Errorf("create wallet: commit: %w", err)
	}
	return w, txn, nil
}

// walletKey names a wallet by what makes it unique: its consumer and
// currency (a standard wallet) or its consumer and campaign.
type walletKey struct {
	consumerID string
	currency   Currency
	campaignID string
}

// walletInsert is the one statement pair that opens wallets, one or many:
// an account and a wallet row per key, in one round trip. It returns the
// new wallet's id for each key, or "" where the wallet already existed (the
// account drawn for it is dropped again, empty). Keys are created in one
// order, so two callers creating the same wallets never wait on each
// other's unique keys in a cycle.
func walletInsert(ctx context.Context, tx pgx.Tx, workspaceID string, keys []walletKey) ([]string, error) {
	order := make([]int, len(keys))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int {
		x, y := keys[a], keys[b]
		return cmp.Or(cmp.Compare(x.consumerID, y.consumerID), cmp.Compare(x.currency, y.currency), cmp.Compare(x.campaignID, y.campaignID))
	})
	// Account ids are drawn first so each new wallet knows its account.
	rows, err := tx.Query(ctx, `SELECT nextval(pg_get_serial_sequence('ledger_accounts', 'id')) FROM generate_series(1, $1)`, len(keys))
	if err != nil {
		return nil, fmt.Errorf("create wallets: %w", err)
	}
	accountIDs, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, fmt.Errorf("create wallets: %w", err)
	}
	n := len(keys)
	walletIDs, consumer, cur, campaign, types := make([]string, n), make([]string, n), make([]string, n), make([]*string, n), make([]string, n)
	for i, k := range order {
		key := keys[k]
		walletIDs[i], consumer[i], cur[i], types[i] = store.NewID("wal"), key.consumerID, string(key.currency), WalletStandard
		if key.campaignID != "" {
			campaign[i], types[i] = &key.campaignID, WalletCampaign
		}
	}
	var b pgx.Batch
	kinds := make([]string, n)
	for i := range kinds {
		kinds[i] = "wallet"
	}
	queueAccountInsert(&b, workspaceID, accountIDs, kinds, cur)
	made := make(map[int64]bool, n)
	b.Queue(`INSERT INTO wallets (id, workspace_id, consumer_id, type, currency, campaign_id, account_id)
		SELECT id, $1, consumer, type, currency, campaign, account
		FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[])
			AS u(id, consumer, type, currency, campaign, account)
		ON CONFLICT DO NOTHING RETURNING account_id`,
		workspaceID, walletIDs, consumer, types, cur, campaign, accountIDs).Query(func(rows pgx.Rows) error {
		created, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		for _, id := range created {
			made[id] = true
		}
		return err
	})
	if err := tx.SendBatch(ctx, &b).Close(); err != nil {
		return nil, fmt.Errorf("create wallets: %w", err)
	}
	ids := make([]string, n)
	var orphans []int64
	for i, k := range order {
		if made[accountIDs[i]] {
			ids[k] = walletIDs[i]
		} else {
			orphans = append(orphans, accountIDs[i])
		}
	}
	if len(orphans) > 0 {
		if _, err := tx.Exec(ctx, `DELETE FROM ledger_accounts WHERE id = ANY ($1)`, orphans); err != nil {
			return nil, fmt.Errorf("create wallets: drop unused accounts: %w", err)
		}
	}
	return ids, nil
}

// Wallet returns one wallet of the workspace with its balance.
func (l *Ledger) Wallet(ctx context.Context, workspaceID, id string) (Wallet, error) {
	return wallet(ctx, l.pool, workspaceID, id)
}

func wallet(ctx context.Context, q store.Querier, workspaceID, id string) (Wallet, error) {
	w, err := scanWallet(q.QueryRow(ctx, `SELECT `+walletColumns+`
		FROM wallets w JOIN ledger_accounts a ON a.id = w.account_id
		WHERE w.id = $1 AND w.workspace_id = $2`, id, workspaceID))
	if err != nil {
		return Wallet{}, fmt.Errorf("wallet %s: %w", id, store.NoRows(err, ErrWalletNotFound))
	}
	return w, nil
}

// ConsumerWallets lists a consumer's wallets in creation order, after the
// cursor (a wallet id).
func (l *Ledger) ConsumerWallets(ctx context.Context, workspaceID, consumerID, cursor string, limit int) ([]Wallet, error) {
	return l.consumerWallets(ctx, workspaceID, consumerID, cursor, 0, limit)
}

// ConsumerWalletsAt lists a consumer's wallets in creation order, skipping
// the first offset: the numbered pages of the Orbt-compatible API.
func (l *Ledger) ConsumerWalletsAt(ctx context.Context, workspaceID, consumerID string, offset int64, limit int) ([]Wallet, error) {
	return l.consumerWallets(ctx, workspaceID, consumerID, "", offset, limit)
}

func (l *Ledger) consumerWallets(ctx context.Context, workspaceID, consumerID, cursor string, offset int64, limit int) ([]Wallet, error) {
	rows, err := l.pool.Query(ctx, `SELECT `+walletColumns+`
		FROM wallets w JOIN ledger_accounts a ON a.id = w.account_id
		WHERE w.consumer_id = $1 AND w.workspace_id = $2 AND ($3 = '' OR w.id > $3)
		ORDER BY w.id OFFSET $4 LIMIT $5`, consumerID, workspaceID, cursor, offset, limit)
	if err != nil {
		return nil, fmt.Errorf("list wallets: %w", err)
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Wallet, error) { return scanWallet(r) })
	if err != nil {
		return nil, fmt.Errorf("list wallets: %w", err)
	}
	return list, nil
}

// BalanceAfter is the balance a completed credit or debit left in its
// wallet: the same figure however much later it is asked, unlike the
// wallet's balance now.
func (l *Ledger) BalanceAfter(ctx context.Context, txn Transaction) (int64, error) {
	var balance int64
	err := l.pool.QueryRow(ctx, `SELECT e.balance_after FROM ledger_entries e
		JOIN wallets w ON w.account_id = e.account_id
		WHERE e.transaction_id = $1 AND w.id = $2`, txn.ID, deref(txn.WalletID)).Scan(&balance)
	if err != nil {
		return 0, fmt.Errorf("balance after %s: %w", txn.ID, store.NoRows(err, store.ErrNotFound))
	}
	return balance, nil
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
	RedemptionID  *string   `json:"redemptionId,omitempty"`
	CreatedAt     time.Time `json:"createdAt"`
}

// Statement lists a wallet's entries, newest first, each with the balance
// it left; cursor is an entry id. A redemption's capture moves the held
// amount from clearing to settlement, not out of the wallet (its hold
// did): it shows as a line of amount 0, positioned by its clearing entry,
// so every step of a redemption is on the statement.
func (l *Ledger) Statement(ctx context.Context, workspaceID, walletID string, cursor int64, limit int) ([]StatementLine, error) {
	if _, err := l.Wallet(ctx, workspaceID, walletID); err != nil {
		return nil, err
	}
	lines, err := store.List(ctx, l.reads, collectStatementLine, `
		WITH w AS (SELECT id, account_id FROM wallets WHERE id = $1)
		SELECT * FROM (
			SELECT e.id, t.id, COALESCE(t.reference_id, ''), t.type, e.amount, e.balance_after, t.description,
				t.redemption_id, e.created_at
			FROM w JOIN ledger_entries e ON e.account_id = w.account_id
			JOIN transactions t ON t.id = e.transaction_id
			WHERE $2 = 0 OR e.id < $2
			UNION ALL
			SELECT e.id, t.id, '', t.type, 0, COALESCE((SELECT we.balance_after FROM ledger_entries we
					WHERE we.account_id = w.account_id AND we.id < e.id ORDER BY we.id DESC LIMIT 1), 0),
				t.description, t.redemption_id, e.created_at
			FROM w JOIN transactions t ON t.wallet_id = w.id AND t.type = 'redemption_capture'
			JOIN ledger_entries e ON e.transaction_id = t.id AND e.amount < 0
			WHERE $2 = 0 OR e.id < $2) lines
		ORDER BY 1 DESC LIMIT $3`, walletID, cursor, limit)
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

// collectStatementLine reads a row of Statement.
func collectStatementLine(r pgx.CollectableRow) (StatementLine, error) {
	var s StatementLine
	err := r.Scan(&s.EntryID, &s.TransactionID, &s.ReferenceID, &s.Type, &s.Amount, &s.BalanceAfter, &s.Description,
		&s.RedemptionID, &s.CreatedAt)
	return s, err
}
