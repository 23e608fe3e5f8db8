package api

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/orbt/orbt/validate"
	"github.com/orbt/orbt/workspace"
)

func (a *API) createKey(c *gin.Context) {
	var req struct {
		Name  string `json:"name"`
		Scope string `json:"scope"`
	}
	if !bind(c, &req, validate.BodyBytesMax) {
		return
	}
	var v validate.Validator
	v.Text("name", req.Name, true, validate.NameLenMax)
	v.OneOf("scope", req.Scope, workspace.ScopeRead, workspace.ScopeWrite)
	if !valid(c, &v) {
		return
	}
	key, err := a.ws.CreateKey(c, wsID(c), req.Name, req.Scope)
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusCreated, key)
}

func (a *API) listKeys(c *gin.Context) {
	listPage(a, c, validate.IDKey("key"), func(k workspace.APIKey) string { return k.ID }, func(after string, limit int) ([]workspace.APIKey, error) {
		return a.ws.Keys(c, wsID(c), after, limit)
	})
}

func (a *API) revokeKey(c *gin.Context) {
	if err := a.auth.RevokeKey(c, wsID(c), c.Param("id")); err != nil {
		a.fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}
