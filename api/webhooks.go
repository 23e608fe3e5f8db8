package api

import (
	"context"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/orbt/orbt/tasks"
	"github.com/orbt/orbt/webhook"
)

const (
	urlLenMax    = 2048
	eventTypeMax = 10
)

type endpointRequest struct {
	URL         *string   `json:"url"`
	Events      *[]string `json:"events"`
	Enabled     *bool     `json:"enabled"`
	Description *string   `json:"description"`
}

func (r endpointRequest) validate(v *validator, store *webhook.Store) webhook.EndpointFields {
	if r.URL != nil {
		v.text("url", *r.URL, true, urlLenMax)
		if err := store.ValidateURL(*r.URL); err != nil {
			v.add("url", err.Error())
		}
	}
	if r.Events != nil {
		if len(*r.Events) == 0 || len(*r.Events) > eventTypeMax {
			v.add("events", "must list at least one event type")
		} else if err := webhook.ValidateEvents(*r.Events); err != nil {
			v.add("events", err.Error())
		}
	}
	v.optText("description", r.Description, descriptionLenMax)
	return webhook.EndpointFields{URL: r.URL, Events: r.Events, Enabled: r.Enabled, Description: r.Description}
}

func (s *Server) createEndpoint(c *gin.Context) {
	var req endpointRequest
	if p := decodeJSON(c, &req); p != nil {
		abort(c, p)
		return
	}
	var v validator
	if req.URL == nil {
		v.add("url", "is required")
	}
	if req.Events == nil {
		v.add("events", "is required")
	}
	if req.Enabled != nil {
		v.add("enabled", "is set with PATCH once the endpoint exists")
	}
	f := req.validate(&v, s.webhooks)
	if p := v.problem(); p != nil {
		abort(c, p)
		return
	}
	e, err := s.webhooks.CreateEndpoint(c, wsID(c), *f.URL, *f.Events, f.Description)
	if err != nil {
		fail(c, s.log, err)
		return
	}
	c.JSON(http.StatusCreated, e)
}

func (s *Server) listEndpoints(c *gin.Context) {
	pg, p := readPage(c)
	if p != nil {
		abort(c, p)
		return
	}
	list, err := s.webhooks.Endpoints(c, wsID(c), pg.cursor, pg.limit+1)
	if err != nil {
		fail(c, s.log, err)
		return
	}
	c.JSON(http.StatusOK, pageOf(list, pg.limit, func(e webhook.Endpoint) string { return e.ID }))
}

func (s *Server) getEndpoint(c *gin.Context) {
	e, err := s.webhooks.Endpoint(c, wsID(c), c.Param("id"))
	if err != nil {
		fail(c, s.log, err)
		return
	}
	c.JSON(http.StatusOK, e)
}

func (s *Server) updateEndpoint(c *gin.Context) {
	var req endpointRequest
	if p := decodeJSON(c, &req); p != nil {
		abort(c, p)
		return
	}
	var v validator
	f := req.validate(&v, s.webhooks)
	if p := v.problem(); p != nil {
		abort(c, p)
		return
	}
	e, err := s.webhooks.UpdateEndpoint(c, wsID(c), c.Param("id"), f)
	if err != nil {
		fail(c, s.log, err)
		return
	}
	c.JSON(http.StatusOK, e)
}

func (s *Server) deleteEndpoint(c *gin.Context) {
	if err := s.webhooks.DeleteEndpoint(c, wsID(c), c.Param("id")); err != nil {
		fail(c, s.log, err)
		return
	}
	c.Status(http.StatusNoContent)
}

func (s *Server) rotateEndpointSecret(c *gin.Context) {
	e, err := s.webhooks.RotateSecret(c, wsID(c), c.Param("id"))
	if err != nil {
		fail(c, s.log, err)
		return
	}
	c.JSON(http.StatusOK, e)
}

func (s *Server) listDeliveries(c *gin.Context) {
	pg, p := readPage(c)
	if p != nil {
		abort(c, p)
		return
	}
	list, err := s.webhooks.Deliveries(c, wsID(c), c.Param("id"), pg.cursor, pg.limit+1)
	if err != nil {
		fail(c, s.log, err)
		return
	}
	c.JSON(http.StatusOK, pageOf(list, pg.limit, func(d webhook.Delivery) string { return d.ID }))
}

// redeliverEvent sends an event again: to every enabled endpoint subscribed
// to its type, or to the one named in the optional body.
func (s *Server) redeliverEvent(c *gin.Context) {
	var req struct {
		EndpointID string `json:"endpointId"`
	}
	if c.Request.ContentLength != 0 {
		if p := decodeJSON(c, &req); p != nil {
			abort(c, p)
			return
		}
	}
	var v validator
	if req.EndpointID != "" {
		v.token("endpointId", req.EndpointID, idLenMax)
	}
	if p := v.problem(); p != nil {
		abort(c, p)
		return
	}
	if req.EndpointID != "" {
		if _, err := s.webhooks.Endpoint(c, wsID(c), req.EndpointID); err != nil {
			fail(c, s.log, onField("endpointId", err))
			return
		}
	}
	ids, err := s.webhooks.Redeliver(c, wsID(c), c.Param("id"), req.EndpointID)
	if err != nil {
		fail(c, s.log, err)
		return
	}
	for _, id := range ids {
		task, err := tasks.NewWebhookDeliver(id, id+":1", time.Time{})
		s.enqueue(context.WithoutCancel(c), task, err)
	}
	c.JSON(http.StatusAccepted, gin.H{"eventId": c.Param("id"), "deliveries": ids})
}
