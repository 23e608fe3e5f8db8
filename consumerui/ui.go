// Package consumerui serves the consumer pages under /c/: a consumer opens
// the link a partner gave them, sees their wallets, redeems gift cards and
// finds their cards. Server-rendered HTML that works on a phone with
// JavaScript off; every asset is embedded in the binary. A session sees
// one consumer only, and only while its link lives.
package consumerui

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"errors"
	"html/template"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/orbt/orbt/giftcard"
	"github.com/orbt/orbt/httperr"
	"github.com/orbt/orbt/ledger"
	"github.com/orbt/orbt/logging"
	"github.com/orbt/orbt/server"
	"github.com/orbt/orbt/store"
	"github.com/orbt/orbt/validate"
	"github.com/orbt/orbt/workspace"
)

//go:embed templates/*.html
var templateFiles embed.FS

//go:embed assets/style.css
var styleCSS []byte

// Options configure the consumer pages.
type Options struct {
	Ledger     *ledger.Ledger
	Workspaces *workspace.Store
	GiftCards  *giftcard.Store
	// Redeemed wakes the worker for an accepted redemption.
	Redeemed func(ctx context.Context, redemptionID string)
	// Secure marks the session cookie Secure (the public URL is https).
	Secure bool
	// PublicOrigin is the scheme and host of the public URL: forms posted
	// from it are this server's own.
	PublicOrigin string
	Logger       *slog.Logger
}

// UI is the consumer pages.
type UI struct {
	opts    Options
	pages   map[string]*template.Template
	log     *slog.Logger
	limiter *limiter
}

// New builds the pages; Routes mounts them.
func New(opts Options) (*UI, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	funcs := template.FuncMap{
		"money": func(cur ledger.Currency, minor int64) string { return string(cur) + " " + cur.FormatMajor(minor) },
		"major": func(cur ledger.Currency, minor int64) string { return cur.FormatMajor(minor) },
		"date":  func(t time.Time) string { return t.UTC().Format("2 Jan 2006") },
		"limits": func(b giftcard.Brand) string {
			if len(b.Denominations) > 0 {
				parts := make([]string, len(b.Denominations))
				for i, d := range b.Denominations {
					parts[i] = b.Currency.FormatMajor(d)
				}
				return string(b.Currency) + " " + strings.Join(parts, ", ")
			}
			return string(b.Currency) + " " + b.Currency.FormatMajor(b.MinAmount) + " to " + b.Currency.FormatMajor(b.MaxAmount)
		},
		"reason": reasonText,
	}
	pages := make(map[string]*template.Template)
	for _, name := range []string{"home", "redemption", "gone", "error"} {
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFiles, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return nil, err
		}
		pages[name] = t
	}
	return &UI{opts: opts, pages: pages, log: opts.Logger, limiter: newLimiter()}, nil
}

// sessionCookie names the consumer session's cookie; its value is the
// session's own token, never the link's.
const sessionCookie = "orbt_consumer"

// session is the consumer a request is for.
type session struct {
	workspace.ConsumerSession
	token string
}

