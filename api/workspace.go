package api

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/orbt/orbt/ledger"
)

func (a *API) getWorkspace(c *gin.Context) {
	w, err := a.ws.Workspace(c, wsID(c))
	if err != nil {
		a.fail(c, err)
		return
	}
	balances, err := a.ledger.PartnerBalances(c, w.ID)
	if err != nil {
		a.fail(c, err)
		return
	}
	if balances == nil {
		balances = []ledger.Balance{}
	}
	c.JSON(http.StatusOK, gin.H{"id": w.ID, "name": w.Name, "createdAt": w.CreatedAt, "balances": balances})
}

// rotateSigningSecret issues the workspace a new request-signing secret
// (for the Orbt-compatible partner API), shown this once; the old one
// keeps verifying for a day.
func (a *API) rotateSigningSecret(c *gin.Context) {
	rotated, err := a.auth.RotateSigningSecret(c, wsID(c))
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, rotated)
}
