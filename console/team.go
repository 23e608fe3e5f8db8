package console

import (
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/orbt/orbt/ledger"
	"github.com/orbt/orbt/store"
	"github.com/orbt/orbt/validate"
	"github.com/orbt/orbt/webhook"
	"github.com/orbt/orbt/workspace"
)

// --- API keys (admin, technology)

func (u *Console) keys(c *gin.Context) { u.renderKeys(c, http.StatusOK, view{}) }

func (u *Console) renderKeys(c *gin.Context, status int, v view) {
	list, err := u.opts.Workspaces.Keys(c, sessionOf(c).WorkspaceID, "", 500)
	if err != nil {
		u.fail(c, err)
		return
	}
	v["Keys"] = list
	u.render(c, status, "keys", v)
}

// createKey issues an API key and shows it this once.
func (u *Console) createKey(c *gin.Context) {
	form := map[string]string{"name": strings.TrimSpace(c.PostForm("name")), "scope": c.PostForm("scope")}
	var v validate.Validator
	v.Text("name", form["name"], true, validate.NameLenMax)
	v.OneOf("scope", form["scope"], workspace.ScopeRead, workspace.ScopeWrite)
	if v.Err() != nil {
		u.renderKeys(c, http.StatusUnprocessableEntity, view{"Form": form, "Errors": fieldErrors(&v)})
		return
	}
	key, err := u.opts.Workspaces.CreateKey(c, sessionOf(c).WorkspaceID, form["name"], form["scope"])
	if err != nil {
		u.fail(c, err)
		return
	}
	u.record(c, "api_key.created", key.ID, key.Name+" ("+key.Scope+")")
	u.renderKeys(c, http.StatusCreated, view{"NewKey": key})
}

func (u *Console) revokeKey(c *gin.Context) {
	if err := u.opts.Auth.RevokeKey(c, sessionOf(c).WorkspaceID, c.Param("id")); err != nil {
		u.fail(c, err)
		return
	}
	u.record(c, "api_key.revoked", c.Param("id"), "")
	c.Redirect(http.StatusSeeOther, "/console/keys")
}

// --- Webhooks (admin, technology)

func (u *Console) webhooks(c *gin.Context) { u.renderWebhooks(c, http.StatusOK, view{}) }

func (u *Console) renderWebhooks(c *gin.Context, status int, v view) {
	list, err := u.opts.Webhooks.Endpoints(c, sessionOf(c).WorkspaceID, "", 500)
	if err != nil {
		u.fail(c, err)
		return
	}
	v["Endpoints"], v["EventTypes"] = list, webhook.EventTypes
	if _, ok := v["Form"]; !ok {
		v["Form"] = map[string]any{"events": []string{}}
	}
	u.render(c, status, "webhooks", v)
}

// createEndpoint adds a webhook endpoint and shows its secret this once.
func (u *Console) createEndpoint(c *gin.Context) {
	rawURL, description, events := strings.TrimSpace(c.PostForm("url")), strings.TrimSpace(c.PostForm("description")), c.PostFormArray("events")
	var v validate.Validator
	v.Text("url", rawURL, true, validate.URLLenMax)
	if v.Err() == nil {
		if err := u.opts.Webhooks.ValidateURL(rawURL); err != nil {
			v.Add("url", err.Error())
		}
	}
	if len(events) == 0 || len(events) > len(webhook.EventTypes) {
		v.Add("events", "Choose at least one event.")
	} else if err := webhook.ValidateEvents(events); err != nil {
		v.Add("events", err.Error())
	}
	var desc *string
	if description != "" {
		desc = &description
		v.OptText("description", desc, validate.DescriptionLenMax)
	}
	form := map[string]any{"url": rawURL, "description": description, "events": events}
	if v.Err() != nil {
		u.renderWebhooks(c, http.StatusUnprocessableEntity, view{"Form": form, "Errors": fieldErrors(&v)})
		return
	}
	e, err := u.opts.Webhooks.CreateEndpoint(c, sessionOf(c).WorkspaceID, rawURL, events, desc)
	if err != nil {
		u.fail(c, err)
		return
	}
	u.record(c, "webhook_endpoint.created", e.ID, e.URL)
	u.renderWebhooks(c, http.StatusCreated, view{"NewEndpoint": e})
}

// webhook shows one endpoint's deliveries with every attempt.
func (u *Console) webhook(c *gin.Context) { u.renderWebhook(c, http.StatusOK, view{}) }

