package api

import (
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/orbt/orbt/giftcard"
	"github.com/orbt/orbt/httperr"
	"github.com/orbt/orbt/logging"
	"github.com/orbt/orbt/server"
	"github.com/orbt/orbt/validate"
	"github.com/orbt/orbt/workspace"
)

type redemptionRequest struct {
	ReferenceID string `json:"referenceId"`
	WalletID    string `json:"walletId"`
	BrandID     string `json:"brandId"`
	Amount      int64  `json:"amount"`
}

// createRedemption commits a redemption, answers 202, and hands it to the
// worker. A replay answers the original. With "Prefer: wait=N" it waits
// up to N seconds for the outcome and answers 200 with the final
// redemption (and its card) when there is one by then.
func (a *API) createRedemption(c *gin.Context) {
	var req redemptionRequest
	if !bind(c, &req, validate.BodyBytesMax) {
		return
	}
	var v validate.Validator
	v.Token("referenceId", req.ReferenceID, validate.ReferenceIDLenMax)
	v.Token("walletId", req.WalletID, validate.IDLenMax)
	v.Token("brandId", req.BrandID, validate.IDLenMax)
	v.Amount("amount", req.Amount)
	if !valid(c, &v) {
		return
	}
	r, replay, err := a.giftcards.Redeem(c, giftcard.RedeemRequest{WorkspaceID: wsID(c), ReferenceID: req.ReferenceID,
		WalletID: req.WalletID, BrandID: req.BrandID, Amount: req.Amount})
	if err != nil {
		a.fail(c, httperr.OnField("walletId", err))
		return
	}
	server.LogID(c, logging.RedemptionID, r.ID)
	if !replay {
		a.queue.RedemptionAccepted(c, r.ID)
	}
	server.Replayed(c, replay)
	answerAccepted(c, r, func(wait time.Duration) (any, bool) {
		final, err := a.giftcards.AwaitFinal(c, r, wait)
		return final, err == nil && final.Final()
	})
}

// getRedemption answers one redemption; its card only to a write key (a
// card is money: a read key, for reporting, sees everything else).
func (a *API) getRedemption(c *gin.Context) {
	r, err := a.giftcards.Redemption(c, wsID(c), c.Param("id"))
	if err != nil {
		a.fail(c, err)
		return
	}
	if server.APIKey(c).Scope != workspace.ScopeWrite {
		r = r.WithoutCard()
	}
	c.JSON(http.StatusOK, r)
}

func (a *API) listRedemptions(c *gin.Context) {
	listPage(a, c, validate.IDKey("red"), func(r giftcard.Redemption) string { return r.ID }, func(after string, limit int) ([]giftcard.Redemption, error) {
		var v validate.Validator
		var f giftcard.Filter
		f.WalletID = v.QueryToken(c.Request, "walletId")
		if f.Status = c.Query("status"); f.Status != "" {
			v.OneOf("status", f.Status, giftcard.StatusPending, giftcard.StatusProcessing, giftcard.StatusCompleted, giftcard.StatusFailed)
		}
		if e := v.Err(); e != nil {
			return nil, e
		}
		return a.giftcards.Redemptions(c, wsID(c), f, after, limit)
	})
}

// listBrands lists the brands the workspace may redeem.
func (a *API) listBrands(c *gin.Context) {
	brands, err := a.giftcards.EnabledBrands(c, wsID(c))
	if err != nil {
		a.fail(c, err)
		return
	}
	out := make([]giftcard.Brand, len(brands))
	for i, b := range brands {
		out[i] = b.ForPartners()
	}
	c.JSON(http.StatusOK, validate.PageOf(out, len(out), func(b giftcard.Brand) string { return b.ID }))
}

// adminCatalog lists every brand of the catalog, with its provider.
func (a *API) adminCatalog(c *gin.Context) {
	brands, err := a.giftcards.Catalog(c)
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, validate.PageOf(brands, len(brands), func(b giftcard.Brand) string { return b.ID }))
}

// adminSetBrands sets which brands a workspace may redeem.
func (a *API) adminSetBrands(c *gin.Context) {
	var req struct {
		BrandIDs []string `json:"brandIds"`
	}
	if !bind(c, &req, validate.BodyBytesMax) {
		return
	}
	var v validate.Validator
	if req.BrandIDs == nil {
		v.Add("brandIds", "is required (an empty list disables every brand)")
	}
	if len(req.BrandIDs) > brandsPerWorkspaceMax {
		v.Add("brandIds", "must list at most "+strconv.Itoa(brandsPerWorkspaceMax)+" brands")
	}
	for i, id := range req.BrandIDs {
		v.Token("brandIds["+strconv.Itoa(i)+"]", id, validate.IDLenMax)
	}
	if !valid(c, &v) {
		return
	}
	brands, err := a.giftcards.SetEnabledBrands(c, c.Param("id"), req.BrandIDs)
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, validate.PageOf(brands, len(brands), func(b giftcard.Brand) string { return b.ID }))
}

// brandsPerWorkspaceMax bounds one workspace's enabled brands.
const brandsPerWorkspaceMax = 5000
