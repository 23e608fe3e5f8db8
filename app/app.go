// Package app assembles one Orbt process from its parts: the stores over
// one Postgres pool, the enqueuer over one Redis connection, the HTTP
// surfaces mounted side by side on one server (routes.go), and the worker.
// main runs it; the test stack runs the very same assembly in-process.
package app

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/hibiken/asynq"
	"github.com/hibiken/asynqmon"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"

	"github.com/orbt/orbt/giftcard"
	"github.com/orbt/orbt/ledger"
	"github.com/orbt/orbt/seal"
	"github.com/orbt/orbt/server"
	"github.com/orbt/orbt/store"
	"github.com/orbt/orbt/tasks"
	"github.com/orbt/orbt/webhook"
	"github.com/orbt/orbt/worker"
	"github.com/orbt/orbt/workspace"
)

// Settings are what an App takes from the configuration.
type Settings struct {
	AdminToken           string
	BatchItemsMax        int
	WebhookAllowPrivate  bool
	WebhookRetrySchedule []time.Duration
	WorkerConcurrency    int
	WorkerPollInterval   time.Duration
	RelayAfter           time.Duration
	// DataKey seals gift card codes and signing secrets (32 bytes).
	DataKey []byte
	// PublicURL is where consumers reach the server.
	PublicURL          string
	ProviderTimeout    time.Duration
	ProviderAttempts   int
	ProviderRetryDelay time.Duration
	SandboxFaults      giftcard.SandboxFaults
	// TrustedProxies are the proxies whose X-Forwarded-For names the client.
	TrustedProxies []string
	// SMTPURL is where the console sends invitations; "" shows them to
	// the admin instead.
	SMTPURL string
	// ConsoleSessions end console sessions (zero: the console's defaults).
	ConsoleSessions workspace.SessionTimeouts
	// RateLimits are each API key's budgets on the API surfaces (zero: off).
	RateLimits server.RateLimits
	// ReadReplica is a streaming replica's pool for the reads that may
	// lag (nil: none), used while it lags at most ReadMaxLag.
	ReadReplica *pgxpool.Pool
	ReadMaxLag  time.Duration
}

// App is one process's parts over its connections.
type App struct {
	Settings   Settings
	Pool       *pgxpool.Pool
	RedisOpt   asynq.RedisConnOpt
	Redis      redis.UniversalClient
	Ledger     *ledger.Ledger
	Workspaces *workspace.Store
	// Auth checks API keys and signing secrets for every surface.
	Auth      *workspace.Authenticator
	Webhooks  *webhook.Store
	GiftCards *giftcard.Store
	// Sealer seals secrets at rest under the data key.
	Sealer *seal.Sealer
	// Redemptions takes redemptions to their outcome (the worker runs it).
	Redemptions *giftcard.Processor
	Sandbox     *giftcard.Sandbox
	Enqueuer    *tasks.Enqueuer
	// RateLimiter holds API keys to their budgets (nil: off).
	RateLimiter *server.RateLimiter
	// Reads sends the lists that may lag to the replica, when there is one.
	Reads    *store.Reads
	Registry *prometheus.Registry
	Log      *slog.Logger
	// dashboard is the Asynq dashboard the ops pages mount, and inspector
	// reads the queues' metrics; both are closed with the App.
	dashboard *asynqmon.HTTPHandler
	inspector *asynq.Inspector
}

