package partnerapi

import (
	"net/http"

	"github.com/orbt/orbt/server"
)

// Prefix is where the partner API is mounted: Orbt's hosted paths, so a
// client changes only its base URL.
const Prefix = "/api/partner/v1"

// Routes mounts the partner API on the server.
func (p *API) Routes(s *server.Server) {
	s.Surface(Prefix, Render)
	// A customerId is a number: its handler answers 422 for one that is not.
	r := s.Engine.Group(Prefix, p.verify, p.limits.Middleware(Render), server.ValidParams(Render, "customerId"))
	write := r.Group("", server.RequireWrite(Render))

	write.POST("/customer", p.createCustomer)
	s.RouteTimeout(http.MethodPost, Prefix+"/customer", server.WaitingRequestTimeout)
	r.GET("/customer", p.listCustomers)
	r.GET("/customer/:customerId/wallets", p.listWallets)

	write.POST("/wallets/:walletId/transactions", p.createTransaction)
	s.RouteTimeout(http.MethodPost, Prefix+"/wallets/:walletId/transactions", server.WaitingRequestTimeout)
}
