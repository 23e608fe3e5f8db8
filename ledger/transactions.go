package ledger

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/orbt/orbt/store"
)

// Transaction types, statuses and failure reasons as the API shows them.
const (
	TypeCredit  = "credit"
	TypeDebit   = "debit"
	TypeFunding = "funding"
	// The steps of a gift card redemption (package giftcard): the hold
	// moves the amount from the wallet to the clearing account, the
	// capture on to settlement, the release back to the wallet.
	TypeRedemptionHold    = "redemption_hold"
	TypeRedemptionCapture = "redemption_capture"
	TypeRedemptionRelease = "redemption_release"

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
	// RedemptionID ties a redemption's step to it; steps have no
	// referenceId of their own ("").
	RedemptionID *string `json:"redemptionId,omitempty"`

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

const transactionColumns = `t.id, t.workspace_id, t.lane_account_id, COALESCE(t.reference_id, '') AS reference_id, t.type, t.wallet_id,
	t.amount, t.currency, t.status, t.failure_reason, t.batch_id, t.description, t.metadata,
	t.fingerprint, t.created_at, t.completed_at, t.redemption_id`

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
		&t.fingerprint, &t.CreatedAt, &t.CompletedAt, &t.RedemptionID}
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

// Fund accepts a credit of a partner balance from the external funding
// account: a money movement like any other, deduplicated by referenceId,
// stored pending and applied by the worker.
func (l *Ledger) Fund(ctx context.Context, workspaceID, referenceID string, cur Currency, amount int64) (Transaction, bool, error) {
	return l.Submit(ctx, TransactionRequest{WorkspaceID: workspaceID, ReferenceID: referenceID, Type: TypeFunding,
		Amount: amount, Currency: cur})
}

// newTransaction is one row for transactionInsert.
type newTransaction struct {
	id   string
	req  TransactionRequest
	fp   []byte
	meta *string // req.Metadata as JSON
}

// transactionInsert is the one statement that stores transactions, for
// single accepts (grouped or one by one), fundings and bulk payouts alike:
// any number of rows, each queued as pending work for its lane in the same
// statement, resolving each row's lane (its workspace's partner balance in
// its currency) as it goes. A row is not inserted when its referenceId is
// taken, its wallet is not one of its workspace's, or its lane does not
// exist yet: the caller tells these apart. Rows are inserted in one order
// (workspace, referenceId) by every caller, so two inserts never wait on
// each other's keys in a cycle.
func transactionInsert(ctx context.Context, q store.Querier, rows []newTransaction) ([]Transaction, error) {
	var b pgx.Batch
	var inserted []Transaction
	queueTransactionInsert(&b, rows, &inserted)
	if err := q.SendBatch(ctx, &b).Close(); err != nil {
		return nil, fmt.Errorf("insert transactions: %w", err)
	}
	return inserted, nil
}

// queueTransactionInsert queues transactionInsert's statement on b; the
// inserted transactions fill *inserted when b runs.
func queueTransactionInsert(b *pgx.Batch, rows []newTransaction, inserted *[]Transaction) {
	sorted := slices.Clone(rows)
	slices.SortFunc(sorted, func(a, b newTransaction) int {
		return cmp.Or(cmp.Compare(a.req.WorkspaceID, b.req.WorkspaceID), cmp.Compare(a.req.ReferenceID, b.req.ReferenceID))
	})
	n := len(sorted)
	var (
		ids, ws, refs, types, curs = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		wallets, descs, metas      = make([]*string, n), make([]*string, n), make([]*string, n)
		batches                    = make([]*string, n)
		amounts                    = make([]int64, n)
		fps                        = make([][]byte, n)
	)
	for i, row := range sorted {
		r := row.req
		ids[i], ws[i], refs[i], types[i], curs[i] = row.id, r.WorkspaceID, r.ReferenceID, r.Type, string(r.Currency)
		if r.WalletID != "" {
			wallets[i] = &r.WalletID
		}
		descs[i], metas[i], batches[i], amounts[i], fps[i] = r.Description, row.meta, r.BatchID, r.Amount, row.fp
	}
	cols := unqualified(transactionColumns)
	b.Queue(`
		WITH ins AS (
			INSERT INTO transactions (id, workspace_id, reference_id, type, wallet_id, lane_account_id,
				amount, currency, description, metadata, fingerprint, batch_id)
			SELECT u.id, u.ws, u.ref, u.type, w.id, a.id, u.amount, u.currency, u.description, u.metadata, u.fp, u.batch
			FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::text[],
					$8::text[], $9::jsonb[], $10::bytea[], $11::text[]) WITH ORDINALITY
				AS u(id, ws, ref, type, wallet, amount, currency, description, metadata, fp, batch, ord)
			LEFT JOIN wallets w ON w.id = u.wallet AND w.workspace_id = u.ws
			JOIN ledger_accounts a ON a.workspace_id = u.ws AND a.kind = 'partner' AND a.currency = u.currency
			WHERE (u.wallet IS NULL) = (w.id IS NULL)
			ORDER BY u.ord
			ON CONFLICT (workspace_id, reference_id) DO NOTHING
			RETURNING `+cols+`),
		queued AS (INSERT INTO pending_transactions (lane_account_id, transaction_id, created_at)
			SELECT lane_account_id, id, created_at FROM ins)
		SELECT `+cols+` FROM ins`,
		ids, ws, refs, types, wallets, amounts, curs, descs, metas, fps, batches).Query(func(result pgx.Rows) error {
		var err error
		*inserted, err = pgx.CollectRows(result, collectTransaction)
		return err
	})
}

