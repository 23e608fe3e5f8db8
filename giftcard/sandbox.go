package giftcard

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base32"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/orbt/orbt/seal"
)

// SandboxProviderName is the provider of the built-in sandbox brands.
const SandboxProviderName = "sandbox"

// The sandbox brands answer deterministically (DESIGN.md, Gift cards).
const (
	BrandSandboxCoffee   = "sandbox-coffee"
	BrandSandboxBooks    = "sandbox-books"
	BrandSandboxDeclines = "sandbox-declines"
	BrandSandboxSlow     = "sandbox-slow"
)

// SandboxFaults make the sandbox misbehave on purpose, for fault tests:
// a share of calls fails as unavailable, a share hangs until the caller's
// timeout. Zero is a well-behaved sandbox.
type SandboxFaults struct {
	Unavailable float64
	Timeout     float64
	Seed        uint64
}

// Sandbox is the built-in provider. Like a real one it remembers every
// idempotency key (table sandbox_cards), counting calls and when it issued
// the card; a card's code and pin are derived from the key with a key of
// their own, so the same key always gets the same card and no code is
// stored anywhere in the clear. Brands: Sandbox Declines always declines;
// Sandbox Slow hangs until the caller's timeout on a key's first call and
// issues on the next; every other brand issues.
type Sandbox struct {
	pool    *pgxpool.Pool
	codeKey []byte
	faults  SandboxFaults
	mu      sync.Mutex
	rng     *rand.Rand
}

// NewSandbox builds the sandbox provider over the database; sealer's data
// key derives the codes' key.
func NewSandbox(pool *pgxpool.Pool, sealer *seal.Sealer, faults SandboxFaults) *Sandbox {
	return &Sandbox{pool: pool, codeKey: sealer.Subkey("orbt sandbox card codes"), faults: faults,
		rng: rand.New(rand.NewPCG(faults.Seed, faults.Seed^0x9e3779b97f4a7c15))}
}

// Issue answers one call.
func (s *Sandbox) Issue(ctx context.Context, req IssueRequest) (Card, error) {
	if err := s.injectFault(ctx); err != nil {
		return Card{}, err
	}
	// One statement remembers the call and, when this call issues the
	// card, when: Declines never issues, Slow from its second call on,
	// every other brand at once.
	issuesFirst := req.BrandID != BrandSandboxDeclines && req.BrandID != BrandSandboxSlow
	issuesLater := req.BrandID != BrandSandboxDeclines
	var (
		calls    int
		brand    string
		amount   int64
		issuedAt *time.Time
	)
	err := s.pool.QueryRow(ctx, `INSERT INTO sandbox_cards AS s (idempotency_key, brand_id, amount, currency, issued_at)
		VALUES ($1, $2, $3, $4, CASE WHEN $5 THEN date_trunc('second', now()) END)
		ON CONFLICT (idempotency_key) DO UPDATE SET calls = s.calls + 1,
			issued_at = COALESCE(s.issued_at, CASE WHEN $6 AND s.brand_id = EXCLUDED.brand_id AND s.amount = EXCLUDED.amount
				THEN date_trunc('second', now()) END)
		RETURNING calls, brand_id, amount, issued_at`,
		req.IdempotencyKey, req.BrandID, req.Amount, req.Currency, issuesFirst, issuesLater).
		Scan(&calls, &brand, &amount, &issuedAt)
	if err != nil {
		return Card{}, fmt.Errorf("sandbox: %w", err)
	}
	switch {
	case brand != req.BrandID || amount != req.Amount:
		// A provider refuses a key reused for another card.
		return Card{}, fmt.Errorf("sandbox: key reused for another card: %w", ErrDeclined)
	case req.BrandID == BrandSandboxDeclines:
		return Card{}, fmt.Errorf("sandbox: %w", ErrDeclined)
	case issuedAt == nil: // Sandbox Slow's first call
		<-ctx.Done()
		return Card{}, fmt.Errorf("sandbox: first call for a key: %w", ctx.Err())
	}
	return s.card(req.IdempotencyKey, *issuedAt), nil
}

// codeEncoding spells codes in upper-case letters and digits.
var codeEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

func (s *Sandbox) card(key string, issuedAt time.Time) Card {
	m := hmac.New(sha256.New, s.codeKey)
	m.Write([]byte(key))
	sum := m.Sum(nil)
	raw := codeEncoding.EncodeToString(sum[:10]) // 16 characters
	code := "SBX-" + strings.Join([]string{raw[0:4], raw[4:8], raw[8:12], raw[12:16]}, "-")
	pin := fmt.Sprintf("%04d", binary.BigEndian.Uint32(sum[10:14])%10000)
	expires := issuedAt.UTC().AddDate(1, 0, 0)
	return Card{Code: code, PIN: pin, ExpiresAt: &expires}
}

func (s *Sandbox) injectFault(ctx context.Context) error {
	if s.faults.Unavailable == 0 && s.faults.Timeout == 0 {
		return nil
	}
	s.mu.Lock()
	roll := s.rng.Float64()
	s.mu.Unlock()
	switch {
	case roll < s.faults.Unavailable:
		return fmt.Errorf("sandbox: injected outage: %w", ErrUnavailable)
	case roll < s.faults.Unavailable+s.faults.Timeout:
		<-ctx.Done()
		return fmt.Errorf("sandbox: injected hang: %w", ctx.Err())
	}
	return nil
}
