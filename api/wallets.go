package api

import (
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/orbt/orbt/httperr"
	"github.com/orbt/orbt/ledger"
	"github.com/orbt/orbt/validate"
)

func (a *API) createWallet(c *gin.Context) {
	var req struct {
		Currency   string  `json:"currency"`
		Type       string  `json:"type"`
		CampaignID *string `json:"campaignId"`
	}
	if !bind(c, &req, validate.BodyBytesMax) {
		return
	}
	var v validate.Validator
	cur := v.Currency("currency", req.Currency)
	v.OneOf("type", req.Type, ledger.WalletStandard, ledger.WalletCampaign)
	switch {
	case req.Type == ledger.WalletCampaign && req.CampaignID == nil:
		v.Add("campaignId", "is required for a campaign wallet")
	case req.Type == ledger.WalletStandard && req.CampaignID != nil:
		v.Add("campaignId", "must be absent for a standard wallet")
	case req.CampaignID != nil:
		v.Token("campaignId", *req.CampaignID, validate.IDLenMax)
	}
	if !valid(c, &v) {
		return
	}
	// Consumers are the workspace store's: it says whether this one is the
	// workspace's before the ledger opens a wallet for it.
	if _, err := a.ws.Consumer(c, wsID(c), c.Param("id")); err != nil {
		a.fail(c, err)
		return
	}
	w, err := a.ledger.CreateWallet(c, wsID(c), c.Param("id"), req.Type, cur, req.CampaignID)
	if err != nil {
		a.fail(c, httperr.OnField("campaignId", err))
		return
	}
	c.JSON(http.StatusCreated, w)
}

func (a *API) listWallets(c *gin.Context) {
	listPage(a, c, validate.IDKey("wal"), func(w ledger.Wallet) string { return w.ID }, func(after string, limit int) ([]ledger.Wallet, error) {
		if _, err := a.ws.Consumer(c, wsID(c), c.Param("id")); err != nil {
			return nil, err
		}
		return a.ledger.ConsumerWallets(c, wsID(c), c.Param("id"), after, limit)
	})
}

func (a *API) getWallet(c *gin.Context) {
	w, err := a.ledger.Wallet(c, wsID(c), c.Param("id"))
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, w)
}

// walletStatement lists a wallet's entries, newest first, paged by entry id.
func (a *API) walletStatement(c *gin.Context) {
	keyOf := func(l ledger.StatementLine) string { return strconv.FormatInt(l.EntryID, 10) }
	listPage(a, c, validate.SerialKey, keyOf, func(after string, limit int) ([]ledger.StatementLine, error) {
		entry, _ := strconv.ParseInt(after, 10, 64) // SerialKey checked it; "" is 0, the first page
		return a.ledger.Statement(c, wsID(c), c.Param("id"), entry, limit)
	})
}
