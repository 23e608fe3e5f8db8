package partnerapi

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/orbt/orbt/httperr"
	"github.com/orbt/orbt/server"
	"github.com/orbt/orbt/validate"
)

// Prefix is where the partner API is mounted: Orbt's hosted paths, so a
// client changes only its base URL.
const Prefix = "/api/partner/v1"

// Routes mounts the partner API on the server.
func (p *API) Routes(s *server.Server) {
	s.Surface(Prefix, Render)
	r := s.Engine.Group(Prefix, p.verify, validParams)
	write := r.Group("", server.RequireWrite(Render))

	write.POST("/customer", p.createCustomer)
	s.RouteTimeout(http.MethodPost, Prefix+"/customer", server.WaitingRequestTimeout)
	r.GET("/customer", p.listCustomers)
	r.GET("/customer/:customerId/wallets", p.listWallets)

	write.POST("/wallets/:walletId/transactions", p.createTransaction)
	s.RouteTimeout(http.MethodPost, Prefix+"/wallets/:walletId/transactions", server.WaitingRequestTimeout)
}

// validParams answers 404 for path values no object can have, so they
// never reach the database. (A customerId is a number: its own check
// answers 422.)
func validParams(c *gin.Context) {
	for _, prm := range c.Params {
		if prm.Key != "customerId" && !validate.PathID(prm.Value) {
			Render(c, httperr.New(http.StatusNotFound, "not_found", "No such object."))
			return
		}
	}
	c.Next()
}
