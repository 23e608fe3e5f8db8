// Package config reads Orbt's settings from the environment, once, in main.
package config

import (
	"fmt"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"

	"github.com/orbt/orbt/store"
)

// Config is every setting of the orbt binary, with defaults that work on a
// laptop with Postgres and Redis on localhost.
type Config struct {
	DatabaseURL string `env:"DATABASE_URL" envDefault:"postgres://postgres@127.0.0.1:5432/orbt?sslmode=disable"`
	// DatabaseReadURL is a streaming replica of DATABASE_URL for the reads
	// that may lag: lists, statements, event catch-up, reports. Unset:
	// every read on the primary.
	DatabaseReadURL string `env:"DATABASE_READ_URL"`
	// ReadMaxLag is how far the replica may lag before its reads move to
	// the primary (measured to within a second).
	ReadMaxLag time.Duration `env:"ORBT_READ_MAX_LAG" envDefault:"5s"`
	RedisURL   string        `env:"REDIS_URL" envDefault:"redis://127.0.0.1:6379/0"`
	HTTPAddr   string        `env:"ORBT_HTTP_ADDR" envDefault:":8080"`
	// OpsAddr, when set, serves /metrics, /ops/..., /healthz and /readyz
	// on an address of their own (and /metrics and /ops/... no longer on
	// HTTPAddr); a worker serves them only there.
	OpsAddr string `env:"ORBT_OPS_ADDR"`
	// LogFormat is json (one object per line) or text; LogLevel is debug,
	// info (every request's access line), warn or error.
	LogFormat string `env:"ORBT_LOG_FORMAT" envDefault:"json"`
	LogLevel  string `env:"ORBT_LOG_LEVEL" envDefault:"info"`
	// AdminToken guards the admin API and the ops pages; empty turns them off.
	AdminToken string `env:"ORBT_ADMIN_TOKEN"`
	// WebhookRetrySchedule is the wait before each retry of a failed delivery.
	WebhookRetrySchedule []time.Duration `env:"ORBT_WEBHOOK_RETRY_SCHEDULE" envSeparator:"," envDefault:"5s,5m,30m,2h,5h,10h,10h"`
	// WebhookAllowPrivate lets endpoints resolve to private and loopback
	// addresses: local development and tests only.
	WebhookAllowPrivate bool `env:"ORBT_WEBHOOK_ALLOW_PRIVATE" envDefault:"false"`
	// WorkerConcurrency is how many tasks one worker process runs at once
	// from each of its queues (ledger, webhooks, gift cards).
	WorkerConcurrency int `env:"ORBT_WORKER_CONCURRENCY" envDefault:"20"`
	// WorkerPollInterval is how often an idle worker asks Redis for new
	// tasks (asynq polls; its default of 1s would add up to 1.5s to every
	// transaction that arrives while the queues are empty).
	WorkerPollInterval time.Duration `env:"ORBT_WORKER_POLL_INTERVAL" envDefault:"20ms"`
	// DatabaseMaxConns bounds the process's Postgres pool.
	DatabaseMaxConns int32 `env:"ORBT_DATABASE_MAX_CONNS" envDefault:"32"`
	// BatchItemsMax is the largest bulk payout accepted in one request.
	BatchItemsMax int `env:"ORBT_BATCH_ITEMS_MAX" envDefault:"10000"`
	// RelayAfter is how long a transaction may stay pending before the relay
	// enqueues it again.
	RelayAfter time.Duration `env:"ORBT_RELAY_AFTER" envDefault:"5s"`
	// Env is "development" or "production"; production refuses to start
	// without a data key.
	Env string `env:"ORBT_ENV" envDefault:"development"`
	// DataKey (base64 of 32 bytes) seals gift card codes at rest.
	DataKey string `env:"ORBT_DATA_KEY"`
	// PublicURL is where consumers reach the server: consumer links start
	// with it. Empty: http://localhost and the port of HTTPAddr.
	PublicURL string `env:"ORBT_PUBLIC_URL"`
	// ProviderTimeout bounds one gift card provider call.
	ProviderTimeout time.Duration `env:"ORBT_PROVIDER_TIMEOUT" envDefault:"10s"`
	// ProviderAttempts bounds the provider calls of one redemption.
	ProviderAttempts int `env:"ORBT_PROVIDER_ATTEMPTS" envDefault:"4"`
	// ProviderRetryDelay is the pause after a failed provider call; it doubles.
	ProviderRetryDelay time.Duration `env:"ORBT_PROVIDER_RETRY_DELAY" envDefault:"500ms"`
	// SandboxFaults makes the sandbox provider fail on purpose, for fault
	// tests: "unavailable=0.3,timeout=0.1,seed=7".
	SandboxFaults string `env:"ORBT_SANDBOX_FAULTS"`
	// TrustedProxies are the addresses or CIDRs of the load balancers in
	// front of the API, whose X-Forwarded-For names the client (the consumer
	// pages' rate limits key on it). Empty: the connection's address.
	TrustedProxies []string `env:"ORBT_TRUSTED_PROXIES" envSeparator:","`
	// SMTPURL sends console invitations and reset links by mail:
	// smtp://user:password@host:587?from=orbt@example.com. Unset: the
	// console shows each link to the admin who made it.
	SMTPURL string `env:"ORBT_SMTP_URL"`
	// RateLimitRead and RateLimitWrite are each API key's budgets in
	// requests per second (reads: GET and HEAD; writes: the rest), shared
	// by every api process through Redis. 0 turns a budget off. A bulk
	// payout is one write however many items it holds.
	RateLimitRead  int `env:"ORBT_RATE_LIMIT_READ" envDefault:"200"`
	RateLimitWrite int `env:"ORBT_RATE_LIMIT_WRITE" envDefault:"500"`
}

// Environments.
const (
	EnvDevelopment = "development"
	EnvProduction  = "production"
)

// Load parses the environment.
func Load() (Config, error) {
	cfg, err := env.ParseAs[Config]()
	if err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	switch cfg.Env {
	case EnvDevelopment, EnvProduction:
	default:
		return Config{}, fmt.Errorf("config: ORBT_ENV must be %s or %s", EnvDevelopment, EnvProduction)
	}
	if cfg.ProviderAttempts < 1 || cfg.ProviderAttempts > 20 {
		return Config{}, fmt.Errorf("config: ORBT_PROVIDER_ATTEMPTS must be 1 to 20")
	}
	if cfg.ProviderTimeout <= 0 || cfg.ProviderRetryDelay <= 0 {
		return Config{}, fmt.Errorf("config: ORBT_PROVIDER_TIMEOUT and ORBT_PROVIDER_RETRY_DELAY must be positive")
	}
	// Under steady writes the lag measures about one check interval.
	if cfg.ReadMaxLag < 2*store.ReadsCheckInterval {
		return Config{}, fmt.Errorf("config: ORBT_READ_MAX_LAG must be at least %s (the lag is measured each second)", 2*store.ReadsCheckInterval)
	}
	if cfg.RateLimitRead < 0 || cfg.RateLimitWrite < 0 {
		return Config{}, fmt.Errorf("config: ORBT_RATE_LIMIT_READ and ORBT_RATE_LIMIT_WRITE must be 0 (off) or more")
	}
	if cfg.PublicURL == "" {
		port := "8080"
		if i := strings.LastIndex(cfg.HTTPAddr, ":"); i >= 0 && i < len(cfg.HTTPAddr)-1 {
			port = cfg.HTTPAddr[i+1:]
		}
		cfg.PublicURL = "http://localhost:" + port
	}
	cfg.PublicURL = strings.TrimRight(cfg.PublicURL, "/")
	return cfg, nil
}
