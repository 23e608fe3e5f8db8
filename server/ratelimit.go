package server

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/go-redis/redis_rate/v10"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/orbt/orbt/httperr"
)

// RateLimits are the budgets of one API key, in requests per second; 0
// turns a budget off. Reads are GET and HEAD; every other method is a write.
type RateLimits struct {
	Read  int
	Write int
}

// RateLimiter holds every API key to its budgets across all processes: the
// counts live in Redis (GCRA, one round trip per request), so two api
// processes share one budget. Redis failing lets requests through rather
// than refuse a partner for Orbt's own fault, and skips Redis for a moment
// so requests do not each wait out a timeout while it is down.
type RateLimiter struct {
	limiter *redis_rate.Limiter
	limits  RateLimits
	log     *slog.Logger
	refused *prometheus.CounterVec
	// downUntil holds the unix nanos until which the limiter lets
	// everything through after Redis failed.
	downUntil atomic.Int64
}

// Bounds of a rate-limit check.
const (
	rateLimitTimeout = 200 * time.Millisecond
	rateLimitBackoff = time.Second
	// rateLimitKeyPrefix names the keys in Redis (redis_rate adds its own
	// "rate:" in front).
	rateLimitKeyPrefix = "orbt:apikey:"
)

// NewRateLimiter returns a limiter over rdb; nil when both budgets are off.
func NewRateLimiter(rdb redis.UniversalClient, limits RateLimits, reg prometheus.Registerer, log *slog.Logger) (*RateLimiter, error) {
	if limits.Read < 0 || limits.Write < 0 {
		return nil, errors.New("rate limits must be 0 (off) or more")
	}
	if limits.Read == 0 && limits.Write == 0 {
		return nil, nil
	}
	if log == nil {
		log = slog.Default()
	}
	refused := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "orbt_rate_limit_refusals_total",
		Help: "Requests refused with 429 because their API key spent its budget, by budget (read or write).",
	}, []string{"budget"})
	if reg != nil {
		if err := reg.Register(refused); err != nil {
			return nil, err
		}
	}
	return &RateLimiter{limiter: redis_rate.NewLimiter(rdb), limits: limits, log: log, refused: refused}, nil
}

// Middleware holds the request's API key (set by the surface's
// authentication, which must run first) to its read or write budget,
// rendering a refusal as the surface renders errors. A nil limiter lets
// everything through.
func (l *RateLimiter) Middleware(render Renderer) gin.HandlerFunc {
	return func(c *gin.Context) {
		if l == nil {
			c.Next()
			return
		}
		budget, perSecond := "write", l.limits.Write
		if c.Request.Method == http.MethodGet || c.Request.Method == http.MethodHead {
			budget, perSecond = "read", l.limits.Read
		}
		key := APIKey(c).ID
		if perSecond == 0 || key == "" || time.Now().UnixNano() < l.downUntil.Load() {
			c.Next()
			return
		}
		ctx, cancel := context.WithTimeout(c, rateLimitTimeout)
		res, err := l.limiter.Allow(ctx, rateLimitKeyPrefix+key+":"+budget, redis_rate.PerSecond(perSecond))
		cancel()
		if err != nil {
			l.downUntil.Store(time.Now().Add(rateLimitBackoff).UnixNano())
			l.log.Warn("rate limit unchecked: redis unavailable", "budget", budget, "err", err)
			c.Next()
			return
		}
		h := c.Writer.Header()
		h.Set("RateLimit-Limit", strconv.Itoa(perSecond))
		h.Set("RateLimit-Remaining", strconv.Itoa(res.Remaining))
		h.Set("RateLimit-Reset", strconv.Itoa(seconds(res.ResetAfter)))
		if res.Allowed == 0 {
			l.refused.WithLabelValues(budget).Inc()
			h.Set("Retry-After", strconv.Itoa(seconds(res.RetryAfter)))
			render(c, httperr.New(http.StatusTooManyRequests, "rate_limited",
				"This API key sent more than "+strconv.Itoa(perSecond)+" "+budget+" requests a second; retry after the Retry-After seconds."))
			c.Abort()
			return
		}
		c.Next()
	}
}

// seconds rounds a wait up to whole seconds, at least 1 (the headers take
// integers, and 0 would invite an immediate retry that is refused again).
func seconds(d time.Duration) int {
	return max(1, int(math.Ceil(d.Seconds())))
}
