package api

import (
	"errors"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/orbt/orbt/httperr"
	"github.com/orbt/orbt/server"
	"github.com/orbt/orbt/workspace"
)

// ctxKey names what auth puts in the gin context.
const ctxKey = "orbt.apiKey"

// authenticate resolves the bearer key to its workspace.
func (a *API) authenticate(c *gin.Context) {
	secret, ok := server.Bearer(c.Request)
	if !ok {
		server.Abort(c, httperr.New(http.StatusUnauthorized, "unauthorized", "Send an API key: Authorization: Bearer <key>."))
		return
	}
	key, err := a.auth.Key(c, secret)
	if errors.Is(err, workspace.ErrUnauthorized) {
		server.Abort(c, httperr.New(http.StatusUnauthorized, "unauthorized", "The API key is unknown or revoked."))
		return
	}
	if err != nil {
		a.fail(c, err)
		return
	}
	c.Set(ctxKey, key)
	c.Next()
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
