package ledger

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// Accepting is group commit done by the application. Each accepted
// transaction must be committed before its 202, and a commit costs far more
// than the row it writes: measured here, one INSERT per commit tops out near
// 3,000/s on two cores. So concurrent Submit calls share commits: a caller
// that finds a flusher slot free starts a flusher, which writes everything
// queued so far with one multi-row INSERT and one commit, then whatever
// queued meanwhile, until the queue is empty. Alone, a request is written at
// once, as before; under load, many share one round trip and one fsync. No
// timer ever delays a request, and flushers live only while there is work.
// A flusher is a goroutine of its own, never the caller's: a caller waits
// for the group holding its call, not for the queue to run dry.
type acceptQueue struct {
	mu       sync.Mutex
	waiting  []*acceptCall
	flushing int
}

// Bounds of the accept queue.
const (
	// acceptFlushersMax is how many group inserts run at once: enough to
	// keep Postgres busy while one commits, few enough to leave the pool to
	// the rest of the process.
	acceptFlushersMax = 4
	// acceptGroupMax bounds the rows of one group insert.
	acceptGroupMax = 256
	// acceptFlushTimeout bounds one group insert, whatever the caller's
	// context: a flush serves other callers too. A group can only be slow
	// when one of its referenceIds waits on another transaction that holds
	// it uncommitted (a bulk payout being stored); past this, every call
	// of the group retries alone, well within the request's deadline, and
	// only the one that conflicts waits.
	acceptFlushTimeout = 2 * time.Second
)

type acceptCall struct {
	req  TransactionRequest
	id   string
	fp   []byte
	meta *string
	done chan struct{}
	// Set by the flush: the inserted row, or fallback when this call must
	// take the one-by-one path (its referenceId exists, its wallet does not,
	// or the group failed).
	txn      Transaction
	replayed bool
	err      error
	fallback bool
}

// Submit stores a credit or debit as pending, deduplicated by the
// workspace's referenceId. A replay of the same payload returns the original
// with replayed=true; a different payload returns a *ConflictError. The
// unique index decides, so any number of concurrent duplicates store one
// row. It returns once the row is committed.
func (l *Ledger) Submit(ctx context.Context, req TransactionRequest) (txn Transaction, replayed bool, err error) {
	call := &acceptCall{req: req, id: NewID("txn"), fp: req.fingerprint(), done: make(chan struct{})}
	if len(req.Metadata) > 0 {
		meta, err := json.Marshal(req.Metadata)
		if err != nil {
			return Transaction{}, false, fmt.Errorf("submit %s: metadata: %w", req.ReferenceID, err)
		}
		metaJSON := string(meta)
		call.meta = &metaJSON
	}
	l.accept.enqueue(call, l.flushAccepts)
	select {
	case <-call.done:
	case <-ctx.Done():
		// The group may still commit it; a retry of the request replays it.
		return Transaction{}, false, fmt.Errorf("submit %s: %w", req.ReferenceID, ctx.Err())
	}
	if call.fallback {
		return l.submitOne(ctx, req, call.fp)
	}
	return call.txn, call.replayed, call.err
}

// enqueue adds a call and, when a flusher slot is free, starts a flusher
// that runs until nothing is waiting.
func (q *acceptQueue) enqueue(call *acceptCall, flush func([]*acceptCall)) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.waiting = append(q.waiting, call)
	if q.flushing < acceptFlushersMax {
		q.flushing++
		go q.flushUntilEmpty(flush)
	}
}

func (q *acceptQueue) flushUntilEmpty(flush func([]*acceptCall)) {
	q.mu.Lock()
	for len(q.waiting) > 0 {
		n := min(len(q.waiting), acceptGroupMax)
		group := slices.Clone(q.waiting[:n])
		q.waiting = slices.Delete(q.waiting, 0, n)
		q.mu.Unlock()
		flush(group)
		q.mu.Lock()
	}
	q.flushing--
	q.mu.Unlock()
}