// csrf is the form token of a session: an HMAC of a fixed text keyed by
// the session's own secret, which a page of another site cannot read.
func (s session) csrf() string {
	m := hmac.New(sha256.New, []byte(s.token))
	m.Write([]byte("orbt consumer form"))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (u *UI) render(c *gin.Context, status int, page string, data map[string]any) {
	c.Status(status)
	c.Header("Content-Type", "text/html; charset=utf-8")
	if err := u.pages[page].Execute(c.Writer, data); err != nil {
		u.log.Error("render consumer page", "page", page, "err", err)
	}
}

// gone is the plain page of a link that opens nothing: expired, revoked
// or never issued, which it does not tell apart.
func (u *UI) gone(c *gin.Context) {
	u.render(c, http.StatusNotFound, "gone", nil)
	c.Abort()
}

// fail renders an error page: 503 with Retry-After when a backing service
// is down, 500 (logged, by route) otherwise.
func (u *UI) fail(c *gin.Context, err error) {
	e := httperr.Classify(err)
	if e.Status == http.StatusServiceUnavailable {
		c.Header("Retry-After", "5")
	} else if e.Status >= 500 {
		u.log.Error("consumer page", "route", c.FullPath(), "err", err)
	}
	if e.Status == http.StatusNotFound {
		u.notFound(c, e)
		c.Abort()
		return
	}
	u.wentWrong(c, e.Status)
}

// recoverPage answers a panic with the error page, not the API's JSON,
// and logs it by route (a path may carry a link's token).
func (u *UI) recoverPage(c *gin.Context, rec any) {
	u.log.Error("panic", "recovered", rec, "route", c.FullPath())
	u.wentWrong(c, http.StatusInternalServerError)
}

// wentWrong is the page of a failure on our side.
func (u *UI) wentWrong(c *gin.Context, status int) {
	u.render(c, status, "error", map[string]any{"Title": "Something went wrong",
		"Message": "We could not load this page. Please try again in a moment."})
	c.Abort()
}

// securityHeaders: no scripts, no frames, no referrer to another site (a
// page's address must not leak), and no caching of pages that show card
// codes.
func securityHeaders(c *gin.Context) {
	h := c.Writer.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
	c.Next()
}

// open starts a session from a link and sends the browser to the home
// page, so the token leaves the address bar.
func (u *UI) open(c *gin.Context) {
	if !u.limiter.allow("open "+c.ClientIP(), openRate, openBurst) {
		u.tooMany(c)
		return
	}
	cs, token, err := u.opts.Workspaces.OpenLink(c, c.Param("token"))
	if err != nil {
		u.failSession(c, err)
		return
	}
	http.SetCookie(c.Writer, &http.Cookie{Name: sessionCookie, Value: token, Path: "/c/", Expires: cs.ExpiresAt,
		HttpOnly: true, Secure: u.opts.Secure, SameSite: http.SameSiteLaxMode})
	c.Redirect(http.StatusSeeOther, "/c/")
}

// requireSession loads the request's consumer session, or shows the plain
// page that says the link no longer works.
func (u *UI) requireSession(c *gin.Context) {
	cookie, err := c.Cookie(sessionCookie)
	if err != nil || cookie == "" || len(cookie) > 128 {
		u.gone(c)
		return
	}
	cs, err := u.opts.Workspaces.ConsumerSession(c, cookie)
	if err != nil {
		u.failSession(c, err)
		return
	}
	c.Set("session", session{ConsumerSession: cs, token: cookie})
	server.LogID(c, logging.WorkspaceID, cs.WorkspaceID)
	server.LogID(c, logging.ConsumerID, cs.ConsumerID)
	c.Next()
}

// failSession answers a link or session that opens nothing with the plain
// page that says so, and any other failure with the error page.
func (u *UI) failSession(c *gin.Context, err error) {
	if errors.Is(err, workspace.ErrLinkInvalid) {
		u.gone(c)
		return
	}
	u.fail(c, err)
}

// notFound answers the not-found page.
func (u *UI) notFound(c *gin.Context, _ *httperr.Error) {
	u.render(c, http.StatusNotFound, "error", map[string]any{"Title": "Not found", "Message": "There is nothing here."})
}

func sessionOf(c *gin.Context) session { return c.MustGet("session").(session) }

// checkForm refuses a state-changing request from another site: its Origin
// (when sent) must be this server, and its form must carry the session's
// CSRF token.
func (u *UI) checkForm(c *gin.Context) bool {
	if !server.SameOrigin(c.Request, u.opts.PublicOrigin, u.opts.Secure) {
		u.render(c, http.StatusForbidden, "error", map[string]any{"Title": "Refused", "Message": "This form was sent from another site."})
		return false
	}
	if !hmac.Equal([]byte(c.PostForm("csrf")), []byte(sessionOf(c).csrf())) {
		u.render(c, http.StatusForbidden, "error", map[string]any{"Title": "Refused",
			"Message": "This form has expired. Go back, reload the page and try again."})
		return false
	}
	return true
}

func (u *UI) signOut(c *gin.Context) {
	if !u.checkForm(c) {
		return
	}
	if err := u.opts.Workspaces.EndConsumerSession(c, sessionOf(c).token); err != nil {
		u.fail(c, err)
		return
	}
	http.SetCookie(c.Writer, &http.Cookie{Name: sessionCookie, Value: "", Path: "/c/", MaxAge: -1,
		HttpOnly: true, Secure: u.opts.Secure, SameSite: http.SameSiteLaxMode})
	u.render(c, http.StatusOK, "error", map[string]any{"Title": "Signed out",
		"Message": "You are signed out. Open your link again to come back."})
}

func (u *UI) style(c *gin.Context) {
	c.Header("Cache-Control", "public, max-age=86400")
	c.Data(http.StatusOK, "text/css; charset=utf-8", styleCSS)
}

// walletView is a wallet as the home page shows it.
type walletView struct {
	ledger.Wallet
	Title  string
	Brands []giftcard.Brand
	Form   formView
}

// formView is the state of one wallet's redeem form.
type formView struct {
	ReferenceID string
	BrandID     string
	Amount      string
	BrandError  string
	AmountError string
	Error       string
}

// consumerWallets loads the session's wallets with the brands each may
// redeem: enabled for the workspace, in the wallet's currency, and for a
// campaign wallet among its campaign's allowed brands when it names any.
func (u *UI) consumerWallets(ctx context.Context, s session) ([]walletView, error) {
	wallets, err := u.opts.Ledger.ConsumerWallets(ctx, s.WorkspaceID, s.ConsumerID, "", walletsMax)
	if err != nil {
		return nil, err
	}
	brands, err := u.opts.GiftCards.EnabledBrands(ctx, s.WorkspaceID)
	if err != nil {
		return nil, err
	}
	views := make([]walletView, 0, len(wallets))
	for _, w := range wallets {
		v := walletView{Wallet: w, Title: string(w.Currency) + " wallet"}
		var allowed []string
		if w.CampaignID != nil {
			cmp, err := u.opts.Ledger.Campaign(ctx, s.WorkspaceID, *w.CampaignID)
			if err != nil {
				return nil, err
			}
			v.Title, allowed = cmp.Name, cmp.AllowedBrands
		}
		for _, b := range brands {
			if b.Currency == w.Currency && (len(allowed) == 0 || slices.Contains(allowed, b.ID)) {
				v.Brands = append(v.Brands, b.ForPartners())
			}
		}
		v.Form.ReferenceID = newFormReference()
		views = append(views, v)
	}
	return views, nil
}

// walletsMax bounds the wallets one page shows.
const walletsMax = 100

// newFormReference is the referenceId a redeem form carries: a double
// submit of the same form redeems once.
func newFormReference() string { return "consumer-" + store.Token(16) }

func (u *UI) home(c *gin.Context) {
	u.renderHome(c, http.StatusOK, "", formView{})
}

// renderHome shows the home page; failedWallet's form shows failed.
func (u *UI) renderHome(c *gin.Context, status int, failedWallet string, failed formView) {
	s := sessionOf(c)
	wallets, err := u.consumerWallets(c, s)
	if err != nil {
		u.fail(c, err)
		return
	}
	for i := range wallets {
		if wallets[i].ID == failedWallet {
			wallets[i].Form = failed
		}
	}
	consumer, err := u.opts.Workspaces.Consumer(c, s.WorkspaceID, s.ConsumerID)
	if err != nil {
		u.fail(c, err)
		return
	}
	ids := make([]string, len(wallets))
	for i, w := range wallets {
		ids[i] = w.ID
	}
	past, err := u.opts.GiftCards.ConsumerRedemptions(c, s.WorkspaceID, ids, pastMax)
	if err != nil {
		u.fail(c, err)
		return
	}
	name := "there"
	if consumer.Name != nil && *consumer.Name != "" {
		name = *consumer.Name
	}
	u.render(c, status, "home", map[string]any{"Name": name, "Wallets": wallets, "Past": past,
		"BrandNames": brandNames(wallets), "CSRF": s.csrf()})
}

// pastMax bounds the past redemptions the home page lists.
const pastMax = 50

func brandNames(wallets []walletView) map[string]string {
	names := make(map[string]string)
	for _, w := range wallets {
		for _, b := range w.Brands {
			names[b.ID] = b.Name
		}
	}
	return names
}

// redeem takes the redeem form: checks what a person can fix beside the
// field it concerns, then accepts the redemption under the form's own
// referenceId and shows its progress.
func (u *UI) redeem(c *gin.Context) {
	if !u.checkForm(c) {
		return
	}
	s := sessionOf(c)
	form := formView{ReferenceID: c.PostForm("referenceId"), BrandID: c.PostForm("brandId"), Amount: c.PostForm("amount")}
	walletID := c.PostForm("walletId")
	wallets, err := u.consumerWallets(c, s)
	if err != nil {
		u.fail(c, err)
		return
	}
	i := slices.IndexFunc(wallets, func(w walletView) bool { return w.ID == walletID })
	if i < 0 || !strings.HasPrefix(form.ReferenceID, "consumer-") || len(form.ReferenceID) > 64 || !validate.Printable(form.ReferenceID) {
		u.render(c, http.StatusBadRequest, "error", map[string]any{"Title": "Refused",
			"Message": "This form is not one of yours. Go back, reload the page and try again."})
		return
	}
	w := wallets[i]
	bi := slices.IndexFunc(w.Brands, func(b giftcard.Brand) bool { return b.ID == form.BrandID })
	amount, amountErr := w.Currency.ParseMajor(form.Amount)
	switch {
	case bi < 0:
		form.BrandError = "Choose a gift card."
	case amountErr != nil || amount <= 0:
		form.AmountError = "Enter an amount such as " + w.Currency.FormatMajor(w.Brands[bi].MinAmount) + "."
	case !w.Brands[bi].Accepts(amount):
		b := w.Brands[bi]
		if len(b.Denominations) > 0 {
			form.AmountError = "This card comes in fixed amounts only."
		} else {
			form.AmountError = "Choose an amount from " + b.Currency.FormatMajor(b.MinAmount) + " to " + b.Currency.FormatMajor(b.MaxAmount) + "."
		}
	case amount > w.Balance:
		form.AmountError = "That is more than this wallet's balance of " + w.Currency.FormatMajor(w.Balance) + "."
	}
	if form.BrandError != "" || form.AmountError != "" {
		u.renderHome(c, http.StatusUnprocessableEntity, w.ID, form)
		return
	}
	r, replay, err := u.opts.GiftCards.Redeem(c, giftcard.RedeemRequest{WorkspaceID: s.WorkspaceID, ReferenceID: form.ReferenceID,
		WalletID: w.ID, BrandID: form.BrandID, Amount: amount})
	var conflict *ledger.ConflictError
	if errors.As(err, &conflict) {
		form.ReferenceID = newFormReference()
		form.Error = "You changed this form after sending it. Check the card and amount and send it again."
		u.renderHome(c, http.StatusConflict, w.ID, form)
		return
	}
	if err != nil {
		u.fail(c, err)
		return
	}
	if !replay {
		u.opts.Redeemed(c, r.ID)
	}
	c.Redirect(http.StatusSeeOther, "/c/redemptions/"+r.ID)
}

// redemptionWait is how long the progress page waits for the outcome
// before it shows the redemption still in progress (and refreshes).
const redemptionWait = 3 * time.Second

func (u *UI) redemption(c *gin.Context) {
	s := sessionOf(c)
	r, err := u.opts.GiftCards.Redemption(c, s.WorkspaceID, c.Param("id"))
	if err == nil {
		// One consumer only: the redemption must be from one of theirs.
		var w ledger.Wallet
		w, err = u.opts.Ledger.Wallet(c, s.WorkspaceID, r.WalletID)
		if err == nil && w.ConsumerID != s.ConsumerID {
			err = giftcard.ErrRedemptionNotFound
		}
	}
	if err != nil {
		u.fail(c, err)
		return
	}
	if !r.Final() {
		if r, err = u.opts.GiftCards.AwaitFinal(c, r, redemptionWait); err != nil {
			u.fail(c, err)
			return
		}
	}
	brand := r.BrandID
	if b, err := u.opts.GiftCards.EnabledBrands(c, s.WorkspaceID); err == nil {
		for _, x := range b {
			if x.ID == r.BrandID {
				brand = x.Name
			}
		}
	}
	u.render(c, http.StatusOK, "redemption", map[string]any{"R": r, "Brand": brand, "CSRF": s.csrf()})
}

// reasonText tells a consumer why a redemption failed.
func reasonText(reason *string) string {
	if reason == nil {
		return ""
	}
	switch *reason {
	case ledger.ReasonInsufficientFunds:
		return "Your balance was not enough for this card. Nothing was taken from it."
	case giftcard.ReasonBrandNotEnabled, ledger.ReasonBrandNotAllowed:
		return "This card is not available for this wallet. Nothing was taken from your balance."
	case giftcard.ReasonAmountOutOfRange:
		return "This card is not sold in that amount. Nothing was taken from your balance."
	case giftcard.ReasonProviderDeclined:
		return "The card seller declined this card. Your balance was given back in full."
	case giftcard.ReasonProviderUnavailable:
		return "The card seller could not be reached. Your balance was given back in full; please try again later."
	}
	return "This card could not be issued. Nothing was taken from your balance."
}
