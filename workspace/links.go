package workspace

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/orbt/orbt/store"
)

// Consumers don't sign up: a partner opens the door for one with a link.
// A link's token is shown once, in its URL, and stored only as a hash
// (SHA-256, as API keys are);
// opening it starts a consumer session of its own (another token, in a
// cookie), which ends with the link: at its expiry or its revocation.

// Link bounds.
const (
	LinkTTLDefault = 24 * time.Hour
	LinkTTLMax     = 30 * 24 * time.Hour
	// linkTokenBytes of randomness: 160 bits, unguessable.
	linkTokenBytes = 20
)

// Errors of links and consumer sessions.
var (
	ErrLinkNotFound = fmt.Errorf("link %w", store.ErrNotFound)
	// ErrLinkInvalid is a token that opens nothing: never issued, expired
	// or revoked. Which one is not told to its bearer.
	ErrLinkInvalid = errors.New("link expired, revoked or unknown")
)

// Link is a consumer's way in, as the partner sees it; URL (with the
// token) only in the response that creates it.
type Link struct {
	ID         string     `json:"id"`
	ConsumerID string     `json:"consumerId"`
	URL        string     `json:"url,omitempty"`
	ExpiresAt  time.Time  `json:"expiresAt"`
	RevokedAt  *time.Time `json:"revokedAt"`
	CreatedAt  time.Time  `json:"createdAt"`
}

// CreateLink issues a link for one of the workspace's consumers, valid for
// ttl; token is the secret to put in its URL.
func (s *Store) CreateLink(ctx context.Context, workspaceID, consumerID string, ttl time.Duration) (Link, string, error) {
	token := store.Token(linkTokenBytes)
	var l Link
	err := s.pool.QueryRow(ctx, `INSERT INTO consumer_links (id, workspace_id, consumer_id, token_hash, expires_at)
		SELECT $1, c.workspace_id, c.id, $4, now() + $5::interval FROM consumers c WHERE c.id = $2 AND c.workspace_id = $3
		RETURNING id, consumer_id, expires_at, revoked_at, created_at`,
		store.NewID("lnk"), consumerID, workspaceID, hashKey(token), ttl).Scan(&l.ID, &l.ConsumerID, &l.ExpiresAt, &l.RevokedAt, &l.CreatedAt)
	if err != nil {
		return Link{}, "", fmt.Errorf("create link: %w", store.NoRows(err, ErrConsumerNotFound))
	}
	return l, token, nil
}

// RevokeLink ends a link of the consumer, and every session it opened. A
// link already revoked stays as it was.
func (s *Store) RevokeLink(ctx context.Context, workspaceID, consumerID, linkID string) (Link, error) {
	var l Link
	err := s.pool.QueryRow(ctx, `UPDATE consumer_links SET revoked_at = COALESCE(revoked_at, now())
		WHERE id = $1 AND consumer_id = $2 AND workspace_id = $3
		RETURNING id, consumer_id, expires_at, revoked_at, created_at`, linkID, consumerID, workspaceID).
		Scan(&l.ID, &l.ConsumerID, &l.ExpiresAt, &l.RevokedAt, &l.CreatedAt)
	if err != nil {
		return Link{}, fmt.Errorf("revoke link %s: %w", linkID, store.NoRows(err, ErrLinkNotFound))
	}
	return l, nil
}

// ConsumerSession is who a consumer session lets in: one consumer of one
// workspace, until ExpiresAt.
type ConsumerSession struct {
	WorkspaceID string
	ConsumerID  string
	LinkID      string
	ExpiresAt   time.Time
}

// sessionTokenBytes of randomness in a consumer session's cookie.
const sessionTokenBytes = 32

// OpenLink starts a consumer session from a link's token; it returns the
// session and its own token (for the cookie). ErrLinkInvalid when the
// link is unknown, expired or revoked.
func (s *Store) OpenLink(ctx context.Context, linkToken string) (ConsumerSession, string, error) {
	token := store.Token(sessionTokenBytes)
	var cs ConsumerSession
	err := s.pool.QueryRow(ctx, `WITH link AS (
			SELECT id, workspace_id, consumer_id, expires_at FROM consumer_links
			WHERE token_hash = $1 AND revoked_at IS NULL AND expires_at > now()),
		expired AS (DELETE FROM consumer_sessions s USING link WHERE s.link_id = link.id AND s.expires_at <= now())
		INSERT INTO consumer_sessions (token_hash, link_id, expires_at)
		SELECT $2, id, expires_at FROM link
		RETURNING (SELECT workspace_id FROM link), (SELECT consumer_id FROM link), link_id, expires_at`,
		hashKey(linkToken), hashKey(token)).Scan(&cs.WorkspaceID, &cs.ConsumerID, &cs.LinkID, &cs.ExpiresAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return ConsumerSession{}, "", ErrLinkInvalid
	}
	if err != nil {
		return ConsumerSession{}, "", fmt.Errorf("open link: %w", err)
	}
	return cs, token, nil
}

// ConsumerSession returns the live session a cookie's token names;
// ErrLinkInvalid when it has ended (expired, or its link revoked).
func (s *Store) ConsumerSession(ctx context.Context, token string) (ConsumerSession, error) {
	var cs ConsumerSession
	err := s.pool.QueryRow(ctx, `SELECT l.workspace_id, l.consumer_id, l.id, s.expires_at
		FROM consumer_sessions s JOIN consumer_links l ON l.id = s.link_id
		WHERE s.token_hash = $1 AND s.expires_at > now() AND l.revoked_at IS NULL AND l.expires_at > now()`,
		hashKey(token)).Scan(&cs.WorkspaceID, &cs.ConsumerID, &cs.LinkID, &cs.ExpiresAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return ConsumerSession{}, ErrLinkInvalid
	}
	if err != nil {
		return ConsumerSession{}, fmt.Errorf("consumer session: %w", err)
	}
	return cs, nil
}

// EndConsumerSession ends a session (sign-out).
func (s *Store) EndConsumerSession(ctx context.Context, token string) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM consumer_sessions WHERE token_hash = $1`, hashKey(token)); err != nil {
		return fmt.Errorf("end consumer session: %w", err)
	}
	return nil
}
