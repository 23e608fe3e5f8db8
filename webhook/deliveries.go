package webhook

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/orbt/orbt/ledger"
	"github.com/orbt/orbt/store"
)

// Delivery is one event sent (or to be sent) to one endpoint.
type Delivery struct {
	ID            string     `json:"id"`
	EventID       string     `json:"eventId"`
	EndpointID    string     `json:"endpointId"`
	Status        string     `json:"status"`
	Attempts      int        `json:"attemptCount"`
	NextAttemptAt *time.Time `json:"nextAttemptAt"`
	CreatedAt     time.Time  `json:"createdAt"`
	CompletedAt   *time.Time `json:"completedAt"`
	History       []Attempt  `json:"attempts"`
}

// Attempt is one HTTP request made for a delivery.
type Attempt struct {
	Attempt         int       `json:"attempt"`
	StatusCode      *int      `json:"statusCode"`
	LatencyMS       int       `json:"latencyMs"`
	Error           *string   `json:"error"`
	ResponseExcerpt *string   `json:"responseExcerpt"`
	CreatedAt       time.Time `json:"createdAt"`
}

// Delivery statuses.
const (
	DeliveryPending   = "pending"
	DeliverySucceeded = "succeeded"
	DeliveryFailed    = "failed"
)

// Deliveries lists an endpoint's deliveries, newest first, with their
// attempts. Delivery ids are time-ordered, so the list sorts and pages by
// the same key, the id.
func (s *Store) Deliveries(ctx context.Context, workspaceID, endpointID, cursor string, limit int) ([]Delivery, error) {
	if _, err := s.Endpoint(ctx, workspaceID, endpointID); err != nil {
		return nil, err
	}
	list, err := store.List(ctx, s.reads, collectDelivery, `
		SELECT d.id, d.event_id, d.endpoint_id, d.status, d.attempts,
			CASE WHEN d.status = 'pending' THEN d.next_attempt_at END, d.created_at, d.completed_at,
			COALESCE((SELECT json_agg(json_build_object('attempt', a.attempt, 'statusCode', a.status_code,
				'latencyMs', a.latency_ms, 'error', a.error, 'responseExcerpt', a.response_excerpt,
				'createdAt', a.created_at) ORDER BY a.attempt)
				FROM webhook_attempts a WHERE a.delivery_id = d.id), '[]')
		FROM webhook_deliveries d
		WHERE d.endpoint_id = $1 AND d.workspace_id = $2 AND ($3 = '' OR d.id < $3)
		ORDER BY d.id DESC LIMIT $4`, endpointID, workspaceID, cursor, limit)
	if err != nil {
		return nil, fmt.Errorf("list deliveries: %w", err)
	}
	return list, nil
}

// QueueFanout queues on b the statement that creates the deliveries of new
// events, one per event and per enabled endpoint subscribed to its type,
// and appends the new deliveries' ids to *ids when b runs. The ledger runs
// it in the database transaction that writes the events (an outbox: an
// event that commits is an event that will be delivered); it is this
// package's, which owns deliveries, handed to the ledger as its Fanout.
func QueueFanout(b *pgx.Batch, events []ledger.EventRef, ids *[]string) {
	queueFanout(b, events, "", ids)
}

// queueFanout is the one statement that creates deliveries: to every
// subscribed endpoint, or with endpointID to that one endpoint whatever it
// subscribes to (a redelivery the partner asked for). Ids come from
// orbt_new_id, time-ordered like every id.
func queueFanout(b *pgx.Batch, events []ledger.EventRef, endpointID string, ids *[]string) {
	n := len(events)
	eventIDs, ws, types := make([]string, n), make([]string, n), make([]string, n)
	for i, e := range events {
		eventIDs[i], ws[i], types[i] = e.ID, e.WorkspaceID, e.Type
	}
	b.Queue(`INSERT INTO webhook_deliveries (id, workspace_id, event_id, endpoint_id)
		SELECT orbt_new_id('whd'), e.ws, e.id, ep.id
		FROM unnest($1::text[], $2::text[], $3::text[]) AS e(id, ws, type)
		JOIN webhook_endpoints ep ON ep.workspace_id = e.ws AND ep.enabled AND ep.deleted_at IS NULL
			AND ($4 = '' OR ep.id = $4) AND ($4 <> '' OR e.type = ANY (ep.events))
		RETURNING id`, eventIDs, ws, types, endpointID).Query(func(rows pgx.Rows) error {
		got, err := pgx.CollectRows(rows, pgx.RowTo[string])
		*ids = append(*ids, got...)
		return err
	})
}

// Redeliver creates a fresh delivery of an event (which the caller read
// from the ledger, its owner) to each enabled endpoint subscribed to its
// type, or to the one endpoint named. The event keeps its id, so receivers
// can deduplicate by webhook-id.
func (s *Store) Redeliver(ctx context.Context, event ledger.EventRef, endpointID string) ([]string, error) {
	var b pgx.Batch
	ids := []string{}
	queueFanout(&b, []ledger.EventRef{event}, endpointID, &ids)
	if err := s.pool.SendBatch(ctx, &b).Close(); err != nil {
		return nil, fmt.Errorf("redeliver %s: %w", event.ID, err)
	}
	return ids, nil
}

