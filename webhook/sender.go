package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/orbt/orbt/webhooksig"
)

// Limits of a delivery attempt.
const (
	attemptTimeout       = 15 * time.Second
	claimHold            = attemptTimeout + 15*time.Second
	responseExcerptBytes = 1024
)

// ErrPrivateAddress is what the dialer answers for a refused address.
var ErrPrivateAddress = errors.New("refusing to connect to a private, loopback or link-local address")

// Sender delivers due deliveries.
type Sender struct {
	store    *Store
	client   *http.Client
	schedule []time.Duration
}

// NewSender returns a Sender that waits schedule[i] after failed attempt
// i+1, and gives up after len(schedule)+1 attempts.
func NewSender(store *Store, schedule []time.Duration) *Sender {
	return &Sender{store: store, schedule: schedule, client: egressClient(store.allowPrivate)}
}

// Result says what became of one Deliver call.
type Result struct {
	// Retry, when set, is when the next attempt is due.
	Retry     *time.Time
	Attempt   int
	Succeeded bool
}

// Deliver makes one attempt at a due delivery and records it. A delivery
// that is not due (done already, scheduled later, or held by another
// attempt) returns a zero Result and no error.
func (s *Sender) Deliver(ctx context.Context, deliveryID string) (Result, error) {
	c, err := s.store.claim(ctx, deliveryID, claimHold)
	if errors.Is(err, errNotDue) {
		return Result{}, nil
	}
	if err != nil {
		return Result{}, err
	}
	attempt := Attempt{Attempt: c.attempts + 1, CreatedAt: time.Now()}
	if !c.enabled {
		msg := "endpoint disabled or deleted"
		attempt.Error = &msg
		return Result{Attempt: attempt.Attempt}, s.store.record(ctx, deliveryID, attempt, DeliveryFailed, time.Now(), "", "")
	}
	status := s.send(ctx, c, &attempt)
	res := Result{Attempt: attempt.Attempt}
	var disable, reason string
	next := time.Now()
	state := DeliveryFailed
	switch {
	case status >= 200 && status < 300:
		state, res.Succeeded = DeliverySucceeded, true
	case status == http.StatusGone:
		disable, reason = c.endpointID, "the endpoint answered 410 Gone"
	case attempt.Attempt <= len(s.schedule):
		state = DeliveryPending
		next = next.Add(jitter(s.schedule[attempt.Attempt-1]))
		res.Retry = &next
	}
	if err := s.store.record(ctx, deliveryID, attempt, state, next, disable, reason); err != nil {
		return Result{}, err
	}
	return res, nil
}

// body is what a receiver gets: the event object.
func (s *Sender) send(ctx context.Context, c claimed, a *Attempt) int {
	body, err := json.Marshal(c.event)
	if err != nil {
		return a.fail(err)
	}
	secrets := []string{c.secret}
	if c.previousSecret != nil {
		secrets = append(secrets, *c.previousSecret)
	}
	headers, err := webhooksig.Headers(c.event.ID, time.Now(), body, secrets...)
	if err != nil {
		return a.fail(err)
	}
	ctx, cancel := context.WithTimeout(ctx, attemptTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return a.fail(err)
	}
	req.Header = headers
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Orbt-Webhooks/1")
	start := time.Now()
	res, err := s.client.Do(req)
	a.LatencyMS = int(time.Since(start).Milliseconds())
	if err != nil {
		return a.fail(err)
	}
	defer res.Body.Close()
	excerpt, _ := io.ReadAll(io.LimitReader(res.Body, responseExcerptBytes))
	if len(excerpt) > 0 {
		text := strings.ToValidUTF8(strings.ReplaceAll(string(excerpt), "\x00", ""), string(utf8.RuneError))
		a.ResponseExcerpt = &text
	}
	a.StatusCode = &res.StatusCode
	if res.StatusCode >= 300 && res.StatusCode < 400 {
		msg := "redirects are not followed; point the endpoint at the final URL"
		a.Error = &msg
	}
	return res.StatusCode
}

func (a *Attempt) fail(err error) int {
	msg := err.Error()
	a.Error = &msg
	return 0
}

// jitter spreads retries by ±10% so a receiver coming back is not hit by
// every delayed delivery in the same second.
func jitter(d time.Duration) time.Duration {
	return d + time.Duration((rand.Float64()*0.2-0.1)*float64(d))
}

// egressClient follows no redirects, uses no proxy, and checks the address
// it actually connects to, after DNS resolution, so a name that resolves to
// a private address (or is rebound to one later) is refused.
func egressClient(allowPrivate bool) *http.Client {
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	if !allowPrivate {
		dialer.Control = func(network, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil || !publicAddr(ap.Addr()) {
				return fmt.Errorf("%w: %s", ErrPrivateAddress, address)
			}
			return nil
		}
	}
	return &http.Client{
		Timeout: attemptTimeout,
		Transport: &http.Transport{
			Proxy:                 nil,
			DialContext:           dialer.DialContext,
			TLSHandshakeTimeout:   5 * time.Second,
			ResponseHeaderTimeout: attemptTimeout,
			MaxIdleConnsPerHost:   4,
			IdleConnTimeout:       30 * time.Second,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// nonPublic are ranges no webhook may reach besides those netip classifies
// (loopback, private, link-local — which holds the cloud metadata address
// 169.254.169.254 — multicast, unspecified).
var nonPublic = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"), // carrier-grade NAT
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"), // benchmarking
	netip.MustParsePrefix("240.0.0.0/4"),
	netip.MustParsePrefix("64:ff9b::/96"), // NAT64 can reach IPv4 private space
	netip.MustParsePrefix("fd00:ec2::254/128"),
}

func publicAddr(a netip.Addr) bool {
	a = a.Unmap()
	if !a.IsValid() || a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() ||
		a.IsInterfaceLocalMulticast() || a.IsMulticast() || a.IsUnspecified() {
		return false
	}
	for _, p := range nonPublic {
		if p.Contains(a) {
			return false
		}
	}
	return true
}
