package api

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/orbt/orbt/httperr"
	"github.com/orbt/orbt/ledger"
	"github.com/orbt/orbt/validate"
)

// listEvents lists events oldest first for catching up: ?after= an event id
// the receiver has, or the cursor of the previous page.
func (a *API) listEvents(c *gin.Context) {
	listPage(a, c, validate.IDKey("evt"), func(e ledger.Event) string { return e.ID }, func(cursor string, limit int) ([]ledger.Event, error) {
		var v validate.Validator
		eventType := v.QueryToken(c.Request, "type")
		after, field := v.QueryToken(c.Request, "after"), "after"
		if after == "" {
			after, field = cursor, "cursor"
		}
		if e := v.Err(); e != nil {
			return nil, e
		}
		events, err := a.ledger.Events(c, wsID(c), eventType, after, limit)
		return events, httperr.OnField(field, err)
	})
}

func (a *API) getEvent(c *gin.Context) {
	e, err := a.ledger.Event(c, wsID(c), c.Param("id"))
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, e)
}

// redeliverEvent sends an event again: to every enabled endpoint subscribed
// to its type, or to the one named in the optional body.
func (a *API) redeliverEvent(c *gin.Context) {
	var req struct {
		EndpointID string `json:"endpointId"`
	}
	if c.Request.ContentLength != 0 && !bind(c, &req, validate.BodyBytesMax) {
		return
	}
	var v validate.Validator
	if req.EndpointID != "" {
		v.Token("endpointId", req.EndpointID, validate.IDLenMax)
	}
	if !valid(c, &v) {
		return
	}
	if req.EndpointID != "" {
		if _, err := a.webhooks.Endpoint(c, wsID(c), req.EndpointID); err != nil {
			a.fail(c, httperr.OnField("endpointId", err))
			return
		}
	}
	event, err := a.ledger.Event(c, wsID(c), c.Param("id"))
	if err != nil {
		a.fail(c, err)
		return
	}
	ids, err := a.webhooks.Redeliver(c, ledger.EventRef{ID: event.ID, WorkspaceID: wsID(c), Type: event.Type}, req.EndpointID)
	if err != nil {
		a.fail(c, err)
		return
	}
	if ids == nil {
		ids = []string{} // none subscribed: an empty list, not null
	}
	a.queue.Deliveries(c, ids)
	c.JSON(http.StatusAccepted, gin.H{"eventId": c.Param("id"), "deliveries": ids})
}
