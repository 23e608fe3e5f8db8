// Package ledger is the only code that moves money. It owns the ledger
// accounts, campaigns' budget counters, wallets, transactions, entries and
// the events that report their outcomes, and all the SQL that touches them.
// It knows nothing of HTTP or queues: callers hand it a pool and ids.
package ledger

import (
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/orbt/orbt/store"
)

// Sentinel errors; callers match them with errors.Is. The not-found ones
// wrap store.ErrNotFound.
var (
	ErrWalletNotFound      = fmt.Errorf("wallet %w", store.ErrNotFound)
	ErrCampaignNotFound    = fmt.Errorf("campaign %w", store.ErrNotFound)
	ErrWalletExists        = errors.New("wallet already exists")
	ErrCampaignCurrency    = errors.New("campaign currency differs from wallet currency")
	ErrIdempotencyConflict = errors.New("referenceId reused with a different payload")
	ErrBudgetBelowUsed     = errors.New("budget below the amount already credited")
	ErrCampaignWindow      = errors.New("campaign ends before it starts")
	// ErrCursor is a list position that names no row of the list.
	ErrCursor    = errors.New("unknown list position")
	ErrInvariant = store.ErrInvariant
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

// EventRef names a new event for the webhook fan-out.
type EventRef struct {
	ID, WorkspaceID, Type string
}

// Fanout queues on b, in the database transaction that writes events, the
// statement that creates their webhook deliveries, and appends the new
// deliveries' ids to *ids when b runs. The webhook package owns the
// deliveries and provides it; the ledger only hands events over.
type Fanout func(b *pgx.Batch, events []EventRef, ids *[]string)

// Ledger applies and records money movements in Postgres.
type Ledger struct {
	pool *pgxpool.Pool
	// reads serves the lists that may lag (a replica's, when set).
	reads    *store.Reads
	fanout   Fanout
	groupMax int
	accept   acceptQueue
	waiters  outcomeWaiters
}

// groupMaxDefault bounds how many transactions one database transaction
// applies: large enough to amortise the lock of a hot partner balance and
// the commit's fsync, small enough to keep lock hold times in milliseconds.
const groupMaxDefault = 1000

// New returns a Ledger over the pool; fanout (nil: none) creates the
// webhook deliveries of the events it writes.
func New(pool *pgxpool.Pool, fanout Fanout) *Ledger {
	if fanout == nil {
		fanout = func(*pgx.Batch, []EventRef, *[]string) {}
	}
	return &Ledger{pool: pool, reads: store.NewReads(pool, nil, 0, nil), fanout: fanout, groupMax: groupMaxDefault}
}

// ReadFrom sends the ledger's lists (transactions, batches, campaigns,
// statements, events) through r, to a replica while it keeps up; set once,
// before use.
func (l *Ledger) ReadFrom(r *store.Reads) { l.reads = r }

// Pool returns the pool the ledger writes through.
func (l *Ledger) Pool() *pgxpool.Pool { return l.pool }
