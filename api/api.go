// Package api serves Orbt's partner HTTP API with gin: authentication,
// validation, problem responses and thin handlers over the ledger and the
// workspace store. Accepted money movements are committed to Postgres
// before the 202 and then enqueued for the worker.
package api

import (
	"context"
	"crypto/subtle"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/orbt/orbt/ledger"
	"github.com/orbt/orbt/tasks"
	"github.com/orbt/orbt/webhook"
	"github.com/orbt/orbt/workspace"
)

// Options configure the API.
type Options struct {
	Ledger     *ledger.Ledger
	Workspaces *workspace.Store
	Webhooks   *webhook.Store
	Queue      *asynq.Client
	// Redis is pinged by /readyz.
	Redis      redis.UniversalClient
	AdminToken string
	// BatchItemsMax is the most items one bulk payout may hold.
	BatchItemsMax int
	Logger        *slog.Logger
	Registerer    prometheus.Registerer
	// Gatherer serves /metrics; nil leaves it out.
	Gatherer prometheus.Gatherer
	// Ops is mounted under /ops/ behind the admin token (the queue dashboard).
	Ops http.Handler
}

// Server is the HTTP API.
type Server struct {
	opts     Options
	ledger   *ledger.Ledger
	ws       *workspace.Store
	webhooks *webhook.Store
	log      *slog.Logger
	keys     keyCache
	lanes    laneWakeups
	metrics  *httpMetrics
	// queueDownUntil holds the unix nanos until which enqueues are skipped
	// after Redis failed: the relay enqueues from Postgres instead, and
	// requests do not each wait out a Redis timeout.
	queueDownUntil atomic.Int64
}

// Timeouts of the request path.
const (
	requestTimeout      = 10 * time.Second
	batchRequestTimeout = time.Minute
	enqueueTimeout      = 500 * time.Millisecond
	queueBackoff        = time.Second
)

// New builds the API handler.
func New(opts Options) (*Server, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	m, err := newHTTPMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}
	return &Server{opts: opts, ledger: opts.Ledger, ws: opts.Workspaces, webhooks: opts.Webhooks, log: opts.Logger, metrics: m,
		keys: keyCache{m: make(map[[32]byte]cachedKey)}, lanes: laneWakeups{m: make(map[int64]*laneWakeup)}}, nil
}

// enqueue hands an accepted transaction to the worker. Failure is logged,
// not returned: the transaction is committed, and the relay will find it.
func (s *Server) enqueue(ctx context.Context, task *asynq.Task, err error) {
	if err != nil || s.opts.Queue == nil {
		return
	}
	if time.Now().UnixNano() < s.queueDownUntil.Load() {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, enqueueTimeout)
	defer cancel()
	if _, err := s.opts.Queue.EnqueueContext(ctx, task); err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
		s.queueDownUntil.Store(time.Now().Add(queueBackoff).UnixNano())
		s.log.Warn("enqueue failed; the relay will pick the work up", "task", task.Type(), "err", err)
	}
}

// enqueueTransaction wakes the worker for an accepted transaction's lane.
// Under load many requests accept transactions on the same lane at once,
// and one task drains them all: so while an enqueue for a lane is in flight,
// later requests only mark the lane for one more enqueue when it returns,
// with the latest of their transaction ids as the TaskID. Every transaction
// is committed before its lane is marked, so the drain that the following
// enqueue starts sees it; and should Redis lose the task, the relay finds
// it. The first request's own enqueue happens before its 202; the loop that
// enqueues again for later marks runs on a goroutine of its own, so no
// request waits for others' wake-ups.
func (s *Server) enqueueTransaction(ctx context.Context, txn ledger.Transaction) {
	if txn.Status != ledger.StatusPending {
		return
	}
	lane := s.lanes.mark(txn.LaneID(), txn.ID)
	if lane == nil {
		return // an enqueue in flight will enqueue again for it
	}
	ctx = context.WithoutCancel(ctx)
	task, err := tasks.NewTransactionApply(txn.ID, txn.LaneID())
	s.enqueue(ctx, task, err)
	if id := s.lanes.next(txn.LaneID(), lane); id != "" {
		go func() {
			for ; id != ""; id = s.lanes.next(txn.LaneID(), lane) {
				task, err := tasks.NewTransactionApply(id, txn.LaneID())
				s.enqueue(ctx, task, err)
			}
		}()
	}
}

