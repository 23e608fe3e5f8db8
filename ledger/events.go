package ledger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/orbt/orbt/store"
)

// Event reports a change; Data is the object it reports as it was then.
type Event struct {
	ID        string          `json:"id"`
	Type      string          `json:"type"`
	CreatedAt time.Time       `json:"createdAt"`
	Data      json.RawMessage `json:"data"`
}

// Events lists the workspace's events after the given event (an id; empty
// for the first page), optionally of one type, in the order their writers
// committed: by the workspace's event sequence (see queueEvents), so an
// event that commits later always sorts after every event already shown,
// and a reader polling with ?after= (an id from a page or from a webhook)
// sees every event exactly once. An after that names no event of the
// workspace is ErrCursor.
func (l *Ledger) Events(ctx context.Context, workspaceID, eventType, after string, limit int) ([]Event, error) {
	list, err := store.List(ctx, l.reads, collectEvent, `SELECT e.id, e.type, e.created_at, e.data FROM events e
		WHERE e.workspace_id = $1 AND ($2 = '' OR e.type = $2)
		  AND ($3 = '' OR e.seq > (SELECT a.seq FROM events a WHERE a.id = $3 AND a.workspace_id = $1))
		ORDER BY e.seq LIMIT $4`, workspaceID, eventType, after, limit)
	if err != nil {
		return nil, fmt.Errorf("list events: %w", err)
	}
	if len(list) == 0 && after != "" {
		if _, err := l.Event(ctx, workspaceID, after); errors.Is(err, store.ErrNotFound) {
			return nil, fmt.Errorf("list events after %s: %w", after, ErrCursor)
		} else if err != nil {
			return nil, err
		}
	}
	return list, nil
}

// Event returns one event of the workspace.
func (l *Ledger) Event(ctx context.Context, workspaceID, id string) (Event, error) {
	var e Event
	err := l.pool.QueryRow(ctx, `SELECT id, type, created_at, data FROM events WHERE id = $1 AND workspace_id = $2`,
		id, workspaceID).Scan(&e.ID, &e.Type, &e.CreatedAt, &e.Data)
	if err != nil {
		return Event{}, fmt.Errorf("event %s: %w", id, store.NoRows(err, store.ErrNotFound))
	}
	return e, nil
}

// EventsByID reads events by id, each of the workspace at the same index
// of workspaceIDs, in one query; an id that names no event of its
// workspace is left out.
func (l *Ledger) EventsByID(ctx context.Context, workspaceIDs, ids []string) ([]Event, error) {
	rows, err := l.pool.Query(ctx, `SELECT e.id, e.type, e.created_at, e.data
		FROM unnest($1::text[], $2::text[]) AS k(ws, id) JOIN events e ON e.id = k.id AND e.workspace_id = k.ws`,
		workspaceIDs, ids)
	if err != nil {
		return nil, fmt.Errorf("events by id: %w", err)
	}
	events, err := pgx.CollectRows(rows, collectEvent)
	if err != nil {
		return nil, fmt.Errorf("events by id: %w", err)
	}
	return events, nil
}

// collectEvent reads a row of Events.
func collectEvent(r pgx.CollectableRow) (Event, error) {
	var e Event
	return e, r.Scan(&e.ID, &e.Type, &e.CreatedAt, &e.Data)
}
