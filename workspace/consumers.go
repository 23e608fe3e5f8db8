package workspace

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/orbt/orbt/store"
)

// Consumer is one of a partner's end users.
type Consumer struct {
	ID string `json:"id"`
	// Number is the consumer's integer id on the Orbt-compatible partner
	// API (its customerId), from one sequence across workspaces.
	Number     int64             `json:"number"`
	ExternalID string            `json:"externalId"`
	Email      *string           `json:"email"`
	Name       *string           `json:"name"`
	Metadata   map[string]string `json:"metadata"`
	CreatedAt  time.Time         `json:"createdAt"`
}

const consumerColumns = `id, number, external_id, email, name, metadata, created_at`

func scanConsumer(row pgx.Row) (Consumer, error) {
	var c Consumer
	err := row.Scan(&c.ID, &c.Number, &c.ExternalID, &c.Email, &c.Name, &c.Metadata, &c.CreatedAt)
	return c, err
}

// CreateConsumer creates a consumer; externalId is unique per workspace.
func (s *Store) CreateConsumer(ctx context.Context, workspaceID string, c Consumer) (Consumer, error) {
	var b pgx.Batch
	var created []Consumer
	queueConsumerInsert(&b, workspaceID, []Consumer{c}, &created)
	if err := s.pool.SendBatch(ctx, &b).Close(); err != nil {
		return Consumer{}, fmt.Errorf("create consumer: %w", err)
	}
	if len(created) == 0 {
		return Consumer{}, ErrConsumerExists
	}
	return created[0], nil
}

// queueConsumerInsert queues the one statement that creates consumers, one
// or many: a consumer whose externalId the workspace already has is left as
// it is and not returned. The created ones fill *created when b runs.
func queueConsumerInsert(b *pgx.Batch, workspaceID string, consumers []Consumer, created *[]Consumer) {
	n := len(consumers)
	ids, externalIDs, emails, names, metas := make([]string, n), make([]string, n), make([]*string, n), make([]*string, n), make([]map[string]string, n)
	for i, c := range consumers {
		ids[i], externalIDs[i], emails[i], names[i], metas[i] = store.NewID("csm"), c.ExternalID, c.Email, c.Name, c.Metadata
		if metas[i] == nil {
			metas[i] = map[string]string{}
		}
	}
	b.Queue(`INSERT INTO consumers (id, workspace_id, external_id, email, name, metadata)
		SELECT u.id, $1, u.external_id, u.email, u.name, u.metadata
		FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::jsonb[]) AS u(id, external_id, email, name, metadata)
		-- One order for every multi-row insert, so two never wait on each
		-- other's keys in a cycle.
		ORDER BY u.external_id
		ON CONFLICT (workspace_id, external_id) DO NOTHING
		RETURNING `+consumerColumns, workspaceID, ids, externalIDs, emails, names, metas).Query(func(rows pgx.Rows) error {
		var err error
		*created, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (Consumer, error) { return scanConsumer(r) })
		return err
	})
}

// Consumer returns one consumer of the workspace.
func (s *Store) Consumer(ctx context.Context, workspaceID, id string) (Consumer, error) {
	return s.oneConsumer(ctx, workspaceID, "id", id)
}

// oneConsumer reads the workspace's consumer whose column (a unique one)
// holds value.
func (s *Store) oneConsumer(ctx context.Context, workspaceID, column string, value any) (Consumer, error) {
	c, err := scanConsumer(s.pool.QueryRow(ctx,
		`SELECT `+consumerColumns+` FROM consumers WHERE workspace_id = $1 AND `+column+` = $2`, workspaceID, value))
	if errors.Is(err, pgx.ErrNoRows) {
		return Consumer{}, fmt.Errorf("consumer %v: %w", value, ErrConsumerNotFound)
	}
	if err != nil {
		return Consumer{}, fmt.Errorf("consumer %v: %w", value, err)
	}
	return c, nil
}

// Consumers lists the workspace's consumers, newest first, optionally only
// the one with an externalId.
func (s *Store) Consumers(ctx context.Context, workspaceID, externalID, cursor string, limit int) ([]Consumer, error) {
	// A lookup by externalId follows a create (a 409 consumer_exists, say):
	// the primary answers it, never a replica that may not have the row yet.
	reads := s.reads
	if externalID != "" {
		reads = reads.Primary()
	}
	return s.listConsumers(ctx, reads, `WHERE workspace_id = $1 AND ($2 = '' OR external_id = $2) AND ($3 = '' OR id < $3)
		ORDER BY id DESC LIMIT $4`, workspaceID, externalID, cursor, limit)
}

// SearchConsumers finds the workspace's consumers a person looks up by
// what they know of them: the externalId exactly, or the email address
// (any case). Both are indexed lookups.
func (s *Store) SearchConsumers(ctx context.Context, workspaceID, q string, limit int) ([]Consumer, error) {
	return s.listConsumers(ctx, s.reads, `WHERE workspace_id = $1 AND (external_id = $2 OR (email IS NOT NULL AND lower(email) = lower($2)))
		ORDER BY id DESC LIMIT $3`, workspaceID, q, limit)
}

