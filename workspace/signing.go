package workspace

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/orbt/orbt/store"
)

// SigningSecretOverlap is how long a rotated-out signing secret keeps
// verifying requests: a day to roll every client over, as webhook secrets
// have.
const SigningSecretOverlap = 24 * time.Hour

// previousSecretsMax bounds the rotated-out secrets live at once, and with
// it how many HMACs a request whose signature matches none of them costs.
const previousSecretsMax = 10

// ErrTooManyRotations refuses a rotation while previousSecretsMax
// rotated-out secrets are still within their day.
var ErrTooManyRotations = errors.New("too many signing secret rotations within a day")

// SigningSecrets are the secrets a workspace's signed requests (the
// Orbt-compatible partner API) may be keyed with: the current one and those
// rotated out within the last day.
type SigningSecrets struct {
	Current string
	// Previous are the rotated-out secrets still live, newest first.
	Previous []string
	// ValidUntil is when the first of Previous expires (zero with none):
	// until then this set is the whole truth, rotations aside.
	ValidUntil time.Time
}

// RotatedSigningSecret is a new signing secret, shown this once.
type RotatedSigningSecret struct {
	SigningSecret string `json:"signingSecret"`
	// PreviousExpiresAt is when the secret it replaced stops verifying.
	PreviousExpiresAt time.Time `json:"previousExpiresAt"`
}

func newSigningSecret() string { return "ssec_" + store.Token(24) }

// signingSecretContext binds a sealed signing secret to its workspace, so
// it opens nowhere else.
func signingSecretContext(workspaceID string) string {
	return "workspace " + workspaceID + " signing secret"
}

// SigningSecrets returns the live signing secrets of a workspace. A
// workspace made before secrets were sealed has its clear-text secret
// sealed (and the clear text cleared) on this first read.
func (s *Store) SigningSecrets(ctx context.Context, workspaceID string) (SigningSecrets, error) {
	return s.readSigningSecrets(ctx, s.pool, workspaceID)
}

// readSigningSecrets reads and opens a workspace's signing secrets: the
// current one and at most previousSecretsMax live previous ones.
func (s *Store) readSigningSecrets(ctx context.Context, q store.Querier, workspaceID string) (SigningSecrets, error) {
	var (
		legacy     *string
		current    []byte
		previous   [][]byte
		expiries   []time.Time
		secrets    SigningSecrets
		sealingCtx = signingSecretContext(workspaceID)
	)
	err := q.QueryRow(ctx, `SELECT w.signing_secret, w.signing_secret_sealed,
			COALESCE(p.sealed, '{}'), COALESCE(p.expires_at, '{}')
		FROM workspaces w LEFT JOIN LATERAL (
			SELECT array_agg(sealed ORDER BY expires_at DESC) AS sealed, array_agg(expires_at ORDER BY expires_at DESC) AS expires_at
			FROM (SELECT sealed, expires_at FROM previous_signing_secrets
				WHERE workspace_id = w.id AND expires_at > now() ORDER BY expires_at DESC LIMIT $2) live) p ON true
		WHERE w.id = $1`, workspaceID, previousSecretsMax).Scan(&legacy, &current, &previous, &expiries)
	if errors.Is(err, pgx.ErrNoRows) {
		return SigningSecrets{}, fmt.Errorf("workspace %s: %w", workspaceID, store.ErrNotFound)
	}
	if err != nil {
		return SigningSecrets{}, fmt.Errorf("signing secrets of %s: %w", workspaceID, err)
	}
	if current == nil && legacy != nil {
		secrets.Current = *legacy
		if _, err := q.Exec(ctx, `UPDATE workspaces SET signing_secret_sealed = $2, signing_secret = NULL
			WHERE id = $1 AND signing_secret_sealed IS NULL`, workspaceID, s.sealer.Seal(*legacy, sealingCtx)); err != nil {
			return SigningSecrets{}, fmt.Errorf("seal signing secret of %s: %w", workspaceID, err)
		}
	} else if secrets.Current, err = s.sealer.Open(current, sealingCtx); err != nil {
		return SigningSecrets{}, fmt.Errorf("signing secret of %s: %w", workspaceID, err)
	}
	for i, sealed := range previous {
		secret, err := s.sealer.Open(sealed, sealingCtx)
		if err != nil {
			return SigningSecrets{}, fmt.Errorf("previous signing secret of %s: %w", workspaceID, err)
		}
		secrets.Previous = append(secrets.Previous, secret)
		secrets.ValidUntil = expiries[i] // newest first: the last is the first to expire
	}
	return secrets, nil
}

