// Package giftcard sells gift cards for wallet balances: the brand catalog
// and which brands each workspace may redeem, redemptions from their
// acceptance to their outcome, the Provider boundary and the built-in
// sandbox provider, and the sealing of card codes. It owns the tables
// brands, workspace_brands, redemptions and sandbox_cards; the ledger
// posts a redemption's money inside giftcard's database transactions.
package giftcard

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/orbt/orbt/ledger"
	"github.com/orbt/orbt/seal"
	"github.com/orbt/orbt/store"
)

// Redemption statuses: pending (accepted), processing (held, the provider
// being asked), then completed or failed.
const (
	StatusPending    = "pending"
	StatusProcessing = "processing"
	StatusCompleted  = "completed"
	StatusFailed     = "failed"
)

// Failure reasons of a redemption (the ledger adds insufficient_funds,
// brand_not_allowed, wallet_closed).
const (
	ReasonBrandNotEnabled     = "brand_not_enabled"
	ReasonAmountOutOfRange    = "amount_out_of_range"
	ReasonProviderDeclined    = "provider_declined"
	ReasonProviderUnavailable = "provider_unavailable"
)

// Event types of redemption outcomes.
const (
	EventCompleted = "redemption.completed"
	EventFailed    = "redemption.failed"
)

// ErrRedemptionNotFound is an id no redemption of the workspace has.
var ErrRedemptionNotFound = fmt.Errorf("redemption %w", store.ErrNotFound)

// Redemption is a request to turn wallet balance into a gift card and,
// once final, its outcome. Code, PIN and ExpiresAt are the card's: only a
// redemption's own responses (and the consumer's page) carry them, never
// a list, an event or a log line.
type Redemption struct {
	ID            string          `json:"id"`
	ReferenceID   string          `json:"referenceId"`
	WalletID      string          `json:"walletId"`
	BrandID       string          `json:"brandId"`
	Amount        int64           `json:"amount"`
	Currency      ledger.Currency `json:"currency"`
	Status        string          `json:"status"`
	FailureReason *string         `json:"failureReason"`
	Code          *string         `json:"code,omitempty"`
	PIN           *string         `json:"pin,omitempty"`
	ExpiresAt     *time.Time      `json:"expiresAt,omitempty"`
	CreatedAt     time.Time       `json:"createdAt"`
	CompletedAt   *time.Time      `json:"completedAt"`

	workspaceID string
	fingerprint []byte
	codeSealed  []byte
	pinSealed   []byte
}

// Final reports whether the redemption has its outcome.
func (r Redemption) Final() bool { return r.Status == StatusCompleted || r.Status == StatusFailed }

// WithoutCard is the redemption as lists, events and read keys see it.
func (r Redemption) WithoutCard() Redemption {
	r.Code, r.PIN, r.ExpiresAt = nil, nil, nil
	return r
}

const redemptionColumns = `id, workspace_id, reference_id, wallet_id, brand_id, amount, currency, status, failure_reason,
	fingerprint, code_sealed, pin_sealed, card_expires_at, created_at, completed_at`

func scanRedemption(row pgx.Row) (Redemption, error) {
	var r Redemption
	err := row.Scan(&r.ID, &r.workspaceID, &r.ReferenceID, &r.WalletID, &r.BrandID, &r.Amount, &r.Currency, &r.Status,
		&r.FailureReason, &r.fingerprint, &r.codeSealed, &r.pinSealed, &r.ExpiresAt, &r.CreatedAt, &r.CompletedAt)
	return r, err
}

func collectRedemption(r pgx.CollectableRow) (Redemption, error) { return scanRedemption(r) }

// Store keeps the catalog and the redemptions.
type Store struct {
	pool *pgxpool.Pool
	// reads serves the lists that may lag (a replica's, when set).
	reads  *store.Reads
	ledger *ledger.Ledger
	sealer *seal.Sealer
}

// NewStore builds the store; sealer seals and opens card codes.
func NewStore(pool *pgxpool.Pool, l *ledger.Ledger, sealer *seal.Sealer) *Store {
	return &Store{pool: pool, reads: store.NewReads(pool, nil, 0, nil), ledger: l, sealer: sealer}
}

// ReadFrom sends the store's lists of redemptions through r, to a replica
// while it keeps up; set once, before use.
func (s *Store) ReadFrom(r *store.Reads) { s.reads = r }

