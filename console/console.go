// Package console serves the partner console under /console: the pages a
// partner's operations, finance and technology staff use in a browser to
// run their Orbt workspace without writing code. It is a surface over the
// same stores as the JSON API (workspace, ledger, webhook, giftcard) and
// holds no business rule of its own: what a form may do is what the API
// may do, with the same validation, checked by the same code.
//
// Members sign in with an email and password (argon2id), get a
// server-side session, and act within their role (admin, technology,
// finance), enforced on every route. Every write a member makes is
// recorded in the workspace's audit log. Pages are server-rendered and
// work without JavaScript; console.js only adds conveniences (copy
// buttons, live progress). Every asset is embedded in the binary.
package console

import (
	"embed"
	"fmt"
	"html/template"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/redis/go-redis/v9"

	"github.com/orbt/orbt/batchreq"
	"github.com/orbt/orbt/giftcard"
	"github.com/orbt/orbt/httperr"
	"github.com/orbt/orbt/ledger"
	"github.com/orbt/orbt/tasks"
	"github.com/orbt/orbt/webhook"
	"github.com/orbt/orbt/workspace"
)

//go:embed templates/*.html
var templateFiles embed.FS

//go:embed assets
var assetFiles embed.FS

// Options configure the console.
type Options struct {
	Ledger     *ledger.Ledger
	Workspaces *workspace.Store
	// Auth revokes keys and rotates signing secrets, so every process's
	// caches hear of it.
	Auth      *workspace.Authenticator
	Webhooks  *webhook.Store
	GiftCards *giftcard.Store
	Enqueuer  *tasks.Enqueuer
	// Redis counts sign-in attempts, shared by every API process.
	Redis redis.UniversalClient
	// Mailer sends invitations and reset links; nil shows them to the
	// admin to pass on.
	Mailer Mailer
	// PublicURL is where people reach the server: links are built on it,
	// and cookies are Secure unless it is this machine (secureCookies).
	PublicURL string
	// PublicOrigin is PublicURL's origin: forms posted from it are ours.
	PublicOrigin string
	// Sessions end after Idle without a request, and Max after sign-in.
	Sessions workspace.SessionTimeouts
	// BatchItemsMax bounds a payout file's rows (the API's limit).
	BatchItemsMax int
	Logger        *slog.Logger
}

// Session defaults: half an hour idle, twelve hours in all.
const (
	SessionIdleDefault = 30 * time.Minute
	SessionMaxDefault  = 12 * time.Hour
)

// Console is the partner console.
type Console struct {
	opts   Options
	pages  map[string]*template.Template
	log    *slog.Logger
	signIn signInLimits
	// https: PublicURL is https. secureCookies: cookies are marked Secure.
	https, secureCookies bool
}

// pageNames are the templates, one per page, each with layout.html.
var pageNames = []string{"login", "invite", "message", "overview", "consumers", "consumer", "campaigns",
	"payouts", "payout_review", "payout", "transactions", "transaction", "keys", "webhooks", "webhook",
	"team", "audit", "settings"}

// New builds the console; Routes mounts it.
func New(opts Options) (*Console, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Sessions.Idle == 0 {
		opts.Sessions.Idle = SessionIdleDefault
	}
	if opts.Sessions.Max == 0 {
		opts.Sessions.Max = SessionMaxDefault
	}
	if opts.BatchItemsMax <= 0 {
		opts.BatchItemsMax = batchreq.ItemsMaxDefault
	}
	if opts.Redis == nil || opts.Enqueuer == nil || opts.Auth == nil {
		return nil, fmt.Errorf("console: Redis, Enqueuer and Auth are required")
	}
	pages := make(map[string]*template.Template, len(pageNames))
	for _, name := range pageNames {
		t, err := template.New("layout.html").Funcs(templateFuncs).ParseFS(templateFiles, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("console template %s: %w", name, err)
		}
		pages[name] = t
	}
	return &Console{opts: opts, pages: pages, log: opts.Logger, signIn: signInLimits{rdb: opts.Redis},
		https: strings.HasPrefix(opts.PublicURL, "https://"), secureCookies: secureCookies(opts.PublicURL)}, nil
}

// secureCookies says whether the console's cookies are marked Secure:
// always, but on a laptop (localhost, a loopback address), where the
// server speaks plain HTTP. A console served over plain HTTP elsewhere
// cannot be signed in to, which is the point.
func secureCookies(publicURL string) bool {
	u, err := url.Parse(publicURL)
	return err != nil || u.Scheme == "https" || !loopback(u.Hostname())
}

// loopback reports whether host names this machine.
func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

var templateFuncs = template.FuncMap{
	"money": money,
	"major": func(cur ledger.Currency, minor int64) string { return cur.FormatMajor(minor) },
	"when": func(t any) string {
		switch t := t.(type) {
		case time.Time:
			return t.UTC().Format("2 Jan 2006 15:04 UTC")
		case *time.Time:
			if t != nil {
				return t.UTC().Format("2 Jan 2006 15:04 UTC")
			}
		}
		return ""
	},
	// percent is part of whole as a whole percentage, 0 to 100.
	"percent": func(part int64, whole *int64) int64 {
		if whole == nil || *whole <= 0 || part <= 0 {
			return 0
		}
		return min(100, part*100 / *whole)
	},
	"deref":  deref,
	"list":   func(s ...string) []string { return s },
	"reason": reasonText,
	// has reports whether a form's multi-valued field holds value.
	"has": func(values any, value string) bool {
		list, _ := values.([]string)
		return slices.Contains(list, value)
	},
	"title": func(s string) string {
		if s == "" {
			return s
		}
		return strings.ToUpper(s[:1]) + s[1:]
	},
}

