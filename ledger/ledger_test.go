package ledger

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orbt/orbt/store"
	"github.com/orbt/orbt/testenv"
)

var db *testenv.Database

func TestMain(m *testing.M) { os.Exit(testenv.Main(m, "ledger", &db)) }

// fixture is one workspace with a funded partner balance and wallets.
type fixture struct {
	l         *Ledger
	workspace string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ws := store.NewID("ws")
	if _, err := db.Pool.Exec(context.Background(),
		`INSERT INTO workspaces (id, name, signing_secret) VALUES ($1, 'test', 'secret')`, ws); err != nil {
		t.Fatal(err)
	}
	return &fixture{l: New(db.Pool, nil), workspace: ws}
}

func (f *fixture) fund(t *testing.T, cur Currency, amount int64) {
	t.Helper()
	txn, _, err := f.l.Fund(context.Background(), f.workspace, store.NewID("fund"), cur, amount)
	if err != nil {
		t.Fatal(err)
	}
	if txn = f.apply(t, txn); txn.Status != StatusCompleted {
		t.Fatalf("funding status %s", txn.Status)
	}
}

func (f *fixture) wallet(t *testing.T, cur Currency, campaignID *string) Wallet {
	t.Helper()
	ctx := context.Background()
	consumer := store.NewID("csm")
	if _, err := db.Pool.Exec(ctx, `INSERT INTO consumers (id, workspace_id, external_id) VALUES ($1, $2, $1)`,
		consumer, f.workspace); err != nil {
		t.Fatal(err)
	}
	typ := WalletStandard
	if campaignID != nil {
		typ = WalletCampaign
	}
	w, err := f.l.CreateWallet(ctx, f.workspace, consumer, typ, cur, campaignID)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func (f *fixture) submit(t *testing.T, typ, walletID string, amount int64, cur Currency) Transaction {
	t.Helper()
	txn, _, err := f.l.Submit(context.Background(), TransactionRequest{
		WorkspaceID: f.workspace, ReferenceID: store.NewID("ref"), Type: typ, WalletID: walletID, Amount: amount, Currency: cur,
	})
	if err != nil {
		t.Fatal(err)
	}
	return txn
}

// apply drains the lane and returns the transaction's final state.
func (f *fixture) apply(t *testing.T, txn Transaction) Transaction {
	t.Helper()
	if _, err := f.l.ApplyLane(context.Background(), txn.LaneID()); err != nil {
		t.Fatal(err)
	}
	got, err := f.l.Transaction(context.Background(), f.workspace, txn.ID)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func (f *fixture) balance(t *testing.T, walletID string) int64 {
	t.Helper()
	w, err := f.l.Wallet(context.Background(), f.workspace, walletID)
	if err != nil {
		t.Fatal(err)
	}
	return w.Balance
}

func (f *fixture) partner(t *testing.T, cur Currency) int64 {
	t.Helper()
	balances, err := f.l.PartnerBalances(context.Background(), f.workspace)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range balances {
		if b.Currency == cur {
			return b.Available
		}
	}
	return 0
}

// events lists the workspace's events of one type ("" for all).
func (f *fixture) events(t *testing.T, eventType string) []Event {
	t.Helper()
	events, err := f.l.Events(context.Background(), f.workspace, eventType, "", 100)
	if err != nil {
		t.Fatal(err)
	}
	return events
}

func assertInvariants(t *testing.T) {
	t.Helper()
	if err := New(db.Pool, nil).CheckInvariants(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestCreditAndDebitMoveMoneyBothWays(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.fund(t, "USD", 10_000)
	w := f.wallet(t, "USD", nil)

	credit := f.apply(t, f.submit(t, TypeCredit, w.ID, 2_500, "USD"))
	if credit.Status != StatusCompleted || credit.CompletedAt == nil {
		t.Fatalf("credit: status %s", credit.Status)
	}
	debit := f.apply(t, f.submit(t, TypeDebit, w.ID, 1_000, "USD"))
	if debit.Status != StatusCompleted {
		t.Fatalf("debit: status %s", debit.Status)
	}
	if got := f.balance(t, w.ID); got != 1_500 {
		t.Errorf("wallet balance %d, want 1500", got)
	}
	if got := f.partner(t, "USD"); got != 8_500 {
		t.Errorf("partner balance %d, want 8500", got)
	}
	lines, err := f.l.Statement(context.Background(), f.workspace, w.ID, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) != 2 || lines[0].Amount != -1_000 || lines[0].BalanceAfter != 1_500 || lines[1].BalanceAfter != 2_500 {
		t.Errorf("statement %+v", lines)
	}
	if events := f.events(t, "transaction.completed"); len(events) != 3 { // the funding, the credit, the debit
		t.Errorf("%d transaction.completed events, want 3", len(events))
	}
	assertInvariants(t)
}

func TestFailuresMoveNothing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	f.fund(t, "USD", 1_000)
	f.fund(t, "EUR", 1_000)
	budget := int64(300)
	name := "spring"
	campaign, err := f.l.CreateCampaign(ctx, f.workspace, "USD", CampaignFields{Name: &name, Budget: &budget})
	if err != nil {
		t.Fatal(err)
	}
	paused := CampaignPaused
	pausedCampaign, err := f.l.CreateCampaign(ctx, f.workspace, "USD", CampaignFields{Name: &name, Status: &paused})
	if err != nil {
		t.Fatal(err)
	}
	std := f.wallet(t, "USD", nil)
	camp := f.wallet(t, "USD", &campaign.ID)
	pausedWallet := f.wallet(t, "USD", &pausedCampaign.ID)
	closed := f.wallet(t, "USD", nil)
	if _, err := db.Pool.Exec(ctx, `UPDATE wallets SET status = 'closed' WHERE id = $1`, closed.ID); err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name   string
		typ    string
		wallet string
		amount int64
		cur    Currency
		reason string
	}{
		{"partner balance too low", TypeCredit, std.ID, 1_001, "USD", ReasonInsufficientPartnerFunds},
		{"wallet balance too low", TypeDebit, std.ID, 1, "USD", ReasonInsufficientFunds},
		{"over the campaign budget", TypeCredit, camp.ID, 301, "USD", ReasonCampaignBudgetExceeded},
		{"campaign paused", TypeCredit, pausedWallet.ID, 1, "USD", ReasonCampaignInactive},
		{"currency differs from the wallet's", TypeCredit, std.ID, 1, "EUR", ReasonCurrencyMismatch},
		{"wallet closed", TypeCredit, closed.ID, 1, "USD", ReasonWalletClosed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := f.apply(t, f.submit(t, c.typ, c.wallet, c.amount, c.cur))
			if got.Status != StatusFailed || deref(got.FailureReason) != c.reason {
				t.Fatalf("status %s reason %v, want failed %s", got.Status, deref(got.FailureReason), c.reason)
			}
			var entries int
			db.Pool.QueryRow(ctx, `SELECT count(*) FROM ledger_entries WHERE transaction_id = $1`, got.ID).Scan(&entries)
			if entries != 0 {
				t.Errorf("failed transaction wrote %d entries", entries)
			}
		})
	}
	if f.partner(t, "USD") != 1_000 || f.partner(t, "EUR") != 1_000 {
		t.Errorf("partner balances moved: USD %d EUR %d", f.partner(t, "USD"), f.partner(t, "EUR"))
	}
	for _, w := range []Wallet{std, camp, pausedWallet, closed} {
		if b := f.balance(t, w.ID); b != 0 {
			t.Errorf("wallet %s balance %d, want 0", w.ID, b)
		}
	}
	c, _ := f.l.Campaign(ctx, f.workspace, campaign.ID)
	if c.Credited != 0 || *c.Remaining != 300 {
		t.Errorf("campaign counters moved: %+v", c)
	}

	// Within budget it goes through, and the budget tracks credits and debits.
	if got := f.apply(t, f.submit(t, TypeCredit, camp.ID, 300, "USD")); got.Status != StatusCompleted {
		t.Fatalf("credit within budget: %s %v", got.Status, deref(got.FailureReason))
	}
	if got := f.apply(t, f.submit(t, TypeCredit, camp.ID, 1, "USD")); deref(got.FailureReason) != ReasonCampaignBudgetExceeded {
		t.Fatalf("credit past budget: %s %v", got.Status, deref(got.FailureReason))
	}
	if got := f.apply(t, f.submit(t, TypeDebit, camp.ID, 100, "USD")); got.Status != StatusCompleted {
		t.Fatalf("debit: %s", got.Status)
	}
	c, _ = f.l.Campaign(ctx, f.workspace, campaign.ID)
	if c.Credited != 300 || c.Debited != 100 || *c.Remaining != 100 {
		t.Errorf("campaign counters %+v", c)
	}
	low := int64(100)
	if _, err := f.l.UpdateCampaign(ctx, f.workspace, campaign.ID, CampaignFields{Budget: &low}); !errors.Is(err, ErrBudgetBelowUsed) {
		t.Errorf("lowering budget below use: %v", err)
	}
	assertInvariants(t)
}

func TestSubmitDeduplicatesByReference(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	f.fund(t, "USD", 1_000)
	w := f.wallet(t, "USD", nil)
	req := TransactionRequest{WorkspaceID: f.workspace, ReferenceID: "order-1", Type: TypeCredit, WalletID: w.ID,
		Amount: 100, Currency: "USD", Metadata: map[string]string{"a": "b"}}

	const submitters = 32
	ids := make([]string, submitters)
	replays := make([]bool, submitters)
	var wg sync.WaitGroup
	for i := range submitters {
		wg.Go(func() {
			txn, replayed, err := f.l.Submit(ctx, req)
			if err != nil {
				t.Error(err)
				return
			}
			ids[i], replays[i] = txn.ID, replayed
		})
	}
	wg.Wait()
	fresh := 0
	for i := range submitters {
		if ids[i] != ids[0] {
			t.Fatalf("submitter %d got %s, submitter 0 got %s", i, ids[i], ids[0])
		}
		if !replays[i] {
			fresh++
		}
	}
	if fresh != 1 {
		t.Errorf("%d submissions reported as new, want 1", fresh)
	}

	changed := req
	changed.Amount = 200
	changed.Metadata = map[string]string{"a": "c"}
	_, _, err := f.l.Submit(ctx, changed)
	var conflict *ConflictError
	if !errors.As(err, &conflict) || fmt.Sprint(conflict.Fields) != "[amount metadata]" {
		t.Fatalf("conflicting reuse: %v", err)
	}
	f.apply(t, mustTxn(t, f, ids[0]))
	if got := f.balance(t, w.ID); got != 100 {
		t.Errorf("balance %d, want 100: the referenceId paid more than once", got)
	}

	// Every payload field takes part: a reuse differing only in one is a conflict.
	for _, mutate := range []func(*TransactionRequest){
		func(r *TransactionRequest) { r.Type = TypeDebit },
		func(r *TransactionRequest) { r.Currency = "EUR" },
		func(r *TransactionRequest) { d := "x"; r.Description = &d },
		func(r *TransactionRequest) { r.Metadata = nil },
	} {
		r := req
		mutate(&r)
		if _, _, err := f.l.Submit(ctx, r); !errors.Is(err, ErrIdempotencyConflict) {
			t.Errorf("reuse with %+v: %v, want conflict", r, err)
		}
	}
}

func mustTxn(t *testing.T, f *fixture, id string) Transaction {
	t.Helper()
	txn, err := f.l.Transaction(context.Background(), f.workspace, id)
	if err != nil {
		t.Fatal(err)
	}
	return txn
}

// Sixteen appliers racing on the same lane move the money once.
func TestConcurrentApplyMovesMoneyOnce(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.fund(t, "USD", 1_000)
	w := f.wallet(t, "USD", nil)
	txn := f.submit(t, TypeCredit, w.ID, 700, "USD")
	var wg sync.WaitGroup
	applied := make(chan int, 16)
	for range 16 {
		wg.Go(func() {
			outcomes, err := f.l.ApplyLane(context.Background(), txn.LaneID())
			if err != nil {
				t.Error(err)
			}
			applied <- len(outcomes.Outcomes)
		})
	}
	wg.Wait()
	close(applied)
	total := 0
	for n := range applied {
		total += n
	}
	if total != 1 {
		t.Errorf("transaction applied %d times", total)
	}
	if got := f.balance(t, w.ID); got != 700 {
		t.Errorf("balance %d, want 700", got)
	}
	assertInvariants(t)
}

// A thousand credits and debits over a few wallets, submitted and applied
// concurrently in small groups, leave every invariant true and every
// balance equal to what the completed transactions say.
func TestConcurrentCreditsAndDebitsKeepInvariants(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	f.l.groupMax = 7 // many groups, so groups race each other
	f.fund(t, "USD", 20_000)
	wallets := make([]Wallet, 4)
	for i := range wallets {
		wallets[i] = f.wallet(t, "USD", nil)
	}
	var wg sync.WaitGroup
	var lane int64
	var laneOnce sync.Once
	for g := range 8 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 1))
			for range 125 {
				typ := TypeCredit
				if rng.IntN(3) == 0 {
					typ = TypeDebit
				}
				txn, _, err := f.l.Submit(ctx, TransactionRequest{WorkspaceID: f.workspace, ReferenceID: store.NewID("ref"),
					Type: typ, WalletID: wallets[rng.IntN(len(wallets))].ID, Amount: 1 + rng.Int64N(100), Currency: "USD"})
				if err != nil {
					t.Error(err)
					return
				}
				laneOnce.Do(func() { lane = txn.LaneID() })
				if rng.IntN(4) == 0 {
					if _, err := f.l.ApplyLane(ctx, txn.LaneID()); err != nil {
						t.Error(err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	if _, err := f.l.ApplyLane(ctx, lane); err != nil {
		t.Fatal(err)
	}
	var pendingCount, completed int
	db.Pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE status = 'pending'), count(*) FILTER (WHERE status = 'completed')
		FROM transactions WHERE workspace_id = $1 AND type <> 'funding'`, f.workspace).Scan(&pendingCount, &completed)
	if pendingCount != 0 {
		t.Errorf("%d transactions still pending", pendingCount)
	}
	if completed < 500 {
		t.Errorf("only %d of 1000 completed", completed)
	}
	for _, w := range wallets {
		var want int64
		db.Pool.QueryRow(ctx, `SELECT COALESCE(sum(CASE type WHEN 'credit' THEN amount ELSE -amount END), 0)
			FROM transactions WHERE wallet_id = $1 AND status = 'completed'`, w.ID).Scan(&want)
		if got := f.balance(t, w.ID); got != want {
			t.Errorf("wallet %s balance %d, completed transactions say %d", w.ID, got, want)
		}
	}
	assertInvariants(t)
}

// The invariant check itself must catch a broken ledger.
func TestCheckInvariantsCatchesTampering(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	f.fund(t, "USD", 500)
	w := f.wallet(t, "USD", nil)
	f.apply(t, f.submit(t, TypeCredit, w.ID, 100, "USD"))
	assertInvariants(t)
	tx, err := db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `UPDATE ledger_accounts a SET balance = balance + 1 FROM wallets w
		WHERE w.account_id = a.id AND w.id = $1`, w.ID); err != nil {
		t.Fatal(err)
	}
	// Check inside the tampering transaction so other tests never see it.
	if err := checkInvariants(ctx, tx); !errors.Is(err, ErrInvariant) {
		t.Errorf("balance changed without an entry went unnoticed: %v", err)
	}
	// A credit whose event is lost is caught too.
	if _, err := tx.Exec(ctx, `UPDATE ledger_accounts a SET balance = balance - 1 FROM wallets w
		WHERE w.account_id = a.id AND w.id = $1`, w.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `DELETE FROM events WHERE workspace_id = $1 AND type = 'transaction.completed' AND data->>'walletId' = $2`,
		f.workspace, w.ID); err != nil {
		t.Fatal(err)
	}
	if err := checkInvariants(ctx, tx); err == nil || !strings.Contains(err.Error(), "reports its outcome") {
		t.Errorf("a credit without its event went unnoticed: %v", err)
	}
	// No foreign key holds a transaction to its wallet (migration 0013):
	// the scan does.
	if _, err := tx.Exec(ctx, `UPDATE transactions SET wallet_id = 'wal_elsewhere' WHERE workspace_id = $1 AND wallet_id = $2`,
		f.workspace, w.ID); err != nil {
		t.Fatal(err)
	}
	if err := checkInvariants(ctx, tx); err == nil || !strings.Contains(err.Error(), "its wallet and batch") {
		t.Errorf("a transaction of a wallet that does not exist went unnoticed: %v", err)
	}
	// Nor a wallet to its consumer and account, nor either to its
	// workspace (migration 0014).
	for _, tamper := range []struct{ sql, rule string }{
		{`UPDATE wallets SET consumer_id = 'con_elsewhere' WHERE id = $1`, "a consumer and a wallet account of its own"},
		{`UPDATE wallets SET currency = 'EUR' WHERE id = $1`, "a consumer and a wallet account of its own"},
		{`UPDATE wallets SET account_id = -account_id WHERE id = $1`, "a consumer and a wallet account of its own"},
		{`UPDATE ledger_accounts a SET workspace_id = 'ws_elsewhere' FROM wallets w WHERE w.account_id = a.id AND w.id = $1`,
			"belongs to a workspace that exists"},
		{`UPDATE consumers c SET workspace_id = 'ws_elsewhere' FROM wallets w WHERE w.consumer_id = c.id AND w.id = $1`,
			"belongs to a workspace that exists"},
	} {
		if _, err := tx.Exec(ctx, `SAVEPOINT tamper`); err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, tamper.sql, w.ID); err != nil {
			t.Fatalf("%s: %v", tamper.sql, err)
		}
		if err := checkInvariants(ctx, tx); err == nil || !strings.Contains(err.Error(), tamper.rule) {
			t.Errorf("%s went unnoticed: %v", tamper.sql, err)
		}
		if _, err := tx.Exec(ctx, `ROLLBACK TO SAVEPOINT tamper`); err != nil {
			t.Fatal(err)
		}
	}
}

// The group check refuses entries that do not sum to zero.
func TestCheckGroupRefusesUnbalancedEntries(t *testing.T) {
	a := &account{id: 1, kind: "partner", balance: 10}
	err := checkGroup([]entry{{transactionID: "t", accountID: 1, amount: -5}, {transactionID: "t", accountID: 2, amount: 4}},
		map[int64]*account{1: a})
	if !errors.Is(err, ErrInvariant) {
		t.Errorf("unbalanced entries: %v", err)
	}
	err = checkGroup(nil, map[int64]*account{1: {id: 1, kind: "wallet", balance: -1}})
	if !errors.Is(err, ErrInvariant) {
		t.Errorf("negative wallet: %v", err)
	}
}

// Concurrent submissions share group inserts: each caller still gets its
// own row with every field as sent, a wallet that does not exist fails only
// its own caller, and duplicates inside one group store one row.
func TestConcurrentSubmitsInGroupsKeepEachAnswer(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	f.fund(t, "USD", 1_000_000)
	w := f.wallet(t, "USD", nil)
	const n = 300
	type answer struct {
		txn      Transaction
		replayed bool
		err      error
	}
	answers := make([]answer, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			desc := fmt.Sprintf("reward %d", i)
			req := TransactionRequest{WorkspaceID: f.workspace, ReferenceID: fmt.Sprintf("g-%d", i), Type: TypeCredit,
				WalletID: w.ID, Amount: int64(1 + i), Currency: "USD", Description: &desc,
				Metadata: map[string]string{"i": fmt.Sprint(i)}}
			switch {
			case i%50 == 7:
				req.WalletID = "wal_missing"
			case i%10 == 3:
				req.ReferenceID = "g-shared" // ten submitters race on one referenceId
				req.Amount, req.Description, req.Metadata = 5, nil, nil
			}
			txn, replayed, err := f.l.Submit(ctx, req)
			answers[i] = answer{txn, replayed, err}
		})
	}
	wg.Wait()
	fresh := 0
	for i, a := range answers {
		switch {
		case i%50 == 7:
			if !errors.Is(a.err, ErrWalletNotFound) {
				t.Errorf("submission %d to a missing wallet: %v", i, a.err)
			}
		case i%10 == 3:
			if a.err != nil || a.txn.ReferenceID != "g-shared" {
				t.Errorf("shared referenceId %d: %+v %v", i, a.txn, a.err)
			}
			if !a.replayed {
				fresh++
			}
		default:
			if a.err != nil || a.replayed || a.txn.ReferenceID != fmt.Sprintf("g-%d", i) || a.txn.Amount != int64(1+i) ||
				deref(a.txn.Description) != fmt.Sprintf("reward %d", i) || a.txn.Metadata["i"] != fmt.Sprint(i) {
				t.Errorf("submission %d answered %+v %v", i, a.txn, a.err)
			}
			stored := mustTxn(t, f, a.txn.ID)
			if stored.Metadata["i"] != fmt.Sprint(i) || stored.Status != StatusPending {
				t.Errorf("submission %d stored as %+v", i, stored)
			}
		}
	}
	if fresh != 1 {
		t.Errorf("shared referenceId stored as new %d times, want 1", fresh)
	}
	if n := f.count(t, `SELECT count(*) FROM transactions WHERE workspace_id = $1 AND reference_id = 'g-shared'`, f.workspace); n != 1 {
		t.Errorf("shared referenceId stored %d times", n)
	}
}

// A queue row left behind for a transaction that is no longer pending is
// dropped by the next group; it neither stops the lane nor applies twice.
func TestStaleQueueRowDoesNotStopTheLane(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	f.fund(t, "USD", 1_000)
	w := f.wallet(t, "USD", nil)
	done := f.apply(t, f.submit(t, TypeCredit, w.ID, 100, "USD"))
	if _, err := db.Pool.Exec(ctx, `INSERT INTO pending_transactions (lane_account_id, transaction_id) VALUES ($1, $2)`,
		done.LaneID(), done.ID); err != nil {
		t.Fatal(err)
	}
	next := f.apply(t, f.submit(t, TypeCredit, w.ID, 50, "USD"))
	if next.Status != StatusCompleted {
		t.Fatalf("the lane stopped: %+v", next)
	}
	if got := f.balance(t, w.ID); got != 150 {
		t.Errorf("balance %d, want 150", got)
	}
	if n := f.count(t, `SELECT count(*) FROM pending_transactions WHERE transaction_id = $1`, done.ID); n != 0 {
		t.Error("the stale queue row is still there")
	}
	assertInvariants(t)
}

// Listing pending transactions reads the queue: it lists exactly the
// workspace's pending ones, newest first, with the other filters and the
// cursor applied.
func TestListPendingTransactions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f, other := newFixture(t), newFixture(t)
	f.fund(t, "USD", 1_000)
	other.fund(t, "USD", 1_000)
	w1, w2 := f.wallet(t, "USD", nil), f.wallet(t, "USD", nil)
	a, b, c := f.submit(t, TypeCredit, w1.ID, 1, "USD"), f.submit(t, TypeCredit, w2.ID, 2, "USD"), f.submit(t, TypeCredit, w1.ID, 3, "USD")
	other.submit(t, TypeCredit, other.wallet(t, "USD", nil).ID, 4, "USD")
	ids := func(list []Transaction, err error) string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, x := range list {
			out = append(out, x.ID)
		}
		return fmt.Sprint(out)
	}
	pending := TransactionFilter{Status: StatusPending}
	if got, want := ids(f.l.Transactions(ctx, f.workspace, pending, "", 10)), fmt.Sprint([]string{c.ID, b.ID, a.ID}); got != want {
		t.Errorf("pending %s, want %s", got, want)
	}
	if got, want := ids(f.l.Transactions(ctx, f.workspace, TransactionFilter{Status: StatusPending, WalletID: w1.ID}, c.ID, 10)), fmt.Sprint([]string{a.ID}); got != want {
		t.Errorf("pending of w1 after the cursor %s, want %s", got, want)
	}
	f.apply(t, a)
	if got := ids(f.l.Transactions(ctx, f.workspace, pending, "", 10)); got != "[]" {
		t.Errorf("pending after applying the lane: %s", got)
	}
}

// Groups over several partner balances at once, racing each other over
// overlapping sets of lanes while credits, debits and a two-currency batch
// arrive, apply everything exactly once and keep every invariant.
func TestConcurrentMultiLaneGroupsKeepInvariants(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	type partner struct {
		f       *fixture
		wallets []Wallet
		lane    int64
	}
	var partners []partner
	var lanes []int64
	for range 5 {
		f := newFixture(t)
		f.l.groupMax = 9
		f.fund(t, "USD", 5_000)
		ws := []Wallet{f.wallet(t, "USD", nil), f.wallet(t, "USD", nil)}
		lane := f.submit(t, TypeCredit, ws[0].ID, 1, "USD").LaneID()
		partners = append(partners, partner{f, ws, lane})
		lanes = append(lanes, lane)
	}
	// One partner pays in two currencies with one batch: its items sit on
	// two lanes that groups take together or apart.
	p0 := partners[0]
	p0.f.fund(t, "EUR", 5_000)
	eur := p0.f.wallet(t, "EUR", nil)
	var items []BatchItem
	for i := range 40 {
		cur, w := Currency("USD"), p0.wallets[1].ID
		if i%2 == 1 {
			cur, w = "EUR", eur.ID
		}
		items = append(items, BatchItem{ReferenceID: fmt.Sprintf("mb-%d", i), Type: TypeCredit, WalletID: w, Amount: 7, Currency: cur})
	}
	sub, err := p0.f.l.SubmitBatch(ctx, BatchRequest{WorkspaceID: p0.f.workspace, ReferenceID: "multi", Items: items}, ensureConsumers)
	if err != nil {
		t.Fatal(err)
	}
	lanes = append(lanes, sub.Lanes...)

	var wg sync.WaitGroup
	for g := range 6 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 7))
			l := New(db.Pool, nil)
			l.groupMax = 9
			for range 60 {
				p := partners[rng.IntN(len(partners))]
				typ := TypeCredit
				if rng.IntN(3) == 0 {
					typ = TypeDebit
				}
				if _, _, err := l.Submit(ctx, TransactionRequest{WorkspaceID: p.f.workspace, ReferenceID: store.NewID("ref"), Type: typ,
					WalletID: p.wallets[rng.IntN(2)].ID, Amount: 1 + rng.Int64N(50), Currency: "USD"}); err != nil {
					t.Error(err)
					return
				}
				if rng.IntN(3) == 0 {
					subset := slices.Clone(lanes)
					rng.Shuffle(len(subset), func(i, j int) { subset[i], subset[j] = subset[j], subset[i] })
					if _, err := l.ApplyLanes(ctx, subset[:1+rng.IntN(len(subset))]); err != nil {
						t.Error(err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	if _, err := New(db.Pool, nil).ApplyLanes(ctx, lanes); err != nil {
		t.Fatal(err)
	}
	for _, p := range partners {
		if n := p.f.count(t, `SELECT count(*) FROM transactions WHERE workspace_id = $1 AND status = 'pending'`, p.f.workspace); n != 0 {
			t.Errorf("%d transactions of %s still pending", n, p.f.workspace)
		}
	}
	b, err := p0.f.l.Batch(ctx, p0.f.workspace, sub.Batch.ID)
	if err != nil || b.Status != BatchCompleted || b.Counts.Completed != 40 {
		t.Errorf("two-lane batch: %+v %v", b, err)
	}
	assertInvariants(t)
}

// The relay asks for stale lanes a bounded number at a time: the longest
// waiting must come first, whatever their ids, or past the bound some lanes
// would never be relayed.
func TestStaleLanesComeOldestFirst(t *testing.T) {
	ctx := context.Background()
	var lanes []int64
	for range 3 {
		f := newFixture(t)
		f.fund(t, "USD", 100)
		txn := f.submit(t, TypeCredit, f.wallet(t, "USD", nil).ID, 1, "USD")
		lanes = append(lanes, txn.LaneID())
	}
	// The newest lane (highest id) has waited longest: older than anything
	// other tests leave pending.
	for i, lane := range lanes {
		if _, err := db.Pool.Exec(ctx, `UPDATE pending_transactions SET created_at = $2 WHERE lane_account_id = $1`,
			lane, time.Date(2000, 1, 3-i, 0, 0, 0, 0, time.UTC)); err != nil {
			t.Fatal(err)
		}
	}
	got, err := New(db.Pool, nil).StaleLanes(ctx, time.Second, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0] != lanes[2] || got[1] != lanes[1] {
		t.Errorf("stale lanes %v, want the two oldest %v", got, []int64{lanes[2], lanes[1]})
	}
	for _, lane := range lanes {
		if _, err := New(db.Pool, nil).ApplyLane(ctx, lane); err != nil {
			t.Fatal(err)
		}
	}
}

// A funded wallet and its first credit are stored together or not at all,
// and the credit is applied like any other, its balance after it kept.
func TestFundedWalletAndItsCreditAreOne(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	f.fund(t, "USD", 10_000)
	consumer := store.NewID("csm")
	if _, err := db.Pool.Exec(ctx, `INSERT INTO consumers (id, workspace_id, external_id) VALUES ($1, $2, $1)`,
		consumer, f.workspace); err != nil {
		t.Fatal(err)
	}
	credit := TransactionRequest{WorkspaceID: f.workspace, ReferenceID: "first-" + consumer, Type: TypeCredit,
		Amount: 2_500, Currency: "USD"}

	// The referenceId taken (here by an unrelated funding): nothing is made.
	if _, _, err := f.l.Fund(ctx, f.workspace, credit.ReferenceID, "USD", 1); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.l.CreateFundedWallet(ctx, f.workspace, consumer, "USD", credit); !errors.Is(err, ErrIdempotencyConflict) {
		t.Fatalf("taken referenceId: %v", err)
	}
	var wallets int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM wallets WHERE consumer_id = $1`, consumer).Scan(&wallets); err != nil || wallets != 0 {
		t.Fatalf("a refused funded wallet left %d wallets (%v)", wallets, err)
	}

	credit.ReferenceID = "first-again-" + consumer
	w, txn, err := f.l.CreateFundedWallet(ctx, f.workspace, consumer, "USD", credit)
	if err != nil {
		t.Fatal(err)
	}
	if txn.Status != StatusPending || deref(txn.WalletID) != w.ID || w.Balance != 0 {
		t.Fatalf("funded wallet: %+v, first credit %+v", w, txn)
	}
	if _, _, err := f.l.CreateFundedWallet(ctx, f.workspace, consumer, "USD", credit); !errors.Is(err, ErrWalletExists) {
		t.Fatalf("second funded wallet: %v", err)
	}
	if txn = f.apply(t, txn); txn.Status != StatusCompleted {
		t.Fatalf("first credit: %s", txn.Status)
	}
	f.apply(t, f.submit(t, TypeCredit, w.ID, 100, "USD"))
	if after, err := f.l.BalanceAfter(ctx, txn); err != nil || after != 2_500 || f.balance(t, w.ID) != 2_600 {
		t.Fatalf("balance after the first credit %d (%v), now %d", after, err, f.balance(t, w.ID))
	}
	assertInvariants(t)
}

// The backlog counts pending work and ages its oldest item: what the
// stuck-work alert watches. (Other tests run alongside, so the figures are
// lower bounds here.)
func TestBacklogAgesPendingWork(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	f.fund(t, "USD", 1_000)
	f.submit(t, TypeCredit, f.wallet(t, "USD", nil).ID, 1, "USD")
	time.Sleep(100 * time.Millisecond)
	n, oldest, err := f.l.Backlog(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n < 1 || oldest < 100*time.Millisecond {
		t.Errorf("backlog %d, oldest %s: want the pending credit counted and at least 100ms old", n, oldest)
	}
}
