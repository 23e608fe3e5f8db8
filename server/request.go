package server

// What the surfaces share about one request: the API key its
// authentication verified, the write-scope check, and the replay mark.

import (
	"log/slog"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/orbt/orbt/httperr"
	"github.com/orbt/orbt/logging"
	"github.com/orbt/orbt/workspace"
)

// apiKeyContext names the request's verified API key in the gin context.
const apiKeyContext = "orbt.apiKey"

// SetAPIKey records the API key a surface's authentication verified.
// Lines logged for the rest of the request name its workspace and key.
func SetAPIKey(c *gin.Context, key workspace.APIKey) {
	c.Set(apiKeyContext, key)
	logging.Add(c, slog.String(logging.WorkspaceID, key.WorkspaceID), slog.String(logging.KeyID, key.ID))
}

// APIKey is the request's verified API key (the zero key before
// authentication).
func APIKey(c *gin.Context) workspace.APIKey {
	k, _ := c.Get(apiKeyContext)
	key, _ := k.(workspace.APIKey)
	return key
}

// WorkspaceID is the workspace of the request's key.
func WorkspaceID(c *gin.Context) string { return APIKey(c).WorkspaceID }

// RequireWrite refuses read-only keys on a surface's writes, rendering the
// 403 insufficient_scope as the surface renders errors.
func RequireWrite(render Renderer) gin.HandlerFunc {
	return func(c *gin.Context) {
		if APIKey(c).Scope != workspace.ScopeWrite {
			render(c, httperr.New(http.StatusForbidden, "insufficient_scope", "This API key is read-only."))
			c.Abort()
			return
		}
		c.Next()
	}
}

// LogID names an object the request made or found (a transaction, a
// batch) on the lines logged for the rest of it, its access line included.
func LogID(c *gin.Context, name, id string) { logging.Add(c, slog.String(name, id)) }

// Replayed marks a response, on any surface, as the answer first given to
// the same request (same referenceId, same payload).
func Replayed(c *gin.Context, replay bool) {
	if replay {
		c.Header("Idempotent-Replayed", "true")
	}
}

// SameOrigin reports whether a browser's form post comes from this server:
// its Origin, when the browser sends one, is the public URL's origin
// (behind a proxy that rewrites Host) or the origin the request was sent
// to. "null", which a browser sends when it withholds the origin (some
// privacy settings), passes: the form's CSRF token alone decides then.
func SameOrigin(r *http.Request, publicOrigin string, secure bool) bool {
	origin := r.Header.Get("Origin")
	if origin == "" || origin == "null" {
		return true
	}
	scheme := "http"
	if r.TLS != nil || secure {
		scheme = "https"
	}
	return origin == publicOrigin || origin == scheme+"://"+r.Host
}
