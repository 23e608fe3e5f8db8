package console

import (
	"time"

	"github.com/gin-gonic/gin"

	"github.com/orbt/orbt/server"
)

// Routes mounts the console under /console. Each route names the grant
// it needs; a member whose role lacks it gets 403 whatever the page showed.
func (u *Console) Routes(s *server.Server) {
	c := s.Engine.Group("/console", securityHeaders, gin.CustomRecovery(u.recoverPage), server.ValidParams(u.notFound))
	c.GET("/assets/style.css", asset("style.css", "text/css; charset=utf-8"))
	c.GET("/assets/console.js", asset("console.js", "text/javascript; charset=utf-8"))
	c.GET("/login", u.loginPage)
	signedOut := u.form(formBytesMax, signedOutToken)
	c.POST("/login", signedOut, u.login)
	c.GET("/invite/:token", u.invitePage)
	c.POST("/invite/:token", signedOut, u.acceptInvite)

	in := c.Group("", u.requireSession)
	form := in.Group("", u.form(formBytesMax, memberToken)) // every POST of a signed-in member
	form.POST("/logout", u.logout)

	see := in.Group("", u.require(seeMoney))
	see.GET("/", u.overview)
	see.GET("/consumers", u.consumers)
	see.GET("/consumers/:id", u.consumer)
	see.GET("/campaigns", u.campaigns)
	see.GET("/payouts", u.payouts)
	see.GET("/payouts/:id", u.payout)
	see.GET("/payouts/:id/failed.csv", u.payoutFailedCSV)
	see.GET("/transactions", u.transactions)
	see.GET("/transactions/:id", u.transaction)

	move := form.Group("", u.require(moveMoney))
	move.POST("/consumers", u.createConsumer)
	move.POST("/consumers/:id/wallets", u.createWallet)
	move.POST("/consumers/:id/transactions", u.moveMoney)
	move.POST("/consumers/:id/links", u.createLink)
	move.POST("/campaigns", u.createCampaign)
	move.POST("/campaigns/:id/status", u.setCampaignStatus)
	// A payout file of 10,000 rows is read, checked and stored in one
	// request, with a larger body and more time for it.
	payout := in.Group("", server.BodyDeadline(time.Minute), u.form(payoutFormBytesMax, memberToken), u.require(moveMoney))
	payout.POST("/payouts/review", u.reviewPayout)
	payout.POST("/payouts", u.submitPayout)

	in.GET("/keys", u.require(integrate), u.keys)
	in.GET("/webhooks", u.require(integrate), u.webhooks)
	in.GET("/webhooks/:id", u.require(integrate), u.webhook)
	tech := form.Group("", u.require(integrate))
	tech.POST("/keys", u.createKey)
	tech.POST("/keys/:id/revoke", u.revokeKey)
	tech.POST("/webhooks", u.createEndpoint)
	tech.POST("/webhooks/:id/redeliver", u.redeliver)

	in.GET("/team", u.require(manageTeam), u.team)
	in.GET("/audit", u.require(manageTeam), u.audit)
	in.GET("/settings", u.require(manageTeam), u.settings)
	admin := form.Group("", u.require(manageTeam))
	admin.POST("/team/invites", u.invite)
	admin.POST("/team/invites/:id/revoke", u.revokeInvite)
	admin.POST("/team/members/:id/revoke", u.revokeMember)
	admin.POST("/team/members/:id/reset", u.resetLink)
	admin.POST("/settings/signing-secret", u.rotateSigningSecret)

	s.RouteTimeout("POST", "/console/payouts/review", time.Minute)
	s.RouteTimeout("POST", "/console/payouts", time.Minute)
}
