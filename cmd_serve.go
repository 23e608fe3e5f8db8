package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/orbt/orbt/app"
	"github.com/orbt/orbt/config"
	"github.com/orbt/orbt/giftcard"
	"github.com/orbt/orbt/migrations"
	"github.com/orbt/orbt/seal"
	"github.com/orbt/orbt/server"
)

// legacySealTimeout bounds the sealing of secrets an earlier release kept
// in clear text, at start (in batches of 100: what is left when it runs
// out is sealed at the next start, or when it is read).
const legacySealTimeout = 30 * time.Second

// dbConnectTimeout keeps a request from hanging on an unreachable database:
// it fails fast and the API answers 503.
const dbConnectTimeout = 3 * time.Second

func openPool(ctx context.Context, cfg config.Config) (*pgxpool.Pool, error) {
	return openPoolAt(ctx, cfg, "DATABASE_URL", cfg.DatabaseURL)
}

// openPoolAt opens a pool to the database url (named by its variable in
// errors) with the process's pool settings.
func openPoolAt(ctx context.Context, cfg config.Config, name, url string) (*pgxpool.Pool, error) {
	pc, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	pc.MaxConns = cfg.DatabaseMaxConns
	pc.ConnConfig.ConnectTimeout = dbConnectTimeout
	// Plan each statement for its actual arguments. The ledger's group
	// statements take arrays of a thousand rows; a generic plan made while
	// a table was small (a new deployment's first minute, before autovacuum
	// has analysed anything) kept a sequential scan inside a nested loop
	// and turned a 10 ms group update into 4 s (measured). Planning costs
	// tens of microseconds per statement.
	pc.ConnConfig.RuntimeParams["plan_cache_mode"] = "force_custom_plan"
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return pool, nil
}

func migrate(ctx context.Context, cfg config.Config) error {
	pool, err := openPool(ctx, cfg)
	if err != nil {
		return err
	}
	defer pool.Close()
	return migrations.Up(ctx, pool)
}

func dev(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	if err := migrate(ctx, cfg); err != nil {
		return err
	}
	return serve(ctx, cfg, log, true, true)
}

// serve runs the API, the worker, or both (orbt dev) until SIGTERM, then
// drains: the API stops taking requests and finishes those in flight, the
// worker finishes its tasks.
func serve(ctx context.Context, cfg config.Config, log *slog.Logger, withAPI, withWorker bool) error {
	a, closeApp, err := openApp(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer closeApp()
	// Secrets an earlier release kept in clear text are sealed now. A
	// database that is down does not keep the process from starting: each
	// one is also sealed when it is next read.
	sealCtx, cancelSeal := context.WithTimeout(ctx, legacySealTimeout)
	if err := a.SealLegacySecrets(sealCtx); err != nil {
		log.Warn("sealing secrets kept in clear text", "err", err)
	}
	cancelSeal()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 3)
	running := 0
	if withWorker {
		w, err := a.Worker()
		if err != nil {
			return err
		}
		running++
		go func() { errc <- w.Run(ctx) }()
		log.Info("worker started")
	}
	if withAPI {
		h, err := a.Handler(cfg.OpsAddr != "")
		if err != nil {
			return err
		}
		a.Background(ctx)
		running++
		go func() { errc <- server.Listen(ctx, cfg.HTTPAddr, h, server.DefaultTimeouts) }()
		log.Info("api listening", "addr", cfg.HTTPAddr)
	}
	// The ops pages on their own address: the metrics and probes of a
	// worker (which serves nothing else), and of an API whose public
	// listener then keeps only the probes.
	if cfg.OpsAddr != "" {
		h, err := a.OpsHandler()
		if err != nil {
			return err
		}
		running++
		go func() { errc <- server.Listen(ctx, cfg.OpsAddr, h, server.DefaultTimeouts) }()
		log.Info("ops listening", "addr", cfg.OpsAddr)
	}
	// The first to stop stops the other; a clean SIGTERM returns nil.
	var first error
	for range running {
		if err := <-errc; err != nil && first == nil {
			first = err
		}
		cancel()
	}
	return first
}

