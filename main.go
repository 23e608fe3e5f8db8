// Command orbt runs Orbt: the partner API, the worker that applies money
// movements, migrations and operator tools. Configuration comes from the
// environment (see config.Config); subcommands wire it into the packages.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/redis/go-redis/v9"

	"github.com/orbt/orbt/config"
	"github.com/orbt/orbt/logging"
)

const usage = `orbt: rewards-distribution ledger

Usage:
  orbt api                      serve the HTTP API
  orbt worker                   apply transactions and deliver webhooks
  orbt migrate up               apply database migrations
  orbt dev                      migrate, then api and worker in one process
  orbt workspace create --name NAME
  orbt workspace invite --workspace ID [--unless-admin]
  orbt fund --workspace ID --currency USD --amount N --reference REF
  orbt brands import FILE       load gift card brands (CSV with a header row, or JSON)
  orbt webhooks listen --addr :9000 --secret whsec_...
                                a local receiver that verifies and prints each delivery
  orbt probe URL                exit 0 when URL answers 2xx (a container health check without a shell)
  orbt loadtest --api URL --key KEY --scenario single|hot|spread|bulk --count N --concurrency C

Configuration is read from the environment: DATABASE_URL, REDIS_URL,
ORBT_HTTP_ADDR, ORBT_OPS_ADDR, ORBT_ADMIN_TOKEN, ORBT_DATA_KEY, ORBT_ENV, ORBT_PUBLIC_URL,
ORBT_WEBHOOK_RETRY_SCHEDULE and more (see README).
`

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "orbt:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, usage)
		return errors.New("no command")
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "loadtest":
		return runLoadtest(ctx, rest)
	case "probe":
		return probe(ctx, rest)
	case "webhooks":
		return listenWebhooks(ctx, rest)
	}
	cfg, err := config.Load()
	if err != nil {
		return err
	}
	log, err := logging.New(os.Stderr, cfg.LogFormat, cfg.LogLevel)
	if err != nil {
		return fmt.Errorf("ORBT_LOG_FORMAT, ORBT_LOG_LEVEL: %w", err)
	}
	slog.SetDefault(log)
	redis.SetLogger(logging.RedisLogger{Log: log.With("component", "redis")})
	switch cmd {
	case "api":
		return serve(ctx, cfg, log, true, false)
	case "worker":
		return serve(ctx, cfg, log, false, true)
	case "dev":
		return dev(ctx, cfg, log)
	case "migrate":
		if len(rest) != 1 || rest[0] != "up" {
			return errors.New("usage: orbt migrate up")
		}
		return migrate(ctx, cfg)
	case "workspace":
		if len(rest) > 0 && rest[0] == "invite" {
			return inviteAdmin(ctx, cfg, rest[1:])
		}
		return createWorkspace(ctx, cfg, rest)
	case "fund":
		return fund(ctx, cfg, rest)
	case "brands":
		return importBrands(ctx, cfg, rest)
	case "help", "-h", "--help":
		fmt.Print(usage)
		return nil
	}
	fmt.Fprint(os.Stderr, usage)
	return fmt.Errorf("unknown command %q", cmd)
}

func printJSON(v any) error {
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
