package ledger

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Event reports a change; Data is the object it reports as it was then.
type Event struct {
	ID        string          `json:"id"`
	Type      string          `json:"type"`
	CreatedAt time.Time       `json:"createdAt"`
	Data      json.RawMessage `json:"data"`
}

// Events lists the workspace's events in the order they were written, after
// the given event id, optionally of one type.
func (l *Ledger) Events(ctx context.Context, workspaceID, eventType, after string, limit int) ([]Event, error) {
	rows, err := l.pool.Query(ctx, `SELECT id, type, created_at, data FROM events
		WHERE workspace_id = $1 AND ($2 = '' OR type = $2) AND ($3 = '' OR id > $3)
		ORDER BY id LIMIT $4`, workspaceID, eventType, after, limit)
	if err != nil {
		return nil, fmt.Errorf("list events: %w", err)
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Event, error) {
		var e Event
		return e, r.Scan(&e.ID, &e.Type, &e.CreatedAt, &e.Data)
	})
	if err != nil {
		return nil, fmt.Errorf("list events: %w", err)
	}
	return list, nil
}

// Event returns one event of the workspace.
func (l *Ledger) Event(ctx context.Context, workspaceID, id string) (Event, error) {
	var e Event
	err := l.pool.QueryRow(ctx, `SELECT id, type, created_at, data FROM events WHERE id = $1 AND workspace_id = $2`,
		id, workspaceID).Scan(&e.ID, &e.Type, &e.CreatedAt, &e.Data)
	if err != nil {
		return Event{}, fmt.Errorf("event %s: %w", id, noRows(err, ErrNotFound))
	}
	return e, nil
}
