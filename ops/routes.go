// Package ops is the operators' surface: liveness and readiness probes,
// Prometheus metrics, and, behind the admin token, the Asynq dashboard and
// Go's profiler.
package ops

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"net/url"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/orbt/orbt/httperr"
	"github.com/orbt/orbt/server"
)

// Pinger is a dependency /readyz checks: a pgx pool, a Redis client.
type Pinger func(ctx context.Context) error

// Options are what the ops pages read.
type Options struct {
	// Dependencies /readyz checks, by the name it reports.
	Dependencies map[string]Pinger
	// Gatherer serves /metrics; nil leaves it out.
	Gatherer prometheus.Gatherer
	// Queues is the Asynq dashboard, served under /ops/queues/; nil leaves it out.
	Queues     http.Handler
	AdminToken string
	Logger     *slog.Logger
}

// readyTimeout bounds each dependency's ping.
const readyTimeout = 2 * time.Second

// Probes mounts /healthz and /readyz alone: on the public listener when
// the rest of the ops pages listen apart (ORBT_OPS_ADDR), since load
// balancers probe the port they send traffic to.
func Probes(s *server.Server, o Options) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	s.Engine.GET("/healthz", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ok"}) })
	s.Engine.GET("/readyz", o.readyz)
}

// Routes mounts the ops pages: the probes, /metrics and, behind the admin
// token, /ops/queues and /ops/debug/pprof/.
func Routes(s *server.Server, o Options) {
	Probes(s, o)
	r := s.Engine
	if o.Gatherer != nil {
		r.GET("/metrics", gin.WrapH(promhttp.HandlerFor(o.Gatherer, promhttp.HandlerOpts{})))
	}
	pages := r.Group("/ops", server.RequireAdmin(o.AdminToken, true), sameOriginWrites)
	if o.Queues != nil {
		pages.Any("/queues/*path", gin.WrapH(o.Queues))
	}
	pages.GET("/debug/pprof/*name", profiler)
	s.RouteTimeout(http.MethodGet, "/ops/debug/pprof/*name", profileTimeout)
}

// profileTimeout lets Go's CPU profile and trace run their default 30 s and
// more (pprof itself refuses a duration past the server's write timeout).
const profileTimeout = 2 * time.Minute

// profiler serves Go's profiles under /ops/debug/pprof/.
func profiler(c *gin.Context) {
	switch c.Param("name") {
	case "/profile":
		pprof.Profile(c.Writer, c.Request)
	case "/trace":
		pprof.Trace(c.Writer, c.Request)
	case "/symbol":
		pprof.Symbol(c.Writer, c.Request)
	case "/cmdline":
		pprof.Cmdline(c.Writer, c.Request)
	default:
		http.StripPrefix("/ops", http.HandlerFunc(pprof.Index)).ServeHTTP(c.Writer, c.Request)
	}
}

// readyz reports whether each dependency answers, naming the ones that do
// not and nothing more: never a DSN, user, database or address (the driver's
// error goes to the log).
func (o Options) readyz(c *gin.Context) {
	status := gin.H{}
	var down []string
	for name, ping := range o.Dependencies {
		ctx, cancel := context.WithTimeout(c, readyTimeout)
		err := ping(ctx)
		cancel()
		if err != nil {
			o.Logger.Warn("readiness", "dependency", name, "err", err)
			down = append(down, name)
			status[name] = "unavailable"
			continue
		}
		status[name] = "ok"
	}
	if len(down) > 0 {
		e := httperr.Unavailable("Unavailable: " + strings.Join(down, ", ") + ".")
		e.Code = "not_ready"
		server.Abort(c, e)
		return
	}
	c.JSON(http.StatusOK, status)
}

// sameOriginWrites refuses cross-site state changes. Browsers cache the
// Basic-auth login of the ops pages and send it with any request to this
// host, a form on another site included: so a request that changes state
// (the dashboard's pause, delete, archive) must either carry the token in
// an Authorization: Bearer header, which no cross-site form can set, or
// come from a page of this host (Origin, or Sec-Fetch-Site where a browser
// sends no Origin).
func sameOriginWrites(c *gin.Context) {
	switch c.Request.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		c.Next()
		return
	}
	if _, bearer := server.Bearer(c.Request); bearer || sameOrigin(c.Request) {
		c.Next()
		return
	}
	server.Abort(c, httperr.New(http.StatusForbidden, "cross_site_request",
		"State-changing requests to the ops pages must come from the ops pages or carry the token as Authorization: Bearer."))
}

func sameOrigin(r *http.Request) bool {
	if origin := r.Header.Get("Origin"); origin != "" {
		u, err := url.Parse(origin)
		return err == nil && u.Host != "" && strings.EqualFold(u.Host, r.Host)
	}
	return r.Header.Get("Sec-Fetch-Site") == "same-origin"
}
