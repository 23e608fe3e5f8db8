package api

import (
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/orbt/orbt/httperr"
	"github.com/orbt/orbt/server"
	"github.com/orbt/orbt/workspace"
)

// keyTTL is how long a verified key is trusted without a database read. A
// revocation takes effect at once on the process that served it and within
// keyTTL everywhere else.
const keyTTL = 5 * time.Second

// keyTouchEvery throttles lastUsedAt writes to one per key per interval.
const keyTouchEvery = time.Minute

type cachedKey struct {
	key     workspace.APIKey
	expires time.Time
}

type keyCache struct {
	mu      sync.Mutex
	m       map[[32]byte]cachedKey
	touched sync.Map // key id -> time.Time
}

// ctxKey names what auth puts in the gin context.
const ctxKey = "orbt.apiKey"

// authenticate resolves the bearer key to its workspace.
func (a *API) authenticate(c *gin.Context) {
	secret, ok := server.Bearer(c.Request)
	if !ok {
		server.Abort(c, httperr.New(http.StatusUnauthorized, "unauthorized", "Send an API key: Authorization: Bearer <key>."))
		return
	}
	hash := workspace.HashKey(secret)
	now := time.Now()
	a.keys.mu.Lock()
	cached, hit := a.keys.m[hash]
	a.keys.mu.Unlock()
	if !hit || now.After(cached.expires) {
		key, err := a.ws.Authenticate(c, secret)
		if errors.Is(err, workspace.ErrUnauthorized) {
			server.Abort(c, httperr.New(http.StatusUnauthorized, "unauthorized", "The API key is unknown or revoked."))
			return
		}
		if err != nil {
			a.fail(c, err)
			return
		}
		cached = cachedKey{key: key, expires: now.Add(keyTTL)}
		a.keys.mu.Lock()
		a.keys.m[hash] = cached
		a.keys.mu.Unlock()
	}
	if last, ok := a.keys.touched.Load(cached.key.ID); !ok || now.Sub(last.(time.Time)) > keyTouchEvery {
		a.keys.touched.Store(cached.key.ID, now)
		if err := a.ws.TouchKey(c, cached.key.ID); err != nil {
			a.log.Warn("touch key", "err", err)
		}
	}
	c.Set(ctxKey, cached.key)
	c.Next()
}

// forget drops a revoked key from this process's cache.
func (a *API) forget(keyID string) {
	a.keys.mu.Lock()
	defer a.keys.mu.Unlock()
	for h, k := range a.keys.m {
		if k.key.ID == keyID {
			delete(a.keys.m, h)
		}
	}
}

// requireWrite refuses read keys on writes.
func requireWrite(c *gin.Context) {
	if apiKey(c).Scope != workspace.ScopeWrite {
		server.Abort(c, httperr.New(http.StatusForbidden, "insufficient_scope", "This API key is read-only."))
		return
	}
	c.Next()
}

func apiKey(c *gin.Context) workspace.APIKey {
	k, _ := c.Get(ctxKey)
	key, _ := k.(workspace.APIKey)
	return key
}

// wsID is the workspace of the request's key.
func wsID(c *gin.Context) string { return apiKey(c).WorkspaceID }
