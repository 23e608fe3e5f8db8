package ledger

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/orbt/orbt/store"
)

// The money of a gift card redemption. Package giftcard owns redemptions
// and decides when each step happens; the ledger posts each step's money
// inside giftcard's database transaction, so the redemption's state and
// its money commit together. Each step is a completed transaction of its
// own with one pair of entries, tied to the redemption (at most one step
// of each kind per redemption: a unique index), and shows in the wallet's
// statement.
//
// Locks are taken in one order by every path: the wallet's account, then
// the lane's clearing and settlement accounts of the wallet's shard (in id
// order, in one statement), then the campaign; apply groups take wallets
// before funding accounts and campaigns too, never a clearing or
// settlement account, and no step ever locks a partner balance. Events
// come last (RecordOutcome).

// Failure reasons of a redemption the ledger decides.
const (
	ReasonBrandNotAllowed = "brand_not_allowed"
)

// HoldRequest is a redemption's hold: amount from the wallet to clearing.
type HoldRequest struct {
	WorkspaceID  string
	RedemptionID string
	WalletID     string
	// BrandID is checked against a campaign wallet's allowed brands.
	BrandID  string
	Amount   int64
	Currency Currency
}

// stepAccount is a locked wallet account a step posts to, with its held.
type stepAccount struct {
	account
	held int64
}

// Hold decides a redemption's hold in tx and, when the wallet can pay,
// posts it: the wallet's balance goes down and its held up by the amount,
// and the lane's clearing account takes it. It returns the failure reason
// ("" when held): wallet_closed, currency_mismatch, brand_not_allowed (a
// campaign wallet whose campaign allows other brands) or
// insufficient_funds. Nothing is written on a failure.
func (l *Ledger) Hold(ctx context.Context, tx pgx.Tx, r HoldRequest) (string, error) {
	var (
		wallet        stepAccount
		status        string
		cur           Currency
		campaignID    *string
		allowedBrands []string
	)
	err := tx.QueryRow(ctx, `SELECT a.id, a.balance, a.held, w.status, w.currency, w.campaign_id, c.allowed_brands
		FROM wallets w JOIN ledger_accounts a ON a.id = w.account_id
		LEFT JOIN campaigns c ON c.id = w.campaign_id
		WHERE w.id = $1 AND w.workspace_id = $2 FOR NO KEY UPDATE OF a`, r.WalletID, r.WorkspaceID).
		Scan(&wallet.id, &wallet.balance, &wallet.held, &status, &cur, &campaignID, &allowedBrands)
	if err != nil {
		return "", fmt.Errorf("hold %s: %w", r.RedemptionID, store.NoRows(err, ErrWalletNotFound))
	}
	switch {
	case status != "active":
		return ReasonWalletClosed, nil
	case cur != r.Currency:
		return ReasonCurrencyMismatch, nil
	case campaignID != nil && len(allowedBrands) > 0 && !slices.Contains(allowedBrands, r.BrandID):
		return ReasonBrandNotAllowed, nil
	case wallet.balance < r.Amount:
		return ReasonInsufficientFunds, nil
	}
	edges, err := lockStepEdges(ctx, tx, r.WorkspaceID, r.Currency, edgeShard(wallet.id), "clearing")
	if err != nil {
		return "", fmt.Errorf("hold %s: %w", r.RedemptionID, err)
	}
	step := redemptionStep{typ: TypeRedemptionHold, redemptionID: r.RedemptionID, workspaceID: r.WorkspaceID,
		walletID: r.WalletID, amount: r.Amount, currency: r.Currency, lane: edges.lane}
	if err := step.post(ctx, tx, &wallet.account, &edges.clearing, wallet.id, r.Amount); err != nil {
		return "", err
	}
	return "", nil
}

// SettleRequest ends a held redemption.
type SettleRequest struct {
	WorkspaceID  string
	RedemptionID string
	WalletID     string
	Amount       int64
	Currency     Currency
	// Capture pays the provider (clearing to settlement); otherwise the
	// hold is released back to the wallet.
	Capture bool
}

