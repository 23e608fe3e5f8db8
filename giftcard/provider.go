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

// What a provider's error means for the money:
//   - ErrDeclined: the provider refused the card for good; the hold is
//     released (provider_declined).
//   - ErrUnavailable: the provider did nothing with this call (refused the
//     connection, answered 503 before accepting it): retried with the same
//     key; once the attempts are spent, and only if every one of them was
//     such an answer, the hold is released (provider_unavailable).
//   - anything else (a timeout, a dropped connection): the card may have
//     been issued. Retried with the same key, and the hold is never
//     released after such an answer: it stays until the provider answers
//     for the key, so a card bought is a card paid for.
var (
	ErrDeclined    = errors.New("provider declined the card")
	ErrUnavailable = errors.New("provider unavailable; the call did nothing")
)

// idempotencyKey is the provider-side key of a redemption: the same for
// every call about it, from any worker, before or after a restart.
func idempotencyKey(redemptionID string) string { return "orbt-" + redemptionID }
