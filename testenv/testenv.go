// Package testenv gives each test package its own real Postgres database
// and its own Redis database index, so packages can run in parallel against
// the shared local servers.
package testenv

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/orbt/orbt/migrations"
)

// ServerURL is the Postgres server tests create their databases on.
func ServerURL() string {
	if u := os.Getenv("TEST_DATABASE_URL"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

// RedisAddr is the Redis server tests use.
func RedisAddr() string {
	if a := os.Getenv("TEST_REDIS_ADDR"); a != "" {
		return a
	}
	return "127.0.0.1:6379"
}

// Database is a fresh, migrated database that is dropped at the end.
type Database struct {
	URL  string
	Pool *pgxpool.Pool
	name string
}

// NewDatabase creates a database named after prefix plus random bytes and
// migrates it.
func NewDatabase(ctx context.Context, prefix string) (*Database, error) {
	suffix := make([]byte, 6)
	rand.Read(suffix)
	name := fmt.Sprintf("orbt_test_%s_%s", prefix, hex.EncodeToString(suffix))
	admin, err := pgx.Connect(ctx, ServerURL())
	if err != nil {
		return nil, fmt.Errorf("connect to test server: %w", err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return nil, fmt.Errorf("create database %s: %w", name, err)
	}
	u, err := url.Parse(ServerURL())
	if err != nil {
		return nil, err
	}
	u.Path = "/" + name
	cfg, err := pgxpool.ParseConfig(u.String())
	if err != nil {
		return nil, err
	}
	cfg.MaxConns = 40
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	db := &Database{URL: u.String(), Pool: pool, name: name}
	if err := migrations.Up(ctx, pool); err != nil {
		db.Drop()
		return nil, err
	}
	return db, nil
}

// Drop closes the pool and drops the database.
func (d *Database) Drop() {
	d.Pool.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin, err := pgx.Connect(ctx, ServerURL())
	if err != nil {
		fmt.Fprintln(os.Stderr, "drop test database:", err)
		return
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+d.name+" WITH (FORCE)"); err != nil {
		fmt.Fprintln(os.Stderr, "drop test database:", err)
	}
}

// Main runs a package's tests with one fresh database for the package;
// each after check runs once the tests pass, and fails the run when it
// returns non-zero.
func Main(m *testing.M, prefix string, db **Database, after ...func() int) int {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	d, err := NewDatabase(ctx, prefix)
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "test database:", err)
		return 1
	}
	*db = d
	defer d.Drop()
	code := m.Run()
	for _, check := range after {
		if code == 0 && check() != 0 {
			code = 1
		}
	}
	return code
}

// RedisOptions addresses one Redis database index of the test server.
func RedisOptions(index int) redis.Options {
	return redis.Options{Addr: RedisAddr(), DB: index}
}

// Redis returns the Redis database index a package owns and empties it of
// the keys earlier runs of the same package left. Indexes are handed out by
// hand, one per package (see the Makefile's comment), never FLUSHALL.
func Redis(t testing.TB, index int) redis.Options {
	t.Helper()
	opts := RedisOptions(index)
	c := redis.NewClient(&opts)
	defer c.Close()
	ctx := context.Background()
	if err := c.FlushDB(ctx).Err(); err != nil {
		t.Fatalf("redis db %d: %v", index, err)
	}
	return opts
}

// UnreachablePool is a pool whose server is down: nothing listens on its
// port, so every query fails the way it does when Postgres is stopped.
func UnreachablePool() (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig("postgres://postgres@127.0.0.1:1/orbt?sslmode=disable&connect_timeout=1")
	if err != nil {
		return nil, err
	}
	return pgxpool.NewWithConfig(context.Background(), cfg)
}

// AsynqRedis is the asynq form of a Redis database's options.
func AsynqRedis(o redis.Options) asynq.RedisClientOpt {
	return asynq.RedisClientOpt{Addr: o.Addr, DB: o.DB}
}

// SyncBuffer collects output that several goroutines (or a process's
// pipes) write at once: a test's log, a child process's output.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
