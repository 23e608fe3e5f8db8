package api

import (
	"net/http"

	"github.com/orbt/orbt/server"
)

// Routes mounts the native API on the server, readable top to bottom as its
// table of contents; openapi.yaml describes every route.
func (a *API) Routes(s *server.Server) {
	docsRoutes(s.Engine, a.openapi)

	admin := s.Engine.Group("/admin/v1", server.RequireAdmin(a.opts.AdminToken, false), server.ValidParams(server.Abort))
	admin.POST("/workspaces", a.adminCreateWorkspace)
	admin.POST("/workspaces/:id/fundings", a.adminFund)
	s.RouteTimeout(http.MethodPost, "/admin/v1/workspaces/:id/fundings", server.WaitingRequestTimeout)
	admin.GET("/brands", a.adminCatalog)
	admin.PUT("/workspaces/:id/brands", a.adminSetBrands)

	v1 := s.Engine.Group("/v1", a.authenticate, a.opts.RateLimiter.Middleware(server.Abort), server.ValidParams(server.Abort))
	write := v1.Group("", server.RequireWrite(server.Abort))

	v1.GET("/workspace", a.getWorkspace)
	write.POST("/workspace/signing-secret/rotate", a.rotateSigningSecret)
	write.POST("/api-keys", a.createKey)
	v1.GET("/api-keys", a.listKeys)
	write.DELETE("/api-keys/:id", a.revokeKey)

	write.POST("/consumers", a.createConsumer)
	v1.GET("/consumers", a.listConsumers)
	v1.GET("/consumers/:id", a.getConsumer)
	write.PATCH("/consumers/:id", a.updateConsumer)
	write.POST("/consumers/:id/wallets", a.createWallet)
	v1.GET("/consumers/:id/wallets", a.listWallets)
	write.POST("/consumers/:id/links", a.createLink)
	write.DELETE("/consumers/:id/links/:linkId", a.revokeLink)

	write.POST("/campaigns", a.createCampaign)
	v1.GET("/campaigns", a.listCampaigns)
	v1.GET("/campaigns/:id", a.getCampaign)
	write.PATCH("/campaigns/:id", a.updateCampaign)

	v1.GET("/wallets/:id", a.getWallet)
	v1.GET("/wallets/:id/transactions", a.walletStatement)

	write.POST("/transactions", a.createTransaction)
	s.RouteTimeout(http.MethodPost, "/v1/transactions", server.WaitingRequestTimeout)
	v1.GET("/transactions", a.listTransactions)
	v1.GET("/transactions/:id", a.getTransaction)

	write.POST("/batches", server.BodyDeadline(batchRequestTimeout), a.createBatch)
	s.RouteTimeout(http.MethodPost, "/v1/batches", batchRequestTimeout)
	v1.GET("/batches", a.listBatches)
	v1.GET("/batches/:id", a.getBatch)
	v1.GET("/batches/:id/transactions", a.listBatchTransactions)

	v1.GET("/brands", a.listBrands)
	write.POST("/redemptions", a.createRedemption)
	s.RouteTimeout(http.MethodPost, "/v1/redemptions", server.WaitingRequestTimeout)
	v1.GET("/redemptions", a.listRedemptions)
	v1.GET("/redemptions/:id", a.getRedemption)

	v1.GET("/events", a.listEvents)
	v1.GET("/events/:id", a.getEvent)
	write.POST("/events/:id/redeliver", a.redeliverEvent)

	write.POST("/webhook-endpoints", a.createEndpoint)
	v1.GET("/webhook-endpoints", a.listEndpoints)
	v1.GET("/webhook-endpoints/:id", a.getEndpoint)
	write.PATCH("/webhook-endpoints/:id", a.updateEndpoint)
	write.DELETE("/webhook-endpoints/:id", a.deleteEndpoint)
	write.POST("/webhook-endpoints/:id/rotate-secret", a.rotateEndpointSecret)
	v1.GET("/webhook-endpoints/:id/deliveries", a.listDeliveries)
}
