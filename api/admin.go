package api

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/orbt/orbt/ledger"
	"github.com/orbt/orbt/validate"
	"github.com/orbt/orbt/workspace"
)

func (a *API) adminCreateWorkspace(c *gin.Context) {
	var req struct {
		Name string `json:"name"`
	}
	if !bind(c, &req, validate.BodyBytesMax) {
		return
	}
	var v validate.Validator
	v.Text("name", req.Name, true, validate.NameLenMax)
	if !valid(c, &v) {
		return
	}
	created, err := a.ws.CreateWorkspace(c, req.Name)
	if err != nil {
		a.fail(c, err)
		return
	}
	created.ConsoleInviteURL = workspace.InviteURL(a.opts.PublicURL, created.InviteToken)
	c.JSON(http.StatusCreated, created)
}

// adminFund credits a partner balance from the external funding account. It
// is a money movement like any other: accepted (202, pending), applied by
// the worker, deduplicated by referenceId.
func (a *API) adminFund(c *gin.Context) {
	var req struct {
		ReferenceID string `json:"referenceId"`
		Currency    string `json:"currency"`
		Amount      int64  `json:"amount"`
	}
	if !bind(c, &req, validate.BodyBytesMax) {
		return
	}
	var v validate.Validator
	v.Token("referenceId", req.ReferenceID, validate.ReferenceIDLenMax)
	cur := v.Currency("currency", req.Currency)
	v.Amount("amount", req.Amount)
	if !valid(c, &v) {
		return
	}
	if _, err := a.ws.Workspace(c, c.Param("id")); err != nil {
		a.fail(c, err)
		return
	}
	a.accept(c, ledger.TransactionRequest{WorkspaceID: c.Param("id"), ReferenceID: req.ReferenceID,
		Type: ledger.TypeFunding, Amount: req.Amount, Currency: cur}, "")
}
