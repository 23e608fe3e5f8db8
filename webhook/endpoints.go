// Package webhook owns webhook endpoints and the delivery of events to them:
// signed, retried on a schedule, every attempt recorded, and no request ever
// sent to an address the operator has not allowed. The ledger writes each
// event's deliveries in the transaction that writes the event; everything
// after that happens here.
package webhook

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/orbt/orbt/seal"
	"github.com/orbt/orbt/store"
)

// Sentinel errors. An endpoint that does not exist is store.ErrNotFound.
var (
	ErrInvalidURL  = errors.New("invalid webhook URL")
	ErrEventFilter = errors.New("unknown event type")
)

// EventTypes are the events an endpoint may subscribe to.
var EventTypes = []string{
	"transaction.completed", "transaction.failed", "batch.completed", "redemption.completed", "redemption.failed",
}

// rotationOverlap is how long the old secret keeps signing after a rotation,
// so receivers can switch without dropping a delivery.
const rotationOverlap = 24 * time.Hour

// Store reads and writes endpoints and deliveries.
type Store struct {
	pool *pgxpool.Pool
	// reads serves the lists that may lag (a replica's, when set).
	reads *store.Reads
	// sealer seals endpoint secrets at rest.
	sealer       *seal.Sealer
	allowPrivate bool
}

// NewStore returns a Store whose endpoint secrets rest sealed by sealer;
// allowPrivate lets endpoints point at private and loopback addresses
// (development and tests).
func NewStore(pool *pgxpool.Pool, sealer *seal.Sealer, allowPrivate bool) *Store {
	return &Store{pool: pool, reads: store.NewReads(pool, nil, 0, nil), sealer: sealer, allowPrivate: allowPrivate}
}

// ReadFrom sends the store's lists (endpoints, deliveries) through r, to a
// replica while it keeps up; set once, before use.
func (s *Store) ReadFrom(r *store.Reads) { s.reads = r }

// Endpoint is a partner's webhook receiver.
type Endpoint struct {
	ID             string    `json:"id"`
	URL            string    `json:"url"`
	Events         []string  `json:"events"`
	Enabled        bool      `json:"enabled"`
	Description    *string   `json:"description"`
	DisabledReason *string   `json:"disabledReason"`
	CreatedAt      time.Time `json:"createdAt"`
	Secret         string    `json:"secret,omitempty"`
}

// EndpointFields are the settable fields; nil leaves one as it is.
type EndpointFields struct {
	URL         *string
	Events      *[]string
	Enabled     *bool
	Description *string
}

// ValidateURL checks an endpoint URL: absolute http(s), https unless private
// addresses are allowed, and no literal private address unless allowed
// (names are checked again at every dial, where it matters).
func (s *Store) ValidateURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.User != nil || (u.Scheme != "https" && u.Scheme != "http") {
		return fmt.Errorf("%w: must be an absolute https URL without credentials", ErrInvalidURL)
	}
	if u.Scheme != "https" && !s.allowPrivate {
		return fmt.Errorf("%w: must use https", ErrInvalidURL)
	}
	if addr, err := netip.ParseAddr(strings.Trim(u.Hostname(), "[]")); err == nil && !allowedAddr(addr, s.allowPrivate) {
		return fmt.Errorf("%w: private, loopback, link-local and cloud metadata addresses are refused", ErrInvalidURL)
	}
	if strings.EqualFold(u.Hostname(), "localhost") && !s.allowPrivate {
		return fmt.Errorf("%w: localhost is refused", ErrInvalidURL)
	}
	return nil
}

// ValidateEvents checks an event filter.
func ValidateEvents(events []string) error {
	for _, e := range events {
		if !slices.Contains(EventTypes, e) {
			return fmt.Errorf("%w: %q", ErrEventFilter, e)
		}
	}
	return nil
}

// newSecret makes an endpoint secret in the Standard Webhooks form:
// whsec_ and the base64 of the key bytes.
func newSecret() string {
	return "whsec_" + base64.StdEncoding.EncodeToString(store.RandomBytes(24))
}

const endpointColumns = `id, url, events, enabled, description, disabled_reason, created_at`

func scanEndpoint(row pgx.Row) (Endpoint, error) {
	var e Endpoint
	err := row.Scan(&e.ID, &e.URL, &e.Events, &e.Enabled, &e.Description, &e.DisabledReason, &e.CreatedAt)
	return e, store.NoRows(err, store.ErrNotFound)
}

// secretContext binds a sealed endpoint secret (current or previous) to
// its endpoint, so it opens nowhere else.
func secretContext(endpointID string) string { return "webhook endpoint " + endpointID + " secret" }

