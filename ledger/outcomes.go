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

// outcomeChannel is the Postgres notification channel of applied lanes and
// of objects final now. A payload is a comma-separated list: a number is a
// lane some group applied, anything else the id of an object whose outcome
// the notifying transaction wrote (a redemption, see RecordOutcome).
const outcomeChannel = "orbt_outcomes"

// announcedLane is the key of waiters woken by their object's own id
// rather than by a lane (ledger account ids start at 1).
const announcedLane = -1

// outcomeWaiters are the callers waiting for transactions to become final.
// Callers waiting on the same transaction (a client retrying with
// Prefer: wait) share one entry, counted, so one leaving does not strand
// the others.
type outcomeWaiters struct {
	mu     sync.Mutex
	byLane map[int64]map[string]*outcomeWait // lane -> transaction id
}

type outcomeWait struct {
	final   chan struct{} // closed when the transaction is final
	waiters int
}

func (w *outcomeWaiters) add(lane int64, id string) *outcomeWait {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.byLane == nil {
		w.byLane = make(map[int64]map[string]*outcomeWait)
	}
	if w.byLane[lane] == nil {
		w.byLane[lane] = make(map[string]*outcomeWait)
	}
	e := w.byLane[lane][id]
	if e == nil {
		e = &outcomeWait{final: make(chan struct{})}
		w.byLane[lane][id] = e
	}
	e.waiters++
	return e
}

// remove drops one waiter of e, and e with its last waiter (unless a wake
// already dropped it).
func (w *outcomeWaiters) remove(lane int64, id string, e *outcomeWait) {
	w.mu.Lock()
	defer w.mu.Unlock()
	e.waiters--
	if e.waiters > 0 || w.byLane[lane][id] != e {
		return
	}
	delete(w.byLane[lane], id)
	if len(w.byLane[lane]) == 0 {
		delete(w.byLane, lane)
	}
}

// waitingOn lists the transactions waited for on the lanes (all lanes when
// lanes is nil).
func (w *outcomeWaiters) waitingOn(lanes []int64) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var ids []string
	add := func(waiting map[string]*outcomeWait) {
		for id := range waiting {
			ids = append(ids, id)
		}
	}
	if lanes == nil {
		for _, waiting := range w.byLane {
			add(waiting)
		}
		return ids
	}
	for _, lane := range lanes {
		add(w.byLane[lane])
	}
	return ids
}

// wake releases the waiters of the transactions that are final.
func (w *outcomeWaiters) wake(final []string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	done := make(map[string]bool, len(final))
	for _, id := range final {
		done[id] = true
	}
	for lane, waiting := range w.byLane {
		for id, e := range waiting {
			if done[id] {
				close(e.final)
				delete(waiting, id)
			}
		}
		if len(waiting) == 0 {
			delete(w.byLane, lane)
		}
	}
}

// AwaitFinal returns the transaction once it is final, or as it is (still
// pending: the caller answers 202) when wait runs out first. ctx bounds the
// reads. It needs ListenOutcomes running in the process; without it, it
// waits out wait.
func (l *Ledger) AwaitFinal(ctx context.Context, workspaceID string, txn Transaction, wait time.Duration) (Transaction, error) {
	if txn.Status != StatusPending {
		return txn, nil
	}
	e := l.waiters.add(txn.laneID, txn.ID)
	defer l.waiters.remove(txn.laneID, txn.ID, e)
	// Read once after registering: an outcome announced before is seen here.
	current, err := l.Transaction(ctx, workspaceID, txn.ID)
	if err != nil || current.Status != StatusPending {
		return current, err
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case <-e.final:
		return l.Transaction(ctx, workspaceID, txn.ID)
	case <-timer.C:
	case <-ctx.Done():
	}
	return current, nil
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
	// Announcements made while no one listened are lost: look once at
	// every transaction waited for, and wake every waiter of an announced
	// object to read its own.
	l.waiters.wake(l.waiters.waitingOn([]int64{announcedLane}))
	if err := l.wakeFinal(ctx, conn, l.waiters.waitingOn(nil)); err != nil {
		return err
	}
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return fmt.Errorf("listen: %w", err)
		}
		lanes, objects := parsePayload(n.Payload)
		l.waiters.wake(objects)
		if len(lanes) > 0 {
			if err := l.wakeFinal(ctx, conn, l.waiters.waitingOn(lanes)); err != nil {
				return err
			}
		}
	}
}

// wakeFinal wakes the waiters of those of ids that are final: one query.
func (l *Ledger) wakeFinal(ctx context.Context, conn *pgx.Conn, ids []string) error {
	if len(ids) == 0 {
		return nil
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
	return nil
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

func parsePayload(payload string) (lanes []int64, objects []string) {
	for _, s := range strings.Split(payload, ",") {
		if id, err := strconv.ParseInt(s, 10, 64); err == nil {
			lanes = append(lanes, id)
		} else if s != "" {
			objects = append(objects, s)
		}
	}
	return lanes, objects
}

// AwaitAnnounced waits up to wait for the object id to be announced final
// (RecordOutcome in a committed transaction), through the same listener
// as AwaitFinal: final reads whether it is, once on entry and after each
// wake-up. It returns final's last answer.
func (l *Ledger) AwaitAnnounced(ctx context.Context, id string, wait time.Duration, final func(context.Context) (bool, error)) (bool, error) {
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		e := l.waiters.add(announcedLane, id)
		// Read after registering: an announcement made before is seen here.
		done, err := final(ctx)
		if err != nil || done {
			l.waiters.remove(announcedLane, id, e)
			return done, err
		}
		select {
		case <-e.final: // announced, or the listener reconnected: read again
			l.waiters.remove(announcedLane, id, e)
		case <-timer.C:
			l.waiters.remove(announcedLane, id, e)
			return false, nil
		case <-ctx.Done():
			l.waiters.remove(announcedLane, id, e)
			return false, nil
		}
	}
}
