// Package httperr classifies every error the stores return into what an
// HTTP surface answers: a status, a stable code and the request fields it
// is about. It is the one place sentinels become HTTP; each surface only
// renders the result in its own shape (problem+json for /v1, the
// Orbt-compatible {"success": false, …} for the partner API).
package httperr

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/orbt/orbt/giftcard"
	"github.com/orbt/orbt/ledger"
	"github.com/orbt/orbt/store"
	"github.com/orbt/orbt/webhook"
	"github.com/orbt/orbt/workspace"
)

// Error is a classified error: what the client is told.
type Error struct {
	Status int
	Code   string
	Detail string
	Fields []FieldError
	// RetryAfter, in seconds, is sent with 503s and 429s.
	RetryAfter int
	// cause is the error classified, kept for the log of a 5xx.
	cause error
}

// FieldError names one offending field of a request.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
	// Item is the index of the batch item the error is about, and Line its
	// line in a CSV body.
	Item *int `json:"item,omitempty"`
	Line int  `json:"line,omitempty"`
}

// retryAfterSeconds is what 503s tell clients to wait.
const retryAfterSeconds = 2

// New builds an Error.
func New(status int, code, detail string, fields ...FieldError) *Error {
	return &Error{Status: status, Code: code, Detail: detail, Fields: fields}
}

// Validation is the 400 for fields that are malformed.
func Validation(fields ...FieldError) *Error {
	return New(http.StatusBadRequest, "validation_error", "The request has invalid fields.", fields...)
}

// Unavailable is the 503 for a backing service that is down.
func Unavailable(detail string) *Error {
	e := New(http.StatusServiceUnavailable, "service_unavailable", detail)
	e.RetryAfter = retryAfterSeconds
	return e
}

func (e *Error) Error() string { return e.Code + ": " + e.Detail }

// Cause is the error that was classified, for logs; nil for errors made here.
func (e *Error) Cause() error { return e.cause }

// fieldErr attaches the request field an error is about.
type fieldErr struct {
	field string
	err   error
}

func (e fieldErr) Error() string { return e.field + ": " + e.err.Error() }
func (e fieldErr) Unwrap() error { return e.err }

// OnField says which request field err is about (a walletId that names no
// wallet), so the answer can name it.
func OnField(field string, err error) error {
	if err == nil {
		return nil
	}
	return fieldErr{field: field, err: err}
}

// itemErrorsMax bounds the per-item errors one refusal lists.
const itemErrorsMax = 500

// Items is a refusal listing per-item errors, at most itemErrorsMax of them.
func Items(status int, code, detail string, errs []FieldError) *Error {
	if len(errs) > itemErrorsMax {
		detail += " The first " + strconv.Itoa(itemErrorsMax) + " of " + strconv.Itoa(len(errs)) + " errors are listed."
		errs = errs[:itemErrorsMax]
	}
	return New(status, code, detail, errs...)
}

// ItemField names a field of one batch item, with its CSV line when it came
// from one (lines[item]).
func ItemField(item int, field, msg string, lines []int) FieldError {
	e := FieldError{Field: "items[" + strconv.Itoa(item) + "]." + field, Message: msg, Item: &item}
	if item < len(lines) {
		e.Line = lines[item]
	}
	return e
}

// Classify maps any error to what the client is told. Errors it does not
// know are 500s that keep their cause for the log.
func Classify(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	e = classify(err)
	e.cause = err
	return e
}