// RedeemRequest is a validated request to redeem.
type RedeemRequest struct {
	WorkspaceID string
	ReferenceID string
	WalletID    string
	BrandID     string
	Amount      int64
}

func (r RedeemRequest) fingerprint() []byte {
	h := sha256.New()
	for _, s := range []string{r.WalletID, r.BrandID} {
		binary.Write(h, binary.BigEndian, uint32(len(s)))
		h.Write([]byte(s))
	}
	binary.Write(h, binary.BigEndian, r.Amount)
	return h.Sum(nil)
}

func (r RedeemRequest) differences(stored Redemption) []string {
	var fields []string
	if r.WalletID != stored.WalletID {
		fields = append(fields, "walletId")
	}
	if r.BrandID != stored.BrandID {
		fields = append(fields, "brandId")
	}
	if r.Amount != stored.Amount {
		fields = append(fields, "amount")
	}
	return fields
}

// Redeem accepts a redemption, deduplicated by referenceId: a new one is
// stored pending (the worker takes it from there); the same referenceId
// with the same payload returns the original (replayed); with another
// payload a *ledger.ConflictError. The wallet must be the workspace's.
func (s *Store) Redeem(ctx context.Context, req RedeemRequest) (Redemption, bool, error) {
	wallet, err := s.ledger.Wallet(ctx, req.WorkspaceID, req.WalletID)
	if err != nil {
		return Redemption{}, false, err
	}
	fp := req.fingerprint()
	r, err := scanRedemption(s.pool.QueryRow(ctx, `INSERT INTO redemptions
			(id, workspace_id, reference_id, wallet_id, brand_id, amount, currency, fingerprint)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
		ON CONFLICT (workspace_id, reference_id) DO NOTHING RETURNING `+redemptionColumns,
		store.NewID("red"), req.WorkspaceID, req.ReferenceID, req.WalletID, req.BrandID, req.Amount, wallet.Currency, fp))
	if err == nil {
		return r, false, nil
	}
	if err != pgx.ErrNoRows {
		return Redemption{}, false, fmt.Errorf("redeem %s: %w", req.ReferenceID, err)
	}
	stored, err := s.byReference(ctx, req.WorkspaceID, req.ReferenceID)
	if err != nil {
		return Redemption{}, false, err
	}
	if string(stored.fingerprint) != string(fp) {
		return Redemption{}, false, &ledger.ConflictError{Fields: req.differences(stored)}
	}
	stored, err = s.openCard(stored)
	return stored, true, err
}

func (s *Store) byReference(ctx context.Context, workspaceID, referenceID string) (Redemption, error) {
	r, err := scanRedemption(s.pool.QueryRow(ctx, `SELECT `+redemptionColumns+` FROM redemptions
		WHERE workspace_id = $1 AND reference_id = $2`, workspaceID, referenceID))
	if err != nil {
		return Redemption{}, fmt.Errorf("redemption %s: %w", referenceID, store.NoRows(err, ErrRedemptionNotFound))
	}
	return r, nil
}

// Redemption returns one redemption of the workspace, with its card.
func (s *Store) Redemption(ctx context.Context, workspaceID, id string) (Redemption, error) {
	r, err := s.redemption(ctx, s.pool, workspaceID, id, false)
	if err != nil {
		return Redemption{}, err
	}
	return s.openCard(r)
}

// redemption reads one redemption, locked FOR UPDATE when lock is set;
// an empty workspaceID matches any (the worker's reads by id).
func (s *Store) redemption(ctx context.Context, q store.Querier, workspaceID, id string, lock bool) (Redemption, error) {
	sql := `SELECT ` + redemptionColumns + ` FROM redemptions WHERE id = $1 AND ($2 = '' OR workspace_id = $2)`
	if lock {
		sql += ` FOR UPDATE`
	}
	r, err := scanRedemption(q.QueryRow(ctx, sql, id, workspaceID))
	if err != nil {
		return Redemption{}, fmt.Errorf("redemption %s: %w", id, store.NoRows(err, ErrRedemptionNotFound))
	}
	return r, nil
}

