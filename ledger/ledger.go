// Package ledger is the only code that moves money. It owns the ledger
// accounts, campaigns' budget counters, wallets, transactions, entries and
// the events that report their outcomes, and all the SQL that touches them.
// It knows nothing of HTTP or queues: callers hand it a pool and ids.
package ledger

import (
	"context"
	"errors"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Sentinel errors; callers match them with errors.Is.
var (
	ErrNotFound            = errors.New("not found")
	ErrWalletNotFound      = errors.New("wallet not found")
	ErrConsumerNotFound    = errors.New("consumer not found")
	ErrCampaignNotFound    = errors.New("campaign not found")
	ErrWalletExists        = errors.New("wallet already exists")
	ErrCampaignCurrency    = errors.New("campaign currency differs from wallet currency")
	ErrIdempotencyConflict = errors.New("referenceId reused with a different payload")
	ErrBudgetBelowUsed     = errors.New("budget below the amount already credited")
	ErrInvariant           = errors.New("ledger invariant violated")
)

// ConflictError reports which fields of a reused referenceId differ from the
// original request. It wraps ErrIdempotencyConflict.
type ConflictError struct {
	Fields []string
}

func (e *ConflictError) Error() string {
	return "referenceId reused with a different " + strings.Join(e.Fields, ", ")
}

func (e *ConflictError) Unwrap() error { return ErrIdempotencyConflict }

// Ledger applies and records money movements in Postgres.
type Ledger struct {
	pool     *pgxpool.Pool
	groupMax int
	accept   acceptQueue
}

// groupMaxDefault bounds how many transactions one database transaction
// applies: large enough to amortise the lock of a hot partner balance and
// the commit's fsync, small enough to keep lock hold times in milliseconds.
const groupMaxDefault = 1000

// New returns a Ledger over the pool.
func New(pool *pgxpool.Pool) *Ledger {
	return &Ledger{pool: pool, groupMax: groupMaxDefault}
}

// Pool returns the pool the ledger writes through.
func (l *Ledger) Pool() *pgxpool.Pool { return l.pool }

// NewID returns an opaque, time-ordered id with a type prefix such as "txn".
// Time order lets lists paginate by id.
func NewID(prefix string) string {
	return prefix + "_" + strings.ReplaceAll(uuid.Must(uuid.NewV7()).String(), "-", "")
}

// querier is what both a pool and a transaction offer.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func isUniqueViolation(err error, constraint string) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505" && (constraint == "" || pgErr.ConstraintName == constraint)
}

func isCheckViolation(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23514"
}

// noRows turns pgx.ErrNoRows into the given sentinel.
func noRows(err, sentinel error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return sentinel
	}
	return err
}
