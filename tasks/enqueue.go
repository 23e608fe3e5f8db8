package tasks

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"
)

// Enqueuer is the one door from Orbt into the queue. Everything it
// enqueues is already committed to Postgres, so a failed enqueue loses
// nothing (the relay re-derives it): it treats asynq's ErrTaskIDConflict
// as success, backs off for a moment after Redis fails so requests do not
// each wait out a Redis timeout, and coalesces the wake-ups of one lane.
type Enqueuer struct {
	client *asynq.Client
	log    *slog.Logger
	// downUntil holds the unix nanos until which enqueues are skipped after
	// Redis failed.
	downUntil atomic.Int64
	wakeups   wakeups
	// RedemptionTimeout bounds a redemption task's run: every provider call
	// and pause of it (set once, before use).
	RedemptionTimeout time.Duration
}

// Bounds of an enqueue.
const (
	enqueueTimeout = 500 * time.Millisecond
	// redisDownBackoff is how long enqueues are skipped after one failed.
	redisDownBackoff = time.Second
)

// ErrQueueDown is returned, without trying, while enqueues back off.
var ErrQueueDown = errors.New("queue unavailable; the relay will enqueue from Postgres")

// NewEnqueuer returns an Enqueuer over client; a nil client enqueues
// nothing and leaves all work to the relay.
func NewEnqueuer(client *asynq.Client, log *slog.Logger) *Enqueuer {
	if log == nil {
		log = slog.Default()
	}
	return &Enqueuer{client: client, log: log}
}

// Enqueue hands one task to Redis. A task id already queued is success.
func (e *Enqueuer) Enqueue(ctx context.Context, task *asynq.Task) error {
	if e.client == nil {
		return nil
	}
	if time.Now().UnixNano() < e.downUntil.Load() {
		return ErrQueueDown
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), enqueueTimeout)
	defer cancel()
	_, err := e.client.EnqueueContext(ctx, task)
	if err == nil || errors.Is(err, asynq.ErrTaskIDConflict) {
		return nil
	}
	e.downUntil.Store(time.Now().Add(redisDownBackoff).UnixNano())
	return fmt.Errorf("enqueue %s: %w", task.Type(), err)
}

// enqueueOrLog is Enqueue for work the relay covers: failure is logged.
func (e *Enqueuer) enqueueOrLog(ctx context.Context, task *asynq.Task) {
	if err := e.Enqueue(ctx, task); err != nil && !errors.Is(err, ErrQueueDown) {
		e.log.Warn("enqueue failed; the relay will pick the work up", "err", err)
	}
}

// TransactionAccepted wakes the worker for a committed pending
// transaction's lane. Under load many requests accept transactions at once,
// on one lane or on many, and one task drains them all: so while an
// enqueue is in flight, later calls only mark their lanes for one more
// enqueue when it returns, which carries every lane marked meanwhile and
// the latest of their transaction ids as its TaskID. A process so queues
// about one task per Redis round trip, however many partners its requests
// are for (a wake-up per lane cost the spread of 50 partners three times
// the tasks, and twice the CPU, of one partner's). Every transaction is
// committed before its lane is marked, so the drain that the following
// enqueue starts sees it; and should Redis lose the task, the relay finds
// it. The first caller's own enqueue happens before it returns; the loop
// that enqueues again for later marks runs on a goroutine of its own, so
// no request waits for others' wake-ups.
func (e *Enqueuer) TransactionAccepted(ctx context.Context, transactionID string, laneID int64) {
	if !e.wakeups.mark(laneID, transactionID) {
		return // an enqueue in flight will enqueue again for it
	}
	ctx = context.WithoutCancel(ctx)
	e.enqueueOrLog(ctx, NewTransactionApply(transactionID, []int64{laneID}))
	if id, lanes := e.wakeups.next(); id != "" {
		go func() {
			for ; id != ""; id, lanes = e.wakeups.next() {
				e.enqueueOrLog(ctx, NewTransactionApply(id, lanes))
			}
		}()
	}
}

