package ledger

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/orbt/orbt/store"
)

// Batch statuses.
const (
	BatchProcessing = "processing"
	BatchCompleted  = "completed"
)

// Batch is a bulk payout: many transactions submitted together, applied
// like any other, and reported complete once none is pending.
type Batch struct {
	ID          string      `json:"id"`
	ReferenceID string      `json:"referenceId"`
	Status      string      `json:"status"`
	Counts      BatchCounts `json:"counts"`
	CreatedAt   time.Time   `json:"createdAt"`
	CompletedAt *time.Time  `json:"completedAt"`

	workspaceID string
	fingerprint []byte
}

// BatchCounts are a batch's items by state. Skipped items reused the
// referenceId of an earlier transaction with the same payload: they pay
// once, under that transaction. Pending+completed+failed+skipped = total.
type BatchCounts struct {
	Total     int `json:"total"`
	Pending   int `json:"pending"`
	Completed int `json:"completed"`
	Failed    int `json:"failed"`
	Skipped   int `json:"skipped"`
}

// BatchItem is one validated credit or debit of a batch. It names either a
// wallet or a consumer by externalId; for the latter the consumer and its
// standard wallet in Currency (or its wallet of CampaignID) are created when
// absent.
type BatchItem struct {
	ReferenceID        string
	Type               string
	WalletID           string
	ConsumerExternalID string
	CampaignID         string
	Amount             int64
	Currency           Currency
	Description        *string
}

// BatchRequest is a validated bulk payout.
type BatchRequest struct {
	WorkspaceID string
	ReferenceID string
	Items       []BatchItem
}

// ConsumerResolver returns the consumer id of each externalId, creating the
// consumers that do not exist yet, inside the batch's database transaction.
// The workspace store owns consumers; the ledger only asks.
type ConsumerResolver func(ctx context.Context, tx pgx.Tx, workspaceID string, externalIDs []string) (map[string]string, error)

// ItemError names what is wrong with one item of a batch.
type ItemError struct {
	Item    int // index into the request's items
	Field   string
	Message string
}

// BatchItemsError rejects a whole batch because of some of its items. It
// wraps ErrBatchItems, or ErrIdempotencyConflict when items reuse a
// referenceId with a different payload.
type BatchItemsError struct {
	Items    []ItemError
	Conflict bool
}

// ErrBatchItems reports a batch whose items name things that do not exist
// or do not fit together.
var ErrBatchItems = errors.New("batch items are invalid")

func (e *BatchItemsError) Error() string {
	return fmt.Sprintf("%d invalid batch items, the first: item %d %s %s", len(e.Items), e.Items[0].Item, e.Items[0].Field, e.Items[0].Message)
}

func (e *BatchItemsError) Unwrap() error {
	if e.Conflict {
		return ErrIdempotencyConflict
	}
	return ErrBatchItems
}

// Submitted is a stored batch and the partner balances (lanes) whose work
// it added, for the caller to enqueue.
type Submitted struct {
	Batch    Batch
	Lanes    []int64
	Replayed bool
	// Deliveries are the webhook deliveries of a batch.completed written at
	// submission (a batch whose every item was skipped), for the caller to
	// enqueue.
	Deliveries []string
}

func (r BatchRequest) fingerprint() []byte {
	h := sha256.New()
	for _, it := range r.Items {
		for _, s := range []string{it.ReferenceID, it.Type, it.WalletID, it.ConsumerExternalID, it.CampaignID,
			string(it.Currency), deref(it.Description)} {
			binary.Write(h, binary.BigEndian, uint32(len(s)))
			h.Write([]byte(s))
		}
		binary.Write(h, binary.BigEndian, it.Amount)
		binary.Write(h, binary.BigEndian, it.Description != nil)
	}
	return h.Sum(nil)
}

const batchColumns = `id, workspace_id, reference_id, status, total, pending, completed, failed, skipped,
	fingerprint, created_at, completed_at`

