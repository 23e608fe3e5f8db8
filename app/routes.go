package app

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/hibiken/asynq"
	asynqmetrics "github.com/hibiken/asynq/x/metrics"
	"github.com/hibiken/asynqmon"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/orbt/orbt/api"
	"github.com/orbt/orbt/console"
	"github.com/orbt/orbt/consumerui"
	"github.com/orbt/orbt/ops"
	"github.com/orbt/orbt/partnerapi"
	"github.com/orbt/orbt/seal"
	"github.com/orbt/orbt/server"
)

// Handler mounts every HTTP surface side by side on one server: the native
// API (/v1, /admin/v1), the Orbt-compatible partner API (/api/partner/v1),
// the consumer pages (/c/), the partner console (/console) and the ops pages
// (/healthz, /readyz, /metrics, /ops/...). Each surface owns its routes.go.
// With opsApart the ops pages but the probes are left to OpsHandler, for a
// listener of their own.
func (a *App) Handler(opsApart bool) (http.Handler, error) {
	srv, err := a.publicServer(opsApart)
	if err != nil {
		return nil, err
	}
	return srv.Handler(), nil
}

// publicServer is the server Handler serves, its routes mounted.
func (a *App) publicServer(opsApart bool) (*server.Server, error) {
	srv, err := server.New(a.Log.With("component", "http"), a.Registry)
	if err != nil {
		return nil, err
	}
	if len(a.Settings.TrustedProxies) > 0 {
		if err := srv.Engine.SetTrustedProxies(a.Settings.TrustedProxies); err != nil {
			return nil, fmt.Errorf("ORBT_TRUSTED_PROXIES: %w", err)
		}
	}
	native, err := api.New(api.Options{Ledger: a.Ledger, Workspaces: a.Workspaces, Auth: a.Auth, Webhooks: a.Webhooks,
		GiftCards: a.GiftCards, PublicURL: a.Settings.PublicURL,
		Enqueuer: a.Enqueuer, RateLimiter: a.RateLimiter, AdminToken: a.Settings.AdminToken, BatchItemsMax: a.Settings.BatchItemsMax,
		Logger: a.Log.With("component", "api"), Registerer: a.Registry})
	if err != nil {
		return nil, err
	}
	native.Routes(srv)
	partnerapi.New(partnerapi.Options{Ledger: a.Ledger, Workspaces: a.Workspaces, Auth: a.Auth, Enqueuer: a.Enqueuer,
		RateLimiter: a.RateLimiter,
		Logger:      a.Log.With("component", "partnerapi")}).Routes(srv)
	pages, err := consumerui.New(consumerui.Options{Ledger: a.Ledger, Workspaces: a.Workspaces, GiftCards: a.GiftCards,
		Redeemed: a.Enqueuer.RedemptionAccepted, Secure: strings.HasPrefix(a.Settings.PublicURL, "https://"),
		PublicOrigin: publicOrigin(a.Settings.PublicURL),
		Logger:       a.Log.With("component", "consumer")})
	if err != nil {
		return nil, err
	}
	pages.Routes(srv)
	var mailer console.Mailer
	if a.Settings.SMTPURL != "" {
		if mailer, err = console.NewSMTPMailer(a.Settings.SMTPURL); err != nil {
			return nil, err
		}
	}
	partnerConsole, err := console.New(console.Options{Ledger: a.Ledger, Workspaces: a.Workspaces, Auth: a.Auth,
		Webhooks: a.Webhooks, GiftCards: a.GiftCards, Enqueuer: a.Enqueuer, Redis: a.Redis, Mailer: mailer,
		PublicURL: a.Settings.PublicURL, PublicOrigin: publicOrigin(a.Settings.PublicURL),
		Sessions:      a.Settings.ConsoleSessions,
		BatchItemsMax: a.Settings.BatchItemsMax, Logger: a.Log.With("component", "console")})
	if err != nil {
		return nil, err
	}
	partnerConsole.Routes(srv)
	if opsApart {
		ops.Probes(srv, a.opsOptions())
	} else if err := a.mountOps(srv); err != nil {
		return nil, err
	}
	return srv, nil
}

