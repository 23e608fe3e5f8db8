package worker

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/hibiken/asynq"

	"github.com/orbt/orbt/ledger"
	"github.com/orbt/orbt/store"
	"github.com/orbt/orbt/testenv"
)

// A hot lane with thousands of pending credits and a quiet lane are asked
// for together: the quiet lane's askers are answered after the first group,
// long before the hot lane is drained, and both end with nothing pending.
func TestHotLaneDoesNotHoldQuietLanesBack(t *testing.T) {
	ctx := context.Background()
	d, err := testenv.NewDatabase(ctx, "drains")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Drop()
	l := ledger.New(d.Pool, nil)
	ro := testenv.RedisOptions(2)
	w, err := New(Options{Redis: asynq.RedisClientOpt{Addr: ro.Addr, DB: ro.DB}, Ledger: l})
	if err != nil {
		t.Fatal(err)
	}
	defer w.drains.cancel()

	seed := func(name string, pending int) int64 {
		t.Helper()
		ws := store.NewID("ws")
		err := d.Pool.QueryRow(ctx, `
			WITH w AS (INSERT INTO workspaces (id, name, signing_secret) VALUES ($1, $2, 's') RETURNING id),
			c AS (INSERT INTO consumers (id, workspace_id, external_id) SELECT $1 || '-c', id, 'c' FROM w RETURNING id, workspace_id)
			SELECT 1 FROM c`, ws, name).Scan(new(int))
		if err != nil {
			t.Fatal(err)
		}
		funding, _, err := l.Fund(ctx, ws, "f", "USD", 1<<40)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := l.ApplyLane(ctx, funding.LaneID()); err != nil {
			t.Fatal(err)
		}
		wal, err := l.CreateWallet(ctx, ws, ws+"-c", ledger.WalletStandard, "USD", nil)
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		lanes := make(chan int64, pending)
		for g := range 32 {
			wg.Go(func() { // concurrent submits share commits
				for i := g; i < pending; i += 32 {
					txn, _, err := l.Submit(ctx, ledger.TransactionRequest{WorkspaceID: ws, ReferenceID: fmt.Sprint(i),
						Type: ledger.TypeCredit, WalletID: wal.ID, Amount: 1, Currency: "USD"})
					if err != nil {
						t.Error(err)
						return
					}
					lanes <- txn.LaneID()
				}
			})
		}
		wg.Wait()
		return <-lanes
	}
	hot, quiet := seed("hot", 3000), seed("quiet", 1)

	order := make(chan string, 2)
	errs := make(chan error, 2)
	for name, lane := range map[string]int64{"hot": hot, "quiet": quiet} {
		go func() {
			errs <- w.drain(ctx, lane)
			order <- name
		}()
	}
	if first := <-order; first != "quiet" {
		t.Errorf("the %s lane was answered first; the quiet one waited for the hot one", first)
	}
	<-order
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	var pending int
	d.Pool.QueryRow(ctx, `SELECT count(*) FROM pending_transactions`).Scan(&pending)
	if pending != 0 {
		t.Errorf("%d transactions still pending", pending)
	}
	if err := l.CheckInvariants(ctx); err != nil {
		t.Fatal(err)
	}
}