// collectBatch is scanBatch for pgx.CollectRows.
func collectBatch(r pgx.CollectableRow) (Batch, error) { return scanBatch(r) }

func scanBatch(row pgx.Row) (Batch, error) {
	var b Batch
	err := row.Scan(&b.ID, &b.workspaceID, &b.ReferenceID, &b.Status, &b.Counts.Total, &b.Counts.Pending,
		&b.Counts.Completed, &b.Counts.Failed, &b.Counts.Skipped, &b.fingerprint, &b.CreatedAt, &b.CompletedAt)
	return b, err
}

// SubmitBatch stores a batch and all its items in one database transaction,
// with one multi-row statement per table however many items there are. A
// replay of the same batch referenceId and items returns the original; other
// items under the same batch referenceId are a *ConflictError. An item whose
// referenceId an earlier transaction holds with the same payload is skipped
// (it pays once); with another payload the whole batch is refused.
func (l *Ledger) SubmitBatch(ctx context.Context, req BatchRequest, resolve ConsumerResolver) (Submitted, error) {
	if err := checkItemReferences(req.Items); err != nil {
		return Submitted{}, err
	}
	fp := req.fingerprint()
	tx, err := l.pool.Begin(ctx)
	if err != nil {
		return Submitted{}, fmt.Errorf("submit batch %s: begin: %w", req.ReferenceID, err)
	}
	defer tx.Rollback(ctx)

	batch, err := scanBatch(tx.QueryRow(ctx, `
		INSERT INTO batches (id, workspace_id, reference_id, status, total, pending, fingerprint)
		VALUES ($1, $2, $3, 'processing', $4, $4, $5)
		ON CONFLICT (workspace_id, reference_id) DO NOTHING RETURNING `+batchColumns,
		store.NewID("bat"), req.WorkspaceID, req.ReferenceID, len(req.Items), fp))
	if errors.Is(err, pgx.ErrNoRows) {
		tx.Rollback(ctx)
		return l.replayBatch(ctx, req, fp)
	}
	if err != nil {
		return Submitted{}, fmt.Errorf("submit batch %s: %w", req.ReferenceID, err)
	}

	lanes, err := batchLanes(ctx, tx, req)
	if err != nil {
		return Submitted{}, fmt.Errorf("submit batch %s: %w", req.ReferenceID, err)
	}
	walletIDs, err := resolveWallets(ctx, tx, req, resolve)
	if err != nil {
		return Submitted{}, fmt.Errorf("submit batch %s: %w", req.ReferenceID, err)
	}
	skipped, err := insertItems(ctx, tx, req, batch.ID, walletIDs)
	if err != nil {
		return Submitted{}, fmt.Errorf("submit batch %s: %w", req.ReferenceID, err)
	}

	var deliveries []string
	if skipped > 0 {
		now := time.Now()
		state := &batchState{Batch: batch}
		state.skip(skipped, now)
		var b pgx.Batch
		var events []eventRow
		if events, err = queueBatchUpdates(&b, []*batchState{state}, nil); err != nil {
			return Submitted{}, fmt.Errorf("submit batch %s: %w", req.ReferenceID, err)
		}
		l.queueEvents(&b, events, &deliveries)
		if err := tx.SendBatch(ctx, &b).Close(); err != nil {
			return Submitted{}, fmt.Errorf("submit batch %s: skipped items: %w", req.ReferenceID, err)
		}
		batch = state.Batch
	}
	if err := tx.Commit(ctx); err != nil {
		return Submitted{}, fmt.Errorf("submit batch %s: commit: %w", req.ReferenceID, err)
	}
	used := make([]int64, 0, len(lanes))
	for _, id := range lanes {
		used = append(used, id)
	}
	slices.Sort(used)
	return Submitted{Batch: batch, Lanes: used, Deliveries: deliveries}, nil
}

