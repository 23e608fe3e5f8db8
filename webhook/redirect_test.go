package webhook

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/orbt/orbt/ledger"
)

// countingListener counts the connections a loopback listener accepts,
// and closes each at once.
func countingListener(t *testing.T) (string, *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var n atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n.Add(1)
			c.Close()
		}
	}()
	return ln.Addr().String(), &n
}

// A receiver that answers with a redirect to an address the egress guard
// refuses (loopback, here; an attacker's public receiver pointing at
// 169.254.169.254 in the wild) is not followed: the attempt records the
// 3xx, and the target is never dialled, neither by the redirect (not
// followed) nor by a dial the guard would have to refuse. The guard lets
// the receiver's own address through only, as it would a public one.
func TestRedirectToARefusedAddressIsNotFollowed(t *testing.T) {
	for _, code := range []int{http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther,
		http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
		target, dialled := countingListener(t)
		receiver := httptest.NewServer(http.RedirectHandler("http://"+target+"/latest/meta-data/", code))
		defer receiver.Close()
		allowed := netip.MustParseAddrPort(receiver.Listener.Addr().String())
		var refused atomic.Int64
		s := &Sender{client: egressClient(func(ap netip.AddrPort) bool {
			if ap == allowed {
				return true
			}
			refused.Add(1)
			return false
		})}
		var a Attempt
		status := s.send(context.Background(), claimed{url: receiver.URL + "/hook", secret: "whsec_c2VjcmV0c2VjcmV0c2VjcmV0"},
			ledger.Event{ID: "evt_redirect", Type: "transaction.completed", CreatedAt: time.Now()}, &a)
		if status != code || a.StatusCode == nil || *a.StatusCode != code || a.Error == nil || *a.Error != ErrorHTTPStatus {
			t.Errorf("%d: status %d, attempt %+v", code, status, a)
		}
		if n := dialled.Load(); n != 0 {
			t.Errorf("%d: the redirect target was dialled %d times", code, n)
		}
		if n := refused.Load(); n != 0 {
			t.Errorf("%d: the sender tried to dial the redirect target (%d times, refused by the guard): it followed the redirect", code, n)
		}
	}
}

// The guard itself refuses what it is told to: a receiver at a refused
// address is never connected to.
func TestGuardRefusesTheDial(t *testing.T) {
	target, dialled := countingListener(t)
	s := &Sender{client: egressClient(func(ap netip.AddrPort) bool { return allowedAddr(ap.Addr(), false) })}
	var a Attempt
	s.send(context.Background(), claimed{url: "http://" + target + "/", secret: "whsec_c2VjcmV0c2VjcmV0c2VjcmV0"},
		ledger.Event{ID: "evt_guard", Type: "transaction.completed", CreatedAt: time.Now()}, &a)
	if a.Error == nil || *a.Error != ErrorBlockedAddress {
		t.Errorf("attempt %+v", a)
	}
	if n := dialled.Load(); n != 0 {
		t.Errorf("a refused address was dialled %d times", n)
	}
}