func (u *Console) renderWebhook(c *gin.Context, status int, v view) {
	ws := sessionOf(c).WorkspaceID
	e, err := u.opts.Webhooks.Endpoint(c, ws, c.Param("id"))
	if err != nil {
		u.fail(c, err)
		return
	}
	deliveries, err := u.opts.Webhooks.Deliveries(c, ws, e.ID, "", listSize)
	if err != nil {
		u.fail(c, err)
		return
	}
	v["Endpoint"], v["Deliveries"], v["Section"] = e, deliveries, "webhooks"
	u.render(c, status, "webhook", v)
}

// redeliver sends one event to the endpoint again, under the same
// webhook-id (receivers deduplicate by it).
func (u *Console) redeliver(c *gin.Context) {
	ws := sessionOf(c).WorkspaceID
	e, err := u.opts.Webhooks.Endpoint(c, ws, c.Param("id"))
	if err != nil {
		u.fail(c, err)
		return
	}
	eventID := strings.TrimSpace(c.PostForm("eventId"))
	var event ledger.Event
	if validate.PathID(eventID) && eventID != "" {
		event, err = u.opts.Ledger.Event(c, ws, eventID)
	} else {
		err = store.ErrNotFound
	}
	if err != nil {
		errs, status, ok := formError(err, "eventId")
		if !ok {
			u.fail(c, err)
			return
		}
		errs = map[string]string{"eventId": "No event of this workspace has this id."}
		u.renderWebhook(c, status, view{"EventID": eventID, "Errors": errs})
		return
	}
	ids, err := u.opts.Webhooks.Redeliver(c, ledger.EventRef{ID: event.ID, WorkspaceID: ws, Type: event.Type}, e.ID)
	if err != nil {
		u.fail(c, err)
		return
	}
	if len(ids) == 0 {
		u.renderWebhook(c, http.StatusUnprocessableEntity, view{"EventID": eventID,
			"Errors": map[string]string{"eventId": "This endpoint is disabled or does not subscribe to " + event.Type + " events."}})
		return
	}
	u.opts.Enqueuer.Deliveries(c, ids)
	u.record(c, "webhook_event.redelivered", event.ID, "to "+e.ID)
	c.Redirect(http.StatusSeeOther, "/console/webhooks/"+e.ID)
}

// --- Team, audit and the signing secret (admin)

func (u *Console) team(c *gin.Context) { u.renderTeam(c, http.StatusOK, view{}) }

func (u *Console) renderTeam(c *gin.Context, status int, v view) {
	ws := sessionOf(c).WorkspaceID
	members, err := u.opts.Workspaces.Members(c, ws)
	if err != nil {
		u.fail(c, err)
		return
	}
	invites, err := u.opts.Workspaces.PendingInvites(c, ws)
	if err != nil {
		u.fail(c, err)
		return
	}
	v["Members"], v["Invites"], v["Roles"] = members, invites, workspace.Roles
	u.render(c, status, "team", v)
}

// invite invites a person with a role: the link is mailed when the
// console has a Mailer, and shown to the admin this once either way.
func (u *Console) invite(c *gin.Context) {
	s := sessionOf(c)
	form := map[string]string{"email": strings.TrimSpace(c.PostForm("email")), "role": c.PostForm("role")}
	var v validate.Validator
	email := form["email"]
	v.Email("email", &email)
	if !slices.Contains(workspace.Roles, form["role"]) {
		v.Add("role", "Choose a role.")
	}
	if v.Err() != nil {
		u.renderTeam(c, http.StatusUnprocessableEntity, view{"Form": form, "Errors": fieldErrors(&v)})
		return
	}
	inv, token, err := u.opts.Workspaces.Invite(c, s.WorkspaceID, email, form["role"], s.ID)
	if errors.Is(err, workspace.ErrMemberExists) {
		u.renderTeam(c, http.StatusConflict, view{"Form": form, "Errors": map[string]string{"email": "A member already signs in with this address."}})
		return
	}
	if err != nil {
		u.fail(c, err)
		return
	}
	u.record(c, "member.invited", inv.ID, email+" as "+inv.Role)
	link := workspace.InviteURL(u.opts.PublicURL, token)
	u.renderTeam(c, http.StatusCreated, view{"NewLink": link, "NewLinkFor": email, "Mailed": u.mail(c, email,
		"You are invited to "+c.GetString(workspaceNameContext)+" on Orbt",
		s.Email+" invites you to join "+c.GetString(workspaceNameContext)+" on Orbt as "+inv.Role+".\n\nAccept within 7 days:\n"+link+"\n")})
}

