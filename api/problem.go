package api

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/orbt/orbt/ledger"
	"github.com/orbt/orbt/webhook"
	"github.com/orbt/orbt/workspace"
)

// problem is an RFC 9457 problem response.
type problem struct {
	Type   string       `json:"type"`
	Title  string       `json:"title"`
	Status int          `json:"status"`
	Detail string       `json:"detail,omitempty"`
	Code   string       `json:"code"`
	Errors []fieldError `json:"errors,omitempty"`

	retryAfter int
}

// fieldError names one offending field of a request.
type fieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
	// Item is the index of the batch item the error is about, and Line its
	// line in a CSV body.
	Item *int `json:"item,omitempty"`
	Line int  `json:"line,omitempty"`
}

// problemTypeBase prefixes each problem's code to make its type URI.
const problemTypeBase = "https://orbt.dev/problems/"

// retryAfterSeconds is what 503s tell clients to wait.
const retryAfterSeconds = 2

func newProblem(status int, code, detail string, errs ...fieldError) *problem {
	return &problem{Type: problemTypeBase + code, Title: http.StatusText(status), Status: status,
		Detail: detail, Code: code, Errors: errs}
}

func validationProblem(errs []fieldError) *problem {
	return newProblem(http.StatusBadRequest, "validation_error", "The request has invalid fields.", errs...)
}

func (p *problem) Error() string { return p.Code + ": " + p.Detail }

// abort renders the problem and stops the handler chain.
func abort(c *gin.Context, p *problem) {
	if p.retryAfter > 0 {
		c.Header("Retry-After", strconv.Itoa(p.retryAfter))
	}
	c.Header("Content-Type", "application/problem+json")
	c.AbortWithStatusJSON(p.Status, p)
}

// fieldErr attaches the request field an error is about.
type fieldErr struct {
	field string
	err   error
}

func (e fieldErr) Error() string { return e.field + ": " + e.err.Error() }
func (e fieldErr) Unwrap() error { return e.err }

func onField(field string, err error) error {
	if err == nil {
		return nil
	}
	return fieldErr{field: field, err: err}
}

// fail maps any error from the packages below to its problem response: the
// one place sentinels become HTTP.
func fail(c *gin.Context, log *slog.Logger, err error) {
	var p *problem
	if errors.As(err, &p) {
		abort(c, p)
		return
	}
	var fe fieldErr
	field := func(msg string) []fieldError {
		if errors.As(err, &fe) {
			return []fieldError{{Field: fe.field, Message: msg}}
		}
		return nil
	}
	var (
		conflict *ledger.ConflictError
		items    *ledger.BatchItemsError
	)
	switch {
	case errors.As(err, &items):
		errs := make([]fieldError, len(items.Items))
		for i, e := range items.Items {
			errs[i] = itemError(e.Item, e.Field, e.Message, nil)
		}
		if items.Conflict {
			p = itemsProblem(http.StatusUnprocessableEntity, "idempotency_conflict",
				"Some items reuse a referenceId with a different payload; nothing was stored.", errs)
		} else {
			p = itemsProblem(http.StatusBadRequest, "validation_error", "Some items name what does not exist; nothing was stored.", errs)
		}
	case errors.As(err, &conflict):
		errs := make([]fieldError, 0, len(conflict.Fields))
		for _, f := range conflict.Fields {
			errs = append(errs, fieldError{Field: f, Message: "differs from the request first made with this referenceId"})
		}
		p = newProblem(http.StatusUnprocessableEntity, "idempotency_conflict",
			"This referenceId was already used with a different payload; nothing was changed.", errs...)
	case errors.Is(err, ledger.ErrWalletNotFound):
		p = newProblem(http.StatusNotFound, "wallet_not_found", "No such wallet.", field("no such wallet")...)
	case errors.Is(err, ledger.ErrConsumerNotFound):
		p = newProblem(http.StatusNotFound, "consumer_not_found", "No such consumer.", field("no such consumer")...)
	case errors.Is(err, ledger.ErrCampaignNotFound):
		p = newProblem(http.StatusNotFound, "campaign_not_found", "No such campaign.", field("no such campaign")...)
	case errors.Is(err, ledger.ErrNotFound), errors.Is(err, workspace.ErrNotFound), errors.Is(err, webhook.ErrNotFound):
		p = newProblem(http.StatusNotFound, "not_found", "No such object.", field("no such object")...)
	case errors.Is(err, workspace.ErrConsumerExists):
		p = newProblem(http.StatusConflict, "consumer_exists", "A consumer with this externalId exists.",
			fieldError{Field: "externalId", Message: "already used in this workspace"})
	case errors.Is(err, ledger.ErrWalletExists):
		p = newProblem(http.StatusConflict, "wallet_exists",
			"The consumer already has a wallet of this type for this currency or campaign.")
	case errors.Is(err, ledger.ErrCampaignCurrency):
		p = newProblem(http.StatusUnprocessableEntity, "currency_mismatch", "The campaign's currency differs from the wallet's.",
			fieldError{Field: "currency", Message: "must be the campaign's currency"})
	case errors.Is(err, ledger.ErrBudgetBelowUsed):
		p = newProblem(http.StatusUnprocessableEntity, "budget_below_used", "The budget would be below what the campaign has already credited.",
			fieldError{Field: "budget", Message: "must be at least credited minus debited"})
	case unavailable(err):
		p = newProblem(http.StatusServiceUnavailable, "service_unavailable", "A backing service is unavailable; retry later.")
		p.retryAfter = retryAfterSeconds
		log.Warn("unavailable", "err", err, "path", c.FullPath())
	default:
		p = newProblem(http.StatusInternalServerError, "internal_error", "Something went wrong on our side.")
		log.Error("internal error", "err", err, "path", c.FullPath())
	}
	abort(c, p)
}

// unavailable tells an infrastructure fault (the database unreachable,
// overloaded or shutting down; a timeout) from a bug. pgx reports network
// failures as errors that are not *pgconn.PgError.
func unavailable(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return true
	}
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return !errors.Is(err, ledger.ErrInvariant)
	}
	switch pgErr.Code[:2] {
	case "08", "53", "57", "40", "55": // connection, resources, shutdown, serialization, lock
		return true
	}
	return false
}