// checkItemReferences refuses a batch that names one referenceId twice.
func checkItemReferences(items []BatchItem) error {
	seen := make(map[string]int, len(items))
	var errs []ItemError
	for i, it := range items {
		if first, dup := seen[it.ReferenceID]; dup {
			errs = append(errs, ItemError{Item: i, Field: "referenceId", Message: fmt.Sprintf("repeats item %d's referenceId", first)})
			continue
		}
		seen[it.ReferenceID] = i
	}
	if len(errs) > 0 {
		return &BatchItemsError{Items: errs}
	}
	return nil
}

// replayBatch answers a batch referenceId that is already stored.
func (l *Ledger) replayBatch(ctx context.Context, req BatchRequest, fp []byte) (Submitted, error) {
	batch, err := scanBatch(l.pool.QueryRow(ctx, `SELECT `+batchColumns+` FROM batches
		WHERE workspace_id = $1 AND reference_id = $2`, req.WorkspaceID, req.ReferenceID))
	if err != nil {
		return Submitted{}, fmt.Errorf("replay batch %s: %w", req.ReferenceID, err)
	}
	if !bytes.Equal(batch.fingerprint, fp) {
		return Submitted{}, &ConflictError{Fields: []string{"items"}}
	}
	// Enqueue again whatever is still pending: a replay also nudges a
	// batch whose tasks Redis lost.
	rows, err := l.pool.Query(ctx, `SELECT DISTINCT q.lane_account_id FROM pending_transactions q
		JOIN transactions t ON t.id = q.transaction_id WHERE t.batch_id = $1`, batch.ID)
	if err != nil {
		return Submitted{}, fmt.Errorf("replay batch %s: %w", req.ReferenceID, err)
	}
	lanes, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return Submitted{}, fmt.Errorf("replay batch %s: %w", req.ReferenceID, err)
	}
	return Submitted{Batch: batch, Lanes: lanes, Replayed: true}, nil
}

// batchLanes creates the partner balances the batch's currencies need and
// returns them by currency.
func batchLanes(ctx context.Context, tx pgx.Tx, req BatchRequest) (map[Currency]int64, error) {
	var currencies []string
	for _, it := range req.Items {
		currencies = append(currencies, string(it.Currency))
	}
	slices.Sort(currencies)
	currencies = slices.Compact(currencies)
	for _, cur := range currencies {
		if err := ensureLaneAccounts(ctx, tx, req.WorkspaceID, Currency(cur)); err != nil {
			return nil, err
		}
	}
	rows, err := tx.Query(ctx, `SELECT currency, id FROM ledger_accounts
		WHERE workspace_id = $1 AND kind = 'partner' AND currency = ANY ($2)`, req.WorkspaceID, currencies)
	if err != nil {
		return nil, fmt.Errorf("lanes: %w", err)
	}
	lanes := make(map[Currency]int64, len(currencies))
	for rows.Next() {
		var cur Currency
		var id int64
		if err := rows.Scan(&cur, &id); err != nil {
			return nil, fmt.Errorf("lanes: %w", err)
		}
		lanes[cur] = id
	}
	return lanes, rows.Err()
}

