package ledger

import (
	"context"
	"testing"

	"github.com/orbt/orbt/store"
)

// One partner's referenceId held by an uncommitted transaction (a bulk
// payout being stored) must not slow another partner's accepts that share
// its group: only the conflicting call waits. Calls are put in one group by
// hand, as a busy API would; each must be answered well before the group's
// own flush timeout, while the conflicting row is still held.
func TestHeldReferenceDelaysOnlyItsOwnAccept(t *testing.T) {
	ctx := context.Background()
	a, b := newFixture(t), newFixture(t)
	a.fund(t, "USD", 1_000)
	b.fund(t, "USD", 1_000)
	aw, bw := a.wallet(t, "USD", nil), b.wallet(t, "USD", nil)

	// Workspace B stores "held" in a transaction that does not commit yet.
	holder, err := db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Rollback(ctx)
	held := TransactionRequest{WorkspaceID: b.workspace, ReferenceID: "held", Type: TypeCredit, WalletID: bw.ID, Amount: 5, Currency: "USD"}
	if got, err := transactionInsert(ctx, holder, []newTransaction{{id: store.NewID("txn"), req: held, fp: held.fingerprint()}}); err != nil || len(got) != 1 {
		t.Fatalf("hold: %v %v", got, err)
	}

	l := New(db.Pool, nil)
	calls := []*acceptCall{newAcceptCall(held)}
	for i := range 5 {
		calls = append(calls, newAcceptCall(TransactionRequest{WorkspaceID: a.workspace, ReferenceID: store.NewID("a") + string(rune('a'+i)),
			Type: TypeCredit, WalletID: aw.ID, Amount: 1, Currency: "USD"}))
	}
	l.accept.mu.Lock()
	l.accept.waiting = append(l.accept.waiting, calls...)
	l.accept.flushing++
	go l.accept.flushUntilEmpty(l.flushAccepts)
	l.accept.mu.Unlock()

	// Workspace A's calls finish within half the flush timeout, while B's
	// row is still held.
	answered, cancel := context.WithTimeout(ctx, acceptFlushTimeout/2)
	defer cancel()
	for _, c := range calls[1:] {
		txn, _, err := c.wait(answered, l)
		if err != nil {
			t.Fatalf("workspace A's accept waited on workspace B's held row: %v", err)
		}
		if txn.Status != StatusPending {
			t.Errorf("accepted as %s", txn.Status)
		}
	}
	// B's own call waits for the holder, then answers the held row as its replay.
	bDone := make(chan error, 1)
	go func() {
		_, replayed, err := calls[0].wait(ctx, l)
		if err == nil && !replayed {
			t.Error("the held referenceId was stored twice")
		}
		bDone <- err
	}()
	select {
	case err := <-bDone:
		t.Fatalf("the conflicting accept did not wait for the held row: %v", err)
	default:
	}
	if err := holder.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-bDone; err != nil {
		t.Fatal(err)
	}
}
