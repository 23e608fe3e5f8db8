package console

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Sign-in limits, counted in Redis so every API process shares them.
const (
	// addressAttempts sign-ins per addressWindow from one client address,
	// right or wrong.
	addressAttempts = 30
	addressWindow   = 15 * time.Minute
	// accountFailures attempts on one email address within lockoutWindow
	// without a success lock it until the window ends. Unknown addresses are
	// counted the same way, so a lockout tells nobody an account exists.
	accountFailures = 5
	lockoutWindow   = 15 * time.Minute
	limitsPrefix    = "orbt:console:signin:"
)

// signInLimits counts sign-in attempts per client address and failures
// per account. When Redis is down sign-in is refused (503), never let
// through uncounted.
type signInLimits struct{ rdb redis.UniversalClient }

// count adds one to a counter that lives for window from its first use,
// and returns its value and what is left of the window.
func (l signInLimits) count(ctx context.Context, key string, window time.Duration) (int64, time.Duration, error) {
	pipe := l.rdb.TxPipeline()
	n := pipe.Incr(ctx, key)
	pipe.ExpireNX(ctx, key, window)
	ttl := pipe.PTTL(ctx, key)
	if _, err := pipe.Exec(ctx); err != nil {
		return 0, 0, fmt.Errorf("sign-in limits: %w", err)
	}
	return n.Val(), ttl.Val(), nil
}

// addressAllowed counts an attempt from addr; more than the budget gives
// the wait until the window ends.
func (l signInLimits) addressAllowed(ctx context.Context, addr string) (time.Duration, error) {
	n, ttl, err := l.count(ctx, limitsPrefix+"addr:"+addr, addressWindow)
	if err != nil || n <= addressAttempts {
		return 0, err
	}
	return max(ttl, time.Second), nil
}

// accountKey names an account's failure counter by a hash of its address:
// no email address in Redis.
func accountKey(email string) string {
	sum := sha256.Sum256([]byte(strings.ToLower(email)))
	return limitsPrefix + "account:" + hex.EncodeToString(sum[:16])
}

// accountAttempt counts a sign-in attempt on an account before its
// password is checked, so attempts sent at once cannot all slip under the
// limit. It gives the attempt's number within the account's window and
// what is left of the window: past accountFailures the account is locked
// that long.
func (l signInLimits) accountAttempt(ctx context.Context, email string) (int64, time.Duration, error) {
	n, left, err := l.count(ctx, accountKey(email), lockoutWindow)
	return n, max(left, time.Second), err
}

// succeeded forgets an account's attempts. Losing this write only leaves
// the count to expire.
func (l signInLimits) succeeded(ctx context.Context, email string) {
	l.rdb.Del(ctx, accountKey(email))
}

func retryAfter(d time.Duration) string { return strconv.Itoa(int(d.Round(time.Second) / time.Second)) }

// minutes says a wait in whole minutes, rounded up.
func minutes(d time.Duration) string {
	m := int((d + time.Minute - 1) / time.Minute)
	if m == 1 {
		return "1 minute"
	}
	return strconv.Itoa(m) + " minutes"
}
