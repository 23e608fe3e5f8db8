package sweep

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/orbt/orbt/store"
)

// listener counts the connections made to a loopback address.
type listener struct {
	port     int
	accepted atomic.Int64
}

// listen starts a listener on a loopback address of network (tcp4, tcp6)
// that counts and closes every connection; nil when the machine has no
// such address (no IPv6 loopback).
func (s *sweep) listen(network, addr string) *listener {
	ln, err := net.Listen(network, addr)
	if err != nil {
		s.t.Logf("no %s loopback listener (%v): its forms are still sent, and an attempt that dialled would fail as connection_refused", network, err)
		return nil
	}
	s.t.Cleanup(func() { ln.Close() })
	l := &listener{port: ln.Addr().(*net.TCPAddr).Port}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			l.accepted.Add(1)
			c.Close()
		}
	}()
	return l
}

// loopbackNames are the names /etc/hosts maps to a loopback address,
// besides localhost: names a webhook URL may use to reach this machine
// with no address in sight.
func loopbackNames() []string {
	f, err := os.Open("/etc/hosts")
	if err != nil {
		return nil
	}
	defer f.Close()
	var names []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		fields := strings.Fields(line)
		if len(fields) < 2 {
			continue
		}
		addr, err := netip.ParseAddr(fields[0])
		if err != nil || !addr.Unmap().IsLoopback() {
			continue
		}
		for _, n := range fields[1:] {
			if !strings.EqualFold(n, "localhost") && !slices.Contains(names, n) && len(names) < 5 {
				names = append(names, n)
			}
		}
	}
	return names
}

// deliveryErrors are the attempt errors of an address that was never
// dialled: refused by the egress guard, or a name that resolves nowhere.
// Any other (connection_refused above all) means a connection was tried.
var deliveryErrors = []string{"blocked_address", "dns_error"}