// BatchLanes wakes the worker for the lanes a stored bulk payout added work to.
func (e *Enqueuer) BatchLanes(ctx context.Context, batchID string, lanes []int64) {
	for _, lane := range lanes {
		e.enqueueOrLog(ctx, NewLaneApply(lane, fmt.Sprintf("batch:%s:%d", batchID, lane)))
	}
}

// Deliveries queues the first attempt of new webhook deliveries, in tasks
// of up to DeliveriesPerTask: a group's events go out together.
func (e *Enqueuer) Deliveries(ctx context.Context, ids []string) {
	for chunk := range slices.Chunk(ids, DeliveriesPerTask) {
		e.enqueueOrLog(ctx, NewWebhookDeliverFirst(chunk))
	}
}

// DeliveryRetry schedules attempt number attempt of a delivery at at.
func (e *Enqueuer) DeliveryRetry(ctx context.Context, id string, attempt int, at time.Time) error {
	return e.Enqueue(ctx, NewWebhookDeliver(id, deliveryAttemptTaskID(id, attempt), at))
}

// RelayLane enqueues a lane with stale pending work; bucket (the relay's
// pass, by time) keeps repeated passes from piling up tasks.
func (e *Enqueuer) RelayLane(ctx context.Context, lane, bucket int64) error {
	return e.Enqueue(ctx, NewLaneApply(lane, fmt.Sprintf("relay:%d:%d", lane, bucket)))
}

// RelayDelivery enqueues an overdue webhook delivery again.
func (e *Enqueuer) RelayDelivery(ctx context.Context, id string, bucket int64) error {
	return e.Enqueue(ctx, NewWebhookDeliver(id, fmt.Sprintf("relay:%s:%d", id, bucket), time.Time{}))
}

// redemptionTimeoutDefault bounds a redemption task's run unless the
// process sets RedemptionTimeout (from the provider settings).
const redemptionTimeoutDefault = 5 * time.Minute

// RedemptionAccepted wakes the worker for a committed pending redemption.
func (e *Enqueuer) RedemptionAccepted(ctx context.Context, id string) {
	e.enqueueOrLog(ctx, NewRedemptionProcess(id, id, e.redemptionTimeout()))
}

// RelayRedemption enqueues an open redemption again.
func (e *Enqueuer) RelayRedemption(ctx context.Context, id string, bucket int64) error {
	return e.Enqueue(ctx, NewRedemptionProcess(id, fmt.Sprintf("relay:%s:%d", id, bucket), e.redemptionTimeout()))
}

func (e *Enqueuer) redemptionTimeout() time.Duration {
	if e.RedemptionTimeout > 0 {
		return e.RedemptionTimeout
	}
	return redemptionTimeoutDefault
}

func deliveryAttemptTaskID(id string, attempt int) string { return fmt.Sprintf("%s:%d", id, attempt) }

// wakeups coalesces the process's lane wake-ups (see TransactionAccepted).
type wakeups struct {
	mu       sync.Mutex
	inFlight bool
	lanes    map[int64]bool // marked while an enqueue was in flight
	latest   string         // the latest transaction id marked meanwhile
}

// mark reports whether the caller should enqueue; when an enqueue is in
// flight it records the lane for the one after it instead.
func (w *wakeups) mark(lane int64, txnID string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.inFlight {
		if w.lanes == nil {
			w.lanes = make(map[int64]bool)
		}
		w.lanes[lane], w.latest = true, txnID
		return false
	}
	w.inFlight = true
	return true
}

// next returns the lanes marked meanwhile and the transaction id to
// enqueue them under, or "" when none was marked and no enqueue is in
// flight any more.
func (w *wakeups) next() (string, []int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.lanes) == 0 {
		w.inFlight = false
		return "", nil
	}
	id, lanes := w.latest, slices.Sorted(maps.Keys(w.lanes))
	clear(w.lanes)
	w.latest = ""
	return id, lanes
}