// Due returns deliveries whose next attempt is overdue by more than grace
// and that nobody holds: what the relay enqueues again.
func (s *Store) Due(ctx context.Context, grace time.Duration, limit int) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT id FROM webhook_deliveries
		WHERE status = 'pending' AND next_attempt_at < now() - $1::interval
		  AND (locked_until IS NULL OR locked_until < now())
		ORDER BY next_attempt_at LIMIT $2`, grace, limit)
	if err != nil {
		return nil, fmt.Errorf("due deliveries: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("due deliveries: %w", err)
	}
	return ids, nil
}

// claim holds a due delivery for one attempt, so a duplicate task cannot
// send it twice at once. errNotDue means there is nothing to send now.
func (s *Store) claim(ctx context.Context, id string, hold time.Duration) (claimed, error) {
	var (
		c            claimed
		st           storedSecrets
		previousLive bool
	)
	err := s.pool.QueryRow(ctx, `
		WITH d AS (
			UPDATE webhook_deliveries SET locked_until = now() + $2::interval
			WHERE id = $1 AND status = 'pending' AND next_attempt_at <= now()
			  AND (locked_until IS NULL OR locked_until < now())
			RETURNING id, attempts, event_id, endpoint_id)
		SELECT d.attempts, d.event_id, ep.workspace_id, ep.id, ep.url, ep.enabled AND ep.deleted_at IS NULL,
			ep.secret, ep.secret_sealed, ep.previous_secret, ep.previous_secret_sealed,
			COALESCE(ep.previous_secret_expires_at > now(), false)
		FROM d JOIN webhook_endpoints ep ON ep.id = d.endpoint_id`,
		id, hold).Scan(&c.attempts, &c.eventID, &c.workspaceID,
		&c.endpointID, &c.url, &c.enabled, &st.clear, &st.sealed, &st.clearPrevious, &st.sealedPrevious, &previousLive)
	if errors.Is(err, pgx.ErrNoRows) {
		return claimed{}, errNotDue
	}
	if err != nil {
		return claimed{}, fmt.Errorf("claim delivery %s: %w", id, err)
	}
	var previous *string
	if c.secret, previous, err = s.open(c.endpointID, st); err != nil {
		return claimed{}, fmt.Errorf("claim delivery %s: %w", id, err)
	}
	if previousLive {
		c.previousSecret = previous
	}
	// An endpoint of a process that did not seal (the release before,
	// during a rollout) is sealed now rather than at the next start. The
	// secrets are read already: a failure here leaves that to the next
	// start, and the delivery goes.
	if st.clear != nil || st.clearPrevious != nil {
		s.sealLegacyBatch(ctx, c.endpointID)
	}
	return c, nil
}

var errNotDue = errors.New("delivery not due")

type claimed struct {
	attempts       int
	eventID        string
	workspaceID    string
	endpointID     string
	url            string
	enabled        bool
	secret         string
	previousSecret *string
}

// record stores an attempt and the delivery's new state in one transaction.
func (s *Store) record(ctx context.Context, deliveryID string, a Attempt, status string, next time.Time, disableEndpoint string, reason string) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("record attempt: %w", err)
	}
	defer tx.Rollback(ctx)
	var b pgx.Batch
	b.Queue(`INSERT INTO webhook_attempts (delivery_id, attempt, status_code, latency_ms, error, response_excerpt)
		VALUES ($1, $2, $3, $4, $5, $6)`, deliveryID, a.Attempt, a.StatusCode, a.LatencyMS, a.Error, a.ResponseExcerpt)
	b.Queue(`UPDATE webhook_deliveries SET attempts = $2, status = $3, next_attempt_at = $4, locked_until = NULL,
			completed_at = CASE WHEN $3 = 'pending' THEN NULL ELSE now() END
		WHERE id = $1`, deliveryID, a.Attempt, status, next)
	if disableEndpoint != "" {
		b.Queue(`UPDATE webhook_endpoints SET enabled = false, disabled_reason = $2 WHERE id = $1`, disableEndpoint, reason)
	}
	if err := tx.SendBatch(ctx, &b).Close(); err != nil {
		return fmt.Errorf("record attempt: %w", err)
	}
	return tx.Commit(ctx)
}

// collectDelivery reads a row of Deliveries.
func collectDelivery(r pgx.CollectableRow) (Delivery, error) {
	var d Delivery
	err := r.Scan(&d.ID, &d.EventID, &d.EndpointID, &d.Status, &d.Attempts, &d.NextAttemptAt,
		&d.CreatedAt, &d.CompletedAt, &d.History)
	return d, err
}

// Backlog is how many deliveries are still to be made, and how far past
// its due time the most overdue one is (0 with none due).
func (s *Store) Backlog(ctx context.Context) (int64, time.Duration, error) {
	return store.Backlog(ctx, s.pool, `SELECT count(*), COALESCE(EXTRACT(EPOCH FROM now() - min(next_attempt_at)
		FILTER (WHERE next_attempt_at < now())), 0) FROM webhook_deliveries WHERE status = 'pending'`)
}