// ssrf registers webhook endpoints at every spelling of a loopback,
// private, link-local or metadata address (the sweep's own listeners' among
// them), through the API and the console, makes events for them and
// redelivers one: each URL must be refused, or its deliveries never
// dialled.
func (s *sweep) ssrf() {
	a := s.a
	v4 := s.listen("tcp4", "127.0.0.1:0")
	if v4 == nil {
		s.t.Fatal("sweep: no IPv4 loopback listener")
	}
	v6 := s.listen("tcp6", "[::1]:0")
	p, q := strconv.Itoa(v4.port), strconv.Itoa(v4.port)
	if v6 != nil {
		q = strconv.Itoa(v6.port)
	}
	// An Orbt that takes the plainest loopback URL either allows private
	// addresses (ORBT_WEBHOOK_ALLOW_PRIVATE=true, which the sweep cannot
	// sweep) or has lost its guard: either way the rest would only repeat it.
	plain := s.call(a.writeKey, jsonRequest("POST", "/v1/webhook-endpoints", map[string]any{"url": "https://127.0.0.1:" + p + "/",
		"events": []string{"redemption.failed"}}))
	if plain.status/100 == 2 {
		var e struct{ ID, Secret string }
		if plain.decode(&e) == nil {
			s.keep("webhook secret", e.Secret)
			s.call(a.writeKey, request{method: "DELETE", path: "/v1/webhook-endpoints/" + e.ID})
		}
		s.t.Errorf("POST /v1/webhook-endpoints takes https://127.0.0.1:%s/ (%s): the Orbt under sweep lets webhooks reach "+
			"loopback addresses. Sweep one that runs with ORBT_WEBHOOK_ALLOW_PRIVATE=false, the default", p, plain)
		return
	}
	hosts := []string{
		"127.0.0.1:" + p, "127.1:" + p, "127.0.0.1.:" + p, "127.000.000.001:" + p,
		"2130706433:" + p, "0177.0.0.1:" + p, "0177.0.0.01:" + p, "017700000001:" + p,
		"0x7f.0.0.1:" + p, "0x7f.0x0.0x0.0x1:" + p, "0x7f000001:" + p, "0x7F000001:" + p,
		"0.0.0.0:" + p, "0:" + p,
		"localhost:" + p, "LOCALHOST:" + p, "localhost.:" + p, "sweep.localhost:" + p,
		"[::1]:" + q, "[0:0:0:0:0:0:0:1]:" + q, "[::]:" + q, "[::ffff:127.0.0.1]:" + p, "[::ffff:7f00:1]:" + p,
		"[::127.0.0.1]:" + p, "[64:ff9b::7f00:1]:" + p, "[2002:7f00:1::1]:" + p,
		"[fe80::1]:" + p, "[fe80::1%25lo]:" + p,
		"169.254.169.254", "169.254.169.254:" + p, "[fd00:ec2::254]", "[::ffff:169.254.169.254]", "metadata.google.internal",
		"10.0.0.1:" + p, "172.16.0.1:" + p, "192.168.1.1:" + p, "100.64.0.1:" + p, "[fc00::1]:" + p, "[fd12:3456::1]:" + p,
	}
	for _, n := range loopbackNames() {
		hosts = append(hosts, n+":"+p)
	}
	urls := make([]string, 0, len(hosts)+5)
	for _, h := range hosts {
		urls = append(urls, "https://"+h+"/latest/meta-data/")
	}
	urls = append(urls, "http://orbt-sweep.invalid/plain-http", "https://user:pw@127.0.0.1:"+p+"/", "https://example.com@127.0.0.1:"+p+"/",
		"https://127.0.0.1:"+p+"#@example.com/", "https://127。0。0。1:"+p+"/")

	type endpoint struct{ id, url string }
	var accepted []endpoint
	refusedURLs := 0
	for _, u := range urls {
		ans := s.call(a.writeKey, jsonRequest("POST", "/v1/webhook-endpoints", map[string]any{"url": u, "events": []string{"transaction.completed"}}))
		switch {
		case ans.status == http.StatusCreated:
			var e struct{ ID, Secret string }
			if err := ans.decode(&e); err != nil {
				s.t.Fatalf("sweep: endpoint of %s: %v", u, err)
			}
			s.keep("webhook secret", e.Secret)
			accepted = append(accepted, endpoint{e.ID, u})
		case ans.status == http.StatusBadRequest || ans.status == http.StatusUnprocessableEntity:
			refusedURLs++
			// The same URL set on an endpoint that exists is refused too.
			if patch := s.call(a.writeKey, jsonRequest("PATCH", "/v1/webhook-endpoints/"+a.endpoint, map[string]any{"url": u})); patch.status/100 != 4 {
				s.t.Errorf("PATCH /v1/webhook-endpoints/:id to %s, which POST refuses: want a 4xx refusal, got %s", u, patch)
			}
		default:
			s.t.Errorf("POST /v1/webhook-endpoints at %s: want 201 or a refusal, got %s", u, ans)
		}
	}
	// The console takes the same URLs through its own form.
	for _, u := range []string{"https://127.0.0.1:" + p + "/console", "https://2130706433:" + p + "/console", "https://[::1]:" + q + "/console",
		"https://localhost.:" + p + "/console"} {
		page := a.admin.post("/console/webhooks", url.Values{"url": {u}, "events": {"transaction.completed"}})
		switch page.status {
		case http.StatusCreated:
			if m := shownOnce.FindSubmatch(page.body); m != nil {
				s.keep("webhook secret", string(m[1]))
			}
			var list struct{ Data []struct{ ID, URL string } }
			s.must(s.call(a.writeKey, get("/v1/webhook-endpoints?limit=500")(a)), http.StatusOK, "endpoints", &list)
			for _, e := range list.Data {
				if e.URL == u {
					accepted = append(accepted, endpoint{e.ID, u})
				}
			}
		case http.StatusUnprocessableEntity:
			refusedURLs++
		default:
			s.t.Errorf("POST /console/webhooks at %s: want 201 or 422, got %s", u, page)
		}
	}
	s.t.Logf("webhook URLs: %d refused at registration, %d taken (their deliveries must not connect)", refusedURLs, len(accepted))

	if len(accepted) > 0 {
		// Events for them: a credit's, and a redelivery of it to one.
		txn := s.credit(a, a.wallet, "sweep-ssrf-"+store.Token(6), 1)
		var events struct {
			Data []struct {
				ID   string
				Data json.RawMessage
			}
		}
		s.must(s.call(a.writeKey, get("/v1/events?type=transaction.completed&limit=500")(a)), http.StatusOK, "events", &events)
		var event string
		for _, e := range events.Data {
			if strings.Contains(string(e.Data), txn) {
				event = e.ID
			}
		}
		if event == "" {
			s.t.Fatalf("sweep: no event of %s", txn)
		}
		s.must(s.call(a.writeKey, jsonRequest("POST", "/v1/events/"+event+"/redeliver", map[string]any{"endpointId": accepted[0].id})),
			http.StatusAccepted, "redeliver", nil)
		s.waitDeliveries(a, accepted[0].id, 2)
		for _, e := range accepted {
			for _, d := range s.waitDeliveries(a, e.id, 1) {
				for _, at := range d.Attempts {
					if at.Error == nil || !slices.Contains(deliveryErrors, *at.Error) || at.StatusCode != nil || at.ResponseExcerpt != nil {
						s.t.Errorf("a delivery to %s was attempted and not refused before connecting: error %s, status %s, response %s",
							e.url, deref(at.Error), deref(at.StatusCode), deref(at.ResponseExcerpt))
					}
					if at.Error != nil && leaksAddress(*at.Error) {
						s.t.Errorf("a delivery's error names an address: %q", *at.Error)
					}
				}
			}
		}
	}
	time.Sleep(200 * time.Millisecond) // a connection in flight lands
	for name, l := range map[string]*listener{"127.0.0.1": v4, "[::1]": v6} {
		if l != nil && l.accepted.Load() != 0 {
			s.t.Errorf("webhook deliveries connected to the sweep's listener on %s:%d %d times", name, l.port, l.accepted.Load())
		}
	}
	for _, e := range accepted {
		s.call(a.writeKey, request{method: "DELETE", path: "/v1/webhook-endpoints/" + e.id})
	}
}

