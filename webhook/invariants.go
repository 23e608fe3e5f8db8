package webhook

import (
	"context"

	"github.com/orbt/orbt/store"
)

// invariantQueries are the rules of the webhook tables that no foreign key
// enforces (migration 0013): each returns the rows that break it.
var invariantQueries = []store.Rule{
	{Name: "a delivery's event, endpoint and workspace exist and agree", SQL: `
		SELECT d.id, 0 FROM webhook_deliveries d
		LEFT JOIN events e ON e.id = d.event_id AND e.workspace_id = d.workspace_id
		LEFT JOIN webhook_endpoints ep ON ep.id = d.endpoint_id AND ep.workspace_id = d.workspace_id
		WHERE e.id IS NULL OR ep.id IS NULL LIMIT 10`},
	{Name: "an attempt's delivery exists", SQL: `
		SELECT a.delivery_id, a.attempt FROM webhook_attempts a
		LEFT JOIN webhook_deliveries d ON d.id = a.delivery_id
		WHERE d.id IS NULL LIMIT 10`},
	{Name: "a delivery counts its attempts", SQL: `
		SELECT d.id, d.attempts FROM webhook_deliveries d
		WHERE d.attempts <> (SELECT count(*) FROM webhook_attempts a WHERE a.delivery_id = d.id) LIMIT 10`},
}

// CheckInvariants scans the webhook tables for rows that break their rules
// and returns an error wrapping store.ErrInvariant that names them.
func (s *Store) CheckInvariants(ctx context.Context) error {
	return store.CheckRules(ctx, s.pool, invariantQueries)
}
