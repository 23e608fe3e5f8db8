package ledger

import (
	"context"
	"strconv"

	"github.com/orbt/orbt/store"
)

// invariantQueries each return the rows that break one rule of the ledger;
// a healthy ledger returns none from any of them.
var invariantQueries = []store.Rule{
	{Name: "entries of a transaction sum to zero", SQL: `
		SELECT transaction_id, sum(amount) FROM ledger_entries GROUP BY transaction_id HAVING sum(amount) <> 0 LIMIT 10`},
	{Name: "a balance equals the sum of its entries", SQL: `
		SELECT a.id, a.balance - COALESCE(s.total, 0) FROM ledger_accounts a
		LEFT JOIN (SELECT account_id, sum(amount) AS total FROM ledger_entries GROUP BY account_id) s ON s.account_id = a.id
		WHERE a.balance <> COALESCE(s.total, 0) LIMIT 10`},
	{Name: "partner balances and wallets are never negative", SQL: `
		SELECT id, balance FROM ledger_accounts WHERE balance < 0 AND kind IN ('partner', 'wallet') LIMIT 10`},
	{Name: "only completed transactions have entries", SQL: `
		SELECT t.id, count(*) FROM transactions t JOIN ledger_entries e ON e.transaction_id = t.id
		WHERE t.status <> 'completed' GROUP BY t.id LIMIT 10`},
	{Name: "a completed transaction posts exactly one pair of entries", SQL: `
		SELECT t.id, count(e.id) FROM transactions t LEFT JOIN ledger_entries e ON e.transaction_id = t.id
		WHERE t.status = 'completed' GROUP BY t.id HAVING count(e.id) <> 2 LIMIT 10`},
	{Name: "an entry's currency is its transaction's", SQL: `
		SELECT e.id, 0 FROM ledger_entries e JOIN transactions t ON t.id = e.transaction_id
		JOIN ledger_accounts a ON a.id = e.account_id WHERE a.currency <> t.currency LIMIT 10`},
	{Name: "a campaign's counters equal its wallets' credits, debits and captures", SQL: `
		SELECT c.id, abs((c.credited - c.debited) - COALESCE(s.net, 0)) + abs(c.redeemed - COALESCE(s.captured, 0)) FROM campaigns c
		LEFT JOIN (SELECT w.campaign_id,
				sum(e.amount) FILTER (WHERE t.type IN ('credit', 'debit') AND e.account_id = w.account_id) AS net,
				sum(t.amount) FILTER (WHERE t.type = 'redemption_capture' AND e.amount < 0) AS captured
			FROM wallets w JOIN transactions t ON t.wallet_id = w.id JOIN ledger_entries e ON e.transaction_id = t.id
			WHERE w.campaign_id IS NOT NULL GROUP BY w.campaign_id) s ON s.campaign_id = c.id
		WHERE (c.credited - c.debited) <> COALESCE(s.net, 0) OR c.redeemed <> COALESCE(s.captured, 0) LIMIT 10`},
	{Name: "a wallet's held is its holds not yet captured or released", SQL: `
		SELECT a.id, a.held - COALESCE(s.open, 0) FROM wallets w JOIN ledger_accounts a ON a.id = w.account_id
		LEFT JOIN (SELECT wallet_id, sum(CASE type WHEN 'redemption_hold' THEN amount ELSE -amount END) AS open
			FROM transactions WHERE redemption_id IS NOT NULL GROUP BY wallet_id) s ON s.wallet_id = w.id
		WHERE a.held <> COALESCE(s.open, 0) LIMIT 10`},
	{Name: "only wallets hold, and a lane's clearing accounts hold what its wallets hold", SQL: `
		(SELECT workspace_id || ' ' || currency, COALESCE(c.balance, 0) - COALESCE(w.held, 0)
		FROM (SELECT workspace_id, currency, sum(held) AS held FROM ledger_accounts WHERE kind = 'wallet' GROUP BY 1, 2) w
		FULL JOIN (SELECT workspace_id, currency, sum(balance) AS balance FROM ledger_accounts WHERE kind = 'clearing' GROUP BY 1, 2) c
			USING (workspace_id, currency)
		WHERE COALESCE(c.balance, 0) <> COALESCE(w.held, 0) LIMIT 10)
		UNION ALL
		(SELECT id::text, held FROM ledger_accounts WHERE kind <> 'wallet' AND held <> 0 LIMIT 10)`},
	{Name: "each wallet's steps go through its shard's clearing account", SQL: `
		SELECT e.id, a.shard FROM ledger_entries e JOIN ledger_accounts a ON a.id = e.account_id AND a.kind = 'clearing'
		JOIN transactions t ON t.id = e.transaction_id JOIN wallets w ON w.id = t.wallet_id
		WHERE a.shard <> w.account_id % ` + edgeShardsSQL + ` LIMIT 10`},
	{Name: "a redemption is held once, then captured or released at most once", SQL: `
		SELECT redemption_id, count(*) FROM transactions WHERE redemption_id IS NOT NULL GROUP BY redemption_id
		HAVING count(*) FILTER (WHERE type = 'redemption_hold') <> 1
			OR count(*) FILTER (WHERE type IN ('redemption_capture', 'redemption_release')) > 1 LIMIT 10`},
	{Name: "a transaction is pending exactly when it is queued", SQL: `
		SELECT COALESCE(t.id, q.transaction_id), 0 FROM (SELECT id, lane_account_id FROM transactions WHERE status = 'pending') t
		FULL JOIN pending_transactions q ON q.transaction_id = t.id AND q.lane_account_id = t.lane_account_id
		WHERE t.id IS NULL OR q.transaction_id IS NULL LIMIT 10`},
	{Name: "every entry belongs to an account and a transaction", SQL: `
		SELECT e.id, 0 FROM ledger_entries e
		WHERE NOT EXISTS (SELECT 1 FROM ledger_accounts a WHERE a.id = e.account_id)
		   OR NOT EXISTS (SELECT 1 FROM transactions t WHERE t.id = e.transaction_id) LIMIT 10`},
	// Consumers, wallets and accounts hold no foreign keys (migration
	// 0014): these two rules check what the keys did, and more.
	{Name: "every consumer and account belongs to a workspace that exists", SQL: `
		(SELECT c.id, 0 FROM consumers c WHERE NOT EXISTS (SELECT 1 FROM workspaces w WHERE w.id = c.workspace_id) LIMIT 10)
		UNION ALL
		(SELECT a.id::text, 0 FROM ledger_accounts a WHERE NOT EXISTS (SELECT 1 FROM workspaces w WHERE w.id = a.workspace_id) LIMIT 10)`},
	{Name: "every wallet has a consumer and a wallet account of its own, of its workspace and currency", SQL: `
		(SELECT w.id, 0 FROM wallets w
			LEFT JOIN consumers c ON c.id = w.consumer_id AND c.workspace_id = w.workspace_id
			LEFT JOIN ledger_accounts a ON a.id = w.account_id AND a.kind = 'wallet'
				AND a.workspace_id = w.workspace_id AND a.currency = w.currency
			WHERE c.id IS NULL OR a.id IS NULL LIMIT 10)
		UNION ALL
		(SELECT a.id::text, 0 FROM ledger_accounts a
			WHERE a.kind = 'wallet' AND NOT EXISTS (SELECT 1 FROM wallets w WHERE w.account_id = a.id) LIMIT 10)`},
	// A partner balance's account belongs to a workspace that exists (the
	// rule above), so a transaction whose lane is its workspace's partner
	// balance does too.
	{Name: "every transaction belongs to a partner balance of its workspace, and its wallet and batch", SQL: `
		SELECT t.id, 0 FROM transactions t
		WHERE (t.batch_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM batches b WHERE b.id = t.batch_id AND b.workspace_id = t.workspace_id))
		   OR (t.wallet_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM wallets w WHERE w.id = t.wallet_id AND w.workspace_id = t.workspace_id))
		   OR NOT EXISTS (SELECT 1 FROM ledger_accounts a WHERE a.id = t.lane_account_id AND a.kind = 'partner'
				AND a.workspace_id = t.workspace_id AND a.currency = t.currency) LIMIT 10`},
	{Name: "every event belongs to a workspace with a partner balance", SQL: `
		SELECT e.id, 0 FROM events e
		WHERE NOT EXISTS (SELECT 1 FROM ledger_accounts a WHERE a.workspace_id = e.workspace_id AND a.kind = 'partner') LIMIT 10`},
	{Name: "a workspace's events are numbered 1 to n, and its counter says n", SQL: `
		SELECT e.workspace_id, count(*) FROM events e LEFT JOIN event_sequences s ON s.workspace_id = e.workspace_id
		GROUP BY e.workspace_id, s.last_seq HAVING count(*) <> max(e.seq) OR min(e.seq) <> 1 OR s.last_seq IS DISTINCT FROM max(e.seq) LIMIT 10`},
	{Name: "a batch's counters equal its items' states", SQL: `
		SELECT b.id, abs(b.pending - COALESCE(s.p, 0)) + abs(b.completed - COALESCE(s.c, 0)) + abs(b.failed - COALESCE(s.f, 0))
		FROM batches b LEFT JOIN (SELECT batch_id,
				count(*) FILTER (WHERE status = 'pending') AS p,
				count(*) FILTER (WHERE status = 'completed') AS c,
				count(*) FILTER (WHERE status = 'failed') AS f
			FROM transactions WHERE batch_id IS NOT NULL GROUP BY batch_id) s ON s.batch_id = b.id
		WHERE b.pending <> COALESCE(s.p, 0) OR b.completed <> COALESCE(s.c, 0) OR b.failed <> COALESCE(s.f, 0) LIMIT 10`},
	// Events are counted per transaction first: joined row by row on
	// data->>'id', the scan took minutes over 10,000 transactions.
	{Name: "a final credit, debit or funding reports its outcome exactly once", SQL: `
		SELECT t.id, COALESCE(e.n, 0) FROM transactions t
		LEFT JOIN (SELECT workspace_id, data->>'id' AS transaction_id, count(*) AS n, min(type) AS type FROM events
			WHERE type IN ('transaction.completed', 'transaction.failed') GROUP BY 1, 2) e
			ON e.workspace_id = t.workspace_id AND e.transaction_id = t.id
		WHERE t.status IN ('completed', 'failed') AND t.type IN ('credit', 'debit', 'funding')
			AND (e.n IS DISTINCT FROM 1 OR e.type <> 'transaction.' || t.status) LIMIT 10`},
	{Name: "a completed batch reports batch.completed exactly once", SQL: `
		SELECT b.id, count(e.id) FROM batches b
		LEFT JOIN events e ON e.workspace_id = b.workspace_id AND e.type = 'batch.completed' AND e.data->>'id' = b.id
		WHERE b.status = 'completed' GROUP BY b.id HAVING count(e.id) <> 1 LIMIT 10`},
}

// CheckInvariants scans the whole ledger and returns an error naming every
// rule that some rows break. Tests and the load test call it after work.
func (l *Ledger) CheckInvariants(ctx context.Context) error {
	return checkInvariants(ctx, l.pool)
}

func checkInvariants(ctx context.Context, q store.Querier) error {
	return store.CheckRules(ctx, q, invariantQueries)
}

var edgeShardsSQL = strconv.Itoa(edgeShards)
