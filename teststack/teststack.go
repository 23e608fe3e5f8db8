// Package teststack runs a whole Orbt process in-process for tests: the
// same assembly orbt dev runs (package app: every HTTP surface and the
// worker) over a test package's own database and Redis index. The API
// tests, the worker tests, the load test's tests and the fault suite all
// start it here.
package teststack

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/orbt/orbt/app"
	"github.com/orbt/orbt/client"
	"github.com/orbt/orbt/seal"
	"github.com/orbt/orbt/store"
	"github.com/orbt/orbt/testenv"
)

// AdminToken is the admin token of every test stack.
const AdminToken = "test-admin-token"

// Options shape a stack; the zero value serves the API and runs a worker
// with test-speed retries.
type Options struct {
	// NoWorker serves the API only (another stack's worker, or none, applies).
	NoWorker bool
	// Settings override the test defaults where set.
	Settings app.Settings
	Logger   *slog.Logger
	// Redis, for Start, is the stack's Redis when it is not a database
	// index of the test server (Sentinel, Cluster).
	Redis asynq.RedisConnOpt
	// DenyPrivateWebhooks keeps a deployment's default: webhook endpoints
	// may not reach private or loopback addresses (test stacks allow them,
	// so that a test's receiver on loopback gets its deliveries).
	DenyPrivateWebhooks bool
}

// Stack is a running process: URL serves every surface.
type Stack struct {
	URL   string
	App   *app.App
	Admin *client.Client
	stop  func()
	// spec validates the native API's responses against its document.
	spec *specCheck
}

// New starts a stack over pool and the Redis database redis; Stop ends it.
func New(pool *pgxpool.Pool, redis asynq.RedisConnOpt, o Options) (*Stack, error) {
	s := o.Settings
	s.AdminToken = AdminToken
	s.WebhookAllowPrivate = !o.DenyPrivateWebhooks
	if s.WebhookRetrySchedule == nil {
		s.WebhookRetrySchedule = []time.Duration{100 * time.Millisecond}
	}
	if s.RelayAfter == 0 {
		s.RelayAfter = time.Second
	}
	if s.WorkerConcurrency == 0 {
		s.WorkerConcurrency = 8
	}
	if s.DataKey == nil {
		s.DataKey = store.RandomBytes(seal.DataKeySize)
	}
	if s.ProviderTimeout == 0 {
		s.ProviderTimeout = 300 * time.Millisecond
	}
	if s.ProviderRetryDelay == 0 {
		s.ProviderRetryDelay = 20 * time.Millisecond
	}
	// The listener comes first: consumer links carry the server's URL.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s.PublicURL = "http://" + ln.Addr().String()
	log := o.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	a, err := app.New(pool, redis, s, nil, log)
	if err != nil {
		ln.Close()
		return nil, err
	}
	// As every process does when it starts (and, as it does, going on
	// when the database is down or read-only: the stacks of outage tests).
	if err := a.SealLegacySecrets(context.Background()); err != nil {
		log.Warn("sealing secrets kept in clear text", "err", err)
	}
	h, err := a.Handler(false)
	if err != nil {
		ln.Close()
		a.Close()
		return nil, err
	}
	spec, err := newSpecCheck()
	if err != nil {
		ln.Close()
		a.Close()
		return nil, err
	}
	ts := &httptest.Server{Listener: ln, Config: &http.Server{Handler: spec.wrap(h)}}
	ts.Start()
	ctx, cancel := context.WithCancel(context.Background())
	a.Background(ctx)
	done := make(chan struct{})
	if o.NoWorker {
		close(done)
	} else {
		w, err := a.Worker()
		if err != nil {
			cancel()
			ts.Close()
			a.Close()
			return nil, err
		}
		go func() { w.Run(ctx); close(done) }()
	}
	return &Stack{URL: ts.URL, App: a, Admin: client.New(ts.URL, AdminToken, 8), spec: spec, stop: func() {
		cancel()
		<-done
		ts.Close()
		a.Close()
	}}, nil
}

// Stop stops the worker and the server.
func (s *Stack) Stop() { s.stop() }

// Client is a client of the stack with key.
func (s *Stack) Client(key string) *client.Client { return s.Admin.WithKey(key) }

// OK fails the test on a client call's error: teststack.OK(t)(api.Call(...)).
func OK(t testing.TB) func(*client.Response, error) {
	return func(_ *client.Response, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
}

// Start starts a stack for the test over pool and its package's Redis
// database index (or o.Redis), and stops it when the test ends.
func Start(t testing.TB, pool *pgxpool.Pool, redisDB int, o Options) *Stack {
	t.Helper()
	r := o.Redis
	if r == nil {
		r = testenv.AsynqRedis(testenv.Redis(t, redisDB))
	}
	s, err := New(pool, r, o)
	if err != nil {
		t.Fatal(err)
	}
	s.StopWithTest(t)
	return s
}
