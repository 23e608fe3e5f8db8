package console

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/orbt/orbt/workspace"
)

// A grant is a kind of work in the console; each role holds some.
const (
	// seeMoney: overview, consumers, campaigns, payouts, transactions.
	seeMoney = "seeMoney"
	// moveMoney: create consumers and wallets, credit and debit, issue
	// consumer links, campaigns, payouts.
	moveMoney = "moveMoney"
	// integrate: API keys and webhooks, to see and to change.
	integrate = "integrate"
	// manageTeam: members, invitations, the audit log, the signing secret.
	manageTeam = "manageTeam"
)

// grants are what each role may do, as hosted Orbt has them: admin
// everything; technology keys and webhooks and reading the rest; finance
// the money and no keys.
var grants = map[string]map[string]bool{
	workspace.RoleAdmin:      {seeMoney: true, moveMoney: true, integrate: true, manageTeam: true},
	workspace.RoleTechnology: {seeMoney: true, integrate: true},
	workspace.RoleFinance:    {seeMoney: true, moveMoney: true},
}

func grantsOf(role string) map[string]bool { return grants[role] }

// require refuses the route to a member whose role lacks the grant: the
// page says so, with 403, whatever the navigation showed.
func (u *Console) require(grant string) gin.HandlerFunc {
	return func(c *gin.Context) {
		s := sessionOf(c)
		if !grants[s.Role][grant] {
			u.message(c, http.StatusForbidden, "Not for your role",
				"Your role ("+s.Role+") cannot do this. Ask an admin of your workspace if you need to.")
			return
		}
		c.Next()
	}
}