// listConsumers reads the consumers a WHERE … ORDER BY … LIMIT clause picks.
func (s *Store) listConsumers(ctx context.Context, reads *store.Reads, clauses string, args ...any) ([]Consumer, error) {
	list, err := store.List(ctx, reads, func(r pgx.CollectableRow) (Consumer, error) { return scanConsumer(r) }, `SELECT `+consumerColumns+` FROM consumers `+clauses, args...)
	if err != nil {
		return nil, fmt.Errorf("list consumers: %w", err)
	}
	return list, nil
}

// ConsumerUpdate holds the fields PATCH may change; nil leaves one as it is.
type ConsumerUpdate struct {
	Email    *string
	Name     *string
	Metadata map[string]string
}

// UpdateConsumer changes the given fields of a consumer.
func (s *Store) UpdateConsumer(ctx context.Context, workspaceID, id string, u ConsumerUpdate) (Consumer, error) {
	c, err := scanConsumer(s.pool.QueryRow(ctx, `UPDATE consumers SET
			email = COALESCE($3, email), name = COALESCE($4, name), metadata = COALESCE($5, metadata)
		WHERE id = $1 AND workspace_id = $2 RETURNING `+consumerColumns,
		id, workspaceID, u.Email, u.Name, u.Metadata))
	if errors.Is(err, pgx.ErrNoRows) {
		return Consumer{}, fmt.Errorf("consumer %s: %w", id, ErrConsumerNotFound)
	}
	if err != nil {
		return Consumer{}, fmt.Errorf("update consumer %s: %w", id, err)
	}
	return c, nil
}

// EnsureConsumers returns the id of each externalId's consumer, creating the
// missing ones (with no email, name or metadata) in tx: one statement for
// any number of them. Bulk payouts call it inside their own transaction so
// a refused batch leaves no consumer behind.
func EnsureConsumers(ctx context.Context, tx pgx.Tx, workspaceID string, externalIDs []string) (map[string]string, error) {
	consumers := make([]Consumer, len(externalIDs))
	for i, ext := range externalIDs {
		consumers[i].ExternalID = ext
	}
	var b pgx.Batch
	var created []Consumer
	queueConsumerInsert(&b, workspaceID, consumers, &created)
	found := make(map[string]string, len(externalIDs))
	b.Queue(`SELECT external_id, id FROM consumers WHERE workspace_id = $1 AND external_id = ANY ($2)`,
		workspaceID, externalIDs).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var ext, id string
			if err := rows.Scan(&ext, &id); err != nil {
				return err
			}
			found[ext] = id
		}
		return rows.Err()
	})
	if err := tx.SendBatch(ctx, &b).Close(); err != nil {
		return nil, fmt.Errorf("ensure consumers: %w", err)
	}
	if len(found) != len(externalIDs) {
		return nil, fmt.Errorf("ensure consumers: found %d of %d", len(found), len(externalIDs))
	}
	return found, nil
}

// ConsumerByNumber returns the workspace's consumer with an integer id.
func (s *Store) ConsumerByNumber(ctx context.Context, workspaceID string, number int64) (Consumer, error) {
	return s.oneConsumer(ctx, workspaceID, "number", number)
}

// ConsumersByNumber lists the workspace's consumers in the order of their
// integer ids, skipping the first offset: the numbered pages of the
// Orbt-compatible API.
func (s *Store) ConsumersByNumber(ctx context.Context, workspaceID string, offset int64, limit int) ([]Consumer, error) {
	return s.listConsumers(ctx, s.reads, `WHERE workspace_id = $1 ORDER BY number OFFSET $2 LIMIT $3`, workspaceID, offset, limit)
}

// ConsumerForEmail returns the workspace's consumer with an email address
// (compared case-insensitively; the oldest of several), creating it with
// that name when there is none: Orbt's partner API knows a customer by its
// email. A consumer it creates takes "email:" and the lower-cased address
// as its externalId: one no native consumer has by accident, and unique,
// so two concurrent first calls for one address make one consumer.
func (s *Store) ConsumerForEmail(ctx context.Context, workspaceID, email, name string) (Consumer, error) {
	key := strings.ToLower(email)
	externalID := EmailExternalIDPrefix + key
	find := func() (Consumer, error) {
		// The consumer with the address first; then the one this made for
		// it (whose email a PATCH may have changed since).
		return scanConsumer(s.pool.QueryRow(ctx, `SELECT `+consumerColumns+` FROM consumers
			WHERE workspace_id = $1 AND ((email IS NOT NULL AND lower(email) = $2) OR external_id = $3)
			ORDER BY (email IS NOT NULL AND lower(email) = $2) DESC, number LIMIT 1`, workspaceID, key, externalID))
	}
	c, err := find()
	if err == nil {
		return c, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return Consumer{}, fmt.Errorf("consumer for email: %w", err)
	}
	c, err = s.CreateConsumer(ctx, workspaceID, Consumer{ExternalID: externalID, Email: &email, Name: &name})
	if errors.Is(err, ErrConsumerExists) {
		if c, err = find(); err != nil {
			return Consumer{}, fmt.Errorf("consumer for email: %w", err)
		}
	}
	return c, err
}

// EmailExternalIDPrefix starts the externalId of a consumer made by
// ConsumerForEmail.
const EmailExternalIDPrefix = "email:"