// mail sends a link when the console has a Mailer; it tells whether it did.
// A failure is logged without the message (it carries the link).
func (u *Console) mail(c *gin.Context, to, subject, body string) bool {
	if u.opts.Mailer == nil {
		return false
	}
	if err := u.opts.Mailer.Send(c, to, subject, body); err != nil {
		u.log.Error("send console mail", "subject", subject, "err", err)
		return false
	}
	return true
}

func (u *Console) revokeInvite(c *gin.Context) {
	if err := u.opts.Workspaces.RevokeInvite(c, sessionOf(c).WorkspaceID, c.Param("id")); err != nil {
		u.fail(c, err)
		return
	}
	u.record(c, "invitation.revoked", c.Param("id"), "")
	c.Redirect(http.StatusSeeOther, "/console/team")
}

// revokeMember shuts a member out at once: their sessions end.
func (u *Console) revokeMember(c *gin.Context) {
	ws := sessionOf(c).WorkspaceID
	m, err := u.opts.Workspaces.Member(c, ws, c.Param("id"))
	if err != nil {
		u.fail(c, err)
		return
	}
	err = u.opts.Workspaces.RevokeMember(c, ws, m.ID)
	if errors.Is(err, workspace.ErrLastAdmin) {
		u.renderTeam(c, http.StatusConflict, view{"TeamError": "A workspace keeps at least one admin: make another admin first."})
		return
	}
	if err != nil {
		u.fail(c, err)
		return
	}
	u.record(c, "member.revoked", m.ID, m.Email)
	c.Redirect(http.StatusSeeOther, "/console/team")
}

// resetLink issues a member a link to set a new password, shown (or
// mailed) once.
func (u *Console) resetLink(c *gin.Context) {
	s := sessionOf(c)
	inv, token, err := u.opts.Workspaces.ResetLink(c, s.WorkspaceID, c.Param("id"), s.ID)
	if err != nil {
		u.fail(c, err)
		return
	}
	link := workspace.InviteURL(u.opts.PublicURL, token)
	u.record(c, "member.reset_issued", *inv.MemberID, *inv.Email)
	u.renderTeam(c, http.StatusCreated, view{"NewLink": link, "NewLinkFor": *inv.Email, "Reset": true, "Mailed": u.mail(c, *inv.Email,
		"Set a new password for Orbt", "An admin of "+c.GetString(workspaceNameContext)+" on Orbt issued you a link to set a new password.\n\n"+
			"It works once, within 24 hours:\n"+link+"\n")})
}

// auditPage is how many entries the audit page shows at a time.
const auditPage = 100

func (u *Console) audit(c *gin.Context) {
	var before int64
	if b := c.Query("before"); b != "" {
		n, err := strconv.ParseInt(b, 10, 64)
		if err != nil || n <= 0 {
			u.notFound(c, nil)
			return
		}
		before = n
	}
	entries, err := u.opts.Workspaces.AuditLog(c, sessionOf(c).WorkspaceID, before, auditPage)
	if err != nil {
		u.fail(c, err)
		return
	}
	v := view{"Entries": entries}
	if len(entries) == auditPage {
		v["Before"] = entries[len(entries)-1].ID
	}
	u.render(c, http.StatusOK, "audit", v)
}

func (u *Console) settings(c *gin.Context) {
	u.render(c, http.StatusOK, "settings", view{"WorkspaceID": sessionOf(c).WorkspaceID})
}

// rotateSigningSecret makes a new request-signing secret for the
// Orbt-compatible API and shows it this once; the old one keeps working
// for a day.
func (u *Console) rotateSigningSecret(c *gin.Context) {
	ws := sessionOf(c).WorkspaceID
	rotated, err := u.opts.Auth.RotateSigningSecret(c, ws)
	if err != nil {
		errs, status, ok := formError(err, "form")
		if !ok {
			u.fail(c, err)
			return
		}
		u.render(c, status, "settings", view{"WorkspaceID": ws, "Errors": errs})
		return
	}
	u.record(c, "signing_secret.rotated", ws, "")
	u.render(c, http.StatusCreated, "settings", view{"WorkspaceID": ws, "Rotated": rotated})
}
