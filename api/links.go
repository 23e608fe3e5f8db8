package api

import (
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/orbt/orbt/validate"
	"github.com/orbt/orbt/workspace"
)

// createLink opens the consumer pages for one consumer: 201 with the link's
// URL, shown this once.
func (a *API) createLink(c *gin.Context) {
	var req struct {
		ExpiresInSeconds *int64 `json:"expiresInSeconds"`
	}
	if c.Request.ContentLength != 0 && !bind(c, &req, validate.BodyBytesMax) {
		return
	}
	ttl := workspace.LinkTTLDefault
	if req.ExpiresInSeconds != nil {
		maxSeconds := int64(workspace.LinkTTLMax / time.Second)
		if *req.ExpiresInSeconds < 60 || *req.ExpiresInSeconds > maxSeconds {
			var v validate.Validator
			v.Add("expiresInSeconds", "must be between 60 and "+strconv.FormatInt(maxSeconds, 10))
			valid(c, &v)
			return
		}
		ttl = time.Duration(*req.ExpiresInSeconds) * time.Second
	}
	link, token, err := a.ws.CreateLink(c, wsID(c), c.Param("id"), ttl)
	if err != nil {
		a.fail(c, err)
		return
	}
	link.URL = a.opts.PublicURL + "/c/l/" + token
	c.JSON(http.StatusCreated, link)
}

// revokeLink ends a link and the sessions it opened.
func (a *API) revokeLink(c *gin.Context) {
	link, err := a.ws.RevokeLink(c, wsID(c), c.Param("id"), c.Param("linkId"))
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, link)
}