// Route is one route of the public listener: a method and gin's path
// pattern (":id" a parameter, "*path" the rest of the path).
type Route struct {
	Method string
	Path   string
}

// Routes lists every route the public listener serves (Handler(false),
// every surface and the ops pages), read from the router itself, so a
// check that walks them (the security sweep) cannot miss a new one. It
// assembles a process over connections it never opens.
func Routes() ([]Route, error) {
	cfg, err := pgxpool.ParseConfig("postgres://127.0.0.1:1/routes?sslmode=disable")
	if err != nil {
		return nil, err
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg) // connects on first use: never
	if err != nil {
		return nil, err
	}
	defer pool.Close()
	a, err := New(pool, asynq.RedisClientOpt{Addr: "127.0.0.1:1"},
		Settings{AdminToken: "routes", DataKey: make([]byte, seal.DataKeySize), PublicURL: "http://localhost"},
		nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		return nil, err
	}
	defer a.Close()
	// The dashboard without its queue metrics, whose registration would
	// read the queues (from a Redis that is not there).
	a.dashboard = asynqmon.New(asynqmon.Options{RootPath: "/ops/queues", RedisConnOpt: a.RedisOpt})
	a.inspector = asynq.NewInspector(a.RedisOpt)
	srv, err := a.publicServer(false)
	if err != nil {
		return nil, err
	}
	var routes []Route
	for _, r := range srv.Engine.Routes() {
		routes = append(routes, Route{Method: r.Method, Path: r.Path})
	}
	return routes, nil
}

// OpsHandler serves the ops pages alone, for ORBT_OPS_ADDR: the probes,
// /metrics and, behind the admin token, the Asynq dashboard and profiler.
func (a *App) OpsHandler() (http.Handler, error) {
	srv, err := server.New(a.Log.With("component", "ops"), a.Registry)
	if err != nil {
		return nil, err
	}
	if err := a.mountOps(srv); err != nil {
		return nil, err
	}
	return srv.Handler(), nil
}

func (a *App) opsOptions() ops.Options {
	return ops.Options{
		Dependencies: map[string]ops.Pinger{"postgres": a.Pool.Ping, "redis": a.pingRedis},
		Gatherer:     a.Registry,
		AdminToken:   a.Settings.AdminToken,
		Logger:       a.Log.With("component", "ops"),
	}
}

// mountOps mounts every ops page, the Asynq dashboard and its queue
// metrics made once per process.
func (a *App) mountOps(srv *server.Server) error {
	if a.dashboard == nil {
		a.dashboard = asynqmon.New(asynqmon.Options{RootPath: "/ops/queues", RedisConnOpt: a.RedisOpt})
		a.inspector = asynq.NewInspector(a.RedisOpt)
		// The queues' sizes and latency, read from Redis at each scrape.
		for _, c := range []prometheus.Collector{asynqmetrics.NewQueueMetricsCollector(a.inspector), workersCollector{a.inspector}} {
			if err := a.Registry.Register(c); err != nil {
				return fmt.Errorf("queue metrics: %w", err)
			}
		}
	}
	o := a.opsOptions()
	o.Queues = a.dashboard
	ops.Routes(srv, o)
	return nil
}

// publicOrigin is a URL's origin as a browser sends it in Origin: lower
// case, without the scheme's default port ("" when it has none).
func publicOrigin(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return ""
	}
	scheme, host, port := strings.ToLower(u.Scheme), strings.ToLower(u.Hostname()), u.Port()
	if strings.Contains(host, ":") {
		host = "[" + host + "]" // IPv6
	}
	if port == "" || (scheme == "https" && port == "443") || (scheme == "http" && port == "80") {
		return scheme + "://" + host
	}
	return scheme + "://" + host + ":" + port
}
