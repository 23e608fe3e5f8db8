package store

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Reads sends the reads that may lag a moment behind the writes (lists,
// statements, event catch-up, reports) to a streaming replica, and keeps
// them on the primary while the replica is down, is not a replica, or
// lags more than a bound. Everything else (writes, and single-object reads
// that follow a write) uses the primary directly, never Reads.
//
// The lag is measured against the primary, not from the replica's replay
// timestamp (which on a quiet primary grows with no lag at all): each
// check samples the primary's WAL position, and the lag is how long ago
// the newest sample the replica has replayed was taken.
type Reads struct {
	primary *pgxpool.Pool
	replica *pgxpool.Pool
	// primaryOnly reads the primary alone, uncounted (Primary).
	primaryOnly *Reads
	maxLag      time.Duration
	// onReplica is whether the last check found the replica fit to read.
	onReplica atomic.Bool
	// lagNanos is the lag the last check measured (-1: unknown).
	lagNanos atomic.Int64
	// served counts reads by where they went ("replica", "primary").
	served func(target string)

	mu      sync.Mutex
	samples []walSample
}

type walSample struct {
	lsn int64
	at  time.Time
}

// ReadsCheckInterval is how often Watch measures the replica.
const ReadsCheckInterval = time.Second

// NewReads routes lagging reads to replica (nil: everything on primary)
// while it lags at most maxLag. served, when set, is told where each read
// went. Until Watch's first check the reads stay on the primary.
func NewReads(primary, replica *pgxpool.Pool, maxLag time.Duration, served func(target string)) *Reads {
	r := &Reads{primary: primary, replica: replica, maxLag: maxLag, served: served, primaryOnly: &Reads{primary: primary}}
	r.lagNanos.Store(-1)
	return r
}

// Primary is r reading the primary alone: for a list that must see the
// latest write (a lookup by referenceId after an unsure request, say).
func (r *Reads) Primary() *Reads { return r.primaryOnly }

// List runs a query and collects its rows with scan: on the replica when
// it is fit and, when the replica fails (it went away since the last
// check, or cancelled the query for a conflict with its recovery), on the
// primary: a read is safe to run twice.
func List[T any](ctx context.Context, r *Reads, scan pgx.RowToFunc[T], sql string, args ...any) ([]T, error) {
	if !r.OnReplica() {
		r.count("primary")
		return collect(ctx, r.primary, scan, sql, args)
	}
	list, err := collect(ctx, r.replica, scan, sql, args)
	if err == nil {
		r.count("replica")
		return list, nil
	}
	if ctx.Err() != nil {
		return nil, err
	}
	if replicaDown(err) {
		r.onReplica.Store(false)
	}
	r.count("primary")
	return collect(ctx, r.primary, scan, sql, args)
}

func collect[T any](ctx context.Context, q *pgxpool.Pool, scan pgx.RowToFunc[T], sql string, args []any) ([]T, error) {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, scan)
}

// replicaDown tells a replica that cannot serve (no connection, shutting
// down, out of connections) from one that refused a single query.
func replicaDown(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return true // no answer from the server at all
	}
	switch pgErr.Code[:2] {
	case "08", "53", "57": // connection exception, insufficient resources, operator intervention
		return true
	}
	return false
}

func (r *Reads) count(target string) {
	if r.served != nil {
		r.served(target)
	}
}

// OnReplica reports whether reads go to the replica now.
func (r *Reads) OnReplica() bool { return r.replica != nil && r.onReplica.Load() }

// Lag is the replica's lag at the last check; ok is false when it is
// unknown (no replica, or it did not answer).
func (r *Reads) Lag() (lag time.Duration, ok bool) {
	n := r.lagNanos.Load()
	return time.Duration(n), n >= 0
}

// Watch checks the replica every ReadsCheckInterval until ctx ends,
// logging when reads move between it and the primary.
func (r *Reads) Watch(ctx context.Context, log *slog.Logger) {
	if r.replica == nil {
		return
	}
	t := time.NewTicker(ReadsCheckInterval)
	defer t.Stop()
	for {
		lag, exact, err := r.check(ctx)
		fit := err == nil && exact && lag <= r.maxLag
		if err != nil {
			r.lagNanos.Store(-1)
		} else {
			r.lagNanos.Store(int64(lag))
		}
		if was := r.onReplica.Swap(fit); was != fit {
			if fit {
				log.Info("reads on the replica", "lag", lag)
			} else {
				log.Warn("reads on the primary: the replica is unfit", "lag", lag, "maxLag", r.maxLag, "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// errNotReplica is a DATABASE_READ_URL that leads to a server not in
// recovery: a primary, whose reads would not be checked for lag.
var errNotReplica = errors.New("the read database is not a streaming replica")

// lagHistory is how far back the primary's positions are kept: the
// longest lag measured exactly (beyond it, a lower bound).
const lagHistory = 10 * time.Minute

// check samples the primary's WAL position and measures the replica's lag:
// exact when the replica has replayed one of the samples kept, otherwise a
// lower bound (the age of the oldest sample), which is never fit, even
// when it is small, as it is at a process's start.
func (r *Reads) check(ctx context.Context) (lag time.Duration, exact bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, ReadsCheckInterval)
	defer cancel()
	var primaryLSN int64
	if err := r.primary.QueryRow(ctx, `SELECT (pg_current_wal_lsn() - '0/0')::bigint`).Scan(&primaryLSN); err != nil {
		return 0, false, err
	}
	now := time.Now()
	var replayed *int64
	if err := r.replica.QueryRow(ctx, `SELECT (pg_last_wal_replay_lsn() - '0/0')::bigint`).Scan(&replayed); err != nil {
		return 0, false, err
	}
	if replayed == nil {
		return 0, false, errNotReplica
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.samples = append(r.samples, walSample{lsn: primaryLSN, at: now})
	for len(r.samples) > 1 && now.Sub(r.samples[0].at) > lagHistory {
		r.samples = r.samples[1:]
	}
	for i := len(r.samples) - 1; i >= 0; i-- {
		if r.samples[i].lsn <= *replayed {
			return now.Sub(r.samples[i].at), true, nil
		}
	}
	return now.Sub(r.samples[0].at), false, nil
}
