package ledger

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/orbt/orbt/store"
)

// ensureConsumers stands in for the workspace store's resolver: the same
// statement shape, against the same real table.
func ensureConsumers(ctx context.Context, tx pgx.Tx, workspaceID string, externalIDs []string) (map[string]string, error) {
	ids := make([]string, len(externalIDs))
	for i := range ids {
		ids[i] = store.NewID("csm")
	}
	if _, err := tx.Exec(ctx, `INSERT INTO consumers (id, workspace_id, external_id)
		SELECT * FROM unnest($1::text[], array_fill($2::text, ARRAY[cardinality($1)]), $3::text[])
		ON CONFLICT (workspace_id, external_id) DO NOTHING`, ids, workspaceID, externalIDs); err != nil {
		return nil, err
	}
	rows, err := tx.Query(ctx, `SELECT external_id, id FROM consumers WHERE workspace_id = $1 AND external_id = ANY ($2)`,
		workspaceID, externalIDs)
	if err != nil {
		return nil, err
	}
	found := map[string]string{}
	for rows.Next() {
		var ext, id string
		if err := rows.Scan(&ext, &id); err != nil {
			return nil, err
		}
		found[ext] = id
	}
	return found, rows.Err()
}

func (f *fixture) count(t *testing.T, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := db.Pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func (f *fixture) drainBatch(t *testing.T, sub Submitted) Batch {
	t.Helper()
	for _, lane := range sub.Lanes {
		if _, err := f.l.ApplyLane(context.Background(), lane); err != nil {
			t.Fatal(err)
		}
	}
	b, err := f.l.Batch(context.Background(), f.workspace, sub.Batch.ID)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A batch mixing named wallets, new consumers, campaign wallets and a
// failing item stores everything at once, applies every item, fails only the
// failing one, and completes with one batch.completed event.
func TestBatchCreatesConsumersAppliesItemsAndCompletes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	f.fund(t, "USD", 10_000)
	named := f.wallet(t, "USD", nil)
	budget := int64(300)
	campaign, err := f.l.CreateCampaign(ctx, f.workspace, "USD", CampaignFields{Name: ptrTo("spring"), Budget: &budget})
	if err != nil {
		t.Fatal(err)
	}
	req := BatchRequest{WorkspaceID: f.workspace, ReferenceID: "payout-1", Items: []BatchItem{
		{ReferenceID: "i0", Type: TypeCredit, WalletID: named.ID, Amount: 100, Currency: "USD"},
		{ReferenceID: "i1", Type: TypeCredit, ConsumerExternalID: "ada", Amount: 200, Currency: "USD"},
		{ReferenceID: "i2", Type: TypeCredit, ConsumerExternalID: "ada", Amount: 50, Currency: "USD"},
		{ReferenceID: "i3", Type: TypeCredit, ConsumerExternalID: "ada", CampaignID: campaign.ID, Amount: 250, Currency: "USD"},
		{ReferenceID: "i4", Type: TypeCredit, ConsumerExternalID: "bob", CampaignID: campaign.ID, Amount: 100, Currency: "USD"}, // over budget
		{ReferenceID: "i5", Type: TypeDebit, ConsumerExternalID: "cyd", Amount: 1, Currency: "USD"},                             // empty wallet
	}}
	sub, err := f.l.SubmitBatch(ctx, req, ensureConsumers)
	if err != nil {
		t.Fatal(err)
	}
	if sub.Batch.Status != BatchProcessing || sub.Batch.Counts != (BatchCounts{Total: 6, Pending: 6}) || len(sub.Lanes) != 1 {
		t.Fatalf("submitted %+v lanes %v", sub.Batch, sub.Lanes)
	}
	if n := f.count(t, `SELECT count(*) FROM consumers WHERE workspace_id = $1 AND external_id IN ('ada', 'bob', 'cyd')`, f.workspace); n != 3 {
		t.Errorf("%d consumers created, want 3", n)
	}
	if n := f.count(t, `SELECT count(*) FROM wallets w JOIN consumers c ON c.id = w.consumer_id WHERE c.external_id = 'ada' AND c.workspace_id = $1`, f.workspace); n != 2 {
		t.Errorf("ada has %d wallets, want a standard and a campaign one", n)
	}

	b := f.drainBatch(t, sub)
	if b.Status != BatchCompleted || b.CompletedAt == nil || b.Counts != (BatchCounts{Total: 6, Completed: 4, Failed: 2}) {
		t.Fatalf("batch %+v", b)
	}
	reasons := map[string]string{}
	rows, _ := db.Pool.Query(ctx, `SELECT reference_id, COALESCE(failure_reason, '') FROM transactions WHERE batch_id = $1`, b.ID)
	for rows.Next() {
		var ref, reason string
		rows.Scan(&ref, &reason)
		reasons[ref] = reason
	}
	want := map[string]string{"i0": "", "i1": "", "i2": "", "i3": "", "i4": ReasonCampaignBudgetExceeded, "i5": ReasonInsufficientFunds}
	if fmt.Sprint(reasons) != fmt.Sprint(want) {
		t.Errorf("outcomes %v, want %v", reasons, want)
	}
	if got := f.partner(t, "USD"); got != 10_000-600 {
		t.Errorf("partner balance %d, want %d", got, 10_000-600)
	}
	if n := f.count(t, `SELECT count(*) FROM events WHERE workspace_id = $1 AND type = 'batch.completed'`, f.workspace); n != 1 {
		t.Errorf("%d batch.completed events, want 1", n)
	}
	assertInvariants(t)
}

// The same batch twice is stored once; the same referenceId with other
// items is a conflict; an item reusing an earlier referenceId pays once, and
// with another payload refuses the whole batch, leaving nothing behind.
func TestBatchIdempotency(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	f.fund(t, "USD", 10_000)
	w := f.wallet(t, "USD", nil)
	single := f.submit(t, TypeCredit, w.ID, 10, "USD")
	items := []BatchItem{
		{ReferenceID: single.ReferenceID, Type: TypeCredit, WalletID: w.ID, Amount: 10, Currency: "USD"},
		{ReferenceID: "new-1", Type: TypeCredit, WalletID: w.ID, Amount: 20, Currency: "USD"},
	}
	req := BatchRequest{WorkspaceID: f.workspace, ReferenceID: "b1", Items: items}
	first, err := f.l.SubmitBatch(ctx, req, ensureConsumers)
	if err != nil {
		t.Fatal(err)
	}
	if first.Batch.Counts != (BatchCounts{Total: 2, Pending: 1, Skipped: 1}) {
		t.Fatalf("counts %+v", first.Batch.Counts)
	}
	again, err := f.l.SubmitBatch(ctx, req, ensureConsumers)
	if err != nil || !again.Replayed || again.Batch.ID != first.Batch.ID {
		t.Fatalf("replay: %+v, %v", again, err)
	}
	other := req
	other.Items = []BatchItem{items[1]}
	var conflict *ConflictError
	if _, err := f.l.SubmitBatch(ctx, other, ensureConsumers); !errors.As(err, &conflict) {
		t.Fatalf("other items under the same batch referenceId: %v", err)
	}

	changed := BatchRequest{WorkspaceID: f.workspace, ReferenceID: "b2", Items: []BatchItem{
		{ReferenceID: "fresh", Type: TypeCredit, ConsumerExternalID: "zed", Amount: 5, Currency: "USD"},
		{ReferenceID: "new-1", Type: TypeCredit, WalletID: w.ID, Amount: 21, Currency: "USD"},
	}}
	var itemsErr *BatchItemsError
	_, err = f.l.SubmitBatch(ctx, changed, ensureConsumers)
	if !errors.As(err, &itemsErr) || !itemsErr.Conflict || len(itemsErr.Items) != 1 || itemsErr.Items[0].Item != 1 {
		t.Fatalf("reused item referenceId with another amount: %v", err)
	}
	if n := f.count(t, `SELECT count(*) FROM consumers WHERE workspace_id = $1 AND external_id = 'zed'`, f.workspace); n != 0 {
		t.Error("a refused batch left a consumer behind")
	}
	if n := f.count(t, `SELECT count(*) FROM batches WHERE workspace_id = $1 AND reference_id = 'b2'`, f.workspace); n != 0 {
		t.Error("a refused batch was stored")
	}

	f.apply(t, single)
	b := f.drainBatch(t, first)
	if b.Status != BatchCompleted || b.Counts.Completed != 1 {
		t.Errorf("batch %+v", b)
	}
	if got := f.balance(t, w.ID); got != 30 {
		t.Errorf("balance %d, want 30: the reused referenceId must pay once", got)
	}
	assertInvariants(t)
}

// Items naming a wallet or campaign that does not exist, or the same
// referenceId twice, refuse the batch with every such item named.
func TestBatchRefusesItemsNamingWhatDoesNotExist(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	f.fund(t, "USD", 100)
	w := f.wallet(t, "USD", nil)
	_, err := f.l.SubmitBatch(ctx, BatchRequest{WorkspaceID: f.workspace, ReferenceID: "bad", Items: []BatchItem{
		{ReferenceID: "a", Type: TypeCredit, WalletID: w.ID, Amount: 1, Currency: "USD"},
		{ReferenceID: "b", Type: TypeCredit, WalletID: "wal_nope", Amount: 1, Currency: "USD"},
		{ReferenceID: "c", Type: TypeCredit, ConsumerExternalID: "x", CampaignID: "cmp_nope", Amount: 1, Currency: "USD"},
	}}, ensureConsumers)
	var itemsErr *BatchItemsError
	if !errors.As(err, &itemsErr) || len(itemsErr.Items) != 2 || itemsErr.Items[0].Item != 1 || itemsErr.Items[1].Field != "campaignId" {
		t.Fatalf("got %v", err)
	}
	_, err = f.l.SubmitBatch(ctx, BatchRequest{WorkspaceID: f.workspace, ReferenceID: "dup", Items: []BatchItem{
		{ReferenceID: "a", Type: TypeCredit, WalletID: w.ID, Amount: 1, Currency: "USD"},
		{ReferenceID: "a", Type: TypeCredit, WalletID: w.ID, Amount: 1, Currency: "USD"},
	}}, ensureConsumers)
	if !errors.As(err, &itemsErr) || itemsErr.Items[0].Item != 1 {
		t.Fatalf("duplicate referenceIds: %v", err)
	}
	if n := f.count(t, `SELECT count(*) FROM transactions WHERE workspace_id = $1 AND type <> 'funding'`, f.workspace); n != 0 {
		t.Errorf("%d transactions stored by refused batches", n)
	}
}

// Batches over two currencies race single transactions and each other on
// the same wallets and consumers, applied by concurrent groups: every batch
// completes exactly once, every consumer and wallet exists once, and every
// invariant holds.
func TestConcurrentBatchesAndSinglesKeepInvariants(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	f.l.groupMax = 13
	f.fund(t, "USD", 50_000)
	f.fund(t, "EUR", 50_000)
	usd, eur := f.wallet(t, "USD", nil), f.wallet(t, "EUR", nil)
	var wg sync.WaitGroup
	lanes := sync.Map{}
	for g := range 6 {
		wg.Go(func() {
			var items []BatchItem
			for i := range 60 {
				cur, wallet := Currency("USD"), usd.ID
				if i%2 == 1 {
					cur, wallet = "EUR", eur.ID
				}
				it := BatchItem{ReferenceID: fmt.Sprintf("g%d-%d", g, i), Type: TypeCredit, Amount: int64(1 + i), Currency: cur}
				if i%3 == 0 {
					it.ConsumerExternalID = fmt.Sprintf("shared-%d", i%9) // the same consumers from every goroutine
				} else {
					it.WalletID = wallet
				}
				if i%7 == 0 {
					it.Type = TypeDebit
				}
				items = append(items, it)
			}
			sub, err := f.l.SubmitBatch(ctx, BatchRequest{WorkspaceID: f.workspace, ReferenceID: fmt.Sprintf("batch-%d", g), Items: items}, ensureConsumers)
			if err != nil {
				t.Error(err)
				return
			}
			for _, lane := range sub.Lanes {
				lanes.Store(lane, true)
				if _, err := f.l.ApplyLane(ctx, lane); err != nil {
					t.Error(err)
				}
			}
		})
		wg.Go(func() {
			for range 40 {
				w, cur := usd.ID, Currency("USD")
				if g%2 == 0 {
					w, cur = eur.ID, "EUR"
				}
				txn := f.submit(t, TypeCredit, w, 3, cur)
				if _, err := f.l.ApplyLane(ctx, txn.LaneID()); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	lanes.Range(func(k, _ any) bool {
		if _, err := f.l.ApplyLane(ctx, k.(int64)); err != nil {
			t.Error(err)
		}
		return true
	})
	if n := f.count(t, `SELECT count(*) FROM batches WHERE workspace_id = $1 AND status <> 'completed'`, f.workspace); n != 0 {
		t.Errorf("%d batches not completed", n)
	}
	if n := f.count(t, `SELECT count(*) FROM consumers WHERE workspace_id = $1 AND external_id LIKE 'shared-%'`, f.workspace); n != 3 {
		t.Errorf("%d shared consumers, want 3", n)
	}
	if n := f.count(t, `SELECT count(*) FROM wallets w JOIN consumers c ON c.id = w.consumer_id
		WHERE c.workspace_id = $1 AND c.external_id LIKE 'shared-%'`, f.workspace); n != 6 {
		t.Errorf("%d wallets for shared consumers, want 6 (one per currency each)", n)
	}
	if n := f.count(t, `SELECT count(*) FROM ledger_accounts a WHERE a.workspace_id = $1 AND a.kind = 'wallet'
		AND NOT EXISTS (SELECT 1 FROM wallets w WHERE w.account_id = a.id)`, f.workspace); n != 0 {
		t.Errorf("%d wallet accounts without a wallet", n)
	}
	assertInvariants(t)
}

func ptrTo[T any](v T) *T { return &v }