// CreateEndpoint registers an endpoint; its secret is returned this once
// and rests sealed.
func (s *Store) CreateEndpoint(ctx context.Context, workspaceID, rawURL string, events []string, description *string) (Endpoint, error) {
	secret, id := newSecret(), store.NewID("whk")
	e, err := scanEndpoint(s.pool.QueryRow(ctx, `
		INSERT INTO webhook_endpoints (id, workspace_id, url, events, description, secret_sealed)
		VALUES ($1, $2, $3, $4, $5, $6) RETURNING `+endpointColumns,
		id, workspaceID, rawURL, events, description, s.sealer.Seal(secret, secretContext(id))))
	if err != nil {
		return Endpoint{}, fmt.Errorf("create endpoint: %w", err)
	}
	e.Secret = secret
	return e, nil
}

// Endpoint returns one endpoint of the workspace.
func (s *Store) Endpoint(ctx context.Context, workspaceID, id string) (Endpoint, error) {
	e, err := scanEndpoint(s.pool.QueryRow(ctx, `SELECT `+endpointColumns+` FROM webhook_endpoints
		WHERE id = $1 AND workspace_id = $2 AND deleted_at IS NULL`, id, workspaceID))
	if err != nil {
		return Endpoint{}, fmt.Errorf("endpoint %s: %w", id, err)
	}
	return e, nil
}

// Endpoints lists the workspace's endpoints, newest first.
func (s *Store) Endpoints(ctx context.Context, workspaceID, cursor string, limit int) ([]Endpoint, error) {
	list, err := store.List(ctx, s.reads, func(r pgx.CollectableRow) (Endpoint, error) { return scanEndpoint(r) }, `SELECT `+endpointColumns+` FROM webhook_endpoints
		WHERE workspace_id = $1 AND deleted_at IS NULL AND ($2 = '' OR id < $2) ORDER BY id DESC LIMIT $3`,
		workspaceID, cursor, limit)
	if err != nil {
		return nil, fmt.Errorf("list endpoints: %w", err)
	}
	return list, nil
}

// UpdateEndpoint changes the given fields. Enabling an endpoint clears the
// reason it was disabled.
func (s *Store) UpdateEndpoint(ctx context.Context, workspaceID, id string, f EndpointFields) (Endpoint, error) {
	e, err := scanEndpoint(s.pool.QueryRow(ctx, `UPDATE webhook_endpoints SET
			url = COALESCE($3, url), events = COALESCE($4, events), enabled = COALESCE($5, enabled),
			description = COALESCE($6, description),
			disabled_reason = CASE WHEN $5 THEN NULL ELSE disabled_reason END
		WHERE id = $1 AND workspace_id = $2 AND deleted_at IS NULL RETURNING `+endpointColumns,
		id, workspaceID, f.URL, f.Events, f.Enabled, f.Description))
	if err != nil {
		return Endpoint{}, fmt.Errorf("update endpoint %s: %w", id, err)
	}
	return e, nil
}

