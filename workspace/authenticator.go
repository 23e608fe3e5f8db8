package workspace

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// credentialTTL is how long a verified key, or a workspace's signing
// secrets, are trusted without a database read. A revocation or rotation
// takes effect at once on the process that made it and within
// credentialTTL everywhere else.
const credentialTTL = 5 * time.Second

// keyTouchEvery throttles lastUsedAt writes to one per key per interval.
const keyTouchEvery = time.Minute

// freshReadEvery bounds the reads of a workspace's signing secrets that a
// signature matching none of the cached ones makes (ten a second at most,
// however many wrong signatures arrive): a secret rotated in elsewhere is
// seen within it.
const freshReadEvery = 100 * time.Millisecond

// Authenticator answers who a request is from: its API key, and, for
// signed requests, its workspace's signing secrets. It keeps what it read
// for credentialTTL, so a busy partner costs no database read per request.
// One per process, shared by every surface that takes API keys, so that a
// revocation through one is at once seen by all.
type Authenticator struct {
	store *Store
	log   *slog.Logger

	mu      sync.Mutex
	keys    map[[32]byte]cached[APIKey]
	secrets map[string]cached[SigningSecrets]
	touched sync.Map // key id -> time.Time
}

type cached[T any] struct {
	value T
	// read is when value was read from the database.
	read time.Time
}

// trusted reports whether the value may still be served at now, unread.
func (c cached[T]) trusted(now time.Time) bool { return now.Sub(c.read) < credentialTTL }

// NewAuthenticator returns an Authenticator over the store.
func NewAuthenticator(s *Store, log *slog.Logger) *Authenticator {
	if log == nil {
		log = slog.Default()
	}
	return &Authenticator{store: s, log: log,
		keys: make(map[[32]byte]cached[APIKey]), secrets: make(map[string]cached[SigningSecrets])}
}

// Key returns the live key a secret belongs to, or ErrUnauthorized.
func (a *Authenticator) Key(ctx context.Context, secret string) (APIKey, error) {
	hash := HashKey(secret)
	now := time.Now()
	a.mu.Lock()
	c, hit := a.keys[hash]
	a.mu.Unlock()
	if hit && c.trusted(now) {
		return c.value, nil
	}
	key, err := a.store.Authenticate(ctx, secret)
	if err != nil {
		return APIKey{}, err
	}
	a.mu.Lock()
	a.keys[hash] = cached[APIKey]{value: key, read: now}
	a.mu.Unlock()
	return key, nil
}

// Used records (at most once a minute) that a key was used: called once
// a request has passed every check, so that a leaked key without its
// signing secret does not look used.
func (a *Authenticator) Used(ctx context.Context, key APIKey) {
	now := time.Now()
	if last, ok := a.touched.Load(key.ID); ok && now.Sub(last.(time.Time)) <= keyTouchEvery {
		return
	}
	a.touched.Store(key.ID, now)
	if err := a.store.TouchKey(ctx, key.ID); err != nil {
		a.log.Warn("touch key", "err", err)
	}
}

// RevokeKey revokes a key of the workspace and forgets it at once.
func (a *Authenticator) RevokeKey(ctx context.Context, workspaceID, keyID string) error {
	if err := a.store.RevokeKey(ctx, workspaceID, keyID); err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for h, k := range a.keys {
		if k.value.ID == keyID {
			delete(a.keys, h)
		}
	}
	return nil
}

// SigningSecrets returns the workspace's live signing secrets; fresh reads
// them from the database rather than the cache, unless they were read
// within freshReadEvery (a signature that matches none of the cached ones
// may be keyed with a secret just rotated in, here or in another process).
func (a *Authenticator) SigningSecrets(ctx context.Context, workspaceID string, fresh bool) (SigningSecrets, error) {
	now := time.Now()
	a.mu.Lock()
	c, hit := a.secrets[workspaceID]
	a.mu.Unlock()
	live := hit && c.trusted(now) && (c.value.ValidUntil.IsZero() || now.Before(c.value.ValidUntil))
	// A fresh read at most once per freshReadEvery per workspace: wrong
	// signatures cannot make every request a database read.
	if live && (!fresh || now.Sub(c.read) < freshReadEvery) {
		return c.value, nil
	}
	secrets, err := a.store.SigningSecrets(ctx, workspaceID)
	if err != nil {
		return SigningSecrets{}, err
	}
	a.mu.Lock()
	a.secrets[workspaceID] = cached[SigningSecrets]{value: secrets, read: now}
	a.mu.Unlock()
	return secrets, nil
}

// RotateSigningSecret issues the workspace a new signing secret and
// forgets the cached ones at once.
func (a *Authenticator) RotateSigningSecret(ctx context.Context, workspaceID string) (RotatedSigningSecret, error) {
	r, err := a.store.RotateSigningSecret(ctx, workspaceID)
	if err != nil {
		return RotatedSigningSecret{}, err
	}
	a.mu.Lock()
	delete(a.secrets, workspaceID)
	a.mu.Unlock()
	return r, nil
}
