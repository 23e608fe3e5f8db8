package api

import (
	"errors"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/orbt/orbt/httperr"
	"github.com/orbt/orbt/server"
	"github.com/orbt/orbt/workspace"
)

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
	a.auth.Used(c, key)
	server.SetAPIKey(c, key)
	c.Next()
}

// wsID is the workspace of the request's key.
func wsID(c *gin.Context) string { return server.WorkspaceID(c) }
