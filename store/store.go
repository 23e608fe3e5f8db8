// Package store holds what every package that owns tables shares, cut
// once: the id generator, the random-token helper, the one not-found
// error, and how Postgres errors are told apart (a unique or check
// violation by constraint; an infrastructure fault from a bug). It is a
// leaf: it imports pgx and the standard library only.
package store

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// ErrNotFound is what every store answers for an object that does not exist
// or belongs to another workspace (the two are never told apart).
var ErrNotFound = errors.New("not found")

// NewID returns an opaque, time-ordered id with a type prefix such as "txn":
// the prefix, an underscore and a UUIDv7 in 32 hex digits. Time order lets
// lists sort and page by id. Ids made in Postgres (a webhook fan-out, whose
// row count only the join knows) have the same layout: see orbt_new_id in
// migrations/0008.
func NewID(prefix string) string {
	return prefix + "_" + strings.ReplaceAll(uuid.Must(uuid.NewV7()).String(), "-", "")
}

// tokenEncoding spells random tokens in lower-case letters and digits, so
// they survive URLs, shells and case-insensitive eyes.
var tokenEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// Token returns n random bytes as a lower-case base32 string: the secret
// part of API keys, signing secrets and links.
func Token(n int) string {
	return strings.ToLower(tokenEncoding.EncodeToString(RandomBytes(n)))
}

// RandomBytes returns n bytes from the operating system's CSPRNG, for
// secrets whose encoding a standard fixes (webhook secrets are base64).
func RandomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return b
}

// Querier is what both a pool and a transaction offer.
type Querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

// IsUniqueViolation reports a unique-index violation, of the named
// constraint or, with "", of any.
func IsUniqueViolation(err error, constraint string) bool {
	return isViolation(err, "23505", constraint)
}

// IsCheckViolation reports a CHECK violation, of the named constraint or,
// with "", of any.
func IsCheckViolation(err error, constraint string) bool {
	return isViolation(err, "23514", constraint)
}

func isViolation(err error, code, constraint string) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == code && (constraint == "" || pgErr.ConstraintName == constraint)
}

// NoRows turns pgx.ErrNoRows into the given sentinel.
func NoRows(err, sentinel error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return sentinel
	}
	return err
}

// ErrInvariant marks a broken rule of the ledger: a bug, never a fault of
// the infrastructure.
var ErrInvariant = errors.New("ledger invariant violated")

// Unavailable tells an infrastructure fault, worth a 503 and a retry, from
// a bug: the database unreachable, overloaded, shutting down, read-only or
// in recovery (right after a failover), a lock or serialisation conflict,
// or a deadline. pgx reports network failures as errors that are not
// *pgconn.PgError.
func Unavailable(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return true
	}
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return !errors.Is(err, ErrInvariant)
	}
	if pgErr.Code == "25P02" { // in a failed transaction: our bug, not an outage
		return false
	}
	switch pgErr.Code[:2] {
	case "08", // connection exception
		"25", // invalid transaction state: 25006 read-only (a replica, or a primary mid-failover)
		"40", // serialisation failure, deadlock
		"53", // insufficient resources
		"55", // lock not available
		"57": // operator intervention: shutdown, recovery, cancelled
		return true
	}
	return false
}

// Rule is one invariant of the data: a query that returns a (key, value)
// row for each place that breaks it, and none when it holds.
type Rule struct{ Name, SQL string }

// CheckRules runs every rule and returns an error wrapping ErrInvariant
// that names each rule some rows break, with up to the rows it returned.
func CheckRules(ctx context.Context, q Querier, rules []Rule) error {
	var broken []string
	for _, rule := range rules {
		rows, err := q.Query(ctx, rule.SQL)
		if err != nil {
			return fmt.Errorf("check %q: %w", rule.Name, err)
		}
		for rows.Next() {
			var key any
			var value int64
			if err := rows.Scan(&key, &value); err != nil {
				rows.Close()
				return fmt.Errorf("check %q: %w", rule.Name, err)
			}
			broken = append(broken, fmt.Sprintf("%s: %v (%d)", rule.Name, key, value))
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("check %q: %w", rule.Name, err)
		}
	}
	if len(broken) > 0 {
		return fmt.Errorf("%w:\n  %s", ErrInvariant, strings.Join(broken, "\n  "))
	}
	return nil
}

// Backlog runs a query answering a count of waiting work and the age, in
// seconds, of its oldest item: the stores' measures of stuck work.
func Backlog(ctx context.Context, q Querier, sql string) (int64, time.Duration, error) {
	var n int64
	var seconds float64
	if err := q.QueryRow(ctx, sql).Scan(&n, &seconds); err != nil {
		return 0, 0, fmt.Errorf("backlog: %w", err)
	}
	return n, time.Duration(seconds * float64(time.Second)), nil
}

// InBatches runs batch until it does less than size rows (or fails), and
// returns how many rows it did in all: a sweep over rows claimed size at a
// time (FOR UPDATE SKIP LOCKED), each batch its own transaction, so
// processes starting together share the work.
func InBatches(ctx context.Context, size int, batch func(context.Context) (int, error)) (int, error) {
	total := 0
	for {
		n, err := batch(ctx)
		total += n
		if err != nil || n < size {
			return total, err
		}
	}
}