// resolveWallets returns the wallet id of every item: it checks the wallets
// items name, and finds or creates the consumers and wallets items address
// by externalId. Items naming what does not exist refuse the batch.
func resolveWallets(ctx context.Context, tx pgx.Tx, req BatchRequest, resolve ConsumerResolver) ([]string, error) {
	ids := make([]string, len(req.Items))
	var named, externalIDs, campaignIDs []string
	for i, it := range req.Items {
		if it.WalletID != "" {
			ids[i] = it.WalletID
			named = append(named, it.WalletID)
			continue
		}
		externalIDs = append(externalIDs, it.ConsumerExternalID)
		if it.CampaignID != "" {
			campaignIDs = append(campaignIDs, it.CampaignID)
		}
	}

	var errs []ItemError
	if len(named) > 0 {
		rows, err := tx.Query(ctx, `SELECT id FROM wallets WHERE workspace_id = $1 AND id = ANY ($2)`, req.WorkspaceID, named)
		if err != nil {
			return nil, fmt.Errorf("wallets: %w", err)
		}
		found, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return nil, fmt.Errorf("wallets: %w", err)
		}
		exists := setOf(found)
		for i, it := range req.Items {
			if it.WalletID != "" && !exists[it.WalletID] {
				errs = append(errs, ItemError{Item: i, Field: "walletId", Message: "no such wallet"})
			}
		}
	}
	campaigns := map[string]Currency{}
	if len(campaignIDs) > 0 {
		rows, err := tx.Query(ctx, `SELECT id, currency FROM campaigns WHERE workspace_id = $1 AND id = ANY ($2)`,
			req.WorkspaceID, campaignIDs)
		if err != nil {
			return nil, fmt.Errorf("campaigns: %w", err)
		}
		for rows.Next() {
			var id string
			var cur Currency
			if err := rows.Scan(&id, &cur); err != nil {
				return nil, fmt.Errorf("campaigns: %w", err)
			}
			campaigns[id] = cur
		}
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("campaigns: %w", err)
		}
		for i, it := range req.Items {
			cur, ok := campaigns[it.CampaignID]
			switch {
			case it.CampaignID == "":
			case !ok:
				errs = append(errs, ItemError{Item: i, Field: "campaignId", Message: "no such campaign"})
			case cur != it.Currency:
				errs = append(errs, ItemError{Item: i, Field: "currency", Message: "must be the campaign's currency, " + string(cur)})
			}
		}
	}
	if len(errs) > 0 {
		return nil, &BatchItemsError{Items: errs}
	}
	if len(externalIDs) == 0 {
		return ids, nil
	}

	slices.Sort(externalIDs)
	consumers, err := resolve(ctx, tx, req.WorkspaceID, slices.Compact(externalIDs))
	if err != nil {
		return nil, fmt.Errorf("consumers: %w", err)
	}
	keys := make(map[walletKey]string)
	for _, it := range req.Items {
		if it.WalletID == "" {
			keys[walletKey{consumers[it.ConsumerExternalID], it.Currency, it.CampaignID}] = ""
		}
	}
	if err := ensureWallets(ctx, tx, req.WorkspaceID, keys); err != nil {
		return nil, err
	}
	for i, it := range req.Items {
		if it.WalletID == "" {
			ids[i] = keys[walletKey{consumers[it.ConsumerExternalID], it.Currency, it.CampaignID}]
		}
	}
	return ids, nil
}

