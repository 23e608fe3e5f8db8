package api

import (
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Handler returns the routes, readable top to bottom as the API's table of
// contents.
func (s *Server) Handler() http.Handler {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.HandleMethodNotAllowed = true
	r.ContextWithFallback = true
	r.Use(requestID, s.observe, gin.CustomRecovery(s.recoverProblem), deadline)
	r.NoRoute(func(c *gin.Context) { abort(c, newProblem(http.StatusNotFound, "not_found", "No such route.")) })
	r.NoMethod(func(c *gin.Context) {
		abort(c, newProblem(http.StatusMethodNotAllowed, "method_not_allowed", "This route does not take that method."))
	})

	r.GET("/healthz", s.healthz)
	r.GET("/readyz", s.readyz)
	if s.opts.Gatherer != nil {
		r.GET("/metrics", gin.WrapH(promhttp.HandlerFor(s.opts.Gatherer, promhttp.HandlerOpts{})))
	}
	if s.opts.Ops != nil {
		r.Any("/ops/*path", s.requireAdmin, gin.WrapH(s.opts.Ops))
	}

	admin := r.Group("/admin/v1", s.requireAdmin, validParams)
	admin.POST("/workspaces", s.adminCreateWorkspace)
	admin.POST("/workspaces/:id/fundings", s.adminFund)

	v1 := r.Group("/v1", s.authenticate, validParams)
	write := v1.Group("", requireWrite)

	v1.GET("/workspace", s.getWorkspace)
	write.POST("/api-keys", s.createKey)
	v1.GET("/api-keys", s.listKeys)
	write.DELETE("/api-keys/:id", s.revokeKey)

	write.POST("/consumers", s.createConsumer)
	v1.GET("/consumers", s.listConsumers)
	v1.GET("/consumers/:id", s.getConsumer)
	write.PATCH("/consumers/:id", s.updateConsumer)
	write.POST("/consumers/:id/wallets", s.createWallet)
	v1.GET("/consumers/:id/wallets", s.listWallets)

	write.POST("/campaigns", s.createCampaign)
	v1.GET("/campaigns", s.listCampaigns)
	v1.GET("/campaigns/:id", s.getCampaign)
	write.PATCH("/campaigns/:id", s.updateCampaign)

	v1.GET("/wallets/:id", s.getWallet)
	v1.GET("/wallets/:id/transactions", s.walletStatement)

	write.POST("/transactions", s.createTransaction)
	v1.GET("/transactions", s.listTransactions)
	v1.GET("/transactions/:id", s.getTransaction)

	write.POST("/batches", s.createBatch)
	v1.GET("/batches", s.listBatches)
	v1.GET("/batches/:id", s.getBatch)
	v1.GET("/batches/:id/transactions", s.listBatchTransactions)

	v1.GET("/events", s.listEvents)
	v1.GET("/events/:id", s.getEvent)
	write.POST("/events/:id/redeliver", s.redeliverEvent)

	write.POST("/webhook-endpoints", s.createEndpoint)
	v1.GET("/webhook-endpoints", s.listEndpoints)
	v1.GET("/webhook-endpoints/:id", s.getEndpoint)
	write.PATCH("/webhook-endpoints/:id", s.updateEndpoint)
	write.DELETE("/webhook-endpoints/:id", s.deleteEndpoint)
	write.POST("/webhook-endpoints/:id/rotate-secret", s.rotateEndpointSecret)
	v1.GET("/webhook-endpoints/:id/deliveries", s.listDeliveries)
	return r
}
