package ledger

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Transaction types, statuses and failure reasons as the API shows them.
const (
	TypeCredit  = "credit"
	TypeDebit   = "debit"
	TypeFunding = "funding"

	StatusPending   = "pending"
	StatusCompleted = "completed"
	StatusFailed    = "failed"

	ReasonInsufficientFunds        = "insufficient_funds"
	ReasonInsufficientPartnerFunds = "insufficient_partner_funds"
	ReasonCampaignBudgetExceeded   = "campaign_budget_exceeded"
	ReasonCampaignInactive         = "campaign_inactive"
	ReasonCurrencyMismatch         = "currency_mismatch"
	ReasonWalletClosed             = "wallet_closed"
)

// Transaction is a request to move money and, once applied, its outcome.
type Transaction struct {
	ID            string            `json:"id"`
	ReferenceID   string            `json:"referenceId"`
	Type          string            `json:"type"`
	WalletID      *string           `json:"walletId"`
	Amount        int64             `json:"amount"`
	Currency      Currency          `json:"currency"`
	Status        string            `json:"status"`
	FailureReason *string           `json:"failureReason"`
	BatchID       *string           `json:"batchId"`
	Description   *string           `json:"description"`
	Metadata      map[string]string `json:"metadata"`
	CreatedAt     time.Time         `json:"createdAt"`
	CompletedAt   *time.Time        `json:"completedAt"`

	workspaceID string
	laneID      int64
	fingerprint []byte
}

// LaneID is the partner balance account every posting of the transaction
// goes through; the worker applies transactions lane by lane.
func (t Transaction) LaneID() int64 { return t.laneID }

// TransactionRequest is a validated request to credit or debit a wallet.
type TransactionRequest struct {
	WorkspaceID string
	ReferenceID string
	Type        string
	WalletID    string
	Amount      int64
	Currency    Currency
	Description *string
	Metadata    map[string]string
	BatchID     *string
}

// fingerprint identifies the payload a referenceId was first used with.
func (r TransactionRequest) fingerprint() []byte {
	h := sha256.New()
	for _, s := range []string{r.Type, r.WalletID, string(r.Currency), deref(r.Description)} {
		binary.Write(h, binary.BigEndian, uint32(len(s)))
		h.Write([]byte(s))
	}
	binary.Write(h, binary.BigEndian, r.Amount)
	binary.Write(h, binary.BigEndian, r.Description != nil)
	if len(r.Metadata) > 0 {
		meta, _ := json.Marshal(r.Metadata) // sorted keys: canonical
		h.Write(meta)
	}
	return h.Sum(nil)
}

// differences names the request fields that differ from the stored original.
func (r TransactionRequest) differences(t Transaction) []string {
	var fields []string
	if r.Type != t.Type {
		fields = append(fields, "type")
	}
	if r.WalletID != deref(t.WalletID) {
		fields = append(fields, "walletId")
	}
	if r.Amount != t.Amount {
		fields = append(fields, "amount")
	}
	if r.Currency != t.Currency {
		fields = append(fields, "currency")
	}
	if deref(r.Description) != deref(t.Description) || (r.Description == nil) != (t.Description == nil) {
		fields = append(fields, "description")
	}
	if !maps.Equal(r.Metadata, t.Metadata) {
		fields = append(fields, "metadata")
	}
	if len(fields) == 0 { // only the encoding of an absent field differs
		fields = append(fields, "payload")
	}
	return fields
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

const transactionColumns = `t.id, t.workspace_id, t.lane_account_id, t.reference_id, t.type, t.wallet_id,
	t.amount, t.currency, t.status, t.failure_reason, t.batch_id, t.description, t.metadata,
	t.fingerprint, t.created_at, t.completed_at`

func scanTransaction(row pgx.Row) (Transaction, error) {
	var t Transaction
	err := row.Scan(t.fields()...)
	return t, err
}

// collectTransaction is scanTransaction for pgx.CollectRows.
func collectTransaction(r pgx.CollectableRow) (Transaction, error) { return scanTransaction(r) }

// fields are the scan destinations of transactionColumns, in order.
func (t *Transaction) fields() []any {
	return []any{&t.ID, &t.workspaceID, &t.laneID, &t.ReferenceID, &t.Type, &t.WalletID,
		&t.Amount, &t.Currency, &t.Status, &t.FailureReason, &t.BatchID, &t.Description, &t.Metadata,
		&t.fingerprint, &t.CreatedAt, &t.CompletedAt}
}

// answer tells what a request means for the transaction already stored
// under its referenceId: a replay of the same payload, or a conflict
// naming the fields that differ.
func (r TransactionRequest) answer(stored Transaction, fp []byte) (replayed bool, err error) {
	if !bytes.Equal(stored.fingerprint, fp) {
		return false, &ConflictError{Fields: r.differences(stored)}
	}
	return true, nil
}

// Fund credits a partner balance from the external funding account and
// applies it before returning, deduplicated by referenceId like every money
// movement.
func (l *Ledger) Fund(ctx context.Context, workspaceID, referenceID string, cur Currency, amount int64) (Transaction, bool, error) {
	if err := ensureLaneAccounts(ctx, l.pool, workspaceID, cur); err != nil {
		return Transaction{}, false, fmt.Errorf("fund %s: %w", referenceID, err)
	}
	req := TransactionRequest{WorkspaceID: workspaceID, ReferenceID: referenceID, Type: TypeFunding, Amount: amount, Currency: cur}
	fp := req.fingerprint()
	txn, err := scanTransaction(l.pool.QueryRow(ctx, insertQueued(`
		INSERT INTO transactions (id, workspace_id, reference_id, type, lane_account_id, amount, currency, fingerprint)
		SELECT $1, $2, $3, 'funding', a.id, $4::bigint, $5, $6
		FROM ledger_accounts a WHERE a.workspace_id = $2 AND a.kind = 'partner' AND a.currency = $5
		ON CONFLICT (workspace_id, reference_id) DO NOTHING`),
		NewID("txn"), workspaceID, referenceID, amount, cur, fp))
	replayed := false
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		txn, err = l.TransactionByReference(ctx, workspaceID, referenceID)
		if err != nil {
			return Transaction{}, false, err
		}
		if replayed, err = req.answer(txn, fp); err != nil {
			return txn, false, err
		}
	case err != nil:
		return Transaction{}, false, fmt.Errorf("fund %s: %w", referenceID, err)
	}
	if txn.Status == StatusPending {
		if _, err := l.ApplyLane(ctx, txn.laneID); err != nil {
			return Transaction{}, false, err
		}
		txn, err = l.Transaction(ctx, workspaceID, txn.ID)
	}
	return txn, replayed, err
}

