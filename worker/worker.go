// Package worker runs the asynq servers (one per queue) that apply
// transactions to the ledger, deliver webhooks and process redemptions,
// and the relay that re-enqueues anything Redis lost.
package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/orbt/orbt/giftcard"
	"github.com/orbt/orbt/ledger"
	"github.com/orbt/orbt/logging"
	"github.com/orbt/orbt/store"
	"github.com/orbt/orbt/tasks"
	"github.com/orbt/orbt/webhook"
)

// Options configure a Worker.
type Options struct {
	Redis asynq.RedisConnOpt
	// Enqueuer is how the worker queues webhook attempts and relays lost
	// work; nil makes one over Redis.
	Enqueuer *tasks.Enqueuer
	Ledger   *ledger.Ledger
	Webhooks *webhook.Store
	// GiftCards processes redemptions; nil leaves them to another worker.
	GiftCards *giftcard.Processor
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
	opts Options
	// servers serve one queue each (queueServers).
	servers []*asynq.Server
	queue   *tasks.Enqueuer
	client  *asynq.Client // closed on stop when the worker made it
	sender  *webhook.Sender
	drains  drains
	metrics *metrics
	log     *slog.Logger
}

// retryDelayMax caps asynq's exponential backoff: a transaction waiting on
// a database that is back should not wait minutes more.
const retryDelayMax = 30 * time.Second

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
	w := &Worker{opts: opts, queue: opts.Enqueuer, metrics: m, log: opts.Logger,
		drains: drains{waiting: make(map[int64][]chan error), running: make(map[int64]bool)}}
	if w.queue == nil {
		w.client = asynq.NewClient(opts.Redis)
		w.queue = tasks.NewEnqueuer(w.client, opts.Logger)
	}
	w.drains.ctx, w.drains.cancel = context.WithCancel(context.Background())
	if opts.Webhooks != nil {
		w.sender = webhook.NewSender(opts.Webhooks, opts.Ledger.EventsByID, opts.WebhookRetrySchedule)
	}
	for _, queue := range queueServers {
		w.servers = append(w.servers, asynq.NewServer(opts.Redis, asynq.Config{
			Concurrency: opts.Concurrency,
			Queues:      map[string]int{queue: 1},
			RetryDelayFunc: func(n int, err error, t *asynq.Task) time.Duration {
				d := asynq.DefaultRetryDelayFunc(n, err, t)
				return min(d, retryDelayMax)
			},
			ShutdownTimeout:   25 * time.Second,
			TaskCheckInterval: opts.PollInterval,
			Logger:            slogAdapter{opts.Logger},
		}))
	}
	return w, nil
}

// queueServers are the queues a worker serves, each with an asynq server
// (and so goroutines) of its own: a webhook receiver taking 10 s to answer
// or a gift card provider hanging until its timeout holds its own queue's
// goroutines, never the ledger's. With one server over the three queues,
// the fault suite measured credits waiting 9.7 s to be applied while a
// slow receiver held every goroutine.
var queueServers = []string{tasks.QueueLedger, tasks.QueueWebhooks, tasks.QueueGiftCards}

// Run serves tasks and runs the relay until ctx is done, then finishes the
// tasks in flight and returns.
func (w *Worker) Run(ctx context.Context) error {
	mux := asynq.NewServeMux()
	mux.HandleFunc(tasks.TypeTransactionApply, w.handleTransactionApply)
	mux.HandleFunc(tasks.TypeLaneApply, w.handleLaneApply)
	mux.HandleFunc(tasks.TypeWebhookDeliver, w.handleWebhookDeliver)
	mux.HandleFunc(tasks.TypeRedemptionProcess, w.handleRedemptionProcess)
	mux.Use(logTask)
	for i, s := range w.servers {
		if err := s.Start(mux); err != nil {
			w.shutdown(w.servers[:i])
			return fmt.Errorf("worker: start the %s queue's server: %w", queueServers[i], err)
		}
	}
	var wg sync.WaitGroup
	wg.Go(func() { w.relay(ctx) })
	<-ctx.Done()
	w.shutdown(w.servers) // waits for the tasks in flight, and so for their drains
	w.drains.cancel()     // drains of tasks asynq gave up on stop at their next group
	w.drains.wg.Wait()
	wg.Wait()
	if w.client != nil {
		return w.client.Close()
	}
	return nil
}

