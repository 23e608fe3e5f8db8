// Package api serves Orbt's native partner API (/v1) and its admin API
// (/admin/v1) with gin: key authentication, thin handlers over the ledger
// and the stores, a file per resource. Accepted money movements are
// committed to Postgres before the 202 and then handed to the enqueuer.
// Validation, error classification and the server's middleware are shared
// with the other surfaces (packages validate, httperr, server).
package api

import (
	"log/slog"
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/orbt/orbt/batchreq"
	"github.com/orbt/orbt/giftcard"
	"github.com/orbt/orbt/ledger"
	"github.com/orbt/orbt/server"
	"github.com/orbt/orbt/tasks"
	"github.com/orbt/orbt/validate"
	"github.com/orbt/orbt/webhook"
	"github.com/orbt/orbt/workspace"
)

// Options configure the API.
type Options struct {
	Ledger     *ledger.Ledger
	Workspaces *workspace.Store
	// Auth checks API keys; shared with the other surfaces that take them.
	// Nil makes one of the API's own.
	Auth      *workspace.Authenticator
	Webhooks  *webhook.Store
	GiftCards *giftcard.Store
	// PublicURL is where consumers reach this server: consumer links
	// start with it.
	PublicURL string
	// Enqueuer wakes the worker for accepted work; nil leaves it all to the relay.
	Enqueuer *tasks.Enqueuer
	// RateLimiter holds each key to its budgets; nil lets every request through.
	RateLimiter *server.RateLimiter
	AdminToken  string
	// BatchItemsMax is the most items one bulk payout may hold.
	BatchItemsMax int
	Logger        *slog.Logger
	Registerer    prometheus.Registerer
}

// API is the native partner and admin API.
type API struct {
	opts      Options
	ledger    *ledger.Ledger
	ws        *workspace.Store
	webhooks  *webhook.Store
	giftcards *giftcard.Store
	queue     *tasks.Enqueuer
	log       *slog.Logger
	auth      *workspace.Authenticator
	// openapi is the document /openapi.json serves.
	openapi  []byte
	accepted *prometheus.CounterVec
}

// New builds the API; Routes mounts it.
func New(opts Options) (*API, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Enqueuer == nil {
		opts.Enqueuer = tasks.NewEnqueuer(nil, opts.Logger)
	}
	if opts.Auth == nil {
		opts.Auth = workspace.NewAuthenticator(opts.Workspaces, opts.Logger)
	}
	if opts.BatchItemsMax <= 0 {
		opts.BatchItemsMax = batchreq.ItemsMaxDefault
	}
	accepted := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "orbt_transactions_accepted_total",
		Help: "Transactions accepted (202), by whether the request was a replay.",
	}, []string{"replayed"})
	if opts.Registerer != nil {
		if err := opts.Registerer.Register(accepted); err != nil {
			return nil, err
		}
	}
	doc, err := OpenAPI()
	if err != nil {
		return nil, err
	}
	return &API{opts: opts, ledger: opts.Ledger, ws: opts.Workspaces, webhooks: opts.Webhooks, giftcards: opts.GiftCards, queue: opts.Enqueuer,
		log: opts.Logger, accepted: accepted, auth: opts.Auth, openapi: doc}, nil
}

// bind decodes a JSON body of at most limit bytes into v, answering the 4xx
// itself when it cannot.
func bind(c *gin.Context, v any, limit int64) bool {
	if e := validate.DecodeJSON(c.Writer, c.Request, v, limit); e != nil {
		server.Abort(c, e)
		return false
	}
	return true
}

// valid answers the validator's 400 when it holds errors.
func valid(c *gin.Context, v *validate.Validator) bool {
	if e := v.Err(); e != nil {
		server.Abort(c, e)
		return false
	}
	return true
}

// listPage answers one page of a list sorted by keyOf: it reads ?limit= and
// ?cursor= (whose key must pass check), fetches up to limit rows after that
// key, and renders them with the cursor of the next page. fetch reads the
// list's own filters too, and may return their validation error.
func listPage[T any](a *API, c *gin.Context, check validate.KeyCheck, keyOf func(T) string,
	fetch func(after string, limit int) ([]T, error)) {
	pg, e := validate.ReadPage(c.Request, check)
	if e != nil {
		server.Abort(c, e)
		return
	}
	rows, err := fetch(pg.Key, pg.Limit+1)
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, validate.PageOf(rows, pg.Limit, keyOf))
}

func (a *API) fail(c *gin.Context, err error) { server.Fail(c, a.log, err) }
