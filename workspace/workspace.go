// Package workspace stores partner accounts (workspaces), their API keys and
// their consumers: everything about who may act, none of the money.
package workspace

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/orbt/orbt/seal"
	"github.com/orbt/orbt/store"
)

// Sentinel errors; callers match them with errors.Is. Not found is
// store.ErrNotFound, which ErrConsumerNotFound wraps.
var (
	ErrConsumerNotFound = fmt.Errorf("consumer %w", store.ErrNotFound)
	ErrConsumerExists   = errors.New("consumer with this externalId exists")
	ErrUnauthorized     = errors.New("unknown or revoked API key")
)

// Key scopes.
const (
	ScopeRead  = "read"
	ScopeWrite = "write"
)

// Store reads and writes workspaces, keys and consumers.
type Store struct {
	pool *pgxpool.Pool
	// reads serves the lists that may lag (a replica's, when set).
	reads *store.Reads
	// sealer seals signing secrets at rest.
	sealer *seal.Sealer
}

// New returns a Store over the pool.
func New(pool *pgxpool.Pool, sealer *seal.Sealer) *Store {
	return &Store{pool: pool, reads: store.NewReads(pool, nil, 0, nil), sealer: sealer}
}

// ReadFrom sends the store's lists (consumers, keys) through r, to a
// replica while it keeps up; set once, before use.
func (s *Store) ReadFrom(r *store.Reads) { s.reads = r }