// sealBatchSize is how many workspaces SealLegacySigningSecrets seals per
// database transaction.
const sealBatchSize = 100

// SealLegacySigningSecrets seals the clear-text signing secrets of
// workspaces made before secrets were sealed, which a first read would
// otherwise seal (SigningSecrets), and clears the clear text; it returns
// how many it sealed. Every process runs it when it starts, so a
// workspace whose secret is never read keeps none in clear either.
func (s *Store) SealLegacySigningSecrets(ctx context.Context) (int, error) {
	return store.InBatches(ctx, sealBatchSize, s.sealSigningBatch)
}

func (s *Store) sealSigningBatch(ctx context.Context) (int, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("seal signing secrets: %w", err)
	}
	defer tx.Rollback(ctx)
	rows, err := tx.Query(ctx, `SELECT id, signing_secret FROM workspaces
		WHERE signing_secret IS NOT NULL ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED`, sealBatchSize)
	if err != nil {
		return 0, fmt.Errorf("seal signing secrets: %w", err)
	}
	type legacyRow struct{ id, secret string }
	found, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (legacyRow, error) {
		var c legacyRow
		return c, r.Scan(&c.id, &c.secret)
	})
	if err != nil {
		return 0, fmt.Errorf("seal signing secrets: %w", err)
	}
	var b pgx.Batch
	for _, c := range found {
		// A workspace sealed already keeps its sealed secret (a rotation's
		// is newer than the clear text); the clear text goes either way.
		b.Queue(`UPDATE workspaces SET signing_secret_sealed = COALESCE(signing_secret_sealed, $2), signing_secret = NULL
			WHERE id = $1`, c.id, s.sealer.Seal(c.secret, signingSecretContext(c.id)))
	}
	if len(found) > 0 {
		if err := tx.SendBatch(ctx, &b).Close(); err != nil {
			return 0, fmt.Errorf("seal signing secrets: %w", err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("seal signing secrets: %w", err)
	}
	return len(found), nil
}

// RotateSigningSecret issues a new signing secret; the one it replaces
// keeps verifying for SigningSecretOverlap, as do those earlier rotations
// replaced within the day (at most previousSecretsMax of them: one more
// rotation is ErrTooManyRotations). Concurrent rotations queue on the
// workspace's row, so each one's secret is the next one's previous: none
// is handed out and never valid.
func (s *Store) RotateSigningSecret(ctx context.Context, workspaceID string) (RotatedSigningSecret, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return RotatedSigningSecret{}, fmt.Errorf("rotate signing secret of %s: %w", workspaceID, err)
	}
	defer tx.Rollback(ctx)
	// Lock first, read after: the read is a statement of its own, so a
	// rotation that waited for the lock counts the secrets the one before
	// it added.
	if _, err := tx.Exec(ctx, `SELECT 1 FROM workspaces WHERE id = $1 FOR UPDATE`, workspaceID); err != nil {
		return RotatedSigningSecret{}, fmt.Errorf("rotate signing secret of %s: %w", workspaceID, err)
	}
	old, err := s.readSigningSecrets(ctx, tx, workspaceID)
	if err != nil {
		return RotatedSigningSecret{}, err
	}
	if len(old.Previous) >= previousSecretsMax {
		return RotatedSigningSecret{}, ErrTooManyRotations
	}
	sealingCtx := signingSecretContext(workspaceID)
	r := RotatedSigningSecret{SigningSecret: newSigningSecret()}
	var b pgx.Batch
	b.Queue(`DELETE FROM previous_signing_secrets WHERE workspace_id = $1 AND expires_at <= now()`, workspaceID)
	b.Queue(`INSERT INTO previous_signing_secrets (workspace_id, sealed, expires_at)
		VALUES ($1, $2, now() + $3 * interval '1 second') RETURNING expires_at`,
		workspaceID, s.sealer.Seal(old.Current, sealingCtx), SigningSecretOverlap.Seconds()).QueryRow(func(row pgx.Row) error {
		return row.Scan(&r.PreviousExpiresAt)
	})
	b.Queue(`UPDATE workspaces SET signing_secret_sealed = $2, signing_secret = NULL WHERE id = $1`,
		workspaceID, s.sealer.Seal(r.SigningSecret, sealingCtx))
	if err := tx.SendBatch(ctx, &b).Close(); err != nil {
		return RotatedSigningSecret{}, fmt.Errorf("rotate signing secret of %s: %w", workspaceID, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return RotatedSigningSecret{}, fmt.Errorf("rotate signing secret of %s: %w", workspaceID, err)
	}
	return r, nil
}
