package workspace

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/orbt/orbt/store"
)

// SigningSecretOverlap is how long a workspace's previous signing secret
// keeps verifying requests after a rotation: a day to roll every client
// over, as webhook secrets have.
const SigningSecretOverlap = 24 * time.Hour

// SigningSecrets are the secrets a workspace's signed requests (the
// Orbt-compatible partner API) may be keyed with: the current one and,
// within a day of a rotation, the previous one.
type SigningSecrets struct {
	Current string
	// Previous is "" when no rotation is within its overlap.
	Previous          string
	PreviousExpiresAt time.Time
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
	return s.readSigningSecrets(ctx, s.pool, workspaceID, "")
}

// readSigningSecrets reads and opens a workspace's signing secrets; lock
// ("FOR UPDATE") holds its row for a rotation.
func (s *Store) readSigningSecrets(ctx context.Context, q store.Querier, workspaceID, lock string) (SigningSecrets, error) {
	var (
		legacy        *string
		current, prev []byte
		prevExpiresAt *time.Time
		secrets       SigningSecrets
		sealingCtx    = signingSecretContext(workspaceID)
	)
	err := q.QueryRow(ctx, `SELECT signing_secret, signing_secret_sealed, previous_signing_secret_sealed,
			previous_signing_secret_expires_at
		FROM workspaces WHERE id = $1 `+lock, workspaceID).Scan(&legacy, &current, &prev, &prevExpiresAt)
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
	if prev != nil && prevExpiresAt != nil && time.Now().Before(*prevExpiresAt) {
		if secrets.Previous, err = s.sealer.Open(prev, sealingCtx); err != nil {
			return SigningSecrets{}, fmt.Errorf("previous signing secret of %s: %w", workspaceID, err)
		}
		secrets.PreviousExpiresAt = *prevExpiresAt
	}
	return secrets, nil
}

// RotateSigningSecret issues a new signing secret; the one it replaces
// keeps verifying for SigningSecretOverlap. A rotation within the overlap
// of the last one retires that one's previous secret at once. Concurrent
// rotations queue on the workspace's row, so each one's secret is the
// next one's previous: none is handed out and never valid.
func (s *Store) RotateSigningSecret(ctx context.Context, workspaceID string) (RotatedSigningSecret, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return RotatedSigningSecret{}, fmt.Errorf("rotate signing secret of %s: %w", workspaceID, err)
	}
	defer tx.Rollback(ctx)
	old, err := s.readSigningSecrets(ctx, tx, workspaceID, "FOR UPDATE")
	if err != nil {
		return RotatedSigningSecret{}, err
	}
	sealingCtx := signingSecretContext(workspaceID)
	r := RotatedSigningSecret{SigningSecret: newSigningSecret()}
	err = tx.QueryRow(ctx, `UPDATE workspaces SET signing_secret_sealed = $2, signing_secret = NULL,
			previous_signing_secret_sealed = $3, previous_signing_secret_expires_at = now() + $4 * interval '1 second'
		WHERE id = $1 RETURNING previous_signing_secret_expires_at`,
		workspaceID, s.sealer.Seal(r.SigningSecret, sealingCtx), s.sealer.Seal(old.Current, sealingCtx),
		SigningSecretOverlap.Seconds()).Scan(&r.PreviousExpiresAt)
	if err != nil {
		return RotatedSigningSecret{}, fmt.Errorf("rotate signing secret of %s: %w", workspaceID, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return RotatedSigningSecret{}, fmt.Errorf("rotate signing secret of %s: %w", workspaceID, err)
	}
	return r, nil
}
