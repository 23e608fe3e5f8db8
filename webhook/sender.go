package webhook

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/orbt/orbt/ledger"
	"github.com/orbt/orbt/store"
	"github.com/orbt/orbt/webhooksig"
)

// Limits of a delivery attempt.
const (
	attemptTimeout       = 15 * time.Second
	claimHold            = attemptTimeout + 15*time.Second
	responseExcerptBytes = 1024
)

// ErrPrivateAddress is what the dialer answers for a refused address.
var ErrPrivateAddress = errors.New("refusing to connect to a private, loopback, link-local or metadata address")

// Sender delivers due deliveries.
type Sender struct {
	store    *Store
	events   EventReader
	client   *http.Client
	schedule []time.Duration
}

// EventReader reads events by id, each of the workspace at the same index,
// from their owner, the ledger (ledger.Ledger.EventsByID).
type EventReader func(ctx context.Context, workspaceIDs, ids []string) ([]ledger.Event, error)

// NewSender returns a Sender that waits schedule[i] after failed attempt
// i+1, and gives up after len(schedule)+1 attempts.
func NewSender(store *Store, events EventReader, schedule []time.Duration) *Sender {
	allowPrivate := store.allowPrivate
	return &Sender{store: store, events: events, schedule: schedule,
		client: egressClient(func(ap netip.AddrPort) bool { return allowedAddr(ap.Addr(), allowPrivate) })}
}

// Result says what became of one delivery's attempt.
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
	results, err := s.DeliverMany(ctx, []string{deliveryID})
	return results[deliveryID], err
}

// DeliverManyMax bounds the deliveries of one DeliverMany call: each is its
// own request, and all of them are in flight at once, so the claim on them
// (claimHold) outlasts the slowest.
const DeliverManyMax = 64

// DeliverMany makes one attempt at each due delivery of ids, at most
// DeliverManyMax: every one is its own signed request, sent at once, and
// the attempts are recorded together, so a burst of events costs a few
// database round trips and one commit per call, not per delivery. It
// returns the result of each delivery it attempted, by id; those not due
// are left out. An error leaves what was not recorded to the claim's
// expiry and the relay.
func (s *Sender) DeliverMany(ctx context.Context, ids []string) (map[string]Result, error) {
	if len(ids) > DeliverManyMax {
		return nil, fmt.Errorf("deliver %d deliveries at once, at most %d", len(ids), DeliverManyMax)
	}
	claims, err := s.store.claim(ctx, ids, claimHold)
	if err != nil || len(claims) == 0 {
		return nil, err
	}
	// Read the events before the attempts: a failure here is ours (the
	// database), not the receivers', so it must not use up one of the
	// partners' attempts. The claims run out and the relay sends again.
	ws, eventIDs := make([]string, len(claims)), make([]string, len(claims))
	for i, c := range claims {
		ws[i], eventIDs[i] = c.workspaceID, c.eventID
	}
	list, err := s.events(ctx, ws, eventIDs)
	if err != nil {
		return nil, fmt.Errorf("deliver %d deliveries: %w", len(claims), err)
	}
	events := make(map[string]ledger.Event, len(list))
	for _, e := range list {
		events[e.ID] = e
	}
	attempts := make([]recordedAttempt, len(claims))
	var missing []string
	var wg sync.WaitGroup
	for i, c := range claims {
		a := &attempts[i]
		a.deliveryID = c.id
		a.Attempt = Attempt{Attempt: c.attempts + 1, CreatedAt: time.Now()}
		event, found := events[c.eventID]
		switch {
		case !c.enabled:
			a.Error = ptr(ErrorEndpointDisabled)
			a.status, a.next = DeliveryFailed, time.Now()
		case !found:
			missing = append(missing, c.eventID)
			a.deliveryID = "" // not attempted, not recorded
		default:
			wg.Go(func() { s.attempt(ctx, c, event, a) })
		}
	}
	wg.Wait()
	attempts = slices.DeleteFunc(attempts, func(a recordedAttempt) bool { return a.deliveryID == "" })
	if err := s.store.record(ctx, attempts); err != nil {
		return nil, err
	}
	results := make(map[string]Result, len(attempts))
	for _, a := range attempts {
		res := Result{Attempt: a.Attempt.Attempt, Succeeded: a.status == DeliverySucceeded}
		if a.status == DeliveryPending {
			res.Retry = &a.next
		}
		results[a.deliveryID] = res
	}
	if len(missing) > 0 {
		return results, fmt.Errorf("deliver: events %v: %w", missing, store.ErrNotFound)
	}
	return results, nil
}

