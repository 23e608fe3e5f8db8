package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/orbt/orbt/giftcard"
	"github.com/orbt/orbt/ledger"
	"github.com/orbt/orbt/loadtest"
	"github.com/orbt/orbt/webhook"
)

func runLoadtest(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("loadtest", flag.ContinueOnError)
	var o loadtest.Options
	fs.StringVar(&o.API, "api", "http://127.0.0.1:8080", "base URL of a running orbt api")
	fs.StringVar(&o.Key, "key", "", "write API key of a funded workspace (or give --admin-token)")
	fs.StringVar(&o.AdminToken, "admin-token", os.Getenv("ORBT_ADMIN_TOKEN"), "admin token: the run creates and funds its own workspaces")
	fs.StringVar(&o.Scenario, "scenario", loadtest.ScenarioSingle, "single, hot, spread, bulk, redeem or partner (hot through the Orbt-compatible API, signed)")
	fs.IntVar(&o.Count, "count", 10_000, "transactions (or batch items) to submit")
	fs.IntVar(&o.Concurrency, "concurrency", 64, "requests in flight at once")
	fs.IntVar(&o.Rate, "rate", 0, "pace submissions at this many per second (0: as fast as concurrency allows)")
	fs.IntVar(&o.Wallets, "wallets", 0, "wallets per partner (default count/10, at most 10000)")
	fs.IntVar(&o.Partners, "partners", 20, "partners in the spread scenario")
	fs.IntVar(&o.BatchSize, "batch-size", 10_000, "items per batch in the bulk scenario")
	fs.BoolVar(&o.NewConsumers, "new-consumers", false, "bulk: pay each item to a new consumer (its wallet made on the way)")
	fs.BoolVar(&o.Webhooks, "webhooks", false, "subscribe a loopback receiver to transaction.completed and measure delivery (the stack needs ORBT_WEBHOOK_ALLOW_PRIVATE=true)")
	fs.BoolVar(&o.LocalStack, "stack-cpu", true, "read the CPU and memory of this machine's orbt, postgres and redis-server processes around the run")
	fs.DurationVar(&o.Timeout, "timeout", 5*time.Minute, "how long to wait for every transaction to be final")
	databaseURL := fs.String("database-url", "", "also scan the ledger's invariants in this database after the run")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	jsonOut := fs.String("json-out", "", "also write the report as JSON to this file")
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
		l := ledger.New(pool, nil)
		o.CheckLedger = func(ctx context.Context) error {
			return errors.Join(l.CheckInvariants(ctx), giftcard.NewStore(pool, l, nil).CheckInvariants(ctx),
				webhook.NewStore(pool, nil, false).CheckInvariants(ctx))
		}
	}
	o.Log = os.Stderr
	report, err := loadtest.Run(ctx, o)
	if err != nil {
		return fmt.Errorf("loadtest %s: %w", o.Scenario, err)
	}
	if *jsonOut != "" {
		data, err := json.MarshalIndent(report, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(*jsonOut, data, 0o644); err != nil {
			return fmt.Errorf("--json-out: %w", err)
		}
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
