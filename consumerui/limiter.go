package consumerui

import (
	"net/http"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"golang.org/x/time/rate"
)

// Rates of the consumer pages, per client address: pages at a person's
// pace, link openings slower (a token is unguessable; this keeps anyone
// from trying). Each process limits on its own.
const (
	pageRate  = rate.Limit(5)
	pageBurst = 40
	openRate  = rate.Limit(0.5)
	openBurst = 10
	// limiterIdle is how long an address's limiter is kept unused.
	limiterIdle = 10 * time.Minute
)

// limiter holds token buckets by key, dropping idle ones.
type limiter struct {
	mu      sync.Mutex
	buckets map[string]*bucket
	swept   time.Time
}

type bucket struct {
	*rate.Limiter
	used time.Time
}

func newLimiter() *limiter { return &limiter{buckets: make(map[string]*bucket), swept: time.Now()} }

func (l *limiter) allow(key string, r rate.Limit, burst int) bool {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.swept) > limiterIdle {
		for k, b := range l.buckets {
			if now.Sub(b.used) > limiterIdle {
				delete(l.buckets, k)
			}
		}
		l.swept = now
	}
	b := l.buckets[key]
	if b == nil {
		b = &bucket{Limiter: rate.NewLimiter(r, burst)}
		l.buckets[key] = b
	}
	b.used = now
	return b.AllowN(now, 1)
}

func (u *UI) rateLimit(c *gin.Context) {
	if !u.limiter.allow("page "+c.ClientIP(), pageRate, pageBurst) {
		u.tooMany(c)
		return
	}
	c.Next()
}

func (u *UI) tooMany(c *gin.Context) {
	c.Header("Retry-After", "10")
	u.render(c, http.StatusTooManyRequests, "error", map[string]any{"Title": "Slow down",
		"Message": "Too many requests from your connection. Wait a few seconds and try again."})
	c.Abort()
}
