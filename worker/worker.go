// Package worker runs the asynq server that applies transactions to the
// ledger, the relay that re-enqueues anything Redis lost, and (later) the
// webhook deliveries.
package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/orbt/orbt/ledger"
	"github.com/orbt/orbt/tasks"
	"github.com/orbt/orbt/webhook"
)

// Options configure a Worker.
type Options struct {
	Redis    asynq.RedisConnOpt
	Ledger   *ledger.Ledger
	Webhooks *webhook.Store
	// WebhookRetrySchedule is the wait after each failed delivery attempt.
	WebhookRetrySchedule []time.Duration
	Concurrency          int
	// PollInterval is how often an idle worker checks Redis for tasks.
	PollInterval time.Duration
	// RelayAfter is how long a transaction may stay pending before the relay
	// enqueues its lane again.
	RelayAfter time.Duration
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// Worker applies queued work.
type Worker struct {
	opts   Options
	server *asynq.Server
	client *asynq.Client
	sender *webhook.Sender
	lanes  laneDrains
	// drainSlots bounds how many lanes are applied at once. Drains beyond
	// it wait, and meanwhile their lanes gather more pending work: with many
	// partners, that keeps groups large instead of spending the database on
	// the fixed cost of many tiny ones.
	drainSlots chan struct{}
	metrics    *metrics
	log        *slog.Logger
}

// retryDelayMax caps asynq's exponential backoff: a transaction waiting on
// a database that is back should not wait minutes more.
const retryDelayMax = 30 * time.Second

// drainsMax is how many lanes one worker process applies at once.
const drainsMax = 4

// pollIntervalDefault keeps an idle worker's pickup latency in tens of
// milliseconds for about 50 small Redis scripts a second.
const pollIntervalDefault = 20 * time.Millisecond

// New builds a Worker; Run starts it.
func New(opts Options) (*Worker, error) {
	if opts.Concurrency <= 0 {
		opts.Concurrency = 20
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = pollIntervalDefault
	}
	if opts.RelayAfter <= 0 {
		opts.RelayAfter = 5 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}
	w := &Worker{opts: opts, client: asynq.NewClient(opts.Redis), metrics: m, log: opts.Logger,
		lanes: laneDrains{m: make(map[int64]*laneDrain)}, drainSlots: make(chan struct{}, drainsMax)}
	if opts.Webhooks != nil {
		w.sender = webhook.NewSender(opts.Webhooks, opts.WebhookRetrySchedule)
	}
	w.server = asynq.NewServer(opts.Redis, asynq.Config{
		Concurrency: opts.Concurrency,
		Queues:      map[string]int{tasks.QueueLedger: 6, tasks.QueueWebhooks: 3},
		RetryDelayFunc: func(n int, err error, t *asynq.Task) time.Duration {
			d := asynq.DefaultRetryDelayFunc(n, err, t)
			return min(d, retryDelayMax)
		},
		ShutdownTimeout:   25 * time.Second,
		TaskCheckInterval: opts.PollInterval,
		Logger:            slogAdapter{opts.Logger},
	})
	return w, nil
}

// Run serves tasks and runs the relay until ctx is done, then finishes the
// tasks in flight and returns.
func (w *Worker) Run(ctx context.Context) error {
	mux := asynq.NewServeMux()
	mux.HandleFunc(tasks.TypeTransactionApply, w.handleTransactionApply)
	mux.HandleFunc(tasks.TypeLaneApply, w.handleLaneApply)
	mux.HandleFunc(tasks.TypeWebhookDeliver, w.handleWebhookDeliver)
	if err := w.server.Start(mux); err != nil {
		return fmt.Errorf("worker: start: %w", err)
	}
	var wg sync.WaitGroup
	wg.Go(func() { w.relay(ctx) })
	<-ctx.Done()
	w.server.Shutdown()
	wg.Wait()
	return w.client.Close()
}

func (w *Worker) handleTransactionApply(ctx context.Context, t *asynq.Task) error {
	var p tasks.TransactionApply
	if err := json.Unmarshal(t.Payload(), &p); err != nil {
		return fmt.Errorf("%s: %v: %w", t.Type(), err, asynq.SkipRetry)
	}
	return w.drain(ctx, p.LaneID, time.Now())
}

func (w *Worker) handleLaneApply(ctx context.Context, t *asynq.Task) error {
	var p tasks.LaneApply
	if err := json.Unmarshal(t.Payload(), &p); err != nil {
		return fmt.Errorf("%s: %v: %w", t.Type(), err, asynq.SkipRetry)
	}
	return w.drain(ctx, p.LaneID, time.Now())
}

// laneDrains lets one goroutine per process drain a lane at a time. The
// others wait, and return at once if a drain that began after they arrived
// succeeded: it saw their transaction, which was committed before its task
// was enqueued. So a burst of single credits on one hot partner balance costs
// a few grouped database transactions, not one each.
type laneDrains struct {
	mu sync.Mutex
	m  map[int64]*laneDrain
}

type laneDrain struct {
	mu             sync.Mutex
	lastSuccessful time.Time // start of the last drain that succeeded
}

func (l *laneDrains) get(id int64) *laneDrain {
	l.mu.Lock()
	defer l.mu.Unlock()
	d, ok := l.m[id]
	if !ok {
		d = &laneDrain{}
		l.m[id] = d
	}
	return d
}

func (w *Worker) drain(ctx context.Context, laneID int64, arrived time.Time) error {
	d := w.lanes.get(laneID)
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.lastSuccessful.After(arrived) {
		return nil
	}
	select {
	case w.drainSlots <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-w.drainSlots }()
	start := time.Now()
	applied, err := w.opts.Ledger.ApplyLane(ctx, laneID)
	w.metrics.observe(applied.Outcomes, time.Since(start))
	// Groups that committed before an error still have deliveries to send.
	w.EnqueueDeliveries(ctx, applied.Deliveries)
	if errors.Is(err, ledger.ErrNotFound) {
		return fmt.Errorf("lane %d: %w: %w", laneID, err, asynq.SkipRetry)
	}
	if err != nil {
		return err
	}
	d.lastSuccessful = start
	return nil
}

// EnqueueDeliveries queues the first attempt of new webhook deliveries. A
// failure is logged: the deliveries are in Postgres and the relay finds them.
func (w *Worker) EnqueueDeliveries(ctx context.Context, ids []string) {
	for _, id := range ids {
		if err := w.enqueueDelivery(ctx, id, id+":1", time.Time{}); err != nil {
			w.log.Warn("enqueue deliveries; the relay will pick them up", "err", err)
			return
		}
	}
}

func (w *Worker) enqueueDelivery(ctx context.Context, id, taskID string, at time.Time) error {
	task, err := tasks.NewWebhookDeliver(id, taskID, at)
	if err != nil {
		return err
	}
	_, err = w.client.EnqueueContext(ctx, task)
	if err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
		return fmt.Errorf("enqueue delivery %s: %w", id, err)
	}
	return nil
}

