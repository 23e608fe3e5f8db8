// Package tasks is the contract between the API and the worker: the task
// type names, their payloads and constructors. Redis holds these tasks;
// Postgres holds the truth they point at, so any of them can be re-derived.
package tasks

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/hibiken/asynq"
)

// Queue names. Money moves in "ledger"; webhook deliveries wait in their
// own queue so a slow receiver never delays an application.
// Gift card provider calls wait in theirs, so a slow provider never
// holds up the ledger either.
const (
	QueueLedger    = "ledger"
	QueueWebhooks  = "webhooks"
	QueueGiftCards = "giftcards"
)

// Task options shared by every kind. A worker killed mid-task gets its task
// back only after the lease expires and it counts as a retry, so retries are
// plentiful and the relay covers whatever still slips through.
const (
	applyMaxRetry = 100
	applyTimeout  = 2 * time.Minute
)

// TypeTransactionApply applies the pending work of the partner balances
// (lanes) transactions were just accepted on: one process's wake-up for
// every lane it accepted work on while its previous wake-up was being
// enqueued.
const TypeTransactionApply = "transaction:apply"

// TransactionApply is the payload of TypeTransactionApply. TransactionID is
// the latest transaction the wake-up is for; LaneID is the one lane of a
// task queued by the release before, which woke each lane on its own.
type TransactionApply struct {
	TransactionID string  `json:"transactionId"`
	LaneID        int64   `json:"laneId,omitempty"`
	LaneIDs       []int64 `json:"laneIds,omitempty"`
}

// Lanes lists the lanes the task is for.
func (p TransactionApply) Lanes() []int64 {
	if p.LaneID != 0 {
		return append([]int64{p.LaneID}, p.LaneIDs...)
	}
	return p.LaneIDs
}

// NewTransactionApply builds the task; its TaskID is the latest
// transaction's id, a second guard against double enqueues (the ledger is
// the first).
func NewTransactionApply(transactionID string, laneIDs []int64) *asynq.Task {
	return asynq.NewTask(TypeTransactionApply, mustJSON(TransactionApply{TransactionID: transactionID, LaneIDs: laneIDs}),
		asynq.TaskID(transactionID), asynq.Queue(QueueLedger), asynq.MaxRetry(applyMaxRetry), asynq.Timeout(applyTimeout))
}

// TypeLaneApply applies whatever is pending on one partner balance. The
// relay and bulk submissions use it: one task for many transactions.
const TypeLaneApply = "lane:apply"

// LaneApply is the payload of TypeLaneApply.
type LaneApply struct {
	LaneID int64 `json:"laneId"`
}

// NewLaneApply builds the task. taskID keeps repeated enqueues of the same
// lane from piling up while one is still waiting.
func NewLaneApply(laneID int64, taskID string) *asynq.Task {
	return asynq.NewTask(TypeLaneApply, mustJSON(LaneApply{LaneID: laneID}),
		asynq.TaskID(taskID), asynq.Queue(QueueLedger), asynq.MaxRetry(applyMaxRetry), asynq.Timeout(applyTimeout))
}

// TypeWebhookDeliver makes one attempt at each of its webhook deliveries.
// Retries on the webhook schedule are new tasks, one per delivery,
// scheduled by the worker; asynq's own retries only cover the worker
// failing to record the attempts.
const TypeWebhookDeliver = "webhook:deliver"

// WebhookDeliver is the payload of TypeWebhookDeliver: one delivery (a
// retry, a relay) or the first attempts of a group's (DeliveryIDs).
type WebhookDeliver struct {
	DeliveryID  string   `json:"deliveryId,omitempty"`
	DeliveryIDs []string `json:"deliveryIds,omitempty"`
}

// IDs lists the deliveries the task is for.
func (p WebhookDeliver) IDs() []string {
	if p.DeliveryID != "" {
		return append([]string{p.DeliveryID}, p.DeliveryIDs...)
	}
	return p.DeliveryIDs
}

const deliverMaxRetry = 20

// DeliveriesPerTask is how many first attempts one task makes at most:
// new events' deliveries go out in tasks of this many, sent at once.
const DeliveriesPerTask = 64

// NewWebhookDeliver builds the task for one attempt, due at processAt (zero
// for now). taskID keeps the same attempt from being queued twice.
func NewWebhookDeliver(deliveryID, taskID string, processAt time.Time) *asynq.Task {
	opts := []asynq.Option{asynq.TaskID(taskID), asynq.Queue(QueueWebhooks), asynq.MaxRetry(deliverMaxRetry),
		asynq.Timeout(time.Minute)}
	if !processAt.IsZero() {
		opts = append(opts, asynq.ProcessAt(processAt))
	}
	return asynq.NewTask(TypeWebhookDeliver, mustJSON(WebhookDeliver{DeliveryID: deliveryID}), opts...)
}

// NewWebhookDeliverFirst builds the task for the first attempts of up to
// DeliveriesPerTask new deliveries; its TaskID is the first delivery's,
// attempt 1, as each delivery's own task had before they were grouped.
func NewWebhookDeliverFirst(ids []string) *asynq.Task {
	return asynq.NewTask(TypeWebhookDeliver, mustJSON(WebhookDeliver{DeliveryIDs: ids}),
		asynq.TaskID(ids[0]+":1"), asynq.Queue(QueueWebhooks), asynq.MaxRetry(deliverMaxRetry), asynq.Timeout(time.Minute))
}

// TypeRedemptionProcess takes one redemption as far as it goes: hold,
// provider call, capture or release.
const TypeRedemptionProcess = "redemption:process"

// RedemptionProcess is the payload of TypeRedemptionProcess.
type RedemptionProcess struct {
	RedemptionID string `json:"redemptionId"`
}

// NewRedemptionProcess builds the task; taskID keeps the same wake-up
// from being queued twice. timeout bounds a run: every provider call and
// retry pause of it.
func NewRedemptionProcess(redemptionID, taskID string, timeout time.Duration) *asynq.Task {
	return asynq.NewTask(TypeRedemptionProcess, mustJSON(RedemptionProcess{RedemptionID: redemptionID}),
		asynq.TaskID(taskID), asynq.Queue(QueueGiftCards), asynq.MaxRetry(applyMaxRetry), asynq.Timeout(timeout))
}

// mustJSON encodes a payload: plain structs of strings and integers, which
// encoding/json cannot fail on.
func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("tasks: encode %T: %v", v, err))
	}
	return b
}