// shutdown stops servers at once, each waiting for its tasks in flight.
func (w *Worker) shutdown(servers []*asynq.Server) {
	var wg sync.WaitGroup
	for _, s := range servers {
		wg.Go(s.Shutdown)
	}
	wg.Wait()
}

func (w *Worker) handleTransactionApply(ctx context.Context, t *asynq.Task) error {
	var p tasks.TransactionApply
	if err := json.Unmarshal(t.Payload(), &p); err != nil {
		return fmt.Errorf("%s: %v: %w", t.Type(), err, asynq.SkipRetry)
	}
	return w.drain(ctx, p.Lanes()...)
}

func (w *Worker) handleLaneApply(ctx context.Context, t *asynq.Task) error {
	var p tasks.LaneApply
	if err := json.Unmarshal(t.Payload(), &p); err != nil {
		return fmt.Errorf("%s: %v: %w", t.Type(), err, asynq.SkipRetry)
	}
	return w.drain(ctx, p.LaneID)
}

// drains runs the lane drains of one worker process. A task asks for its
// lanes to be drained and waits, for each, for a group that starts after
// it asked: its transactions were committed before the task was enqueued,
// so that group sees them. A drain takes every lane that is asked for and
// not already being drained, up to drainLanesMax, and applies groups over
// them (ledger.ApplyGroup), taking in before each group the lanes asked
// for meanwhile, and answering and letting go of each lane as soon as a
// group leaves it with nothing more pending; at most drainsMax run at once.
// So a burst of single credits on one hot partner balance costs a few
// grouped database transactions, not one each, many partners with a little
// work each share them too, and a hot lane never holds the others back.
type drains struct {
	mu      sync.Mutex
	waiting map[int64][]chan error // lanes asked for, with their askers
	running map[int64]bool         // lanes in a running drain
	active  int
	wg      sync.WaitGroup
	ctx     context.Context // cancelled once the worker has stopped taking tasks
	cancel  context.CancelFunc
}

// Bounds of the drains of one worker process.
const (
	// drainsMax is how many drains run at once. One: while its group
	// commits, every lane asked for meanwhile gathers pending work, and
	// the next group takes all of them together, however many partners
	// they belong to. Each group pays per lane (its lock, its balance, its
	// workspace's event counter) and per commit, so fewer, fuller groups
	// cost less: with four drains, 50 partners' credits went out in
	// groups of a few each, at 0.81 ms of CPU per credit against 0.39 ms
	// for one partner's; with one, 0.48 ms, and as fast as one partner's
	// (BENCHMARKS.md, issue 14). Other worker processes drain alongside.
	drainsMax = 1
	// drainLanesMax bounds the partner balances one drain locks together.
	drainLanesMax = 64
	// groupTimeout bounds one group of a drain.
	groupTimeout = time.Minute
)

// drain asks for the lanes to be drained and waits until each has been,
// by a drain that started after it asked.
func (w *Worker) drain(ctx context.Context, laneIDs ...int64) error {
	dones := make([]chan error, len(laneIDs))
	w.drains.mu.Lock()
	for i, lane := range laneIDs {
		dones[i] = make(chan error, 1)
		w.drains.waiting[lane] = append(w.drains.waiting[lane], dones[i])
	}
	w.startDrainsLocked()
	w.drains.mu.Unlock()
	var retry, gone []error
	for i, done := range dones {
		select {
		case err := <-done:
			switch {
			case errors.Is(err, store.ErrNotFound):
				gone = append(gone, fmt.Errorf("lane %d: %w", laneIDs[i], err))
			case err != nil:
				retry = append(retry, fmt.Errorf("lane %d: %w", laneIDs[i], err))
			}
		case <-ctx.Done():
			return ctx.Err() // the drains go on; asynq retries the task
		}
	}
	if len(retry) > 0 {
		return errors.Join(retry...)
	}
	if len(gone) > 0 {
		// A lane that does not exist never will: retrying cannot help.
		return fmt.Errorf("%w: %w", errors.Join(gone...), asynq.SkipRetry)
	}
	return nil
}