// attempt sends one delivery and decides what becomes of it.
func (s *Sender) attempt(ctx context.Context, c claimed, event ledger.Event, a *recordedAttempt) {
	status := s.send(ctx, c, event, &a.Attempt)
	a.status, a.next = DeliveryFailed, time.Now()
	switch {
	case status >= 200 && status < 300:
		a.status = DeliverySucceeded
	case status == http.StatusGone:
		a.disableEndpoint, a.disableReason = c.endpointID, "the endpoint answered 410 Gone"
	case a.Attempt.Attempt <= len(s.schedule):
		a.status = DeliveryPending
		a.next = a.next.Add(jitter(s.schedule[a.Attempt.Attempt-1]))
	}
}

// send makes the request; the body is what a receiver gets: the event object.
func (s *Sender) send(ctx context.Context, c claimed, event ledger.Event, a *Attempt) int {
	body, err := json.Marshal(event)
	if err != nil {
		return a.fail(err)
	}
	secrets := []string{c.secret}
	if c.previousSecret != nil {
		secrets = append(secrets, *c.previousSecret)
	}
	headers, err := webhooksig.Headers(event.ID, time.Now(), body, secrets...)
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
	if res.StatusCode < 200 || res.StatusCode >= 300 {
		// A 3xx too: redirects are not followed, so a receiver that moved
		// shows up here with its status and Location in the log.
		a.Error = ptr(ErrorHTTPStatus)
	}
	return res.StatusCode
}

// What went wrong with an attempt, as partners see it: a category, never
// the underlying error, whose text names the internal address a name
// resolved to (dial tcp 10.0.3.7:443: …).
const (
	ErrorConnectionRefused = "connection_refused"
	ErrorTimeout           = "timeout"
	ErrorTLS               = "tls_error"
	ErrorBlockedAddress    = "blocked_address"
	ErrorDNS               = "dns_error"
	ErrorConnection        = "connection_error" // reset, closed early, unreachable
	ErrorHTTPStatus        = "http_status"      // any answer but a 2xx, redirects included
	ErrorEndpointDisabled  = "endpoint_disabled"
	ErrorRequest           = "request_error" // the request could not be built (a bug, or a URL that no longer parses)
)

// errorCategory classifies a failed request.
func errorCategory(err error) string {
	var (
		dnsErr    *net.DNSError
		opErr     *net.OpError
		netErr    net.Error
		tlsRecord tls.RecordHeaderError
		tlsAlert  tls.AlertError
		certErr   *tls.CertificateVerificationError
		x509Err   x509.UnknownAuthorityError
		hostErr   x509.HostnameError
		invalid   x509.CertificateInvalidError
	)
	switch {
	case errors.Is(err, ErrPrivateAddress):
		return ErrorBlockedAddress
	case errors.Is(err, syscall.ECONNREFUSED):
		return ErrorConnectionRefused
	case errors.As(err, &dnsErr):
		return ErrorDNS
	case errors.As(err, &certErr), errors.As(err, &tlsRecord), errors.As(err, &tlsAlert),
		errors.As(err, &x509Err), errors.As(err, &hostErr), errors.As(err, &invalid),
		// An alert the server sends during the handshake arrives as a
		// net.OpError "remote error"; handshake failures of our side
		// (no common version or cipher) are plain errors prefixed "tls: ".
		errors.As(err, &opErr) && opErr.Op == "remote error", strings.Contains(err.Error(), "tls: "):
		return ErrorTLS
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return ErrorTimeout
	case errors.As(err, &netErr), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return ErrorConnection
	}
	return ErrorRequest
}

func (a *Attempt) fail(err error) int {
	a.Error = ptr(errorCategory(err))
	return 0
}

func ptr[T any](v T) *T { return &v }

// jitter spreads retries by ±10% so a receiver coming back is not hit by
// every delayed delivery in the same second.
func jitter(d time.Duration) time.Duration {
	return d + time.Duration((rand.Float64()*0.2-0.1)*float64(d))
}

