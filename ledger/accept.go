package ledger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/orbt/orbt/store"
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
	// acceptFlushersMax is how many group inserts run at once: two, so one
	// group's commit overlaps the next group's insert, and requests
	// arriving meanwhile gather into fuller groups. Each group pays a
	// plan, a round trip and a commit: with four at once, 64 clients'
	// credits cost 0.19–0.22 ms of Postgres CPU each; with two, 0.15–0.16
	// ms, and went faster (BENCHMARKS.md, issue 14).
	acceptFlushersMax = 2
	// acceptGroupMax bounds the rows of one group insert.
	acceptGroupMax = 256
	// acceptFlushTimeout bounds one group insert, whatever the caller's
	// context: a flush serves other callers too. Lock waits are bounded far
	// tighter (acceptLockTimeout); this covers a database that stalls.
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
	call := newAcceptCall(req)
	l.accept.enqueue(call, l.flushAccepts)
	return call.wait(ctx, l)
}

func newAcceptCall(req TransactionRequest) *acceptCall {
	call := &acceptCall{req: req, id: store.NewID("txn"), fp: req.fingerprint(), done: make(chan struct{})}
	if len(req.Metadata) > 0 {
		meta, _ := json.Marshal(req.Metadata) // a map of strings: cannot fail
		metaJSON := string(meta)
		call.meta = &metaJSON
	}
	return call
}

// wait returns the call's answer once its group has flushed, taking the
// one-by-one path when the group could not answer it.
func (call *acceptCall) wait(ctx context.Context, l *Ledger) (Transaction, bool, error) {
	select {
	case <-call.done:
	case <-ctx.Done():
		// The group may still commit it; a retry of the request replays it.
		return Transaction{}, false, fmt.Errorf("submit %s: %w", call.req.ReferenceID, ctx.Err())
	}
	if call.fallback {
		return l.submitOne(ctx, call.id, call.req, call.fp, call.meta)
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

// acceptLockTimeout bounds how long a group insert waits for a row lock.
// A group only ever waits when one of its referenceIds is held by another
// uncommitted transaction (a bulk payout being stored, or a duplicate in
// another group): then, rather than hold every call of the group hostage,
// the group gives up and each call retries alone, where only the one that
// conflicts waits. Measured before this bound: one partner's held
// referenceId raised another partner's accept latency from 25 ms to 2.1 s.
const acceptLockTimeout = 50 * time.Millisecond

// flushAccepts inserts a group of calls with one statement and one commit.
func (l *Ledger) flushAccepts(group []*acceptCall) {
	defer func() {
		for _, c := range group {
			close(c.done)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), acceptFlushTimeout)
	defer cancel()
	rows := make([]newTransaction, len(group))
	byID := make(map[string]*acceptCall, len(group))
	for i, c := range group {
		rows[i] = newTransaction{id: c.id, req: c.req, fp: c.fp, meta: c.meta}
		byID[c.id] = c
	}
	inserted, err := l.insertGroup(ctx, rows)
	if err != nil {
		// The whole group failed (and, one statement, wrote nothing): each
		// call retries alone, so one bad row cannot fail its neighbours,
		// only a conflicting call waits for the row it conflicts with, and
		// a database outage reaches each caller as its own error.
		for _, c := range group {
			c.fallback = true
		}
		return
	}
	for _, t := range inserted {
		if c := byID[t.ID]; c != nil {
			c.txn = t
			delete(byID, t.ID)
		}
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

// insertGroup inserts a group's rows in one round trip: a pipeline whose
// statements run as one implicit transaction, which waits at most
// acceptLockTimeout for any row lock.
func (l *Ledger) insertGroup(ctx context.Context, rows []newTransaction) ([]Transaction, error) {
	var b pgx.Batch
	var inserted []Transaction
	b.Queue(`SELECT set_config('lock_timeout', $1, true)`, strconv.FormatInt(acceptLockTimeout.Milliseconds(), 10))
	queueTransactionInsert(&b, rows, &inserted)
	if err := l.pool.SendBatch(ctx, &b).Close(); err != nil {
		return nil, fmt.Errorf("accept group: %w", err)
	}
	return inserted, nil
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

// submitOne stores one transaction under id, or tells why it cannot: a
// replay, a conflicting reuse of the referenceId, a wallet that does not
// exist, or a partner balance to create first. It waits, within ctx, for a
// row another transaction holds. A row stored under id itself is this
// call's own, not a replay: its group did commit, but could not say so
// (the flush timed out on the commit's answer).
func (l *Ledger) submitOne(ctx context.Context, id string, req TransactionRequest, fp []byte, meta *string) (txn Transaction, replayed bool, err error) {
	for attempt := 0; attempt < 2; attempt++ {
		inserted, err := transactionInsert(ctx, l.pool, []newTransaction{{id: id, req: req, fp: fp, meta: meta}})
		if err != nil {
			return Transaction{}, false, fmt.Errorf("submit %s: %w", req.ReferenceID, err)
		}
		if len(inserted) == 1 {
			return inserted[0], false, nil
		}
		// Nothing inserted: the referenceId exists, the wallet does not, or
		// the partner has no balance in this currency yet.
		existing, err := l.TransactionByReference(ctx, req.WorkspaceID, req.ReferenceID)
		if err == nil && existing.ID == id {
			return existing, false, nil
		}
		if err == nil {
			replayed, err := req.answer(existing, fp)
			return existing, replayed, err
		}
		if !errors.Is(err, store.ErrNotFound) {
			return Transaction{}, false, err
		}
		if req.WalletID != "" {
			if _, err := l.Wallet(ctx, req.WorkspaceID, req.WalletID); err != nil {
				return Transaction{}, false, err
			}
		}
		if err := ensureLaneAccounts(ctx, l.pool, req.WorkspaceID, req.Currency); err != nil {
			return Transaction{}, false, fmt.Errorf("submit %s: %w", req.ReferenceID, err)
		}
	}
	return Transaction{}, false, fmt.Errorf("submit %s: lane account missing after creation", req.ReferenceID)
}