// openCard fills in the card of a completed redemption.
func (s *Store) openCard(r Redemption) (Redemption, error) {
	if r.codeSealed == nil {
		return r, nil
	}
	code, err := s.sealer.Open(r.codeSealed, sealContext(r.ID, "code"))
	if err != nil {
		return Redemption{}, fmt.Errorf("redemption %s: card code: %w", r.ID, err)
	}
	r.Code = &code
	if r.pinSealed != nil {
		pin, err := s.sealer.Open(r.pinSealed, sealContext(r.ID, "pin"))
		if err != nil {
			return Redemption{}, fmt.Errorf("redemption %s: card pin: %w", r.ID, err)
		}
		r.PIN = &pin
	}
	return r, nil
}

func sealContext(redemptionID, field string) string {
	return "redemption " + redemptionID + " " + field
}

// Filter narrows a redemption list; empty fields match all.
type Filter struct {
	WalletID string
	Status   string
	// walletIDs, when set, keeps the redemptions of these wallets only.
	walletIDs []string
}

// Redemptions lists a workspace's redemptions, newest first, after the
// cursor (an id; empty for the first page), without their cards.
func (s *Store) Redemptions(ctx context.Context, workspaceID string, f Filter, cursor string, limit int) ([]Redemption, error) {
	list, err := s.list(ctx, workspaceID, f, cursor, limit)
	for i := range list {
		list[i] = list[i].WithoutCard()
	}
	return list, err
}

// ConsumerRedemptions lists the newest redemptions of the wallets (one
// consumer's) with their cards: for the consumer's own page, the one list
// that shows them.
func (s *Store) ConsumerRedemptions(ctx context.Context, workspaceID string, walletIDs []string, limit int) ([]Redemption, error) {
	if len(walletIDs) == 0 {
		return nil, nil
	}
	list, err := s.list(ctx, workspaceID, Filter{walletIDs: walletIDs}, "", limit)
	for i := range list {
		if err == nil {
			list[i], err = s.openCard(list[i])
		}
	}
	if err != nil {
		return nil, err
	}
	return list, nil
}

// list reads redemptions as stored, their cards still sealed.
func (s *Store) list(ctx context.Context, workspaceID string, f Filter, cursor string, limit int) ([]Redemption, error) {
	list, err := store.List(ctx, s.reads, collectRedemption, `SELECT `+redemptionColumns+` FROM redemptions
		WHERE workspace_id = $1 AND ($2 = '' OR wallet_id = $2) AND ($3 = '' OR status = $3)
		  AND ($4::text[] IS NULL OR wallet_id = ANY ($4)) AND ($5 = '' OR id < $5)
		ORDER BY id DESC LIMIT $6`, workspaceID, f.WalletID, f.Status, f.walletIDs, cursor, limit)
	if err != nil {
		return nil, fmt.Errorf("list redemptions: %w", err)
	}
	return list, nil
}

// AwaitFinal waits up to wait for the redemption to be final (see
// ledger.AwaitAnnounced) and returns it as it is then.
func (s *Store) AwaitFinal(ctx context.Context, r Redemption, wait time.Duration) (Redemption, error) {
	if r.Final() {
		return r, nil
	}
	current := r
	_, err := s.ledger.AwaitAnnounced(ctx, r.ID, wait, func(ctx context.Context) (bool, error) {
		got, err := s.Redemption(ctx, r.workspaceID, r.ID)
		if err != nil {
			return false, err
		}
		current = got
		return got.Final(), nil
	})
	return current, err
}

// Open lists the redemptions not final and not touched for olderThan,
// the oldest first: work a worker lost (Redis lost the task, a worker
// died mid-redemption) for the relay to hand out again.
func (s *Store) Open(ctx context.Context, olderThan time.Duration, limit int) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT id FROM redemptions
		WHERE status IN ('pending', 'processing') AND updated_at < now() - $1::interval
		ORDER BY updated_at LIMIT $2`, olderThan, limit)
	if err != nil {
		return nil, fmt.Errorf("open redemptions: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("open redemptions: %w", err)
	}
	return ids, nil
}

// Backlog is how many redemptions are not final yet, and how long the
// stalest has gone without a change (0 with none).
func (s *Store) Backlog(ctx context.Context) (int64, time.Duration, error) {
	return store.Backlog(ctx, s.pool, `SELECT count(*), COALESCE(EXTRACT(EPOCH FROM now() - min(updated_at)), 0)
		FROM redemptions WHERE status IN ('pending', 'processing')`)
}
