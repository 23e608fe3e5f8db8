package api

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/orbt/orbt/validate"
	"github.com/orbt/orbt/webhook"
)

// eventTypesMax bounds an endpoint's event filter.
const eventTypesMax = 10

type endpointRequest struct {
	URL         *string   `json:"url"`
	Events      *[]string `json:"events"`
	Enabled     *bool     `json:"enabled"`
	Description *string   `json:"description"`
}

func (r endpointRequest) validate(v *validate.Validator, store *webhook.Store) webhook.EndpointFields {
	if r.URL != nil {
		v.Text("url", *r.URL, true, validate.URLLenMax)
		if err := store.ValidateURL(*r.URL); err != nil {
			v.Add("url", err.Error())
		}
	}
	if r.Events != nil {
		if len(*r.Events) == 0 || len(*r.Events) > eventTypesMax {
			v.Add("events", "must list from 1 to 10 event types")
		} else if err := webhook.ValidateEvents(*r.Events); err != nil {
			v.Add("events", err.Error())
		}
	}
	v.OptText("description", r.Description, validate.DescriptionLenMax)
	return webhook.EndpointFields{URL: r.URL, Events: r.Events, Enabled: r.Enabled, Description: r.Description}
}

func (a *API) createEndpoint(c *gin.Context) {
	var req endpointRequest
	if !bind(c, &req, validate.BodyBytesMax) {
		return
	}
	var v validate.Validator
	if req.URL == nil {
		v.Add("url", "is required")
	}
	if req.Events == nil {
		v.Add("events", "is required")
	}
	if req.Enabled != nil {
		v.Add("enabled", "is set with PATCH once the endpoint exists")
	}
	f := req.validate(&v, a.webhooks)
	if !valid(c, &v) {
		return
	}
	e, err := a.webhooks.CreateEndpoint(c, wsID(c), *f.URL, *f.Events, f.Description)
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusCreated, e)
}

func (a *API) listEndpoints(c *gin.Context) {
	listPage(a, c, validate.IDKey("whk"), func(e webhook.Endpoint) string { return e.ID }, func(after string, limit int) ([]webhook.Endpoint, error) {
		return a.webhooks.Endpoints(c, wsID(c), after, limit)
	})
}

func (a *API) getEndpoint(c *gin.Context) {
	e, err := a.webhooks.Endpoint(c, wsID(c), c.Param("id"))
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, e)
}

func (a *API) updateEndpoint(c *gin.Context) {
	var req endpointRequest
	if !bind(c, &req, validate.BodyBytesMax) {
		return
	}
	var v validate.Validator
	f := req.validate(&v, a.webhooks)
	if !valid(c, &v) {
		return
	}
	e, err := a.webhooks.UpdateEndpoint(c, wsID(c), c.Param("id"), f)
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, e)
}

func (a *API) deleteEndpoint(c *gin.Context) {
	if err := a.webhooks.DeleteEndpoint(c, wsID(c), c.Param("id")); err != nil {
		a.fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

func (a *API) rotateEndpointSecret(c *gin.Context) {
	e, err := a.webhooks.RotateSecret(c, wsID(c), c.Param("id"))
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, e)
}

func (a *API) listDeliveries(c *gin.Context) {
	listPage(a, c, validate.IDKey("whd"), func(d webhook.Delivery) string { return d.ID }, func(after string, limit int) ([]webhook.Delivery, error) {
		return a.webhooks.Deliveries(c, wsID(c), c.Param("id"), after, limit)
	})
}
