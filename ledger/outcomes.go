package ledger

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// Waiting for an outcome (Prefer: wait) costs no polling: every apply group
// announces, in its own commit, the lanes it applied (NOTIFY, delivered only
// if the group commits), and one listener per process reads, per
// announcement, which of the transactions its waiters wait for on those
// lanes are now final, with one query, and wakes their waiters.

// outcomeChannel is the Postgres notification channel of applied lanes.
const outcomeChannel = "orbt_outcomes"

// outcomeWaiters are the callers waiting for transactions to become final.
type outcomeWaiters struct {
	mu     sync.Mutex
	byLane map[int64]map[string]chan struct{} // lane -> transaction id -> closed when final
}

func (w *outcomeWaiters) add(lane int64, id string) chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.byLane == nil {
		w.byLane = make(map[int64]map[string]chan struct{})
	}
	if w.byLane[lane] == nil {
		w.byLane[lane] = make(map[string]chan struct{})
	}
	ch, ok := w.byLane[lane][id]
	if !ok {
		ch = make(chan struct{})
		w.byLane[lane][id] = ch
	}
	return ch
}

func (w *outcomeWaiters) remove(lane int64, id string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.byLane[lane], id)
	if len(w.byLane[lane]) == 0 {
		delete(w.byLane, lane)
	}
}

// waitingOn lists the transactions waited for on the lanes.
func (w *outcomeWaiters) waitingOn(lanes []int64) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var ids []string
	for _, lane := range lanes {
		for id := range w.byLane[lane] {
			ids = append(ids, id)
		}
	}
	return ids
}

// wake closes the channels of the transactions that are final.
func (w *outcomeWaiters) wake(final []string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	done := make(map[string]bool, len(final))
	for _, id := range final {
		done[id] = true
	}
	for lane, waiting := range w.byLane {
		for id, ch := range waiting {
			if done[id] {
				close(ch)
				delete(waiting, id)
			}
		}
		if len(waiting) == 0 {
			delete(w.byLane, lane)
		}
	}
}

// AwaitFinal returns the transaction once it is final, or as it is when ctx
// ends first (still pending: the caller answers 202). It needs
// ListenOutcomes running in the process; without it, it waits out ctx.
func (l *Ledger) AwaitFinal(ctx context.Context, workspaceID string, txn Transaction) (Transaction, error) {
	if txn.Status != StatusPending {
		return txn, nil
	}
	woken := l.waiters.add(txn.laneID, txn.ID)
	defer l.waiters.remove(txn.laneID, txn.ID)
	// Read once after registering: an outcome announced before is seen here.
	current, err := l.Transaction(ctx, workspaceID, txn.ID)
	if err != nil || current.Status != StatusPending {
		return current, err
	}
	select {
	case <-woken:
		return l.Transaction(context.WithoutCancel(ctx), workspaceID, txn.ID)
	case <-ctx.Done():
		return current, nil
	}
}

// listenRetryDelay is the pause before the listener reconnects.
const listenRetryDelay = time.Second

// ListenOutcomes runs the process's one listener of applied lanes until ctx
// ends, reconnecting after failures (meanwhile waiters wait out their
// bound and answer 202).
func (l *Ledger) ListenOutcomes(ctx context.Context, log *slog.Logger) {
	for ctx.Err() == nil {
		if err := l.listenOutcomes(ctx); err != nil && ctx.Err() == nil {
			log.Warn("outcome listener; reconnecting", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(listenRetryDelay):
			}
		}
	}
}

func (l *Ledger) listenOutcomes(ctx context.Context) error {
	pooled, err := l.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	// The session will be LISTENing: take it out of the pool for good.
	conn := pooled.Hijack()
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "LISTEN "+outcomeChannel); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return fmt.Errorf("listen: %w", err)
		}
		lanes := parseLanes(n.Payload)
		ids := l.waiters.waitingOn(lanes)
		if len(ids) == 0 {
			continue
		}
		rows, err := conn.Query(ctx, `SELECT id FROM transactions WHERE id = ANY ($1) AND status <> 'pending'`, ids)
		if err != nil {
			return fmt.Errorf("listen: read outcomes: %w", err)
		}
		final, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return fmt.Errorf("listen: read outcomes: %w", err)
		}
		l.waiters.wake(final)
	}
}

// queueAnnounce queues, in an apply group's transaction, the announcement
// of the lanes it applied (delivered to listeners only if it commits).
func queueAnnounce(b *pgx.Batch, lanes []int64) {
	parts := make([]string, len(lanes))
	for i, id := range lanes {
		parts[i] = strconv.FormatInt(id, 10)
	}
	b.Queue(`SELECT pg_notify($1, $2)`, outcomeChannel, strings.Join(parts, ","))
}

func parseLanes(payload string) []int64 {
	var lanes []int64
	for _, s := range strings.Split(payload, ",") {
		if id, err := strconv.ParseInt(s, 10, 64); err == nil {
			lanes = append(lanes, id)
		}
	}
	return lanes
}
