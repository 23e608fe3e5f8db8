package console

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/orbt/orbt/batchreq"
	"github.com/orbt/orbt/logging"
	"github.com/orbt/orbt/server"
	"github.com/orbt/orbt/store"
	"github.com/orbt/orbt/validate"
	"github.com/orbt/orbt/workspace"
)

// Cookies of the console, both HttpOnly, SameSite=Strict, on /console only.
const (
	// sessionCookie holds the session's own token (stored hashed).
	sessionCookie = "orbt_console"
	// formCookie holds the CSRF token of the signed-out forms (sign-in,
	// invitation), checked against the form's copy.
	formCookie = "orbt_console_form"
	cookiePath = "/console"
)

// Form sizes: a form's body; a payout's (its file, or its rows carried to
// the submit in a form field, where escaping can make a byte three); and
// how much of a multipart one is held in memory before it spills to a
// temporary file.
const (
	formBytesMax       = 64 << 10
	payoutFormBytesMax = 3*batchreq.BodyBytesMax + formBytesMax
	formMemoryMax      = 16 << 20
)

// Gin context keys.
const (
	sessionContext       = "console.session"
	workspaceNameContext = "console.workspace"
)

func sessionOf(c *gin.Context) workspace.Session {
	return c.MustGet(sessionContext).(workspace.Session)
}

// sessionCSRF is the form token of a session: an HMAC of a fixed text
// keyed by the session's secret token, which another site cannot read.
func sessionCSRF(token string) string {
	m := hmac.New(sha256.New, []byte(token))
	m.Write([]byte("orbt console form"))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (u *Console) setCookie(c *gin.Context, name, value string, maxAge int) {
	http.SetCookie(c.Writer, &http.Cookie{Name: name, Value: value, Path: cookiePath, MaxAge: maxAge,
		HttpOnly: true, Secure: u.secureCookies, SameSite: http.SameSiteStrictMode})
}

// requireSession loads the member's session, or sends the browser to the
// sign-in page (and back here after).
func (u *Console) requireSession(c *gin.Context) {
	token, err := c.Cookie(sessionCookie)
	if err != nil || token == "" || len(token) > 128 {
		u.toSignIn(c)
		return
	}
	sess, err := u.opts.Workspaces.ConsoleSession(c, token, u.opts.Sessions)
	if errors.Is(err, workspace.ErrSessionEnded) {
		u.setCookie(c, sessionCookie, "", -1)
		u.toSignIn(c)
		return
	}
	if err != nil {
		u.fail(c, err)
		return
	}
	c.Set(sessionContext, sess)
	server.LogID(c, logging.WorkspaceID, sess.WorkspaceID)
	server.LogID(c, logging.MemberID, sess.ID)
	if ws, err := u.opts.Workspaces.Workspace(c, sess.WorkspaceID); err == nil {
		c.Set(workspaceNameContext, ws.Name)
	}
	c.Next()
}

func (u *Console) toSignIn(c *gin.Context) {
	next := ""
	if c.Request.Method == http.MethodGet && c.Request.URL.Path != "/console/" {
		next = "?next=" + url.QueryEscape(c.Request.URL.RequestURI())
	}
	c.Redirect(http.StatusSeeOther, "/console/login"+next)
	c.Abort()
}

// form reads a form of at most limit bytes and refuses it unless it is
// one of ours: from this server's origin, carrying the CSRF token that
// want names for the request (a member's, or a signed-out browser's).
func (u *Console) form(limit int64, want func(*gin.Context) string) gin.HandlerFunc {
	return func(c *gin.Context) {
		c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, limit)
		if err := c.Request.ParseMultipartForm(formMemoryMax); err != nil && !errors.Is(err, http.ErrNotMultipart) {
			var tooLarge *http.MaxBytesError
			if errors.As(err, &tooLarge) {
				u.message(c, http.StatusRequestEntityTooLarge, "Too large", "This form is larger than the console takes.")
			} else {
				u.message(c, http.StatusBadRequest, "Refused", "This form could not be read. Go back, reload the page and try again.")
			}
			return
		}
		if !server.SameOrigin(c.Request, u.opts.PublicOrigin, u.https) {
			u.message(c, http.StatusForbidden, "Refused", "This form was sent from another site.")
			return
		}
		if token := want(c); token == "" || !hmac.Equal([]byte(c.PostForm("csrf")), []byte(token)) {
			u.message(c, http.StatusForbidden, "Refused", "This form has expired. Go back, reload the page and try again.")
			return
		}
		c.Next()
	}
}

// memberToken is the CSRF token of a signed-in member's forms.
func memberToken(c *gin.Context) string { return sessionCSRF(sessionOf(c).Token) }

// signedOutToken is the CSRF token of a signed-out form: its cookie's.
func signedOutToken(c *gin.Context) string {
	t, _ := c.Cookie(formCookie)
	return t
}

// signedOutForm gives a signed-out form (sign-in, invitation) its CSRF
// token: the form cookie's, set now when the browser has none.
func (u *Console) signedOutForm(c *gin.Context) string {
	if t, err := c.Cookie(formCookie); err == nil && len(t) >= 20 && len(t) <= 64 {
		return t
	}
	t := store.Token(20)
	u.setCookie(c, formCookie, t, 0)
	return t
}

// startSession sets the session cookie and sends the member on.
func (u *Console) startSession(c *gin.Context, sess workspace.Session, next string) {
	u.setCookie(c, sessionCookie, sess.Token, int(u.opts.Sessions.Max.Seconds()))
	c.Redirect(http.StatusSeeOther, next)
}

// safeNext keeps a post-sign-in redirect on the console.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/console/") || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n") || len(next) > 512 {
		return "/console/"
	}
	return next
}