// egressClient follows no redirects, uses no proxy, and checks the address
// it actually connects to, after DNS resolution, so a name that resolves to
// a refused address (or is rebound to one later) is refused: allowed says
// which addresses it may connect to.
func egressClient(allowed func(netip.AddrPort) bool) *http.Client {
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	dialer.Control = func(network, address string, _ syscall.RawConn) error {
		ap, err := netip.ParseAddrPort(address)
		if err != nil || !allowed(ap) {
			return fmt.Errorf("%w: %s", ErrPrivateAddress, address)
		}
		return nil
	}
	return &http.Client{
		Timeout: attemptTimeout,
		Transport: &http.Transport{
			Proxy:                 nil,
			DialContext:           dialer.DialContext,
			TLSHandshakeTimeout:   5 * time.Second,
			ResponseHeaderTimeout: attemptTimeout,
			// A burst to one receiver sends up to DeliverManyMax requests
			// at once per task, from every task the worker runs: idle
			// connections are kept for all of them, or each burst past
			// the bound dials anew (with 64 kept, dialling took a sixth
			// of a worker's CPU delivering 2,400 events a second).
			MaxIdleConnsPerHost: idleConnsPerHost,
			IdleConnTimeout:     30 * time.Second,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// idleConnsPerHost bounds the idle connections kept to one receiver;
// IdleConnTimeout closes them once a burst is over.
const idleConnsPerHost = 1024

// nonPublic are ranges no webhook may reach besides those netip classifies
// (loopback, private, link-local, multicast, unspecified) and those never
// reachable at all. The IPv6 transition ranges embed an IPv4 address,
// private ones too.
var nonPublic = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"), // carrier-grade NAT
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"), // benchmarking
	netip.MustParsePrefix("240.0.0.0/4"),
	nat64, nat64Local, ipv4Compat, sixToFour, teredo,
	netip.MustParsePrefix("fec0::/10"), // deprecated site-local
}

// neverReachable are refused even when private addresses are allowed for
// development: link-local ranges, where clouds serve instance metadata and
// credentials (169.254.169.254, fd00:ec2::254).
var neverReachable = []netip.Prefix{
	netip.MustParsePrefix("169.254.0.0/16"),
	netip.MustParsePrefix("fe80::/10"),
	netip.MustParsePrefix("fd00:ec2::254/128"),
}

// allowedAddr tells whether a webhook may connect to a.
func allowedAddr(a netip.Addr, allowPrivate bool) bool {
	// A zone (fe80::1%eth0) would make every prefix test below false.
	a = a.Unmap().WithZone("")
	for _, addr := range []netip.Addr{a, embeddedIPv4(a)} {
		for _, p := range neverReachable {
			if addr.IsValid() && p.Contains(addr) {
				return false
			}
		}
	}
	return allowPrivate || publicAddr(a)
}

// IPv6 transition prefixes that embed an IPv4 address.
var (
	nat64      = netip.MustParsePrefix("64:ff9b::/96")
	nat64Local = netip.MustParsePrefix("64:ff9b:1::/48") // local-use NAT64 (RFC 8215)
	ipv4Compat = netip.MustParsePrefix("::/96")          // IPv4-compatible, deprecated
	sixToFour  = netip.MustParsePrefix("2002::/16")
	teredo     = netip.MustParsePrefix("2001::/32")
)

// embeddedIPv4 is the IPv4 address an IPv6 transition address carries
// (NAT64 64:ff9b::/96 and 64:ff9b:1::/48 in their last 32 bits, as do
// IPv4-compatible ::/96; 6to4 2002::/16; Teredo 2001::/32, whose client
// address is stored inverted), or the zero Addr.
func embeddedIPv4(a netip.Addr) netip.Addr {
	if !a.Is6() {
		return netip.Addr{}
	}
	b := a.As16()
	switch {
	case nat64.Contains(a), nat64Local.Contains(a), ipv4Compat.Contains(a):
		return netip.AddrFrom4([4]byte(b[12:16]))
	case sixToFour.Contains(a):
		return netip.AddrFrom4([4]byte(b[2:6]))
	case teredo.Contains(a):
		return netip.AddrFrom4([4]byte{^b[12], ^b[13], ^b[14], ^b[15]})
	}
	return netip.Addr{}
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
