package consumerui

import (
	"time"

	"github.com/gin-gonic/gin"

	"github.com/orbt/orbt/server"
)

// Routes mounts the consumer pages under /c/.
func (u *UI) Routes(s *server.Server) {
	c := s.Engine.Group("/c", securityHeaders, gin.CustomRecovery(u.recoverPage), u.rateLimit, server.ValidParams(u.notFound))
	c.GET("/assets/style.css", u.style)
	c.GET("/l/:token", u.open)

	in := c.Group("", u.requireSession)
	in.GET("/", u.home)
	in.POST("/redeem", u.redeem)
	in.GET("/redemptions/:id", u.redemption)
	in.POST("/signout", u.signOut)
	s.RouteTimeout("GET", "/c/redemptions/:id", redemptionWait+10*time.Second)
}