// flushAccepts inserts a group of calls with one statement and one commit.
func (l *Ledger) flushAccepts(group []*acceptCall) {
	defer func() {
		for _, c := range group {
			close(c.done)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), acceptFlushTimeout)
	defer cancel()
	// One order for every group, so two groups holding the same
	// referenceIds never wait on each other in a cycle.
	sorted := slices.Clone(group)
	slices.SortFunc(sorted, func(a, b *acceptCall) int {
		return cmp.Or(cmp.Compare(a.req.WorkspaceID, b.req.WorkspaceID), cmp.Compare(a.req.ReferenceID, b.req.ReferenceID))
	})
	n := len(sorted)
	var (
		ids, ws, refs, types, wallets, curs = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		amounts                             = make([]int64, n)
		descs, metas                        = make([]*string, n), make([]*string, n)
		fps                                 = make([][]byte, n)
		batches                             = make([]*string, n)
	)
	byID := make(map[string]*acceptCall, n)
	for i, c := range sorted {
		r := c.req
		ids[i], ws[i], refs[i], types[i], wallets[i], curs[i] = c.id, r.WorkspaceID, r.ReferenceID, r.Type, r.WalletID, string(r.Currency)
		amounts[i], descs[i], metas[i], fps[i], batches[i] = r.Amount, r.Description, c.meta, c.fp, r.BatchID
		byID[c.id] = c
	}
	rows, err := l.pool.Query(ctx, insertQueued(`
		INSERT INTO transactions (id, workspace_id, reference_id, type, wallet_id, lane_account_id,
			amount, currency, description, metadata, fingerprint, batch_id)
		SELECT u.id, u.ws, u.ref, u.type, w.id, a.id, u.amount, u.currency, u.description, u.metadata, u.fp, u.batch
		FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::text[],
				$8::text[], $9::jsonb[], $10::bytea[], $11::text[]) WITH ORDINALITY
			AS u(id, ws, ref, type, wallet, amount, currency, description, metadata, fp, batch, ord)
		JOIN wallets w ON w.id = u.wallet AND w.workspace_id = u.ws
		JOIN ledger_accounts a ON a.workspace_id = u.ws AND a.kind = 'partner' AND a.currency = u.currency
		ORDER BY u.ord
		ON CONFLICT (workspace_id, reference_id) DO NOTHING`),
		ids, ws, refs, types, wallets, amounts, curs, descs, metas, fps, batches)
	if err == nil {
		var inserted []Transaction
		inserted, err = pgx.CollectRows(rows, collectTransaction)
		for _, t := range inserted {
			if c := byID[t.ID]; c != nil {
				c.txn = t
				delete(byID, t.ID)
			}
		}
	}
	if err != nil {
		// The whole group failed (and, one statement, wrote nothing): each
		// call retries alone, so one bad row cannot fail its neighbours
		// and a database outage reaches each caller as its own error.
		for _, c := range group {
			c.fallback = true
		}
		return
	}
	// Not inserted: the referenceId exists (a replay, perhaps of a call in
	// this very group), or the wallet or partner balance does not. Replays
	// and conflicts are answered here, with one read for the group; the
	// one-by-one path tells the rest apart.
	for _, c := range byID {
		c.fallback = true
	}
	if len(byID) > 0 {
		l.answerReplays(ctx, byID)
	}
}

// answerReplays answers the calls whose referenceId is already stored: the
// original for the same payload, a conflict for another.
func (l *Ledger) answerReplays(ctx context.Context, calls map[string]*acceptCall) {
	ws, refs := make([]string, 0, len(calls)), make([]string, 0, len(calls))
	for _, c := range calls {
		ws, refs = append(ws, c.req.WorkspaceID), append(refs, c.req.ReferenceID)
	}
	rows, err := l.pool.Query(ctx, `SELECT `+transactionColumns+` FROM transactions t
		JOIN unnest($1::text[], $2::text[]) AS u(ws, ref) ON t.workspace_id = u.ws AND t.reference_id = u.ref`, ws, refs)
	if err != nil {
		return // the one-by-one path will read them itself
	}
	existing, err := pgx.CollectRows(rows, collectTransaction)
	if err != nil {
		return
	}
	type key struct{ ws, ref string }
	stored := make(map[key]Transaction, len(existing))
	for _, t := range existing {
		stored[key{t.workspaceID, t.ReferenceID}] = t
	}
	for _, c := range calls {
		t, ok := stored[key{c.req.WorkspaceID, c.req.ReferenceID}]
		if !ok {
			continue
		}
		c.fallback, c.txn = false, t
		c.replayed, c.err = c.req.answer(t, c.fp)
	}
}

// submitOne stores one transaction, or tells why it cannot: a replay, a
// conflicting reuse of the referenceId, a wallet that does not exist, or a
// partner balance to create first.
func (l *Ledger) submitOne(ctx context.Context, req TransactionRequest, fp []byte) (txn Transaction, replayed bool, err error) {
	for attempt := 0; attempt < 2; attempt++ {
		txn, err = scanTransaction(l.pool.QueryRow(ctx, insertQueued(`
			INSERT INTO transactions (id, workspace_id, reference_id, type, wallet_id, lane_account_id,
				amount, currency, description, metadata, fingerprint, batch_id)
			SELECT $1, $2, $3, $4, w.id, a.id, $6::bigint, $7, $8::text, $9::jsonb, $10::bytea, $11::text
			FROM wallets w
			JOIN ledger_accounts a ON a.workspace_id = w.workspace_id AND a.kind = 'partner' AND a.currency = $7
			WHERE w.id = $5 AND w.workspace_id = $2
			ON CONFLICT (workspace_id, reference_id) DO NOTHING`),
			NewID("txn"), req.WorkspaceID, req.ReferenceID, req.Type, req.WalletID,
			req.Amount, req.Currency, req.Description, req.Metadata, fp, req.BatchID))
		if err == nil {
			return txn, false, nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return Transaction{}, false, fmt.Errorf("submit %s: %w", req.ReferenceID, err)
		}
		// Nothing inserted: the referenceId exists, the wallet does not, or
		// the partner has no balance in this currency yet.
		existing, err := l.TransactionByReference(ctx, req.WorkspaceID, req.ReferenceID)
		if err == nil {
			replayed, err := req.answer(existing, fp)
			return existing, replayed, err
		}
		if !errors.Is(err, ErrNotFound) {
			return Transaction{}, false, err
		}
		if _, err := l.Wallet(ctx, req.WorkspaceID, req.WalletID); err != nil {
			return Transaction{}, false, err
		}
		if err := ensureLaneAccounts(ctx, l.pool, req.WorkspaceID, req.Currency); err != nil {
			return Transaction{}, false, fmt.Errorf("submit %s: %w", req.ReferenceID, err)
		}
	}
	return Transaction{}, false, fmt.Errorf("submit %s: lane account missing after creation", req.ReferenceID)
}
