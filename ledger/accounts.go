package ledger

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/orbt/orbt/store"
)

// queueAccountInsert queues the one statement that opens ledger accounts:
// a lane's partner balance and edges (created once; a later call finds them
// and leaves them be), or wallets' accounts under the ids drawn for them
// (ids[i] = 0 draws one from the sequence).
func queueAccountInsert(b *pgx.Batch, workspaceID string, ids []int64, kinds, currencies []string) {
	b.Queue(`INSERT INTO ledger_accounts (id, workspace_id, kind, currency)
		SELECT COALESCE(NULLIF(u.id, 0), nextval(pg_get_serial_sequence('ledger_accounts', 'id'))), $1, u.kind, u.currency
		FROM unnest($2::bigint[], $3::text[], $4::text[]) AS u(id, kind, currency)
		ON CONFLICT (workspace_id, kind, currency, shard) WHERE kind <> 'wallet' DO NOTHING`, workspaceID, ids, kinds, currencies)
}

// ensureLaneAccounts creates the partner balance and the ledger's edge
// accounts (funding, settlement, redemption clearing) of one workspace and
// currency when they do not exist yet.
func ensureLaneAccounts(ctx context.Context, q store.Querier, workspaceID string, cur Currency) error {
	var b pgx.Batch
	c := string(cur)
	queueAccountInsert(&b, workspaceID, []int64{0, 0, 0, 0}, []string{"partner", "funding", "settlement", "clearing"}, []string{c, c, c, c})
	if err := q.SendBatch(ctx, &b).Close(); err != nil {
		return fmt.Errorf("ensure accounts %s %s: %w", workspaceID, cur, err)
	}
	return nil
}
