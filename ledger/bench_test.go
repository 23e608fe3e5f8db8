package ledger

import (
	"context"
	"fmt"
	"testing"
)

// seedPending stores n pending credits spread over the given wallets with
// one statement, as accepts would have.
func (f *fixture) seedPending(b *testing.B, wallets []Wallet, n int) int64 {
	b.Helper()
	ctx := context.Background()
	ids := make([]string, len(wallets))
	for i, w := range wallets {
		ids[i] = w.ID
	}
	var lane int64
	_, err := db.Pool.Exec(ctx, `WITH ins AS (
		INSERT INTO transactions (id, workspace_id, reference_id, type, wallet_id, lane_account_id, amount, currency, fingerprint)
		SELECT 'txn_' || lpad(g::text, 12, '0') || md5(random()::text), $1, 'seed-' || md5(random()::text), 'credit', w.id, a.id, 1 + g % 100, 'USD', '\x00'
		FROM generate_series(1, $2) g
		JOIN LATERAL (SELECT ($3::text[])[1 + g % cardinality($3::text[])] AS id) w ON true
		JOIN ledger_accounts a ON a.workspace_id = $1 AND a.kind = 'partner' AND a.currency = 'USD'
		RETURNING lane_account_id, id)
		INSERT INTO pending_transactions (lane_account_id, transaction_id) SELECT * FROM ins`, f.workspace, n, ids)
	if err != nil {
		b.Fatal(err)
	}
	if err := db.Pool.QueryRow(ctx, `SELECT id FROM ledger_accounts WHERE workspace_id = $1 AND kind = 'partner'`, f.workspace).Scan(&lane); err != nil {
		b.Fatal(err)
	}
	return lane
}

func newBenchFixture(b *testing.B, wallets int) (*fixture, []Wallet) {
	t := &testing.T{}
	f := newFixture(t)
	f.fund(t, "USD", 1<<50)
	list := make([]Wallet, wallets)
	for i := range list {
		list[i] = f.wallet(t, "USD", nil)
	}
	if t.Failed() {
		b.Fatal("fixture failed")
	}
	return f, list
}

// BenchmarkApplyHotLane applies pending credits from one partner balance
// into 1,000 wallets, in groups: the worker's inner loop. Reported as
// transactions applied per second.
func BenchmarkApplyHotLane(b *testing.B) {
	for _, group := range []int{100, 1000} {
		b.Run(fmt.Sprintf("group=%d", group), func(b *testing.B) {
			f, wallets := newBenchFixture(b, 1000)
			f.l.groupMax = group
			lane := f.seedPending(b, wallets, b.N)
			b.ResetTimer()
			applied, err := f.l.ApplyLane(context.Background(), lane)
			if err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			if len(applied.Outcomes) != b.N {
				b.Fatalf("applied %d of %d", len(applied.Outcomes), b.N)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "txn/s")
		})
	}
}

// BenchmarkSubmitParallel accepts single credits from many goroutines at
// once, as the API does under load: group commit at work.
func BenchmarkSubmitParallel(b *testing.B) {
	f, wallets := newBenchFixture(b, 100)
	b.SetParallelism(32)
	var n int64
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			i++
			ref := fmt.Sprintf("bench-%p-%d", &i, i)
			if _, _, err := f.l.Submit(context.Background(), TransactionRequest{WorkspaceID: f.workspace, ReferenceID: ref,
				Type: TypeCredit, WalletID: wallets[i%len(wallets)].ID, Amount: 1, Currency: "USD"}); err != nil {
				b.Error(err)
				return
			}
		}
		_ = n
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "txn/s")
}