func (w *Worker) handleWebhookDeliver(ctx context.Context, t *asynq.Task) error {
	var p tasks.WebhookDeliver
	if err := json.Unmarshal(t.Payload(), &p); err != nil {
		return fmt.Errorf("%s: %v: %w", t.Type(), err, asynq.SkipRetry)
	}
	if w.sender == nil {
		return fmt.Errorf("%s: this worker has no webhook store", t.Type())
	}
	res, err := w.sender.Deliver(ctx, p.DeliveryID)
	if err != nil {
		return err
	}
	if res.Attempt > 0 {
		w.metrics.deliveries.WithLabelValues(deliveryOutcome(res)).Inc()
	}
	if res.Retry != nil {
		taskID := fmt.Sprintf("%s:%d", p.DeliveryID, res.Attempt+1)
		if err := w.enqueueDelivery(ctx, p.DeliveryID, taskID, *res.Retry); err != nil {
			w.log.Warn("schedule webhook retry; the relay will pick it up", "err", err)
		}
	}
	return nil
}

func deliveryOutcome(r webhook.Result) string {
	switch {
	case r.Succeeded:
		return "succeeded"
	case r.Retry != nil:
		return "retrying"
	}
	return "failed"
}

// relay re-enqueues the lanes of transactions pending for longer than
// RelayAfter: Redis lost the task, the enqueue failed, a worker died, or a
// task was archived. Postgres is the source of truth, so this is all it
// takes to lose nothing. Each worker process runs one; the task id, bucketed
// by time, keeps them from piling up duplicates.
func (w *Worker) relay(ctx context.Context) {
	tick := time.NewTicker(w.opts.RelayAfter / 2)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if err := w.RelayOnce(ctx); err != nil && ctx.Err() == nil {
			w.log.Warn("relay", "err", err)
		}
	}
}

// relayLanesMax bounds one relay pass.
const relayLanesMax = 1000

// RelayOnce enqueues every lane with stale pending work, and every webhook
// delivery whose attempt is overdue, once.
func (w *Worker) RelayOnce(ctx context.Context) error {
	if err := w.relayLanes(ctx); err != nil {
		return err
	}
	if w.opts.Webhooks == nil {
		return nil
	}
	due, err := w.opts.Webhooks.Due(ctx, w.opts.RelayAfter, relayLanesMax)
	if err != nil {
		return err
	}
	bucket := time.Now().UnixNano() / int64(w.opts.RelayAfter)
	for _, id := range due {
		if err := w.enqueueDelivery(ctx, id, fmt.Sprintf("relay:%s:%d", id, bucket), time.Time{}); err != nil {
			return err
		}
		w.metrics.relayed.Inc()
	}
	return nil
}

func (w *Worker) relayLanes(ctx context.Context) error {
	lanes, err := w.opts.Ledger.StaleLanes(ctx, w.opts.RelayAfter, relayLanesMax)
	if err != nil {
		return err
	}
	bucket := time.Now().UnixNano() / int64(w.opts.RelayAfter)
	for _, lane := range lanes {
		task, err := tasks.NewLaneApply(lane, fmt.Sprintf("relay:%d:%d", lane, bucket))
		if err != nil {
			return err
		}
		_, err = w.client.EnqueueContext(ctx, task)
		if err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
			return fmt.Errorf("relay lane %d: %w", lane, err)
		}
		w.metrics.relayed.Inc()
	}
	return nil
}

// slogAdapter routes asynq's logs through slog.
type slogAdapter struct{ l *slog.Logger }

func (a slogAdapter) Debug(args ...any) { a.l.Debug(fmt.Sprint(args...)) }
func (a slogAdapter) Info(args ...any)  { a.l.Info(fmt.Sprint(args...)) }
func (a slogAdapter) Warn(args ...any)  { a.l.Warn(fmt.Sprint(args...)) }
func (a slogAdapter) Error(args ...any) { a.l.Error(fmt.Sprint(args...)) }
func (a slogAdapter) Fatal(args ...any) { a.l.Error(fmt.Sprint(args...)) }