// Settle posts, in tx, the capture or the release of a held redemption,
// and takes the amount off the wallet's held either way. A capture of a
// campaign wallet's redemption counts in the campaign's redeemed.
func (l *Ledger) Settle(ctx context.Context, tx pgx.Tx, r SettleRequest) error {
	var (
		wallet     stepAccount
		campaignID *string
	)
	err := tx.QueryRow(ctx, `SELECT a.id, a.balance, a.held, w.campaign_id
		FROM wallets w JOIN ledger_accounts a ON a.id = w.account_id
		WHERE w.id = $1 AND w.workspace_id = $2 FOR NO KEY UPDATE OF a`, r.WalletID, r.WorkspaceID).
		Scan(&wallet.id, &wallet.balance, &wallet.held, &campaignID)
	if err != nil {
		return fmt.Errorf("settle %s: %w", r.RedemptionID, store.NoRows(err, ErrWalletNotFound))
	}
	if wallet.held < r.Amount {
		return fmt.Errorf("%w: settle %s: wallet %s holds %d, not %d", ErrInvariant, r.RedemptionID, r.WalletID, wallet.held, r.Amount)
	}
	kinds := []string{"clearing"}
	if r.Capture {
		kinds = append(kinds, "settlement")
	}
	edges, err := lockStepEdges(ctx, tx, r.WorkspaceID, r.Currency, edgeShard(wallet.id), kinds...)
	if err != nil {
		return fmt.Errorf("settle %s: %w", r.RedemptionID, err)
	}
	step := redemptionStep{typ: TypeRedemptionRelease, redemptionID: r.RedemptionID, workspaceID: r.WorkspaceID,
		walletID: r.WalletID, amount: r.Amount, currency: r.Currency, lane: edges.lane}
	to := &wallet.account
	if r.Capture {
		step.typ, to = TypeRedemptionCapture, &edges.settlement
	}
	if err := step.post(ctx, tx, &edges.clearing, to, wallet.id, -r.Amount); err != nil {
		return err
	}
	if r.Capture && campaignID != nil {
		if _, err := tx.Exec(ctx, `UPDATE campaigns SET redeemed = redeemed + $2 WHERE id = $1`, *campaignID, r.Amount); err != nil {
			return fmt.Errorf("settle %s: campaign: %w", r.RedemptionID, err)
		}
	}
	return nil
}

// stepEdges are a lane's edge accounts a step locked, and the lane's id.
type stepEdges struct {
	lane                 int64
	clearing, settlement account
}

// edgeShards is how many clearing and settlement accounts a lane's
// redemption steps spread over (see migration 0009): a wallet's steps all
// go through the shard of its account id.
const edgeShards = 16

func edgeShard(walletAccount int64) int16 { return int16(walletAccount % edgeShards) }

// lockStepEdges locks the named edge accounts of a workspace's lane in one
// shard, in id order, making the shard's accounts when first used, and
// reads (never locks) the lane's partner balance's id.
func lockStepEdges(ctx context.Context, tx pgx.Tx, workspaceID string, cur Currency, shard int16, kinds ...string) (stepEdges, error) {
	e, err := readStepEdges(ctx, tx, workspaceID, cur, shard, kinds)
	if err == nil && (e.clearing.id == 0 || (slices.Contains(kinds, "settlement") && e.settlement.id == 0)) {
		// The shard's first step. (Not tried on every step: an insert
		// that conflicts waits for whoever holds the row, like the lock.)
		_, err = tx.Exec(ctx, `INSERT INTO ledger_accounts (workspace_id, kind, currency, shard)
			SELECT $1, unnest($3::text[]), $2, $4
			ON CONFLICT (workspace_id, kind, currency, shard) WHERE kind <> 'wallet' DO NOTHING`, workspaceID, cur, kinds, shard)
		if err == nil {
			e, err = readStepEdges(ctx, tx, workspaceID, cur, shard, kinds)
		}
	}
	if err != nil {
		return e, fmt.Errorf("lock %v of %s %s: %w", kinds, workspaceID, cur, err)
	}
	if e.lane == 0 || e.clearing.id == 0 || (slices.Contains(kinds, "settlement") && e.settlement.id == 0) {
		return e, fmt.Errorf("%w: %s %s has no partner balance or %v account", ErrInvariant, workspaceID, cur, kinds)
	}
	return e, nil
}