// DeleteEndpoint removes an endpoint; its delivery history stays.
func (s *Store) DeleteEndpoint(ctx context.Context, workspaceID, id string) error {
	tag, err := s.pool.Exec(ctx, `UPDATE webhook_endpoints SET deleted_at = now(), enabled = false
		WHERE id = $1 AND workspace_id = $2 AND deleted_at IS NULL`, id, workspaceID)
	if err != nil {
		return fmt.Errorf("delete endpoint %s: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("delete endpoint %s: %w", id, store.ErrNotFound)
	}
	return nil
}

// RotateSecret issues a new secret; the old one keeps signing alongside it
// for rotationOverlap. Both rest sealed.
func (s *Store) RotateSecret(ctx context.Context, workspaceID, id string) (Endpoint, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return Endpoint{}, fmt.Errorf("rotate secret %s: %w", id, err)
	}
	defer tx.Rollback(ctx)
	var st storedSecrets
	err = tx.QueryRow(ctx, `SELECT secret, secret_sealed FROM webhook_endpoints
		WHERE id = $1 AND workspace_id = $2 AND deleted_at IS NULL FOR UPDATE`, id, workspaceID).Scan(&st.clear, &st.sealed)
	if err != nil {
		return Endpoint{}, fmt.Errorf("rotate secret %s: %w", id, store.NoRows(err, store.ErrNotFound))
	}
	old, _, err := s.open(id, st)
	if err != nil {
		return Endpoint{}, fmt.Errorf("rotate secret %s: %w", id, err)
	}
	secret, sealingCtx := newSecret(), secretContext(id)
	e, err := scanEndpoint(tx.QueryRow(ctx, `UPDATE webhook_endpoints SET
			previous_secret = NULL, previous_secret_sealed = $2, previous_secret_expires_at = now() + $3::interval,
			secret = NULL, secret_sealed = $4
		WHERE id = $1 RETURNING `+endpointColumns,
		id, s.sealer.Seal(old, sealingCtx), rotationOverlap, s.sealer.Seal(secret, sealingCtx)))
	if err != nil {
		return Endpoint{}, fmt.Errorf("rotate secret %s: %w", id, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return Endpoint{}, fmt.Errorf("rotate secret %s: %w", id, err)
	}
	e.Secret = secret
	return e, nil
}

// storedSecrets is how a row holds an endpoint's secrets: sealed, or in
// the clear columns a process of the release before sealing writes.
type storedSecrets struct {
	clear, clearPrevious   *string
	sealed, sealedPrevious []byte
}

// open reads an endpoint's current and previous secrets (previous nil when
// there is none). This release never writes the clear columns, so clear
// text beside sealed text is newer: a process of the release before
// rotated the secret of a sealed row during a rollout, writing the new
// secret in clear and, from its NULL clear column, no previous one; the
// sealed secret it replaced is then the previous one.
func (s *Store) open(endpointID string, st storedSecrets) (current string, previous *string, err error) {
	ctx := secretContext(endpointID)
	switch {
	case st.clear != nil:
		current = *st.clear
	case st.sealed != nil:
		if current, err = s.sealer.Open(st.sealed, ctx); err != nil {
			return "", nil, err
		}
	default:
		return "", nil, fmt.Errorf("endpoint %s has no secret", endpointID)
	}
	switch {
	case st.clearPrevious != nil:
		previous = st.clearPrevious
	case st.clear != nil && st.sealed != nil:
		replaced, err := s.sealer.Open(st.sealed, ctx)
		if err != nil {
			return "", nil, err
		}
		previous = &replaced
	case st.sealedPrevious != nil:
		p, err := s.sealer.Open(st.sealedPrevious, ctx)
		if err != nil {
			return "", nil, err
		}
		previous = &p
	}
	return current, previous, nil
}

// sealBatchSize is how many endpoints SealLegacySecrets seals per
// database transaction.
const sealBatchSize = 100

// SealLegacySecrets seals the clear-text secrets of endpoints made before
// secrets were sealed (or by a process of that release, during a rollout)
// and clears the clear text; it returns how many endpoints it sealed.
// Every process runs it when it starts; several at once share the work.
func (s *Store) SealLegacySecrets(ctx context.Context) (int, error) {
	return store.InBatches(ctx, sealBatchSize, func(ctx context.Context) (int, error) { return s.sealLegacyBatch(ctx, "") })
}

// sealLegacyBatch seals up to sealBatchSize endpoints holding clear text,
// or only the endpoint id when it is set.
func (s *Store) sealLegacyBatch(ctx context.Context, id string) (int, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("seal webhook secrets: %w", err)
	}
	defer tx.Rollback(ctx)
	rows, err := tx.Query(ctx, `SELECT id, secret, secret_sealed, previous_secret, previous_secret_sealed FROM webhook_endpoints
		WHERE (secret IS NOT NULL OR previous_secret IS NOT NULL) AND ($1 = '' OR id = $1)
		ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED`, id, sealBatchSize)
	if err != nil {
		return 0, fmt.Errorf("seal webhook secrets: %w", err)
	}
	type legacyRow struct {
		id string
		storedSecrets
	}
	found, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (legacyRow, error) {
		var c legacyRow
		return c, r.Scan(&c.id, &c.clear, &c.sealed, &c.clearPrevious, &c.sealedPrevious)
	})
	if err != nil {
		return 0, fmt.Errorf("seal webhook secrets: %w", err)
	}
	var b pgx.Batch
	for _, c := range found {
		current, previous, err := s.open(c.id, c.storedSecrets)
		if err != nil {
			return 0, fmt.Errorf("seal webhook secrets: %w", err)
		}
		var sealedPrevious []byte
		if previous != nil {
			sealedPrevious = s.sealer.Seal(*previous, secretContext(c.id))
		}
		b.Queue(`UPDATE webhook_endpoints SET secret_sealed = $2, secret = NULL, previous_secret_sealed = $3, previous_secret = NULL
			WHERE id = $1`, c.id, s.sealer.Seal(current, secretContext(c.id)), sealedPrevious)
	}
	if len(found) > 0 {
		if err := tx.SendBatch(ctx, &b).Close(); err != nil {
			return 0, fmt.Errorf("seal webhook secrets: %w", err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("seal webhook secrets: %w", err)
	}
	return len(found), nil
}