// laneWakeups coalesces the enqueues of one lane (see enqueueTransaction).
type laneWakeups struct {
	mu sync.Mutex
	m  map[int64]*laneWakeup
}

type laneWakeup struct {
	again string // the latest transaction id marked while an enqueue was in flight
}

// mark returns the lane's state when the caller should enqueue, or nil when
// an enqueue is in flight and will enqueue again after it.
func (l *laneWakeups) mark(lane int64, txnID string) *laneWakeup {
	l.mu.Lock()
	defer l.mu.Unlock()
	if w, busy := l.m[lane]; busy {
		w.again = txnID
		return nil
	}
	w := &laneWakeup{}
	l.m[lane] = w
	return w
}

// next returns the transaction id to enqueue again for, or "" when nothing
// was marked meanwhile and the lane is free.
func (l *laneWakeups) next(lane int64, w *laneWakeup) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	id := w.again
	w.again = ""
	if id == "" {
		delete(l.m, lane)
	}
	return id
}

// keyTTL is how long a verified key is trusted without a database read. A
// revocation takes effect at once on the process that served it and within
// keyTTL everywhere else.
const keyTTL = 5 * time.Second

// keyTouchEvery throttles lastUsedAt writes to one per key per interval.
const keyTouchEvery = time.Minute

type cachedKey struct {
	key     workspace.APIKey
	expires time.Time
}

type keyCache struct {
	mu      sync.Mutex
	m       map[[32]byte]cachedKey
	touched sync.Map // key id -> time.Time
}

// contextKey names what auth puts in the gin context.
const ctxKey = "orbt.apiKey"

// authenticate resolves the bearer key to its workspace.
func (s *Server) authenticate(c *gin.Context) {
	secret, ok := bearer(c)
	if !ok {
		abort(c, newProblem(http.StatusUnauthorized, "unauthorized", "Send an API key: Authorization: Bearer <key>."))
		return
	}
	hash := workspace.HashKey(secret)
	now := time.Now()
	s.keys.mu.Lock()
	cached, hit := s.keys.m[hash]
	s.keys.mu.Unlock()
	if !hit || now.After(cached.expires) {
		key, err := s.ws.Authenticate(c, secret)
		if errors.Is(err, workspace.ErrUnauthorized) {
			abort(c, newProblem(http.StatusUnauthorized, "unauthorized", "The API key is unknown or revoked."))
			return
		}
		if err != nil {
			fail(c, s.log, err)
			return
		}
		cached = cachedKey{key: key, expires: now.Add(keyTTL)}
		s.keys.mu.Lock()
		s.keys.m[hash] = cached
		s.keys.mu.Unlock()
	}
	if last, ok := s.keys.touched.Load(cached.key.ID); !ok || now.Sub(last.(time.Time)) > keyTouchEvery {
		s.keys.touched.Store(cached.key.ID, now)
		if err := s.ws.TouchKey(c, cached.key.ID); err != nil {
			s.log.Warn("touch key", "err", err)
		}
	}
	c.Set(ctxKey, cached.key)
	c.Next()
}

// forget drops a revoked key from this process's cache.
func (s *Server) forget(keyID string) {
	s.keys.mu.Lock()
	defer s.keys.mu.Unlock()
	for h, k := range s.keys.m {
		if k.key.ID == keyID {
			delete(s.keys.m, h)
		}
	}
}

// requireWrite refuses read keys on writes.
func requireWrite(c *gin.Context) {
	if apiKey(c).Scope != workspace.ScopeWrite {
		abort(c, newProblem(http.StatusForbidden, "insufficient_scope", "This API key is read-only."))
		return
	}
	c.Next()
}