// view is what every page's template gets: the signed-in member and what
// their role may do (for the navigation), the form token, and the page's
// own data.
type view map[string]any

func (u *Console) render(c *gin.Context, status int, page string, v view) {
	if v == nil {
		v = view{}
	}
	if s, ok := c.Get(sessionContext); ok {
		sess := s.(workspace.Session)
		v["Member"] = sess.Member
		v["CSRF"] = sessionCSRF(sess.Token)
		v["Can"] = grantsOf(sess.Role)
		if name, ok := c.Get(workspaceNameContext); ok {
			v["WorkspaceName"] = name
		}
	}
	// Forms read their values and errors by field name: an absent map
	// reads as empty.
	for _, k := range []string{"Form", "Errors", "Move", "MoveErrors", "WalletForm", "WalletErrors", "LinkErrors"} {
		if _, ok := v[k]; !ok {
			v[k] = map[string]string{}
		}
	}
	if _, ok := v["Section"]; !ok {
		v["Section"] = page
	}
	c.Status(status)
	c.Header("Content-Type", "text/html; charset=utf-8")
	if err := u.pages[page].Execute(c.Writer, v); err != nil {
		u.log.Error("render console page", "page", page, "err", err)
	}
}

// message shows a page of one heading and one paragraph.
func (u *Console) message(c *gin.Context, status int, title, text string) {
	u.render(c, status, "message", view{"Title": title, "Text": text, "Section": ""})
	c.Abort()
}

// fail answers an error: the not-found page for anything another
// workspace owns or nobody does, 503 with Retry-After when a backing
// service is down, and the error page (logged by route) otherwise.
func (u *Console) fail(c *gin.Context, err error) {
	e := httperr.Classify(err)
	switch {
	case e.Status == http.StatusNotFound:
		u.notFound(c, e)
	case e.Status == http.StatusServiceUnavailable:
		c.Header("Retry-After", "5")
		u.message(c, e.Status, "Try again in a moment", "A service the console needs is not answering. Nothing was changed; try again in a few seconds.")
	case e.Status >= 500:
		u.log.Error("console page", "route", c.FullPath(), "err", err)
		u.message(c, e.Status, "Something went wrong", "We could not finish this. Try again in a moment.")
	default:
		u.message(c, e.Status, "Refused", e.Detail)
	}
}

// notFound is the page of an object that is not there for this member.
func (u *Console) notFound(c *gin.Context, _ *httperr.Error) {
	u.message(c, http.StatusNotFound, "Not found", "There is nothing here, or it belongs to another workspace.")
}

// recoverPage answers a panic with the error page, logged by route (a
// path may carry an invitation's token).
func (u *Console) recoverPage(c *gin.Context, rec any) {
	u.log.Error("panic", "recovered", rec, "route", c.FullPath())
	u.message(c, http.StatusInternalServerError, "Something went wrong", "We could not finish this. Try again in a moment.")
}

// securityHeaders: scripts and styles from this server only, no frames,
// no referrer to another site (invitation links must not leak), and no
// caching of pages that show secrets once.
func securityHeaders(c *gin.Context) {
	h := c.Writer.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	c.Next()
}

// asset serves an embedded file of assets/.
func asset(name, contentType string) gin.HandlerFunc {
	body, err := assetFiles.ReadFile("assets/" + name)
	if err != nil {
		panic(err) // embedded at build time: a missing file is a build mistake
	}
	return func(c *gin.Context) {
		c.Header("Cache-Control", "public, max-age=3600")
		c.Data(http.StatusOK, contentType, body)
	}
}

// record adds a member's write to the workspace's audit log. The write
// has happened; a failure to record it is logged, not shown.
func (u *Console) record(c *gin.Context, action, objectID, detail string) {
	s := sessionOf(c)
	if err := u.opts.Workspaces.Record(c, workspace.AuditEntry{WorkspaceID: s.WorkspaceID, MemberID: s.ID,
		Action: action, ObjectID: objectID, Detail: detail}); err != nil {
		u.log.Error("audit log", "action", action, "member", s.ID, "err", err)
	}
}

// reasons say in words why a transaction or a redemption failed; the code
// itself is shown beside them, as the API and webhooks carry it.
var reasons = map[string]string{
	ledger.ReasonInsufficientFunds:        "the wallet's balance is too low",
	ledger.ReasonInsufficientPartnerFunds: "your partner balance is too low",
	ledger.ReasonCampaignBudgetExceeded:   "the campaign's budget is used up",
	ledger.ReasonCampaignInactive:         "the campaign is paused or not running",
	ledger.ReasonCurrencyMismatch:         "the wallet holds another currency",
	ledger.ReasonWalletClosed:             "the wallet is closed",
	ledger.ReasonBrandNotAllowed:          "the campaign does not allow this brand",
	giftcard.ReasonBrandNotEnabled:        "the brand is not enabled for your workspace",
	giftcard.ReasonAmountOutOfRange:       "the brand does not sell this amount",
	giftcard.ReasonProviderDeclined:       "the card seller declined it",
	giftcard.ReasonProviderUnavailable:    "the card seller could not be reached",
}

func reasonText(code *string) string {
	if code == nil {
		return ""
	}
	if text, ok := reasons[*code]; ok {
		return text + " (" + *code + ")"
	}
	return *code
}