// New assembles an App over a Postgres pool and a Redis connection;
// Close releases the Redis clients it made (not the pool).
func New(pool *pgxpool.Pool, redisOpt asynq.RedisConnOpt, s Settings, reg *prometheus.Registry, log *slog.Logger) (*App, error) {
	if log == nil {
		log = slog.Default()
	}
	if reg == nil {
		// The process's own: CPU, memory, goroutines beside Orbt's metrics.
		reg = prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	rc, err := newRedisClient(redisOpt)
	if err != nil {
		return nil, err
	}
	sealer, err := seal.NewSealer(s.DataKey)
	if err != nil {
		rc.Close()
		return nil, err
	}
	// The enqueuer's client shares rc, so closing rc closes it too.
	queue := asynq.NewClientFromRedisClient(rc)
	l := ledger.New(pool, webhook.QueueFanout)
	webhooks := webhook.NewStore(pool, sealer, s.WebhookAllowPrivate)
	cards := giftcard.NewStore(pool, l, sealer)
	sandbox := giftcard.NewSandbox(pool, sealer, s.SandboxFaults)
	redemptions, err := giftcard.NewProcessor(cards, giftcard.ProcessorOptions{
		Providers: map[string]giftcard.Provider{giftcard.SandboxProviderName: sandbox},
		Timeout:   s.ProviderTimeout, Attempts: s.ProviderAttempts, RetryDelay: s.ProviderRetryDelay,
		Logger: log.With("component", "giftcards"), Registerer: reg})
	if err != nil {
		rc.Close()
		return nil, err
	}
	limiter, err := server.NewRateLimiter(rc, s.RateLimits, reg, log.With("component", "ratelimit"))
	if err != nil {
		rc.Close()
		return nil, fmt.Errorf("rate limits: %w", err)
	}
	enqueuer := tasks.NewEnqueuer(queue, log)
	enqueuer.RedemptionTimeout = redemptions.MaxDuration()
	workspaces := workspace.New(pool, sealer)
	reads, err := newReads(pool, s, reg)
	if err != nil {
		rc.Close()
		return nil, err
	}
	for _, st := range []interface{ ReadFrom(*store.Reads) }{l, workspaces, cards, webhooks} {
		st.ReadFrom(reads)
	}
	a := &App{Settings: s, Pool: pool, RedisOpt: redisOpt, Redis: rc,
		Ledger: l, Workspaces: workspaces, Auth: workspace.NewAuthenticator(workspaces, log.With("component", "auth")),
		GiftCards: cards, Sealer: sealer, Redemptions: redemptions, Sandbox: sandbox,
		Webhooks: webhooks, Enqueuer: enqueuer, RateLimiter: limiter, Reads: reads,
		Registry: reg, Log: log}
	if err := reg.Register(newBacklogCollector(a)); err != nil {
		rc.Close()
		return nil, fmt.Errorf("backlog metrics: %w", err)
	}
	return a, nil
}

// SealLegacySecrets seals the secrets that rows made before sealing (or by
// a process of that release, during a rollout) hold in clear text:
// webhook endpoints' secrets and workspaces' signing secrets. Every
// process runs it when it starts, so after an upgrade none is left.
func (a *App) SealLegacySecrets(ctx context.Context) error {
	hooks, err := a.Webhooks.SealLegacySecrets(ctx)
	if err != nil {
		return err
	}
	signing, err := a.Workspaces.SealLegacySigningSecrets(ctx)
	if err != nil {
		return err
	}
	if hooks+signing > 0 {
		a.Log.Info("sealed secrets kept in clear text", "webhook_endpoints", hooks, "workspaces", signing)
	}
	return nil
}

// Worker builds the process's worker.
func (a *App) Worker() (*worker.Worker, error) {
	w, err := worker.New(worker.Options{Redis: a.RedisOpt, Enqueuer: a.Enqueuer, Ledger: a.Ledger, Webhooks: a.Webhooks,
		GiftCards:            a.Redemptions,
		WebhookRetrySchedule: a.Settings.WebhookRetrySchedule, Concurrency: a.Settings.WorkerConcurrency,
		PollInterval: a.Settings.WorkerPollInterval, RelayAfter: a.Settings.RelayAfter,
		Logger: a.Log.With("component", "worker"), Registerer: a.Registry})
	if err != nil {
		return nil, fmt.Errorf("worker: %w", err)
	}
	return w, nil
}

// Background runs, until ctx ends, what an API process needs besides its
// handler: the listener that wakes requests waiting for outcomes.
func (a *App) Background(ctx context.Context) {
	go a.Ledger.ListenOutcomes(ctx, a.Log.With("component", "outcomes"))
	go a.Reads.Watch(ctx, a.Log.With("component", "reads"))
}

// readMaxLagDefault is the replica's lag bound when the settings set none.
const readMaxLagDefault = 5 * time.Second

// newReads routes the lists that may lag, counting where each read went
// and exporting the replica's lag.
func newReads(pool *pgxpool.Pool, s Settings, reg prometheus.Registerer) (*store.Reads, error) {
	served := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "orbt_database_lagging_reads_total",
		Help: "Reads that may lag (lists, statements, event catch-up), by the database that served them (replica or primary).",
	}, []string{"database"})
	onReplica, onPrimary := served.WithLabelValues("replica"), served.WithLabelValues("primary")
	if s.ReadMaxLag <= 0 {
		s.ReadMaxLag = readMaxLagDefault
	}
	reads := store.NewReads(pool, s.ReadReplica, s.ReadMaxLag, func(target string) {
		if target == "replica" {
			onReplica.Inc()
		} else {
			onPrimary.Inc()
		}
	})
	lag := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "orbt_database_replica_lag_seconds",
		Help: "The read replica's lag behind the primary at the last check (to within a second; a lower bound past 10 minutes); -1 when it did not answer or there is no replica.",
	}, func() float64 {
		if d, ok := reads.Lag(); ok {
			return d.Seconds()
		}
		return -1
	})
	for _, c := range []prometheus.Collector{served, lag} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return reads, nil
}

// Close releases the Redis connections.
func (a *App) Close() error {
	if a.dashboard != nil {
		a.dashboard.Close()
		a.inspector.Close()
	}
	return a.Redis.Close()
}

// ping adapts a Redis ping to the ops readiness check.
func (a *App) pingRedis(ctx context.Context) error { return a.Redis.Ping(ctx).Err() }