// delivery is a webhook delivery with its attempts, as the API lists it.
type delivery struct {
	ID       string
	Status   string
	Attempts []struct {
		StatusCode      *int
		Error           *string
		ResponseExcerpt *string
	}
}

// waitDeliveries waits until the endpoint has n deliveries, each attempted
// at least once.
func (s *sweep) waitDeliveries(w *tenant, endpointID string, n int) []delivery {
	s.t.Helper()
	var list struct{ Data []delivery }
	s.waitFor("deliveries of "+endpointID, func() bool {
		ans := s.call(w.writeKey, get("/v1/webhook-endpoints/"+endpointID+"/deliveries?limit=500")(w))
		if ans.decode(&list) != nil || len(list.Data) < n {
			return false
		}
		for _, d := range list.Data {
			if len(d.Attempts) == 0 {
				return false
			}
		}
		return true
	})
	return list.Data
}

// leaksAddress reports whether an attempt's error text names an IP address.
func leaksAddress(text string) bool {
	for _, f := range strings.FieldsFunc(text, func(r rune) bool { return r == ' ' || r == ',' || r == '(' || r == ')' }) {
		host := f
		if h, _, err := net.SplitHostPort(f); err == nil {
			host = h
		}
		if _, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
			return true
		}
	}
	return false
}

// deref shows an optional value of an attempt.
func deref[T any](v *T) string {
	if v == nil {
		return "none"
	}
	return fmt.Sprint(*v)
}