// startDrainsLocked starts drains while a slot is free and some lane is
// asked for that no drain is applying. Callers hold drains.mu.
func (w *Worker) startDrainsLocked() {
	d := &w.drains
	for d.active < drainsMax {
		askers := make(map[int64][]chan error)
		for lane, waiting := range d.waiting {
			if d.running[lane] {
				continue
			}
			askers[lane] = waiting
			if len(askers) == drainLanesMax {
				break
			}
		}
		if len(askers) == 0 {
			return
		}
		for lane := range askers {
			delete(d.waiting, lane)
			d.running[lane] = true
		}
		d.active++
		d.wg.Add(1)
		go w.runDrain(askers)
	}
}

// runDrain applies groups over its lanes until each is left with nothing
// pending or fails, answering each lane's askers then.
func (w *Worker) runDrain(askers map[int64][]chan error) {
	d := &w.drains
	release := func(lane int64, err error) { // callers hold d.mu
		for _, done := range askers[lane] {
			done <- err
		}
		delete(askers, lane)
		delete(d.running, lane)
	}
	defer func() {
		err := fmt.Errorf("drain: %v", recover())
		d.mu.Lock()
		for lane := range askers { // only after a panic
			release(lane, err)
		}
		d.active--
		w.startDrainsLocked()
		d.mu.Unlock()
		d.wg.Done()
	}()
	for len(askers) > 0 {
		lanes := slices.Collect(maps.Keys(askers))
		full, errs := w.applyGroup(lanes)
		d.mu.Lock()
		for _, lane := range lanes {
			switch err, failed := errs[lane]; {
			case failed:
				release(lane, err)
			case slices.Contains(full, lane):
				// More is pending: the next group serves the askers that
				// came meanwhile too, since it starts after they asked.
				askers[lane] = append(askers[lane], d.waiting[lane]...)
				delete(d.waiting, lane)
			default:
				release(lane, nil)
			}
		}
		// Lanes asked for meanwhile join this drain's next group, so a lane
		// that stays busy (a bulk payout) never holds the others back.
		for lane, waiting := range d.waiting {
			if len(askers) == drainLanesMax {
				break
			}
			if !d.running[lane] {
				askers[lane] = waiting
				delete(d.waiting, lane)
				d.running[lane] = true
			}
		}
		w.startDrainsLocked() // lanes let go may have new askers
		d.mu.Unlock()
	}
}

// applyGroup applies one group over the lanes. Should it fail, each lane is
// tried alone, so one lane that cannot be applied never holds the others
// back; the errors are by lane.
func (w *Worker) applyGroup(lanes []int64) (full []int64, errs map[int64]error) {
	apply := func(lanes []int64) ([]int64, error) {
		ctx, cancel := context.WithTimeout(w.drains.ctx, groupTimeout)
		defer cancel()
		start := time.Now()
		applied, full, err := w.opts.Ledger.ApplyGroup(ctx, lanes)
		w.metrics.observe(applied.Outcomes, time.Since(start))
		w.queue.Deliveries(ctx, applied.Deliveries)
		return full, err
	}
	full, err := apply(lanes)
	if err == nil {
		return full, nil
	}
	errs = make(map[int64]error)
	if len(lanes) == 1 {
		errs[lanes[0]] = err
		return nil, errs
	}
	full = nil
	for _, lane := range lanes {
		f, err := apply([]int64{lane})
		if err != nil {
			errs[lane] = err
		}
		full = append(full, f...)
	}
	return full, errs
}

