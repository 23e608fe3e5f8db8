package api

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/orbt/orbt/validate"
	"github.com/orbt/orbt/workspace"
)

type consumerRequest struct {
	ExternalID string            `json:"externalId"`
	Email      *string           `json:"email"`
	Name       *string           `json:"name"`
	Metadata   map[string]string `json:"metadata"`
}

func (a *API) createConsumer(c *gin.Context) {
	var req consumerRequest
	if !bind(c, &req, validate.BodyBytesMax) {
		return
	}
	var v validate.Validator
	v.Token("externalId", req.ExternalID, validate.ReferenceIDLenMax)
	v.Email("email", req.Email)
	v.OptText("name", req.Name, validate.NameLenMax)
	v.Metadata("metadata", req.Metadata)
	if !valid(c, &v) {
		return
	}
	consumer, err := a.ws.CreateConsumer(c, wsID(c), workspace.Consumer{
		ExternalID: req.ExternalID, Email: req.Email, Name: req.Name, Metadata: req.Metadata})
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusCreated, consumer)
}

func (a *API) listConsumers(c *gin.Context) {
	listPage(a, c, validate.IDKey("csm"), func(x workspace.Consumer) string { return x.ID }, func(after string, limit int) ([]workspace.Consumer, error) {
		var v validate.Validator
		externalID := v.QueryToken(c.Request, "externalId")
		if e := v.Err(); e != nil {
			return nil, e
		}
		return a.ws.Consumers(c, wsID(c), externalID, after, limit)
	})
}

func (a *API) getConsumer(c *gin.Context) {
	consumer, err := a.ws.Consumer(c, wsID(c), c.Param("id"))
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, consumer)
}

func (a *API) updateConsumer(c *gin.Context) {
	var req struct {
		Email    *string           `json:"email"`
		Name     *string           `json:"name"`
		Metadata map[string]string `json:"metadata"`
	}
	if !bind(c, &req, validate.BodyBytesMax) {
		return
	}
	var v validate.Validator
	v.Email("email", req.Email)
	v.OptText("name", req.Name, validate.NameLenMax)
	v.Metadata("metadata", req.Metadata)
	if !valid(c, &v) {
		return
	}
	consumer, err := a.ws.UpdateConsumer(c, wsID(c), c.Param("id"),
		workspace.ConsumerUpdate{Email: req.Email, Name: req.Name, Metadata: req.Metadata})
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, consumer)
}
