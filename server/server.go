// Package server is the one HTTP server every surface is mounted on (the
// native API, the ops pages, and the surfaces to come): the gin engine with
// the middleware they share (request id, metrics, recovery, deadline), the
// admin-token check, and the listener with every timeout set.
package server

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/orbt/orbt/httperr"
	"github.com/orbt/orbt/logging"
	"github.com/orbt/orbt/store"
	"github.com/orbt/orbt/validate"
)

// Timeouts of the HTTP server, so a client that trickles bytes or never
// reads is cut off.
type Timeouts struct {
	// ReadHeader bounds reading a request's headers.
	ReadHeader time.Duration
	// Read bounds reading a whole request, body included; a route whose
	// chain holds BodyDeadline extends it for its own authenticated requests.
	Read time.Duration
	// Write bounds a request from the end of its headers to the end of the
	// response.
	Write time.Duration
	// Idle bounds how long a kept-alive connection waits for its next request.
	Idle time.Duration
}

// DefaultTimeouts fit the API, whose clients are partners' servers: a
// 1 MiB body arrives well within Read (10 s is 100 KiB/s), a response
// within Write even after waiting for an outcome (Prefer: wait=10) or
// Go's 30 s CPU profile.
var DefaultTimeouts = Timeouts{ReadHeader: 5 * time.Second, Read: 10 * time.Second, Write: 60 * time.Second, Idle: 2 * time.Minute}

// shutdownTimeout bounds a graceful shutdown: requests in flight finish
// within it (every request's deadline is shorter).
const shutdownTimeout = 25 * time.Second

// Listen serves h on addr until ctx is done, then stops taking requests and
// finishes those in flight.
func Listen(ctx context.Context, addr string, h http.Handler, t Timeouts) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("http %s: %w", addr, err)
	}
	return Serve(ctx, ln, h, t)
}

// Serve is Listen on a listener.
func Serve(ctx context.Context, ln net.Listener, h http.Handler, t Timeouts) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: t.ReadHeader, ReadTimeout: t.Read,
		WriteTimeout: t.Write, IdleTimeout: t.Idle}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("http %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	return srv.Shutdown(shutdownCtx)
}

// requestTimeout bounds each request so a stalled database yields a 503,
// not a hang; RouteTimeout sets longer ones.
const requestTimeout = 10 * time.Second

// WaitingRequestTimeout is the deadline of a route whose requests may wait
// for an outcome (Prefer: wait=10 at most): the wait plus a request's
// usual deadline.
const WaitingRequestTimeout = validate.PreferWaitMax + requestTimeout

// Server is the gin engine the surfaces mount their routes on.
type Server struct {
	Engine  *gin.Engine
	log     *slog.Logger
	metrics *prometheus.HistogramVec
	// routeTimeouts are the request deadlines of routes that need longer
	// than requestTimeout, by "METHOD /full/path".
	routeTimeouts map[string]time.Duration
	// surfaces render the errors the server answers itself (no such route,
	// a panic) in the shape of the surface whose path prefix they fall under.
	surfaces []surface
}

// Renderer writes an error in one surface's shape and stops the chain.
type Renderer func(c *gin.Context, e *httperr.Error)

type surface struct {
	prefix string
	render Renderer
}