func (u *Console) loginPage(c *gin.Context) {
	u.render(c, http.StatusOK, "login", view{"FormCSRF": u.signedOutForm(c), "Next": safeNext(c.Query("next"))})
}

// login signs a member in. Attempts are limited per client address, and
// an account is locked for a while after repeated failures: while it is,
// even the right password is refused.
func (u *Console) login(c *gin.Context) {
	email, password, next := strings.TrimSpace(c.PostForm("email")), c.PostForm("password"), safeNext(c.PostForm("next"))
	again := func(status int, errs map[string]string) {
		u.render(c, status, "login", view{"FormCSRF": u.signedOutForm(c), "Next": next, "Email": email, "Errors": errs})
	}
	var v validate.Validator
	v.Text("email", email, true, validate.EmailLenMax)
	v.Text("password", password, true, workspace.PasswordLenMax*4)
	if v.Err() != nil {
		again(http.StatusUnprocessableEntity, fieldErrors(&v))
		return
	}
	wait, err := u.signIn.addressAllowed(c, c.ClientIP())
	if err != nil {
		u.fail(c, err)
		return
	}
	if wait > 0 {
		c.Header("Retry-After", retryAfter(wait))
		again(http.StatusTooManyRequests, map[string]string{"form": "Too many sign-in attempts from your network. Try again in " + minutes(wait) + "."})
		return
	}
	attempt, left, err := u.signIn.accountAttempt(c, email)
	if err != nil {
		u.fail(c, err)
		return
	}
	locked := "This account is locked after too many failed sign-ins. Try again in " + minutes(left) + "."
	if attempt > accountFailures {
		c.Header("Retry-After", retryAfter(left))
		again(http.StatusTooManyRequests, map[string]string{"form": locked})
		return
	}
	sess, err := u.opts.Workspaces.SignIn(c, email, password, u.opts.Sessions)
	if errors.Is(err, workspace.ErrSignInFailed) {
		msg := "The email address or the password is wrong."
		if attempt == accountFailures { // the last attempt the window allowed
			msg = locked
		}
		again(http.StatusUnauthorized, map[string]string{"form": msg})
		return
	}
	if err != nil {
		u.fail(c, err)
		return
	}
	u.signIn.succeeded(c, email)
	u.startSession(c, sess, next)
}

func (u *Console) logout(c *gin.Context) {
	if err := u.opts.Workspaces.EndConsoleSession(c, sessionOf(c).Token); err != nil {
		u.fail(c, err)
		return
	}
	u.setCookie(c, sessionCookie, "", -1)
	c.Redirect(http.StatusSeeOther, "/console/login")
}

// invitePage shows an invitation (or a password reset): who it is for and
// the form that accepts it.
func (u *Console) invitePage(c *gin.Context) {
	inv, err := u.opts.Workspaces.OpenInvite(c, c.Param("token"))
	if err != nil {
		u.failInvite(c, err)
		return
	}
	email := ""
	if inv.Email != nil {
		email = *inv.Email
	}
	u.render(c, http.StatusOK, "invite", view{"Invite": inv, "Email": email, "FormCSRF": u.signedOutForm(c), "Section": ""})
}

func (u *Console) failInvite(c *gin.Context, err error) {
	if errors.Is(err, workspace.ErrInviteInvalid) {
		u.message(c, http.StatusNotFound, "This link does not work",
			"It has expired, has been used or was withdrawn. Ask an admin of your workspace for a new one.")
		return
	}
	u.fail(c, err)
}

// acceptInvite makes the member (or sets a reset password) and signs them in.
func (u *Console) acceptInvite(c *gin.Context) {
	inv, err := u.opts.Workspaces.OpenInvite(c, c.Param("token"))
	if err != nil {
		u.failInvite(c, err)
		return
	}
	email, password := strings.TrimSpace(c.PostForm("email")), c.PostForm("password")
	if inv.Email != nil {
		email = *inv.Email // the address invited, not another
	}
	var v validate.Validator
	v.Email("email", &email)
	if problem := workspace.CheckPassword(password, email); problem != "" {
		v.Add("password", "Password "+problem+".")
	}
	if password != c.PostForm("confirm") {
		v.Add("confirm", "The two passwords differ.")
	}
	again := func(status int, errs map[string]string) {
		u.render(c, status, "invite", view{"Invite": inv, "Email": email, "FormCSRF": u.signedOutForm(c), "Errors": errs, "Section": ""})
	}
	if v.Err() != nil {
		again(http.StatusUnprocessableEntity, fieldErrors(&v))
		return
	}
	sess, err := u.opts.Workspaces.AcceptInvite(c, c.Param("token"), email, password, u.opts.Sessions)
	switch {
	case errors.Is(err, workspace.ErrMemberExists):
		again(http.StatusConflict, map[string]string{"email": "A member already signs in with this address. Sign in instead, or use another."})
		return
	case err != nil:
		u.failInvite(c, err)
		return
	}
	action := "member.joined"
	if inv.IsReset() {
		action = "member.password_reset"
	}
	c.Set(sessionContext, sess)
	u.record(c, action, sess.ID, sess.Email+" as "+sess.Role)
	u.startSession(c, sess, "/console/")
}

// fieldErrors turns a validator's errors into the messages shown beside
// each field (the first for a field).
func fieldErrors(v *validate.Validator) map[string]string {
	errs := make(map[string]string, len(v.Errs))
	for _, e := range v.Errs {
		if _, ok := errs[e.Field]; !ok {
			msg := e.Message
			if strings.HasPrefix(msg, "is ") || strings.HasPrefix(msg, "must ") {
				msg = "This field " + msg
			}
			if !strings.HasSuffix(msg, ".") {
				msg += "."
			}
			errs[e.Field] = msg
		}
	}
	return errs
}