func (w *Worker) handleWebhookDeliver(ctx context.Context, t *asynq.Task) error {
	var p tasks.WebhookDeliver
	if err := json.Unmarshal(t.Payload(), &p); err != nil {
		return fmt.Errorf("%s: %v: %w", t.Type(), err, asynq.SkipRetry)
	}
	if w.sender == nil {
		return fmt.Errorf("%s: this worker has no webhook store", t.Type())
	}
	var errs []error
	for ids := range slices.Chunk(p.IDs(), webhook.DeliverManyMax) {
		// Attempts recorded are scheduled for retry even when others of
		// the task failed: the task's own retry finds them not due.
		results, err := w.sender.DeliverMany(ctx, ids)
		errs = append(errs, err)
		for id, res := range results {
			w.metrics.deliveries.WithLabelValues(deliveryOutcome(res)).Inc()
			if res.Retry != nil {
				if err := w.queue.DeliveryRetry(ctx, id, res.Attempt+1, *res.Retry); err != nil {
					w.log.WarnContext(ctx, "schedule webhook retry; the relay will pick it up", "err", err)
				}
			}
		}
	}
	return errors.Join(errs...)
}

func (w *Worker) handleRedemptionProcess(ctx context.Context, t *asynq.Task) error {
	var p tasks.RedemptionProcess
	if err := json.Unmarshal(t.Payload(), &p); err != nil {
		return fmt.Errorf("%s: %v: %w", t.Type(), err, asynq.SkipRetry)
	}
	if w.opts.GiftCards == nil {
		return fmt.Errorf("%s: this worker has no gift card processor", t.Type())
	}
	deliveries, err := w.opts.GiftCards.Process(ctx, p.RedemptionID)
	w.queue.Deliveries(ctx, deliveries)
	if errors.Is(err, giftcard.ErrRedemptionNotFound) {
		return fmt.Errorf("%s: %w: %w", t.Type(), err, asynq.SkipRetry)
	}
	return err
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
	if err := w.relayRedemptions(ctx); err != nil {
		return err
	}
	if w.opts.Webhooks == nil {
		return nil
	}
	due, err := w.opts.Webhooks.Due(ctx, w.opts.RelayAfter, relayLanesMax)
	if err != nil {
		return err
	}
	return relayEach(w, due, func(id string, bucket int64) error { return w.queue.RelayDelivery(ctx, id, bucket) })
}

func (w *Worker) relayLanes(ctx context.Context) error {
	lanes, err := w.opts.Ledger.StaleLanes(ctx, w.opts.RelayAfter, relayLanesMax)
	if err != nil {
		return err
	}
	return relayEach(w, lanes, func(lane, bucket int64) error { return w.queue.RelayLane(ctx, lane, bucket) })
}

// relayEach enqueues each stale item again under this pass's bucket (the
// relay's pass, by time, which keeps repeated passes from piling up tasks).
func relayEach[T any](w *Worker, items []T, enqueue func(item T, bucket int64) error) error {
	bucket := time.Now().UnixNano() / int64(w.opts.RelayAfter)
	for _, item := range items {
		if err := enqueue(item, bucket); err != nil {
			return fmt.Errorf("relay %v: %w", item, err)
		}
		w.metrics.relayed.Inc()
	}
	return nil
}

func (w *Worker) relayRedemptions(ctx context.Context) error {
	if w.opts.GiftCards == nil {
		return nil
	}
	stale, err := w.opts.GiftCards.Stale(ctx, w.opts.RelayAfter, relayLanesMax)
	if err != nil {
		return err
	}
	return relayEach(w, stale, func(id string, bucket int64) error { return w.queue.RelayRedemption(ctx, id, bucket) })
}

// logTask names the task on every line its handler logs with its context.
func logTask(h asynq.Handler) asynq.Handler {
	return asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
		id, _ := asynq.GetTaskID(ctx)
		return h.ProcessTask(logging.Start(ctx, slog.String(logging.TaskType, t.Type()), slog.String(logging.TaskID, id)), t)
	})
}

// slogAdapter routes asynq's logs through slog.
type slogAdapter struct{ l *slog.Logger }

func (a slogAdapter) Debug(args ...any) { a.l.Debug(fmt.Sprint(args...)) }
func (a slogAdapter) Info(args ...any)  { a.l.Info(fmt.Sprint(args...)) }
func (a slogAdapter) Warn(args ...any)  { a.l.Warn(fmt.Sprint(args...)) }
func (a slogAdapter) Error(args ...any) { a.l.Error(fmt.Sprint(args...)) }
func (a slogAdapter) Fatal(args ...any) { a.l.Error(fmt.Sprint(args...)) }
