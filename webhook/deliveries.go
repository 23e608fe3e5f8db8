package webhook

import (
	"context"
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

// claim holds the due deliveries of ids for one attempt each, so a
// duplicate task cannot send one twice at once; those not due (done,
// scheduled later, or held) are left out.
func (s *Store) claim(ctx context.Context, ids []string, hold time.Duration) ([]claimed, error) {
	rows, err := s.pool.Query(ctx, `
		WITH d AS (
			UPDATE webhook_deliveries SET locked_until = now() + $2::interval
			WHERE id = ANY ($1) AND status = 'pending' AND next_attempt_at <= now()
			  AND (locked_until IS NULL OR locked_until < now())
			RETURNING id, attempts, event_id, endpoint_id)
		SELECT d.id, d.attempts, d.event_id, ep.workspace_id, ep.id, ep.url, ep.enabled AND ep.deleted_at IS NULL,
			ep.secret, ep.secret_sealed, ep.previous_secret, ep.previous_secret_sealed,
			COALESCE(ep.previous_secret_expires_at > now(), false)
		FROM d JOIN webhook_endpoints ep ON ep.id = d.endpoint_id
		ORDER BY d.id`, ids, hold)
	if err != nil {
		return nil, fmt.Errorf("claim deliveries: %w", err)
	}
	type claimRow struct {
		claimed
		st           storedSecrets
		previousLive bool
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (claimRow, error) {
		var c claimRow
		err := r.Scan(&c.id, &c.attempts, &c.eventID, &c.workspaceID, &c.endpointID, &c.url, &c.enabled,
			&c.st.clear, &c.st.sealed, &c.st.clearPrevious, &c.st.sealedPrevious, &c.previousLive)
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("claim deliveries: %w", err)
	}
	// Each endpoint's secrets are opened once per claim, however many of
	// its deliveries it holds.
	type opened struct {
		secret   string
		previous *string
	}
	secrets := make(map[string]opened)
	claims := make([]claimed, len(list))
	for i, c := range list {
		o, done := secrets[c.endpointID]
		if !done {
			if o.secret, o.previous, err = s.open(c.endpointID, c.st); err != nil {
				return nil, fmt.Errorf("claim delivery %s: %w", c.id, err)
			}
			secrets[c.endpointID] = o
			// An endpoint of a process that did not seal (the release
			// before, during a rollout) is sealed now rather than at the
			// next start. The secrets are read already: a failure here
			// leaves that to the next start, and the delivery goes.
			if c.st.clear != nil || c.st.clearPrevious != nil {
				s.sealLegacyBatch(ctx, c.endpointID)
			}
		}
		claims[i] = c.claimed
		claims[i].secret = o.secret
		if c.previousLive {
			claims[i].previousSecret = o.previous
		}
	}
	return claims, nil
}

type claimed struct {
	id             string
	attempts       int
	eventID        string
	workspaceID    string
	endpointID     string
	url            string
	enabled        bool
	secret         string
	previousSecret *string
}

// recordedAttempt is an attempt made and what it decided for its delivery.
type recordedAttempt struct {
	Attempt
	deliveryID string
	status     string    // the delivery's status after it
	next       time.Time // when the next attempt is due, when pending
	// disableEndpoint, when set, is the endpoint the attempt disables
	// (it answered 410 Gone), for disableReason.
	disableEndpoint, disableReason string
}

// record writes attempts and their deliveries' new states in one database
// transaction: one statement for the attempts, one for the deliveries.
func (s *Store) record(ctx context.Context, attempts []recordedAttempt) error {
	if len(attempts) == 0 {
		return nil
	}
	n := len(attempts)
	ids, nums, latency, statuses := make([]string, n), make([]int32, n), make([]int32, n), make([]string, n)
	codes, errs, excerpts := make([]*int32, n), make([]*string, n), make([]*string, n)
	next := make([]time.Time, n)
	for i, a := range attempts {
		ids[i], nums[i], latency[i], statuses[i] = a.deliveryID, int32(a.Attempt.Attempt), int32(a.LatencyMS), a.status
		if a.StatusCode != nil {
			codes[i] = ptr(int32(*a.StatusCode))
		}
		errs[i], excerpts[i], next[i] = a.Error, a.ResponseExcerpt, a.next
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("record attempts: %w", err)
	}
	defer tx.Rollback(ctx)
	var b pgx.Batch
	b.Queue(`INSERT INTO webhook_attempts (delivery_id, attempt, status_code, latency_ms, error, response_excerpt)
		SELECT * FROM unnest($1::text[], $2::int[], $3::int[], $4::int[], $5::text[], $6::text[])`,
		ids, nums, codes, latency, errs, excerpts)
	b.Queue(`UPDATE webhook_deliveries d SET attempts = u.attempt, status = u.status, next_attempt_at = u.next, locked_until = NULL,
			completed_at = CASE WHEN u.status = 'pending' THEN NULL ELSE now() END
		FROM unnest($1::text[], $2::int[], $3::text[], $4::timestamptz[]) AS u(id, attempt, status, next)
		WHERE d.id = u.id`, ids, nums, statuses, next)
	for _, a := range attempts {
		if a.disableEndpoint != "" {
			b.Queue(`UPDATE webhook_endpoints SET enabled = false, disabled_reason = $2 WHERE id = $1`, a.disableEndpoint, a.disableReason)
		}
	}
	if err := tx.SendBatch(ctx, &b).Close(); err != nil {
		return fmt.Errorf("record attempts: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("record attempts: %w", err)
	}
	return nil
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