func readStepEdges(ctx context.Context, tx pgx.Tx, workspaceID string, cur Currency, shard int16, kinds []string) (stepEdges, error) {
	var e stepEdges
	var b pgx.Batch
	b.Queue(`SELECT id FROM ledger_accounts WHERE workspace_id = $1 AND currency = $2 AND kind = 'partner'`,
		workspaceID, cur).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			if err := rows.Scan(&e.lane); err != nil {
				return err
			}
		}
		return rows.Err()
	})
	b.Queue(`SELECT id, kind, balance FROM ledger_accounts WHERE workspace_id = $1 AND currency = $2 AND kind = ANY ($3)
		AND shard = $4 ORDER BY id FOR NO KEY UPDATE`, workspaceID, cur, kinds, shard).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var a account
			if err := rows.Scan(&a.id, &a.kind, &a.balance); err != nil {
				return err
			}
			switch a.kind {
			case "clearing":
				e.clearing = a
			case "settlement":
				e.settlement = a
			}
		}
		return rows.Err()
	})
	return e, tx.SendBatch(ctx, &b).Close()
}

// redemptionStep is one completed step transaction about to be written.
type redemptionStep struct {
	typ, redemptionID, workspaceID, walletID string
	amount                                   int64
	currency                                 Currency
	lane                                     int64
}

// post writes the step: its transaction, its pair of entries (from pays
// to), both balances, and heldDelta on the wallet's account. One round trip.
func (s redemptionStep) post(ctx context.Context, tx pgx.Tx, from, to *account, walletAccount, heldDelta int64) error {
	txnID := store.NewID("txn")
	entries := post(nil, txnID, from, to, s.amount)
	if err := checkGroup(entries, map[int64]*account{from.id: from, to.id: to}); err != nil {
		return err
	}
	var b pgx.Batch
	b.Queue(`INSERT INTO transactions (id, workspace_id, type, wallet_id, lane_account_id, amount, currency,
			status, fingerprint, redemption_id, completed_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, 'completed', '', $8, clock_timestamp())`,
		txnID, s.workspaceID, s.typ, s.walletID, s.lane, s.amount, s.currency, s.redemptionID)
	b.Queue(`INSERT INTO ledger_entries (transaction_id, account_id, amount, balance_after)
		VALUES ($1, $2, $3, $4), ($1, $5, $6, $7)`, txnID,
		entries[0].accountID, entries[0].amount, entries[0].balanceAfter,
		entries[1].accountID, entries[1].amount, entries[1].balanceAfter)
	b.Queue(`UPDATE ledger_accounts a SET balance = a.balance + d.delta
		FROM unnest($1::bigint[], $2::bigint[]) AS d(id, delta) WHERE a.id = d.id`,
		[]int64{from.id, to.id}, []int64{from.delta, to.delta})
	b.Queue(`UPDATE ledger_accounts SET held = held + $2 WHERE id = $1`, walletAccount, heldDelta)
	if err := tx.SendBatch(ctx, &b).Close(); err != nil {
		return fmt.Errorf("%s %s: %w", s.typ, s.redemptionID, err)
	}
	return nil
}

// RecordOutcome writes, in tx and after every other lock the caller took,
// the event reporting an object's outcome (with its webhook deliveries)
// and announces the object final to the processes waiting for it
// (AwaitAnnounced); both take effect when tx commits. It returns the new
// deliveries' ids, to enqueue after the commit.
func (l *Ledger) RecordOutcome(ctx context.Context, tx pgx.Tx, workspaceID, objectID, eventType string, object any) ([]string, error) {
	ev, err := newEvent(workspaceID, eventType, time.Now(), object)
	if err != nil {
		return nil, err
	}
	var b pgx.Batch
	var deliveries []string
	l.queueEvents(&b, []eventRow{ev}, &deliveries)
	b.Queue(`SELECT pg_notify($1, $2)`, outcomeChannel, objectID)
	if err := tx.SendBatch(ctx, &b).Close(); err != nil {
		return nil, fmt.Errorf("record %s of %s: %w", eventType, objectID, err)
	}
	return deliveries, nil
}
