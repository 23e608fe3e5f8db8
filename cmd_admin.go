package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/orbt/orbt/config"
	"github.com/orbt/orbt/ledger"
	"github.com/orbt/orbt/workspace"
)

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
	a, closeApp, err := openApp(ctx, cfg, slog.Default())
	if err != nil {
		return err
	}
	defer closeApp()
	created, err := a.Workspaces.CreateWorkspace(ctx, *name)
	if err != nil {
		return err
	}
	created.ConsoleInviteURL = workspace.InviteURL(cfg.PublicURL, created.InviteToken)
	return printJSON(created)
}

// inviteAdmin prints a fresh console invitation for a workspace's admin,
// for whoever holds the link: how an operator lets a partner back in when
// no admin can sign in. With --unless-admin it prints nothing when the
// workspace has a live admin (deploy/up.sh, run again).
func inviteAdmin(ctx context.Context, cfg config.Config, args []string) error {
	fs := flag.NewFlagSet("workspace invite", flag.ContinueOnError)
	ws := fs.String("workspace", "", "workspace id")
	unlessAdmin := fs.Bool("unless-admin", false, "print nothing when the workspace has a live admin")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *ws == "" {
		return errors.New("usage: orbt workspace invite --workspace ID [--unless-admin]")
	}
	a, closeApp, err := openApp(ctx, cfg, slog.Default())
	if err != nil {
		return err
	}
	defer closeApp()
	if *unlessAdmin {
		has, err := a.Workspaces.HasAdmin(ctx, *ws)
		if err != nil || has {
			return err
		}
	}
	inv, token, err := a.Workspaces.InviteAdmin(ctx, *ws)
	if err != nil {
		return err
	}
	return printJSON(map[string]any{"consoleInviteUrl": workspace.InviteURL(cfg.PublicURL, token), "expiresAt": inv.ExpiresAt})
}

// fundWait bounds how long orbt fund waits for the worker to apply the
// funding it accepted.
const fundWait = 30 * time.Second

// fund accepts a funding, wakes the worker, and waits for the outcome: a
// funding is a money movement like any other, applied by a worker (orbt
// dev or orbt worker must be running).
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
	a, closeApp, err := openApp(ctx, cfg, slog.Default())
	if err != nil {
		return err
	}
	defer closeApp()
	if _, err := a.Workspaces.Workspace(ctx, *ws); err != nil {
		return err
	}
	txn, _, err := a.Ledger.Fund(ctx, *ws, *reference, cur, *amount)
	if err != nil {
		return err
	}
	if txn.Status == ledger.StatusPending {
		a.Enqueuer.TransactionAccepted(ctx, txn.ID, txn.LaneID())
	}
	// Wait as a Prefer: wait request does: woken by the apply group's
	// announcement, no polling.
	a.Background(ctx)
	if txn, err = a.Ledger.AwaitFinal(ctx, *ws, txn, fundWait); err != nil {
		return err
	}
	if txn.Status == ledger.StatusPending {
		fmt.Fprintln(os.Stderr, "orbt fund: accepted, still pending: is a worker (orbt dev or orbt worker) running?")
	}
	return printJSON(txn)
}
