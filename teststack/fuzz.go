package teststack

import (
	"log/slog"
	"testing"

	"github.com/hibiken/asynq"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/orbt/orbt/app"
	"github.com/orbt/orbt/testenv"
	"github.com/orbt/orbt/testproc"
)

// ForFuzz starts a stack for a fuzz target over pool and over a
// redis-server of its own, and stops both when f ends: call it before
// f.Fuzz. Not the package's Redis index: go test -fuzz runs the target in
// several worker processes at once, each over a database of its own, and
// on one Redis index each process's worker would take the others' tasks
// (lanes are numbered alike in every database), leaving its own
// transactions to wait for the relay.
func ForFuzz(f *testing.F, pool *pgxpool.Pool, o Options) *Stack {
	f.Helper()
	redis := testproc.Redis(f, "fuzz-redis")
	o.Redis = asynq.RedisClientOpt{Addr: redis.Addr}
	return Start(f, pool, 0, o)
}

// ForFuzzPages is ForFuzz for the browser surfaces (consumer pages,
// console): the stack trusts 127.0.0.1 as a proxy, so each request can
// claim an address of its own in X-Forwarded-For and the per-address
// limits never hide the handlers, and it logs its errors to the buffer
// returned, where a panic after a page's status was sent shows.
func ForFuzzPages(f *testing.F, pool *pgxpool.Pool) (*Stack, *testenv.SyncBuffer) {
	f.Helper()
	log := &testenv.SyncBuffer{}
	s := ForFuzz(f, pool, Options{Settings: app.Settings{TrustedProxies: []string{"127.0.0.1"}},
		Logger: slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelError}))})
	return s, log
}
