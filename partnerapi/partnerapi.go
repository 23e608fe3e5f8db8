// Package partnerapi serves the Orbt-compatible partner API
// (/api/partner/v1): Orbt's hosted routes, request signing and envelopes,
// so a partner integrated with Orbt's hosted API moves here by changing
// its base URL. It is an adapter and nothing more: every rule (who may
// act, deduplication by referenceId, what a credit may do) is the native
// services' (packages workspace and ledger), reached the way the native
// API reaches them. What is its own is the shape: integer customer ids,
// numbered pages, decimal amounts in major units, and
// {"success": …, "data" | "error": …} bodies.
package partnerapi

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/orbt/orbt/httperr"
	"github.com/orbt/orbt/ledger"
	"github.com/orbt/orbt/server"
	"github.com/orbt/orbt/tasks"
	"github.com/orbt/orbt/validate"
	"github.com/orbt/orbt/workspace"
)

// Options configure the partner API.
type Options struct {
	Ledger     *ledger.Ledger
	Workspaces *workspace.Store
	// Auth checks API keys and signing secrets (required), shared with the
	// native API so a key revoked there is refused here at once.
	Auth *workspace.Authenticator
	// Enqueuer wakes the worker for accepted work (required).
	Enqueuer *tasks.Enqueuer
	// RateLimiter holds each key to its budgets, the same budgets as on the
	// native API; nil lets every request through.
	RateLimiter *server.RateLimiter
	// OutcomeWait is how long a money movement waits for its outcome before
	// answering 202 (default 5 s); a request's own "Prefer: wait=N" wins.
	OutcomeWait time.Duration
	Logger      *slog.Logger
	// Now is the clock signatures' timestamps are checked against (tests).
	Now func() time.Time
}

// API is the Orbt-compatible partner API.
type API struct {
	ledger *ledger.Ledger
	ws     *workspace.Store
	auth   *workspace.Authenticator
	queue  *tasks.Enqueuer
	limits *server.RateLimiter
	wait   time.Duration
	log    *slog.Logger
	now    func() time.Time
}

// outcomeWaitDefault is how long a credit or debit waits for its outcome:
// Orbt's hosted API answers with the wallet topped up, so a client reads
// the answer as final.
const outcomeWaitDefault = 5 * time.Second

// New builds the partner API; Routes mounts it.
func New(opts Options) *API {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.OutcomeWait <= 0 {
		opts.OutcomeWait = outcomeWaitDefault
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &API{ledger: opts.Ledger, ws: opts.Workspaces, auth: opts.Auth, queue: opts.Enqueuer,
		limits: opts.RateLimiter, wait: opts.OutcomeWait, log: opts.Logger, now: opts.Now}
}

// Error codes of Orbt's envelope. Each answer also says, in
// error.details.reason, the precise reason in the native API's words.
const (
	codeValidation     = "VALIDATION_ERROR"
	codeBusinessRule   = "BUSINESS_RULE_ERROR"
	codeAuthentication = "AUTHENTICATION_ERROR"
	codeAccessDenied   = "ACCESS_DENIED"
	codeNotFound       = "NOT_FOUND"
	codeMethod         = "METHOD_NOT_ALLOWED"
	codeRateLimited    = "RATE_LIMITED"
	codeUnavailable    = "SERVICE_UNAVAILABLE"
	codeSystem         = "SYSTEM_ERROR"
)

type envelope struct {
	Success bool       `json:"success"`
	Data    any        `json:"data,omitempty"`
	Error   *errorBody `json:"error,omitempty"`
}

type errorBody struct {
	Code    string        `json:"code"`
	Message string        `json:"message"`
	Details *errorDetails `json:"details,omitempty"`
}

// errorDetails is what a client may act on beyond the code: the native
// reason, the fields at fault, and the objects a refusal concerns.
type errorDetails struct {
	Reason        string               `json:"reason"`
	Fields        []httperr.FieldError `json:"fields,omitempty"`
	CustomerID    int64                `json:"customerId,omitempty"`
	WalletID      string               `json:"walletId,omitempty"`
	TransactionID string               `json:"transactionId,omitempty"`
}

// codeFor is the envelope code of a classified error.
func codeFor(e *httperr.Error) string {
	switch {
	case e.Status == http.StatusBadRequest, e.Status == http.StatusRequestEntityTooLarge,
		e.Status == http.StatusUnprocessableEntity:
		return codeValidation
	case e.Status == http.StatusPaymentRequired, e.Status == http.StatusConflict:
		return codeBusinessRule
	case e.Status == http.StatusUnauthorized:
		return codeAuthentication
	case e.Status == http.StatusForbidden && e.Code == "insufficient_scope":
		return codeAccessDenied
	case e.Status == http.StatusForbidden:
		return codeAuthentication
	case e.Status == http.StatusNotFound:
		return codeNotFound
	case e.Status == http.StatusMethodNotAllowed:
		return codeMethod
	case e.Status == http.StatusTooManyRequests:
		return codeRateLimited
	case e.Status == http.StatusServiceUnavailable:
		return codeUnavailable
	}
	return codeSystem
}

// Render writes a classified error in Orbt's envelope and stops the chain;
// the server uses it for what it answers itself under /api/partner/v1.
func Render(c *gin.Context, e *httperr.Error) {
	renderError(c, e.Status, codeFor(e), e.Detail, &errorDetails{Reason: e.Code, Fields: e.Fields}, e.RetryAfter)
}

func renderError(c *gin.Context, status int, code, message string, details *errorDetails, retryAfter int) {
	if retryAfter > 0 {
		c.Header("Retry-After", strconv.Itoa(retryAfter))
	}
	c.AbortWithStatusJSON(status, envelope{Error: &errorBody{Code: code, Message: message, Details: details}})
}

// fail answers err as the native API would classify it, in the envelope.
func (p *API) fail(c *gin.Context, err error) { Render(c, server.Classify(c, p.log, err)) }

func ok(c *gin.Context, status int, data any) {
	c.JSON(status, envelope{Success: true, Data: data})
}

// bind decodes the body verify read (and checked against its hash)
// strictly, answering the 4xx itself when it cannot.
func bind(c *gin.Context, v any) bool {
	body, _ := c.Get(bodyContext)
	raw, _ := body.([]byte)
	if e := validate.DecodeBody(raw, v); e != nil {
		Render(c, e)
		return false
	}
	return true
}

// valid answers the validator's 400 when it holds errors.
func valid(c *gin.Context, v *validate.Validator) bool {
	if e := v.Err(); e != nil {
		Render(c, e)
		return false
	}
	return true
}

// major writes minor units as the exact decimal Orbt's API shows
// (2550 USD is 25.50), a JSON number with the currency's decimals.
func major(cur ledger.Currency, minor int64) json.Number { return json.Number(cur.FormatMajor(minor)) }

// outcomeWait is how long this request waits for a money movement's
// outcome: its own "Prefer: wait=N", or the default.
func (p *API) outcomeWait(c *gin.Context) time.Duration {
	if w := validate.PreferWait(c.Request.Header); w > 0 {
		return w
	}
	return p.wait
}
