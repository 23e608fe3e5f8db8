// Package config reads Orbt's settings from the environment, once, in main.
package config

import (
	"fmt"
	"time"

	"github.com/caarlos0/env/v11"
)

// Config is every setting of the orbt binary, with defaults that work on a
// laptop with Postgres and Redis on localhost.
type Config struct {
	DatabaseURL string `env:"DATABASE_URL" envDefault:"postgres://postgres@127.0.0.1:5432/orbt?sslmode=disable"`
	RedisURL    string `env:"REDIS_URL" envDefault:"redis://127.0.0.1:6379/0"`
	HTTPAddr    string `env:"ORBT_HTTP_ADDR" envDefault:":8080"`
	// AdminToken guards the admin API and the ops pages; empty turns them off.
	AdminToken string `env:"ORBT_ADMIN_TOKEN"`
	// WebhookRetrySchedule is the wait before each retry of a failed delivery.
	WebhookRetrySchedule []time.Duration `env:"ORBT_WEBHOOK_RETRY_SCHEDULE" envSeparator:"," envDefault:"5s,5m,30m,2h,5h,10h,10h"`
	// WebhookAllowPrivate lets endpoints resolve to private and loopback
	// addresses: local development and tests only.
	WebhookAllowPrivate bool `env:"ORBT_WEBHOOK_ALLOW_PRIVATE" envDefault:"false"`
	// WorkerConcurrency is how many tasks one worker process runs at once.
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
}

// Load parses the environment.
func Load() (Config, error) {
	cfg, err := env.ParseAs[Config]()
	if err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	return cfg, nil
}
