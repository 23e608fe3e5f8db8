package giftcard

import (
	"context"
	"errors"
	"time"

	"github.com/orbt/orbt/ledger"
)

// Provider sells gift cards: the one real boundary of a redemption. Every
// call carries an idempotency key derived from the redemption, and a
// provider answers a repeated key with the card it issued the first time,
// so retrying after a timeout never buys two cards.
type Provider interface {
	Issue(ctx context.Context, req IssueRequest) (Card, error)
}

// IssueRequest asks a provider for one card.
type IssueRequest struct {
	IdempotencyKey string
	BrandID        string
	Amount         int64
	Currency       ledger.Currency
}

// Card is what a provider issued.
type Card struct {
	Code      string
	PIN       string
	ExpiresAt *time.Time
}

// ErrDeclined is a provider refusing the card for good: the redemption
// fails with provider_declined. Any other error is the provider being
// unavailable (a timeout, a refused connection, a 5xx): retried with the
// same key, then provider_unavailable.
var ErrDeclined = errors.New("provider declined the card")

// idempotencyKey is the provider-side key of a redemption: the same for
// every call about it, from any worker, before or after a restart.
func idempotencyKey(redemptionID string) string { return "orbt-" + redemptionID }
