// Command orbt runs Orbt: the partner API, the worker that applies money
// movements, migrations and operator tools. Configuration comes from the
// environment (see config.Config); subcommands wire it into the packages.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/hibiken/asynq"
	"github.com/hibiken/asynqmon"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"

	"github.com/orbt/orbt/api"
	"github.com/orbt/orbt/config"
	"github.com/orbt/orbt/ledger"
	"github.com/orbt/orbt/loadtest"
	"github.com/orbt/orbt/migrations"
	"github.com/orbt/orbt/webhook"
	"github.com/orbt/orbt/worker"
	"github.com/orbt/orbt/workspace"
)

const usage = `orbt: rewards-distribution ledger

Usage:
  orbt api                      serve the HTTP API
  orbt worker                   apply transactions and deliver webhooks
  orbt migrate up               apply database migrations
  orbt dev                      migrate, then api and worker in one process
  orbt workspace create --name NAME
  orbt fund --workspace ID --currency USD --amount N --reference REF
  orbt webhooks listen --addr :9000 --secret whsec_...
                                a local receiver that verifies and prints each delivery
  orbt loadtest --api URL --key KEY --scenario single|hot|spread|bulk --count N --concurrency C

Configuration is read from the environment: DATABASE_URL, REDIS_URL,
ORBT_HTTP_ADDR, ORBT_ADMIN_TOKEN, ORBT_WEBHOOK_RETRY_SCHEDULE (see README).
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
	case "webhooks":
		return listenWebhooks(ctx, rest)
	}
	cfg, err := config.Load()
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
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
		return createWorkspace(ctx, cfg, rest)
	case "fund":
		return fund(ctx, cfg, rest)
	case "help", "-h", "--help":
		fmt.Print(usage)
		return nil
	}
	fmt.Fprint(os.Stderr, usage)
	return fmt.Errorf("unknown command %q", cmd)
}

// dbConnectTimeout keeps a request from hanging on an unreachable database:
// it fails fast and the API answers 503.
const dbConnectTimeout = 3 * time.Second

func openPool(ctx context.Context, cfg config.Config) (*pgxpool.Pool, error) {
	pc, err := pgxpool.ParseConfig(cfg.DatabaseURL)
	if err != nil {
		return nil, fmt.Errorf("DATABASE_URL: %w", err)
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
		return nil, fmt.Errorf("postgres: %w", err)
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
	pool, err := openPool(ctx, cfg)
	if err != nil {
		return err
	}
	defer pool.Close()
	redisOpt, err := asynq.ParseRedisURI(cfg.RedisURL)
	if err != nil {
		return fmt.Errorf("REDIS_URL: %w", err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	l := ledger.New(pool)
	hooks := webhook.NewStore(pool, cfg.WebhookAllowPrivate)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 2)
	running := 0
	if withWorker {
		w, err := worker.New(worker.Options{Redis: redisOpt, Ledger: l, Concurrency: cfg.WorkerConcurrency, PollInterval: cfg.WorkerPollInterval,
			Webhooks: hooks, WebhookRetrySchedule: cfg.WebhookRetrySchedule,
			RelayAfter: cfg.RelayAfter, Logger: log.With("component", "worker"), Registerer: reg})
		if err != nil {
			return err
		}
		running++
		go func() { errc <- w.Run(ctx) }()
		log.Info("worker started")
	}
	if withAPI {
		redisClient, ok := redisOpt.MakeRedisClient().(redis.UniversalClient)
		if !ok {
			return errors.New("REDIS_URL: unsupported connection type")
		}
		defer redisClient.Close()
		srv, err := api.New(api.Options{
			Ledger: l, Workspaces: workspace.New(pool), Webhooks: hooks, Queue: asynq.NewClientFromRedisClient(redisClient), Redis: redisClient,
			AdminToken: cfg.AdminToken, BatchItemsMax: cfg.BatchItemsMax, Logger: log.With("component", "api"), Registerer: reg, Gatherer: reg,
			Ops: opsPages(redisOpt),
		})
		if err != nil {
			return err
		}
		running++
		go func() { errc <- listen(ctx, cfg.HTTPAddr, srv.Handler()) }()
		log.Info("api listening", "addr", cfg.HTTPAddr)
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

// opsPages are the operators' pages under /ops/, all behind the admin
// token: the Asynq dashboard and Go's profiler.
func opsPages(redisOpt asynq.RedisConnOpt) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/ops/queues/", asynqmon.New(asynqmon.Options{RootPath: "/ops/queues", RedisConnOpt: redisOpt}))
	mux.Handle("/ops/debug/pprof/", http.StripPrefix("/ops", http.HandlerFunc(pprof.Index)))
	mux.HandleFunc("/ops/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/ops/debug/pprof/trace", pprof.Trace)
	return mux
}

// listen serves HTTP until ctx is done, then shuts down gracefully.
func listen(ctx context.Context, addr string, h http.Handler) error {
	httpServer := &http.Server{Addr: addr, Handler: h, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- httpServer.ListenAndServe() }()
	select {
	case err := <-errc:
		return fmt.Errorf("api: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 25*time.Second)
	defer cancel()
	return httpServer.Shutdown(shutdownCtx)
}

func createWorkspace(ctx context.Context, cfg config.Config, args []string) error {
	fs := flag.NewFlagSet("workspace create", flag.ContinueOnError)
	name := fs.String("name", "", "workspace name")
	if len(args) == 0 || args[0] != "create" {
		return errors.New("usage: orbt workspace create --name NAME")
	}
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *name == "" {
		return errors.New("--name is required")
	}
	pool, err := openPool(ctx, cfg)
	if err != nil {
		return err
	}
	defer pool.Close()
	created, err := workspace.New(pool).CreateWorkspace(ctx, *name)
	if err != nil {
		return err
	}
	return printJSON(created)
}

func fund(ctx context.Context, cfg config.Config, args []string) error {
	fs := flag.NewFlagSet("fund", flag.ContinueOnError)
	ws := fs.String("workspace", "", "workspace id")
	currency := fs.String("currency", "USD", "ISO 4217 currency")
	amount := fs.Int64("amount", 0, "amount in minor units")
	reference := fs.String("reference", "", "referenceId: the same reference funds once")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cur, err := ledger.ParseCurrency(*currency)
	if err != nil {
		return err
	}
	if *ws == "" || *reference == "" || *amount <= 0 {
		return errors.New("usage: orbt fund --workspace ID --currency USD --amount N --reference REF")
	}
	pool, err := openPool(ctx, cfg)
	if err != nil {
		return err
	}
	defer pool.Close()
	if _, err := workspace.New(pool).Workspace(ctx, *ws); err != nil {
		return err
	}
	txn, _, err := ledger.New(pool).Fund(ctx, *ws, *reference, cur, *amount)
	if err != nil {
		return err
	}
	return printJSON(txn)
}

func printJSON(v any) error {
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func runLoadtest(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("loadtest", flag.ContinueOnError)
	var o loadtest.Options
	fs.StringVar(&o.API, "api", "http://127.0.0.1:8080", "base URL of a running orbt api")
	fs.StringVar(&o.Key, "key", "", "write API key of a funded workspace (or give --admin-token)")
	fs.StringVar(&o.AdminToken, "admin-token", os.Getenv("ORBT_ADMIN_TOKEN"), "admin token: the run creates and funds its own workspaces")
	fs.StringVar(&o.Scenario, "scenario", loadtest.ScenarioSingle, "single, hot, spread or bulk")
	fs.IntVar(&o.Count, "count", 10_000, "transactions (or batch items) to submit")
	fs.IntVar(&o.Concurrency, "concurrency", 64, "requests in flight at once")
	fs.IntVar(&o.Rate, "rate", 0, "pace submissions at this many per second (0: as fast as concurrency allows)")
	fs.IntVar(&o.Wallets, "wallets", 0, "wallets per partner (default count/10, at most 10000)")
	fs.IntVar(&o.Partners, "partners", 20, "partners in the spread scenario")
	fs.IntVar(&o.BatchSize, "batch-size", 10_000, "items per batch in the bulk scenario")
	fs.DurationVar(&o.Timeout, "timeout", 5*time.Minute, "how long to wait for every transaction to be final")
	databaseURL := fs.String("database-url", "", "also scan the ledger's invariants in this database after the run")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	asRow := fs.Bool("row", false, "print the report as one row of a Markdown table (see make bench)")
	header := fs.Bool("row-header", false, "print the header of the --row table and exit")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *header {
		fmt.Println(loadtest.RowHeader)
		return nil
	}
	if *databaseURL != "" {
		pool, err := pgxpool.New(ctx, *databaseURL)
		if err != nil {
			return fmt.Errorf("--database-url: %w", err)
		}
		defer pool.Close()
		o.CheckLedger = ledger.New(pool).CheckInvariants
	}
	o.Log = os.Stderr
	report, err := loadtest.Run(ctx, o)
	if err != nil {
		return fmt.Errorf("loadtest %s: %w", o.Scenario, err)
	}
	switch {
	case *asJSON:
		return printJSON(report)
	case *asRow:
		report.Row(os.Stdout)
		return nil
	}
	report.Print(os.Stdout)
	return nil
}
