package ledger

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/orbt/orbt/store"
)

// inTx runs fn in a database transaction and commits it.
func inTx(t *testing.T, fn func(tx pgx.Tx) error) {
	t.Helper()
	ctx := context.Background()
	tx, err := db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if err := fn(tx); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
}

// Holds and debits racing on one wallet spend at most what it holds;
// captures and releases settle every hold once; the invariants hold
// throughout, and a tampered held is caught.
func TestRedemptionStepsRaceDebitsAndKeepInvariants(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	f.fund(t, "USD", 10_000)
	w := f.wallet(t, "USD", nil)
	f.apply(t, f.submit(t, TypeCredit, w.ID, 1_000, "USD"))

	var held []string
	var mu sync.Mutex
	var debited atomic.Int64
	var wg sync.WaitGroup
	for i := range 30 {
		wg.Go(func() {
			id := store.NewID("red")
			var reason string
			inTx(t, func(tx pgx.Tx) (err error) {
				reason, err = f.l.Hold(ctx, tx, HoldRequest{WorkspaceID: f.workspace, RedemptionID: id, WalletID: w.ID,
					BrandID: "b", Amount: 100, Currency: "USD"})
				return err
			})
			switch reason {
			case "":
				mu.Lock()
				held = append(held, id)
				mu.Unlock()
			case ReasonInsufficientFunds:
			default:
				t.Errorf("hold %d: %s", i, reason)
			}
		})
		if i%3 == 0 {
			wg.Go(func() {
				if f.apply(t, f.submit(t, TypeDebit, w.ID, 50, "USD")).Status == StatusCompleted {
					debited.Add(50)
				}
			})
		}
	}
	wg.Wait()
	spent := int64(len(held))*100 + debited.Load()
	if spent > 1_000 || spent < 900 {
		t.Fatalf("holds %d and debits %d spent %d of a wallet of 1000", len(held), debited.Load(), spent)
	}
	got, err := f.l.Wallet(ctx, f.workspace, w.ID)
	if err != nil || got.Balance != 1_000-spent || got.Held != int64(len(held))*100 {
		t.Fatalf("wallet %+v, err %v; want balance %d held %d", got, err, 1_000-spent, len(held)*100)
	}
	assertInvariants(t)

	// Settle every hold while credits to the same wallet are applied in
	// groups beside them.
	var credited atomic.Int64
	for i, id := range held {
		wg.Go(func() {
			inTx(t, func(tx pgx.Tx) error {
				return f.l.Settle(ctx, tx, SettleRequest{WorkspaceID: f.workspace, RedemptionID: id, WalletID: w.ID,
					Amount: 100, Currency: "USD", Capture: i%2 == 0})
			})
		})
		wg.Go(func() {
			if f.apply(t, f.submit(t, TypeCredit, w.ID, 10, "USD")).Status == StatusCompleted {
				credited.Add(10)
			}
		})
	}
	wg.Wait()
	captured := int64((len(held)+1)/2) * 100
	got, _ = f.l.Wallet(ctx, f.workspace, w.ID)
	if want := 1_000 - debited.Load() - captured + credited.Load(); got.Balance != want || got.Held != 0 {
		t.Fatalf("after settling: %+v, want balance %d and nothing held", got, want)
	}
	assertInvariants(t)

	// A second capture of a settled redemption is refused by the ledger.
	tx, err := db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	err = f.l.Settle(ctx, tx, SettleRequest{WorkspaceID: f.workspace, RedemptionID: held[0], WalletID: w.ID, Amount: 100,
		Currency: "USD", Capture: true})
	if !errors.Is(err, ErrInvariant) {
		t.Fatalf("settling with nothing held: %v", err)
	}
	tx.Rollback(ctx)

	// Tampering is caught: a held without its hold, a clearing balance
	// without its entries, and one redemption's clearing entries (which sum
	// to zero) moved to another shard's clearing account, every balance
	// still the sum of its entries: that only the shard rule sees.
	wallet := `(SELECT account_id FROM wallets WHERE id = '` + w.ID + `')`
	for _, tamper := range [][]string{
		{`UPDATE ledger_accounts SET held = held + 100 WHERE id = ` + wallet},
		{`UPDATE ledger_accounts SET balance = balance + 100 WHERE kind = 'clearing' AND workspace_id = '` + f.workspace + `'`},
		{`INSERT INTO ledger_accounts (workspace_id, kind, currency, shard)
			SELECT '` + f.workspace + `', 'clearing', 'USD', (` + wallet + ` + 1) % 16 ON CONFLICT DO NOTHING`,
			`UPDATE ledger_entries e SET account_id = (SELECT id FROM ledger_accounts WHERE workspace_id = '` + f.workspace + `'
				AND kind = 'clearing' AND shard = (` + wallet + ` + 1) % 16)
			FROM transactions t, ledger_accounts a
			WHERE t.id = e.transaction_id AND t.redemption_id = '` + held[0] + `' AND a.id = e.account_id AND a.kind = 'clearing'`},
	} {
		func() {
			tx, err := db.Pool.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback(ctx)
			for _, stmt := range tamper {
				if _, err := tx.Exec(ctx, stmt); err != nil {
					t.Fatalf("%s: %v", stmt, err)
				}
			}
			err = checkInvariants(ctx, tx)
			switch {
			case !errors.Is(err, ErrInvariant):
				t.Errorf("%s went unnoticed: %v", tamper[len(tamper)-1], err)
			case len(tamper) > 1 && !strings.Contains(err.Error(), "shard"):
				t.Errorf("a step moved to another shard was not caught by the shard rule: %v", err)
			}
		}()
	}
}