// ensureWallets fills keys with the id of each wallet, creating those that
// do not exist: one statement per table for all of them.
func ensureWallets(ctx context.Context, tx pgx.Tx, workspaceID string, keys map[walletKey]string) error {
	if err := findWallets(ctx, tx, keys); err != nil {
		return err
	}
	var missing []walletKey
	for k, id := range keys {
		if id == "" {
			missing = append(missing, k)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	created, err := walletInsert(ctx, tx, workspaceID, missing)
	if err != nil {
		return err
	}
	raced := false
	for i, k := range missing {
		keys[k] = created[i]
		raced = raced || created[i] == ""
	}
	if raced { // a concurrent request created some of them first: use theirs
		return findWallets(ctx, tx, keys)
	}
	return nil
}

// findWallets fills in the ids of the keys' wallets that exist.
func findWallets(ctx context.Context, tx pgx.Tx, keys map[walletKey]string) error {
	var consumer, cur, campaign []string
	for k, id := range keys {
		if id == "" {
			consumer, cur, campaign = append(consumer, k.consumerID), append(cur, string(k.currency)), append(campaign, k.campaignID)
		}
	}
	if len(consumer) == 0 {
		return nil
	}
	rows, err := tx.Query(ctx, `
		SELECT k.consumer, k.currency, k.campaign, w.id
		FROM unnest($1::text[], $2::text[], $3::text[]) AS k(consumer, currency, campaign)
		JOIN wallets w ON w.consumer_id = k.consumer AND (
			(k.campaign = '' AND w.type = 'standard' AND w.currency = k.currency) OR
			(k.campaign <> '' AND w.type = 'campaign' AND w.campaign_id = k.campaign))`,
		consumer, cur, campaign)
	if err != nil {
		return fmt.Errorf("find wallets: %w", err)
	}
	for rows.Next() {
		var k walletKey
		var id string
		if err := rows.Scan(&k.consumerID, &k.currency, &k.campaignID, &id); err != nil {
			return fmt.Errorf("find wallets: %w", err)
		}
		keys[k] = id
	}
	return rows.Err()
}

// insertItems stores the batch's transactions with one statement and
// returns how many were skipped because their referenceId was already used
// with the same payload.
func insertItems(ctx context.Context, tx pgx.Tx, req BatchRequest, batchID string, walletIDs []string) (int, error) {
	n := len(req.Items)
	rows := make([]newTransaction, n)
	refs, fps := make([]string, n), make([][]byte, n)
	byRef := make(map[string]int, n)
	for i, it := range req.Items {
		tr := TransactionRequest{WorkspaceID: req.WorkspaceID, ReferenceID: it.ReferenceID, Type: it.Type,
			WalletID: walletIDs[i], Amount: it.Amount, Currency: it.Currency, Description: it.Description, BatchID: &batchID}
		rows[i] = newTransaction{id: store.NewID("txn"), req: tr, fp: tr.fingerprint()}
		refs[i], fps[i] = it.ReferenceID, rows[i].fp
		byRef[it.ReferenceID] = i
	}
	stored, err := transactionInsert(ctx, tx, rows)
	if err != nil {
		return 0, fmt.Errorf("insert items: %w", err)
	}
	inserted := len(stored)
	if inserted == n {
		return 0, nil
	}

	// Some referenceIds were taken: each must hold the same payload.
	earlier, err := tx.Query(ctx, `SELECT reference_id, fingerprint FROM transactions
		WHERE workspace_id = $1 AND reference_id = ANY ($2) AND batch_id IS DISTINCT FROM $3`, req.WorkspaceID, refs, batchID)
	if err != nil {
		return 0, fmt.Errorf("insert items: earlier references: %w", err)
	}
	var errs []ItemError
	skipped := 0
	for earlier.Next() {
		var ref string
		var fp []byte
		if err := earlier.Scan(&ref, &fp); err != nil {
			return 0, fmt.Errorf("insert items: earlier references: %w", err)
		}
		i := byRef[ref]
		if !bytes.Equal(fp, fps[i]) {
			errs = append(errs, ItemError{Item: i, Field: "referenceId",
				Message: "was already used with a different payload"})
			continue
		}
		skipped++
	}
	if err := earlier.Err(); err != nil {
		return 0, fmt.Errorf("insert items: earlier references: %w", err)
	}
	if len(errs) > 0 {
		slices.SortFunc(errs, func(a, b ItemError) int { return a.Item - b.Item })
		return 0, &BatchItemsError{Items: errs, Conflict: true}
	}
	if inserted+skipped != n {
		return 0, fmt.Errorf("%w: batch stored %d and skipped %d of %d items", ErrInvariant, inserted, skipped, n)
	}
	return skipped, nil
}

// batchState is a locked batch and what the group changes in it.
type batchState struct {
	Batch
	changed bool
}

func (b *batchState) skip(n int, now time.Time) {
	b.Counts.Skipped += n
	b.Counts.Pending -= n
	b.finishIfDone(now)
}

func (b *batchState) settle(status string, now time.Time) {
	if status == StatusCompleted {
		b.Counts.Completed++
	} else {
		b.Counts.Failed++
	}
	b.Counts.Pending--
	b.finishIfDone(now)
}

func (b *batchState) finishIfDone(now time.Time) {
	b.changed = true
	if b.Counts.Pending == 0 {
		b.Status = BatchCompleted
		b.CompletedAt = &now
	}
}

// queueLockBatches queues the lock, in id order, of the batches a group's
// transactions belong to; the map fills when the batch runs.
func queueLockBatches(b *pgx.Batch, ids []string) map[string]*batchState {
	batches := make(map[string]*batchState, len(ids))
	if len(ids) == 0 {
		return batches
	}
	b.Queue(`SELECT `+batchColumns+` FROM batches WHERE id = ANY ($1) ORDER BY id FOR NO KEY UPDATE`, ids).
		Query(func(rows pgx.Rows) error {
			list, err := pgx.CollectRows(rows, collectBatch)
			for _, bt := range list {
				batches[bt.ID] = &batchState{Batch: bt}
			}
			return err
		})
	return batches
}

// queueBatchUpdates writes the counters of the batches that changed, each
// once, and returns, appended to events, a batch.completed event for each
// batch the change completed.
func queueBatchUpdates(b *pgx.Batch, batches []*batchState, events []eventRow) ([]eventRow, error) {
	var (
		ids                                      []string
		pending, completed, failed, skippedCount []int32
		statuses                                 []string
		completedAt                              []*time.Time
	)
	for _, s := range batches {
		if !s.changed {
			continue
		}
		ids, statuses, completedAt = append(ids, s.ID), append(statuses, s.Status), append(completedAt, s.CompletedAt)
		pending, completed = append(pending, int32(s.Counts.Pending)), append(completed, int32(s.Counts.Completed))
		failed, skippedCount = append(failed, int32(s.Counts.Failed)), append(skippedCount, int32(s.Counts.Skipped))
		if s.Status == BatchCompleted {
			ev, err := newEvent(s.workspaceID, "batch.completed", *s.CompletedAt, s.Batch)
			if err != nil {
				return nil, err
			}
			events = append(events, ev)
		}
	}
	if len(ids) == 0 {
		return events, nil
	}
	want := len(ids)
	b.Queue(`UPDATE batches b SET pending = u.pending, completed = u.completed, failed = u.failed, skipped = u.skipped,
			status = u.status, completed_at = u.completed_at
		FROM unnest($1::text[], $2::int[], $3::int[], $4::int[], $5::int[], $6::text[], $7::timestamptz[])
			AS u(id, pending, completed, failed, skipped, status, completed_at)
		WHERE b.id = u.id`, ids, pending, completed, failed, skippedCount, statuses, completedAt).
		Exec(func(tag pgconn.CommandTag) error { return expectRows("batches", tag.RowsAffected(), want) })
	return events, nil
}

// Batch returns one batch of the workspace.
func (l *Ledger) Batch(ctx context.Context, workspaceID, id string) (Batch, error) {
	b, err := scanBatch(l.pool.QueryRow(ctx, `SELECT `+batchColumns+` FROM batches WHERE id = $1 AND workspace_id = $2`,
		id, workspaceID))
	if err != nil {
		return Batch{}, fmt.Errorf("batch %s: %w", id, store.NoRows(err, store.ErrNotFound))
	}
	return b, nil
}

// Batches lists the workspace's batches, newest first.
func (l *Ledger) Batches(ctx context.Context, workspaceID, cursor string, limit int) ([]Batch, error) {
	list, err := store.List(ctx, l.reads, collectBatch, `SELECT `+batchColumns+` FROM batches
		WHERE workspace_id = $1 AND ($2 = '' OR id < $2) ORDER BY id DESC LIMIT $3`, workspaceID, cursor, limit)
	if err != nil {
		return nil, fmt.Errorf("list batches: %w", err)
	}
	return list, nil
}

func setOf(items []string) map[string]bool {
	m := make(map[string]bool, len(items))
	for _, s := range items {
		m[s] = true
	}
	return m
}