// Workspace is one partner account.
type Workspace struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"createdAt"`
}

// Created is a new workspace with its first write key, its request
// signing secret and its first admin's console invitation, all shown this
// once.
type Created struct {
	ID            string `json:"id"`
	Name          string `json:"name"`
	APIKey        string `json:"apiKey"`
	SigningSecret string `json:"signingSecret"`
	// ConsoleInviteURL is set by the caller, who knows the public URL,
	// from InviteToken.
	ConsoleInviteURL string `json:"consoleInviteUrl"`
	InviteToken      string `json:"-"`
}

// InviteURL is the console page where an invitation's (or a reset's)
// token lets a person in.
func InviteURL(publicURL, token string) string { return publicURL + "/console/invite/" + token }

// CreateWorkspace creates a workspace, its first read-write key and the
// invitation of its first console admin.
func (s *Store) CreateWorkspace(ctx context.Context, name string) (Created, error) {
	c := Created{ID: store.NewID("ws"), Name: name, SigningSecret: newSigningSecret()}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return Created{}, fmt.Errorf("create workspace: %w", err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `INSERT INTO workspaces (id, name, signing_secret_sealed) VALUES ($1, $2, $3)`,
		c.ID, name, s.sealer.Seal(c.SigningSecret, signingSecretContext(c.ID))); err != nil {
		return Created{}, fmt.Errorf("create workspace: %w", err)
	}
	key, err := createKey(ctx, tx, c.ID, "default", ScopeWrite)
	if err != nil {
		return Created{}, err
	}
	c.APIKey = key.Secret
	if _, c.InviteToken, err = createInvite(ctx, tx, Invite{WorkspaceID: c.ID, Role: RoleAdmin}, nil, InviteTTL); err != nil {
		return Created{}, err
	}
	return c, tx.Commit(ctx)
}

// Workspace returns one workspace.
func (s *Store) Workspace(ctx context.Context, id string) (Workspace, error) {
	var w Workspace
	err := s.pool.QueryRow(ctx, `SELECT id, name, created_at FROM workspaces WHERE id = $1`, id).
		Scan(&w.ID, &w.Name, &w.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return Workspace{}, fmt.Errorf("workspace %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return Workspace{}, fmt.Errorf("workspace %s: %w", id, err)
	}
	return w, nil
}

// APIKey is a key's public description; Secret is set only on creation.
type APIKey struct {
	ID          string     `json:"id"`
	WorkspaceID string     `json:"-"`
	Name        string     `json:"name"`
	Scope       string     `json:"scope"`
	Prefix      string     `json:"prefix"`
	LastUsedAt  *time.Time `json:"lastUsedAt"`
	RevokedAt   *time.Time `json:"revokedAt,omitempty"`
	CreatedAt   time.Time  `json:"createdAt"`
	Secret      string     `json:"key,omitempty"`
}

// keyPrefixLen is how much of a key stays visible, so a partner can tell keys apart.
const keyPrefixLen = 12

// CreateKey issues a key; its secret is returned once and stored as a hash.
func (s *Store) CreateKey(ctx context.Context, workspaceID, name, scope string) (APIKey, error) {
	return createKey(ctx, s.pool, workspaceID, name, scope)
}

func createKey(ctx context.Context, q store.Querier, workspaceID, name, scope string) (APIKey, error) {
	secret := "orbt_sk_" + store.Token(25)
	k := APIKey{ID: store.NewID("key"), WorkspaceID: workspaceID, Name: name, Scope: scope,
		Prefix: secret[:keyPrefixLen], Secret: secret}
	err := q.QueryRow(ctx, `INSERT INTO api_keys (id, workspace_id, name, scope, prefix, secret_hash)
		VALUES ($1, $2, $3, $4, $5, $6) RETURNING created_at`,
		k.ID, workspaceID, name, scope, k.Prefix, hashKey(secret)).Scan(&k.CreatedAt)
	if err != nil {
		return APIKey{}, fmt.Errorf("create key: %w", err)
	}
	return k, nil
}

// Authenticate returns the live key a secret belongs to.
func (s *Store) Authenticate(ctx context.Context, secret string) (APIKey, error) {
	var k APIKey
	err := s.pool.QueryRow(ctx, `SELECT id, workspace_id, name, scope, prefix, last_used_at, created_at
		FROM api_keys WHERE secret_hash = $1 AND revoked_at IS NULL`, hashKey(secret)).
		Scan(&k.ID, &k.WorkspaceID, &k.Name, &k.Scope, &k.Prefix, &k.LastUsedAt, &k.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return APIKey{}, ErrUnauthorized
	}
	if err != nil {
		return APIKey{}, fmt.Errorf("authenticate: %w", err)
	}
	return k, nil
}

// TouchKey records that a key was used now.
func (s *Store) TouchKey(ctx context.Context, id string) error {
	if _, err := s.pool.Exec(ctx, `UPDATE api_keys SET last_used_at = now() WHERE id = $1`, id); err != nil {
		return fmt.Errorf("touch key %s: %w", id, err)
	}
	return nil
}

// Keys lists a workspace's keys, revoked ones included, newest first.
func (s *Store) Keys(ctx context.Context, workspaceID, cursor string, limit int) ([]APIKey, error) {
	list, err := store.List(ctx, s.reads, collectKey, `SELECT id, workspace_id, name, scope, prefix, last_used_at, revoked_at, created_at
		FROM api_keys WHERE workspace_id = $1 AND ($2 = '' OR id < $2) ORDER BY id DESC LIMIT $3`,
		workspaceID, cursor, limit)
	if err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	return list, nil
}

// RevokeKey revokes a key of the workspace and returns its hash's owner id.
func (s *Store) RevokeKey(ctx context.Context, workspaceID, id string) error {
	tag, err := s.pool.Exec(ctx, `UPDATE api_keys SET revoked_at = COALESCE(revoked_at, now())
		WHERE id = $1 AND workspace_id = $2`, id, workspaceID)
	if err != nil {
		return fmt.Errorf("revoke key %s: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("revoke key %s: %w", id, store.ErrNotFound)
	}
	return nil
}

func hashKey(secret string) []byte {
	sum := sha256.Sum256([]byte(secret))
	return sum[:]
}

// HashKey is the form a key's secret is stored and cached in.
func HashKey(secret string) [32]byte { return sha256.Sum256([]byte(secret)) }

// collectKey reads a row of Keys.
func collectKey(r pgx.CollectableRow) (APIKey, error) {
	var k APIKey
	return k, r.Scan(&k.ID, &k.WorkspaceID, &k.Name, &k.Scope, &k.Prefix, &k.LastUsedAt, &k.RevokedAt, &k.CreatedAt)
}
