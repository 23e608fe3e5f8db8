package giftcard

import (
	"context"

	"github.com/orbt/orbt/store"
)

// invariantQueries each return the rows that break one rule of how
// redemptions and their money agree; none from any is healthy. The
// ledger's own rules are ledger.CheckInvariants.
var invariantQueries = []store.Rule{
	{Name: "a wallet holds exactly its processing redemptions", SQL: `
		SELECT w.id, a.held - COALESCE(r.open, 0) FROM wallets w JOIN ledger_accounts a ON a.id = w.account_id
		LEFT JOIN (SELECT wallet_id, sum(amount) AS open FROM redemptions WHERE status = 'processing' GROUP BY wallet_id) r
			ON r.wallet_id = w.id
		WHERE a.held <> COALESCE(r.open, 0) LIMIT 10`},
	{Name: "a redemption's steps match its status", SQL: `
		SELECT r.id, 0 FROM redemptions r
		LEFT JOIN transactions h ON h.redemption_id = r.id AND h.type = 'redemption_hold'
		LEFT JOIN transactions c ON c.redemption_id = r.id AND c.type = 'redemption_capture'
		LEFT JOIN transactions x ON x.redemption_id = r.id AND x.type = 'redemption_release'
		WHERE NOT CASE r.status
			WHEN 'pending' THEN h.id IS NULL AND c.id IS NULL AND x.id IS NULL
			WHEN 'processing' THEN h.id IS NOT NULL AND c.id IS NULL AND x.id IS NULL
			WHEN 'completed' THEN h.id IS NOT NULL AND c.id IS NOT NULL AND x.id IS NULL
			ELSE c.id IS NULL AND (h.id IS NULL) = (x.id IS NULL) END LIMIT 10`},
	{Name: "a step moves its redemption's amount from its wallet", SQL: `
		SELECT t.id, t.amount - r.amount FROM transactions t JOIN redemptions r ON r.id = t.redemption_id
		WHERE t.amount <> r.amount OR t.wallet_id <> r.wallet_id OR t.workspace_id <> r.workspace_id LIMIT 10`},
	{Name: "a final redemption reported its outcome exactly once", SQL: `
		SELECT r.id, count(e.id) FROM redemptions r
		LEFT JOIN events e ON e.workspace_id = r.workspace_id AND e.type IN ('redemption.completed', 'redemption.failed')
			AND e.data->>'id' = r.id
		WHERE r.status IN ('completed', 'failed') GROUP BY r.id HAVING count(e.id) <> 1 LIMIT 10`},
	{Name: "each completed redemption has the one card its provider issued for its key", SQL: `
		SELECT r.id, 0 FROM redemptions r JOIN brands b ON b.id = r.brand_id AND b.provider = 'sandbox'
		LEFT JOIN sandbox_cards s ON s.idempotency_key = 'orbt-' || r.id
		WHERE (r.status = 'completed') <> (s.issued_at IS NOT NULL) LIMIT 10`},
}

// CheckInvariants scans every redemption against the ledger and the
// sandbox provider, and returns an error naming each rule some rows break.
func (s *Store) CheckInvariants(ctx context.Context) error {
	return store.CheckRules(ctx, s.pool, invariantQueries)
}