// openApp connects to Postgres and Redis and assembles the process's parts
// over them; the returned func closes it all.
func openApp(ctx context.Context, cfg config.Config, log *slog.Logger) (*app.App, func(), error) {
	s, err := settings(cfg, log)
	if err != nil {
		return nil, nil, err
	}
	redisOpt, err := config.ParseRedisURL(cfg.RedisURL)
	if err != nil {
		return nil, nil, fmt.Errorf("REDIS_URL: %w", err)
	}
	pool, err := openPool(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	closePools := pool.Close
	if cfg.DatabaseReadURL != "" {
		// The pool connects lazily: a replica down at start only keeps the
		// reads on the primary until it answers.
		if s.ReadReplica, err = openPoolAt(ctx, cfg, "DATABASE_READ_URL", cfg.DatabaseReadURL); err != nil {
			pool.Close()
			return nil, nil, err
		}
		closePools = func() { s.ReadReplica.Close(); pool.Close() }
	}
	a, err := app.New(pool, redisOpt, s, nil, log)
	if err != nil {
		closePools()
		return nil, nil, err
	}
	return a, func() { a.Close(); closePools() }, nil
}

// settings are the parts of the configuration the process's parts take.
// Without ORBT_DATA_KEY production refuses to start, and development seals
// card codes with the public development key, saying so.
func settings(cfg config.Config, log *slog.Logger) (app.Settings, error) {
	keyText := cfg.DataKey
	if keyText == "" {
		if cfg.Env == config.EnvProduction {
			return app.Settings{}, errors.New("ORBT_DATA_KEY is required in production: it seals gift card codes and signing secrets " +
				"(generate one with: head -c 32 /dev/urandom | base64)")
		}
		log.Warn("ORBT_DATA_KEY is unset: gift card codes and signing secrets are sealed with the public development key; never run production like this")
		keyText = seal.DevelopmentDataKey
	}
	key, err := seal.ParseDataKey(keyText)
	if err != nil {
		return app.Settings{}, fmt.Errorf("ORBT_DATA_KEY: %w", err)
	}
	faults, err := parseSandboxFaults(cfg.SandboxFaults)
	if err != nil {
		return app.Settings{}, err
	}
	return app.Settings{AdminToken: cfg.AdminToken, BatchItemsMax: cfg.BatchItemsMax,
		WebhookAllowPrivate: cfg.WebhookAllowPrivate, WebhookRetrySchedule: cfg.WebhookRetrySchedule,
		WorkerConcurrency: cfg.WorkerConcurrency, WorkerPollInterval: cfg.WorkerPollInterval, RelayAfter: cfg.RelayAfter,
		DataKey: key, PublicURL: cfg.PublicURL, ProviderTimeout: cfg.ProviderTimeout, ProviderAttempts: cfg.ProviderAttempts,
		ProviderRetryDelay: cfg.ProviderRetryDelay, SandboxFaults: faults, TrustedProxies: cfg.TrustedProxies,
		SMTPURL: cfg.SMTPURL, ReadMaxLag: cfg.ReadMaxLag, RateLimits: server.RateLimits{Read: cfg.RateLimitRead, Write: cfg.RateLimitWrite}}, nil
}

// parseSandboxFaults reads ORBT_SANDBOX_FAULTS: "unavailable=0.3,timeout=0.1,seed=7".
func parseSandboxFaults(s string) (giftcard.SandboxFaults, error) {
	var f giftcard.SandboxFaults
	if s == "" {
		return f, nil
	}
	bad := func(part string) error {
		return fmt.Errorf("ORBT_SANDBOX_FAULTS: %q: want unavailable=R, timeout=R (0 to 1) or seed=N, comma-separated", part)
	}
	for _, part := range strings.Split(s, ",") {
		name, value, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return f, bad(part)
		}
		var err error
		switch name {
		case "unavailable":
			f.Unavailable, err = strconv.ParseFloat(value, 64)
		case "timeout":
			f.Timeout, err = strconv.ParseFloat(value, 64)
		case "seed":
			f.Seed, err = strconv.ParseUint(value, 10, 64)
		default:
			return f, bad(part)
		}
		if err != nil {
			return f, bad(part)
		}
	}
	if f.Unavailable < 0 || f.Timeout < 0 || f.Unavailable+f.Timeout > 1 {
		return f, bad(s)
	}
	return f, nil
}