func classify(err error) *Error {
	var fe fieldErr
	field := func(msg string) []FieldError {
		if errors.As(err, &fe) {
			return []FieldError{{Field: fe.field, Message: msg}}
		}
		return nil
	}
	var (
		conflict *ledger.ConflictError
		items    *ledger.BatchItemsError
		brands   *giftcard.UnknownBrandsError
	)
	switch {
	case errors.As(err, &brands):
		errs := make([]FieldError, len(brands.Indexes))
		for i, idx := range brands.Indexes {
			errs[i] = FieldError{Field: "brandIds[" + strconv.Itoa(idx) + "]", Message: "no such brand in the catalog"}
		}
		return New(http.StatusUnprocessableEntity, "unknown_brand", "Some brands are not in the catalog; nothing was changed.", errs...)
	case errors.Is(err, giftcard.ErrRedemptionNotFound):
		return New(http.StatusNotFound, "redemption_not_found", "No such redemption.", field("no such redemption")...)
	case errors.Is(err, workspace.ErrTooManyRotations):
		return New(http.StatusConflict, "too_many_rotations",
			"Ten rotated-out signing secrets are still within their day; rotate again once the oldest expires.")
	case errors.Is(err, workspace.ErrLinkNotFound):
		return New(http.StatusNotFound, "link_not_found", "No such link.", field("no such link")...)
	case errors.As(err, &items):
		errs := make([]FieldError, len(items.Items))
		for i, it := range items.Items {
			errs[i] = ItemField(it.Item, it.Field, it.Message, nil)
		}
		if items.Conflict {
			return Items(http.StatusUnprocessableEntity, "idempotency_conflict",
				"Some items reuse a referenceId with a different payload; nothing was stored.", errs)
		}
		return Items(http.StatusBadRequest, "validation_error", "Some items name what does not exist; nothing was stored.", errs)
	case errors.As(err, &conflict):
		errs := make([]FieldError, 0, len(conflict.Fields))
		for _, f := range conflict.Fields {
			errs = append(errs, FieldError{Field: f, Message: "differs from the request first made with this referenceId"})
		}
		return New(http.StatusUnprocessableEntity, "idempotency_conflict",
			"This referenceId was already used with a different payload; nothing was changed.", errs...)
	case errors.Is(err, ledger.ErrCursor):
		return Validation(field("is not a cursor this list returned")...)
	case errors.Is(err, ledger.ErrWalletNotFound):
		return New(http.StatusNotFound, "wallet_not_found", "No such wallet.", field("no such wallet")...)
	case errors.Is(err, workspace.ErrConsumerNotFound):
		return New(http.StatusNotFound, "consumer_not_found", "No such consumer.", field("no such consumer")...)
	case errors.Is(err, ledger.ErrCampaignNotFound):
		return New(http.StatusNotFound, "campaign_not_found", "No such campaign.", field("no such campaign")...)
	case errors.Is(err, store.ErrNotFound):
		return New(http.StatusNotFound, "not_found", "No such object.", field("no such object")...)
	case errors.Is(err, workspace.ErrConsumerExists):
		return New(http.StatusConflict, "consumer_exists", "A consumer with this externalId exists.",
			FieldError{Field: "externalId", Message: "already used in this workspace"})
	case errors.Is(err, ledger.ErrWalletExists):
		return New(http.StatusConflict, "wallet_exists",
			"The consumer already has a wallet of this type for this currency or campaign.")
	case errors.Is(err, ledger.ErrCampaignCurrency):
		return New(http.StatusUnprocessableEntity, "currency_mismatch", "The campaign's currency differs from the wallet's.",
			FieldError{Field: "currency", Message: "must be the campaign's currency"})
	case errors.Is(err, ledger.ErrBudgetBelowUsed):
		return New(http.StatusUnprocessableEntity, "budget_below_used", "The budget would be below what the campaign has already credited.",
			FieldError{Field: "budget", Message: "must be at least credited minus debited"})
	case errors.Is(err, ledger.ErrCampaignWindow):
		return Validation(FieldError{Field: "endsAt", Message: "must be after startsAt"})
	case errors.Is(err, webhook.ErrInvalidURL), errors.Is(err, webhook.ErrEventFilter):
		return Validation(field(err.Error())...)
	case store.Unavailable(err):
		return Unavailable("A backing service is unavailable; retry later.")
	}
	return New(http.StatusInternalServerError, "internal_error", "Something went wrong on our side.")
}

// problemTypeBase prefixes each problem's code to make its type URI.
const problemTypeBase = "https://orbt.dev/problems/"

// Problem is the RFC 9457 body of an Error, as the native API renders it.
type Problem struct {
	Type   string       `json:"type"`
	Title  string       `json:"title"`
	Status int          `json:"status"`
	Detail string       `json:"detail,omitempty"`
	Code   string       `json:"code"`
	Errors []FieldError `json:"errors,omitempty"`
}

// Problem renders the Error as RFC 9457 problem details.
func (e *Error) Problem() Problem {
	return Problem{Type: problemTypeBase + e.Code, Title: http.StatusText(e.Status), Status: e.Status,
		Detail: e.Detail, Code: e.Code, Errors: e.Fields}
}

// WriteProblem writes the Error as an application/problem+json response.
func (e *Error) WriteProblem(w http.ResponseWriter) {
	body, _ := json.Marshal(e.Problem()) // plain strings and ints: cannot fail
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(e.RetryAfter))
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(e.Status)
	w.Write(body)
}