// Transaction returns one transaction of the workspace.
func (l *Ledger) Transaction(ctx context.Context, workspaceID, id string) (Transaction, error) {
	t, err := scanTransaction(l.pool.QueryRow(ctx,
		`SELECT `+transactionColumns+` FROM transactions t WHERE t.id = $1 AND t.workspace_id = $2`, id, workspaceID))
	if err != nil {
		return Transaction{}, fmt.Errorf("transaction %s: %w", id, noRows(err, ErrNotFound))
	}
	return t, nil
}

// TransactionByReference returns the transaction stored under a referenceId.
func (l *Ledger) TransactionByReference(ctx context.Context, workspaceID, referenceID string) (Transaction, error) {
	t, err := scanTransaction(l.pool.QueryRow(ctx,
		`SELECT `+transactionColumns+` FROM transactions t WHERE t.workspace_id = $1 AND t.reference_id = $2`,
		workspaceID, referenceID))
	if err != nil {
		return Transaction{}, fmt.Errorf("transaction %s: %w", referenceID, noRows(err, ErrNotFound))
	}
	return t, nil
}

// TransactionFilter narrows a transaction list; empty fields match all.
type TransactionFilter struct {
	WalletID    string
	Status      string
	ReferenceID string
	BatchID     string
}

// Transactions lists a workspace's transactions, newest first, after the
// cursor (an id; empty for the first page).
func (l *Ledger) Transactions(ctx context.Context, workspaceID string, f TransactionFilter, cursor string, limit int) ([]Transaction, error) {
	from := `transactions t`
	if f.Status == StatusPending {
		// What is pending is exactly what is queued: read the short queue
		// of the workspace's partner balances, not its whole history.
		from = `pending_transactions q JOIN transactions t ON t.id = q.transaction_id
			AND q.lane_account_id IN (SELECT id FROM ledger_accounts WHERE workspace_id = $1 AND kind = 'partner')`
	}
	rows, err := l.pool.Query(ctx, `SELECT `+transactionColumns+` FROM `+from+`
		WHERE t.workspace_id = $1
		  AND ($2 = '' OR t.wallet_id = $2)
		  AND ($3 = '' OR t.status = $3)
		  AND ($4 = '' OR t.reference_id = $4)
		  AND ($5 = '' OR t.batch_id = $5)
		  AND ($6 = '' OR t.id < $6)
		ORDER BY t.id DESC LIMIT $7`,
		workspaceID, f.WalletID, f.Status, f.ReferenceID, f.BatchID, cursor, limit)
	if err != nil {
		return nil, fmt.Errorf("list transactions: %w", err)
	}
	list, err := pgx.CollectRows(rows, collectTransaction)
	if err != nil {
		return nil, fmt.Errorf("list transactions: %w", err)
	}
	return list, nil
}

// ensureLaneAccounts creates the partner balance and the ledger's edge
// accounts of one workspace and currency when they do not exist yet.
func ensureLaneAccounts(ctx context.Context, q querier, workspaceID string, cur Currency) error {
	_, err := q.Exec(ctx, `
		INSERT INTO ledger_accounts (workspace_id, kind, currency)
		SELECT $1, k, $2 FROM unnest(ARRAY['partner', 'funding', 'settlement']) AS k
		ON CONFLICT (workspace_id, kind, currency) WHERE kind <> 'wallet' DO NOTHING`, workspaceID, cur)
	if err != nil {
		return fmt.Errorf("ensure accounts %s %s: %w", workspaceID, cur, err)
	}
	return nil
}

// insertQueued wraps an INSERT INTO transactions so that every row it
// inserts is also queued as pending work for its lane, in the same
// statement, and the statement returns the inserted transactions' columns.
func insertQueued(insert string) string {
	cols := unqualified(transactionColumns)
	return `WITH ins AS (` + insert + ` RETURNING ` + cols + `),
		queued AS (INSERT INTO pending_transactions (lane_account_id, transaction_id, created_at)
			SELECT lane_account_id, id, created_at FROM ins)
		SELECT ` + cols + ` FROM ins`
}

// unqualified drops the "t." alias for RETURNING clauses.
func unqualified(cols string) string {
	return strings.ReplaceAll(cols, "t.", "")
}

// StaleLanes returns the partner balances with transactions pending for
// longer than olderThan. It reads the queue of pending work only.
func (l *Ledger) StaleLanes(ctx context.Context, olderThan time.Duration, limit int) ([]int64, error) {
	rows, err := l.pool.Query(ctx, `SELECT DISTINCT lane_account_id FROM pending_transactions
		WHERE created_at < now() - $1::interval LIMIT $2`, olderThan, limit)
	if err != nil {
		return nil, fmt.Errorf("stale lanes: %w", err)
	}
	lanes, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, fmt.Errorf("stale lanes: %w", err)
	}
	return lanes, nil
}