// New returns a Server with the shared middleware installed; reg (nil for
// none) receives the HTTP latency histogram.
func New(log *slog.Logger, reg prometheus.Registerer) (*Server, error) {
	if log == nil {
		log = slog.Default()
	}
	s := &Server{log: log, routeTimeouts: map[string]time.Duration{},
		metrics: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "orbt_http_request_duration_seconds",
			Help:    "HTTP request latency by route and status.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}, []string{"method", "route", "status"})}
	if reg != nil {
		// A process with two listeners (ORBT_OPS_ADDR) has two servers,
		// which share one histogram.
		var already prometheus.AlreadyRegisteredError
		if err := reg.Register(s.metrics); errors.As(err, &already) {
			s.metrics = already.ExistingCollector.(*prometheus.HistogramVec)
		} else if err != nil {
			return nil, fmt.Errorf("http metrics: %w", err)
		}
	}
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.HandleMethodNotAllowed = true
	// ClientIP is the connection's address: X-Forwarded-For is a header
	// anyone can set, trusted from no proxy until one is configured.
	if err := r.SetTrustedProxies(nil); err != nil {
		return nil, err
	}
	r.ContextWithFallback = true
	r.Use(requestID, s.observe, gin.CustomRecovery(s.recoverProblem), s.deadline)
	r.NoRoute(func(c *gin.Context) { s.abort(c, httperr.New(http.StatusNotFound, "not_found", "No such route.")) })
	r.NoMethod(func(c *gin.Context) {
		s.abort(c, httperr.New(http.StatusMethodNotAllowed, "method_not_allowed", "This route does not take that method."))
	})
	s.Engine = r
	return s, nil
}

// Handler is the server's http.Handler.
func (s *Server) Handler() http.Handler { return s.Engine }

// RouteTimeout gives one route a longer request deadline (a request that
// waits for an outcome, a bulk payout, a CPU profile) and extends the
// connection's write deadline to match. Its body must still arrive within
// the server's Read timeout, unless the route's own chain extends it with
// BodyDeadline once the caller is known.
func (s *Server) RouteTimeout(method, path string, d time.Duration) {
	s.routeTimeouts[method+" "+path] = d
}

// BodyDeadline lets the rest of a request's body arrive within d: for a
// route whose bodies are large (a bulk payout's 8 MiB), placed after
// authentication, so that a caller without a key never holds a
// connection past the server's Read timeout.
func BodyDeadline(d time.Duration) gin.HandlerFunc {
	return func(c *gin.Context) {
		// An error only means the writer cannot extend (an httptest recorder).
		_ = http.NewResponseController(c.Writer).SetReadDeadline(time.Now().Add(d))
		c.Next()
	}
}

// Surface makes the errors the server answers itself under a path prefix
// (an unknown route or method, a panic) render as that surface renders
// its own: the Orbt-compatible API answers in its envelope, not in
// problem+json.
func (s *Server) Surface(prefix string, render Renderer) {
	s.surfaces = append(s.surfaces, surface{prefix: prefix, render: render})
}

// abort renders e in the shape of the request's surface.
func (s *Server) abort(c *gin.Context, e *httperr.Error) {
	for _, sf := range s.surfaces {
		if strings.HasPrefix(c.Request.URL.Path, sf.prefix) {
			sf.render(c, e)
			c.Abort()
			return
		}
	}
	Abort(c, e)
}

// ValidParams answers 404, rendered by the surface, for path values no
// object can have (too long, or bytes Postgres would refuse), so they never
// reach the database. Parameters named in own are checked by their
// handler (a number's own 422).
func ValidParams(render Renderer, own ...string) gin.HandlerFunc {
	return func(c *gin.Context) {
		for _, p := range c.Params {
			if !validate.PathID(p.Value) && !slices.Contains(own, p.Key) {
				render(c, httperr.New(http.StatusNotFound, "not_found", "No such object."))
				c.Abort()
				return
			}
		}
		c.Next()
	}
}

// Abort renders e as a problem response and stops the handler chain.
func Abort(c *gin.Context, e *httperr.Error) {
	e.WriteProblem(c.Writer)
	c.Abort()
}

// Fail classifies err and renders it as a problem response, logging what
// the client is not told.
func Fail(c *gin.Context, log *slog.Logger, err error) {
	Abort(c, Classify(c, log, err))
}

// Classify is what the client is told of err, logging a server fault
// (whose detail the client is not told) with its route.
func Classify(c *gin.Context, log *slog.Logger, err error) *httperr.Error {
	e := httperr.Classify(err)
	switch {
	case e.Status == http.StatusServiceUnavailable:
		log.WarnContext(c, "unavailable", "err", err, "route", c.FullPath())
	case e.Status >= 500:
		log.ErrorContext(c, "internal error", "err", err, "route", c.FullPath())
	}
	return e
}

// requestID sets X-Request-Id, keeping a sane one the client sent.
func requestID(c *gin.Context) {
	id := c.GetHeader("X-Request-Id")
	if len(id) == 0 || len(id) > 64 || !validate.Printable(id) {
		id = store.NewID("req")
	}
	c.Header("X-Request-Id", id)
	c.Request = c.Request.WithContext(logging.Start(c.Request.Context(), slog.String(logging.RequestID, id)))
	c.Next()
}

func (s *Server) deadline(c *gin.Context) {
	timeout := requestTimeout
	if d, ok := s.routeTimeouts[c.Request.Method+" "+c.FullPath()]; ok {
		timeout = d
		// An error only means the writer cannot extend (an httptest recorder).
		_ = http.NewResponseController(c.Writer).SetWriteDeadline(time.Now().Add(d + 5*time.Second))
	}
	ctx, cancel := context.WithTimeout(c.Request.Context(), timeout)
	defer cancel()
	c.Request = c.Request.WithContext(ctx)
	c.Next()
}

// recoverProblem turns a panic into a logged 500 problem.
func (s *Server) recoverProblem(c *gin.Context, rec any) {
	// The route, never the path: a path may carry a consumer link's token.
	s.log.ErrorContext(c, "panic", "recovered", rec, "route", c.FullPath())
	s.abort(c, httperr.New(http.StatusInternalServerError, "internal_error", "Something went wrong on our side."))
}

func (s *Server) observe(c *gin.Context) {
	start := time.Now()
	c.Next()
	route := c.FullPath()
	if route == "" {
		route = "unmatched"
	}
	took := time.Since(start)
	status := c.Writer.Status()
	s.metrics.WithLabelValues(c.Request.Method, route, strconv.Itoa(status)).Observe(took.Seconds())
	// One access line per request: the route, never the path (a consumer
	// link's path is its token) nor the query; probes and scrapes only at
	// debug level.
	level := slog.LevelInfo
	if quietRoutes[route] {
		level = slog.LevelDebug
	}
	s.log.LogAttrs(c, level, "request", slog.String("method", c.Request.Method), slog.String("route", route),
		slog.Int("status", status), slog.Float64("ms", float64(took.Microseconds())/1000), slog.Int("bytes", c.Writer.Size()),
		slog.String("client", c.ClientIP()))
}

// quietRoutes are asked every few seconds by machines: their access lines
// are debug.
var quietRoutes = map[string]bool{"/healthz": true, "/readyz": true, "/metrics": true}

// Bearer returns the token of an Authorization: Bearer header.
func Bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	const prefix = "Bearer "
	if len(h) <= len(prefix) || h[:len(prefix)] != prefix || len(h) > 512 {
		return "", false
	}
	return h[len(prefix):], true
}

// RequireAdmin checks the admin token, as a bearer token or, with
// allowBasic (pages people open in a browser), as a Basic-auth password.
// With no token configured the routes do not exist.
func RequireAdmin(token string, allowBasic bool) gin.HandlerFunc {
	return func(c *gin.Context) {
		if token == "" {
			Abort(c, httperr.New(http.StatusNotFound, "not_found", "No such route."))
			return
		}
		got, ok := Bearer(c.Request)
		if !ok && allowBasic {
			_, got, ok = c.Request.BasicAuth()
		}
		if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(token)) != 1 {
			if allowBasic {
				c.Header("WWW-Authenticate", `Basic realm="orbt admin"`)
			}
			Abort(c, httperr.New(http.StatusUnauthorized, "unauthorized", "Send the admin token: Authorization: Bearer <token>."))
			return
		}
		c.Next()
	}
}