func apiKey(c *gin.Context) workspace.APIKey {
	k, _ := c.Get(ctxKey)
	key, _ := k.(workspace.APIKey)
	return key
}

func wsID(c *gin.Context) string { return apiKey(c).WorkspaceID }

// requireAdmin checks the admin token; with none configured the admin
// routes do not exist.
func (s *Server) requireAdmin(c *gin.Context) {
	if s.opts.AdminToken == "" {
		abort(c, newProblem(http.StatusNotFound, "not_found", "No such route."))
		return
	}
	token, ok := bearer(c)
	if !ok {
		// A browser on the ops pages logs in with Basic auth, the token as password.
		_, token, ok = c.Request.BasicAuth()
	}
	if !ok || subtle.ConstantTimeCompare([]byte(token), []byte(s.opts.AdminToken)) != 1 {
		c.Header("WWW-Authenticate", `Basic realm="orbt admin"`)
		abort(c, newProblem(http.StatusUnauthorized, "unauthorized", "Send the admin token: Authorization: Bearer <token>."))
		return
	}
	c.Next()
}

// validParams answers 404 for path ids no object can have (too long, or
// bytes Postgres would refuse), so they never reach the database.
func validParams(c *gin.Context) {
	for _, p := range c.Params {
		if len(p.Value) > idLenMax || !printable(p.Value) {
			abort(c, newProblem(http.StatusNotFound, "not_found", "No such object."))
			return
		}
	}
	c.Next()
}

func bearer(c *gin.Context) (string, bool) {
	h := c.GetHeader("Authorization")
	const prefix = "Bearer "
	if len(h) <= len(prefix) || h[:len(prefix)] != prefix || len(h) > 512 {
		return "", false
	}
	return h[len(prefix):], true
}

// requestID sets X-Request-Id, keeping a sane one the client sent.
func requestID(c *gin.Context) {
	id := c.GetHeader("X-Request-Id")
	if len(id) == 0 || len(id) > 64 || !printable(id) {
		id = ledger.NewID("req")
	}
	c.Header("X-Request-Id", id)
	c.Next()
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// deadline bounds each request so a stalled database yields a 503, not a
// hang. A bulk payout writes up to 10,000 items in one database
// transaction, seconds of work when several arrive at once, so it gets
// longer.
func deadline(c *gin.Context) {
	timeout := requestTimeout
	if c.Request.Method == http.MethodPost && c.FullPath() == "/v1/batches" {
		timeout = batchRequestTimeout
	}
	ctx, cancel := context.WithTimeout(c.Request.Context(), timeout)
	defer cancel()
	c.Request = c.Request.WithContext(ctx)
	c.Next()
}

// recoverProblem turns a panic into a logged 500 problem.
func (s *Server) recoverProblem(c *gin.Context, rec any) {
	s.log.Error("panic", "recovered", rec, "path", c.Request.URL.Path)
	abort(c, newProblem(http.StatusInternalServerError, "internal_error", "Something went wrong on our side."))
}

type httpMetrics struct {
	duration *prometheus.HistogramVec
	accepted *prometheus.CounterVec
}

func newHTTPMetrics(reg prometheus.Registerer) (*httpMetrics, error) {
	m := &httpMetrics{
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "orbt_http_request_duration_seconds",
			Help:    "HTTP request latency by route and status.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}, []string{"method", "route", "status"}),
		accepted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "orbt_transactions_accepted_total",
			Help: "Transactions accepted (202), by whether the request was a replay.",
		}, []string{"replayed"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.duration, m.accepted} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

func (s *Server) observe(c *gin.Context) {
	start := time.Now()
	c.Next()
	route := c.FullPath()
	if route == "" {
		route = "unmatched"
	}
	s.metrics.duration.WithLabelValues(c.Request.Method, route, strconv.Itoa(c.Writer.Status())).
		Observe(time.Since(start).Seconds())
}