// Transaction returns one transaction of the workspace.
func (l *Ledger) Transaction(ctx context.Context, workspaceID, id string) (Transaction, error) {
	t, err := scanTransaction(l.pool.QueryRow(ctx,
		`SELECT `+transactionColumns+` FROM transactions t WHERE t.id = $1 AND t.workspace_id = $2`, id, workspaceID))
	if err != nil {
		return Transaction{}, fmt.Errorf("transaction %s: %w", id, store.NoRows(err, store.ErrNotFound))
	}
	return t, nil
}

// TransactionByReference returns the transaction stored under a referenceId.
func (l *Ledger) TransactionByReference(ctx context.Context, workspaceID, referenceID string) (Transaction, error) {
	t, err := scanTransaction(l.pool.QueryRow(ctx,
		`SELECT `+transactionColumns+` FROM transactions t WHERE t.workspace_id = $1 AND t.reference_id = $2`,
		workspaceID, referenceID))
	if err != nil {
		return Transaction{}, fmt.Errorf("transaction %s: %w", referenceID, store.NoRows(err, store.ErrNotFound))
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
	// A lookup by referenceId is how a partner learns whether a request
	// it is unsure of was taken, and a batch's items are read right after
	// its batch.completed (its failed rows to send again): the primary
	// answers both, never a replica that may not have them yet.
	reads := l.reads
	if f.ReferenceID != "" || f.BatchID != "" {
		reads = reads.Primary()
	}
	list, err := store.List(ctx, reads, collectTransaction, `SELECT `+transactionColumns+` FROM `+from+`
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
	return list, nil
}

// unqualified drops the "t." alias for RETURNING clauses.
func unqualified(cols string) string {
	return strings.ReplaceAll(cols, "t.", "")
}

// StaleLanes returns the partner balances with transactions pending for
// longer than olderThan, the longest waiting first, so that past limit
// stuck lanes every lane is still reached, oldest first, pass after pass.
// It reads the queue of pending work only.
func (l *Ledger) StaleLanes(ctx context.Context, olderThan time.Duration, limit int) ([]int64, error) {
	rows, err := l.pool.Query(ctx, `SELECT lane_account_id FROM pending_transactions
		WHERE created_at < now() - $1::interval
		GROUP BY lane_account_id ORDER BY min(created_at), lane_account_id LIMIT $2`, olderThan, limit)
	if err != nil {
		return nil, fmt.Errorf("stale lanes: %w", err)
	}
	lanes, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, fmt.Errorf("stale lanes: %w", err)
	}
	return lanes, nil
}

// Entry is one posting of a transaction to a ledger account.
type Entry struct {
	// Account is the kind of account: partner, wallet, funding,
	// settlement or clearing.
	Account  string
	WalletID *string
	Currency Currency
	// Amount is signed: positive into the account, negative out of it.
	Amount       int64
	BalanceAfter int64
	CreatedAt    time.Time
}

// Entries lists the ledger entries of one of the workspace's transactions,
// in the order they were posted; none while it is pending or when it
// failed.
func (l *Ledger) Entries(ctx context.Context, workspaceID, transactionID string) ([]Entry, error) {
	rows, err := l.pool.Query(ctx, `SELECT a.kind, w.id, a.currency, e.amount, e.balance_after, e.created_at
		FROM ledger_entries e
		JOIN transactions t ON t.id = e.transaction_id
		JOIN ledger_accounts a ON a.id = e.account_id
		LEFT JOIN wallets w ON w.account_id = a.id
		WHERE e.transaction_id = $1 AND t.workspace_id = $2 ORDER BY e.id`, transactionID, workspaceID)
	if err != nil {
		return nil, fmt.Errorf("entries of %s: %w", transactionID, err)
	}
	entries, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Entry, error) {
		var e Entry
		return e, r.Scan(&e.Account, &e.WalletID, &e.Currency, &e.Amount, &e.BalanceAfter, &e.CreatedAt)
	})
	if err != nil {
		return nil, fmt.Errorf("entries of %s: %w", transactionID, err)
	}
	return entries, nil
}

// Backlog is how many transactions wait to be applied, and how long the
// oldest has waited (0 with none): the measure of stuck work.
func (l *Ledger) Backlog(ctx context.Context) (int64, time.Duration, error) {
	return store.Backlog(ctx, l.pool, `SELECT count(*), COALESCE(EXTRACT(EPOCH FROM now() - min(created_at)), 0)
		FROM pending_transactions`)
}
