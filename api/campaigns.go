package api

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/orbt/orbt/ledger"
	"github.com/orbt/orbt/validate"
)

type campaignRequest struct {
	Name          *string   `json:"name"`
	Currency      string    `json:"currency"`
	Status        *string   `json:"status"`
	Budget        *int64    `json:"budget"`
	StartsAt      *string   `json:"startsAt"`
	EndsAt        *string   `json:"endsAt"`
	AllowedBrands *[]string `json:"allowedBrands"`
}

// fields validates the settable fields; statuses lists what status may be.
func (r campaignRequest) fields(v *validate.Validator, statuses ...string) ledger.CampaignFields {
	v.OptText("name", r.Name, validate.NameLenMax)
	if r.Status != nil {
		v.OneOf("status", *r.Status, statuses...)
	}
	if r.Budget != nil {
		v.Amount("budget", *r.Budget)
	}
	f := ledger.CampaignFields{Name: r.Name, Status: r.Status, Budget: r.Budget,
		StartsAt: v.Time("startsAt", r.StartsAt), EndsAt: v.Time("endsAt", r.EndsAt), AllowedBrands: r.AllowedBrands}
	if f.StartsAt != nil && f.EndsAt != nil && !f.StartsAt.Before(*f.EndsAt) {
		v.Add("endsAt", "must be after startsAt")
	}
	if r.AllowedBrands != nil {
		if len(*r.AllowedBrands) > validate.BrandsMax {
			v.Add("allowedBrands", "must list at most 100 brands")
		}
		for _, b := range *r.AllowedBrands {
			v.Token("allowedBrands", b, validate.IDLenMax)
		}
	}
	return f
}

func (a *API) createCampaign(c *gin.Context) {
	var req campaignRequest
	if !bind(c, &req, validate.BodyBytesMax) {
		return
	}
	var v validate.Validator
	if req.Name == nil {
		v.Add("name", "is required")
	}
	cur := v.Currency("currency", req.Currency)
	f := req.fields(&v, ledger.CampaignActive, ledger.CampaignPaused)
	if !valid(c, &v) {
		return
	}
	campaign, err := a.ledger.CreateCampaign(c, wsID(c), cur, f)
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusCreated, campaign)
}

func (a *API) listCampaigns(c *gin.Context) {
	listPage(a, c, validate.IDKey("cmp"), func(x ledger.Campaign) string { return x.ID }, func(after string, limit int) ([]ledger.Campaign, error) {
		return a.ledger.Campaigns(c, wsID(c), after, limit)
	})
}

func (a *API) getCampaign(c *gin.Context) {
	campaign, err := a.ledger.Campaign(c, wsID(c), c.Param("id"))
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, campaign)
}

func (a *API) updateCampaign(c *gin.Context) {
	var req campaignRequest
	if !bind(c, &req, validate.BodyBytesMax) {
		return
	}
	var v validate.Validator
	if req.Currency != "" {
		v.Add("currency", "cannot be changed")
	}
	f := req.fields(&v, ledger.CampaignActive, ledger.CampaignPaused, ledger.CampaignEnded)
	if !valid(c, &v) {
		return
	}
	campaign, err := a.ledger.UpdateCampaign(c, wsID(c), c.Param("id"), f)
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, campaign)
}
