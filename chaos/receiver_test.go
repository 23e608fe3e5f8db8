package chaos_test

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orbt/orbt/webhooksig"
)

// receiverMode is how the receiver answers.
type receiverMode int

const (
	receiverUp   receiverMode = iota // 204 at once
	receiverDown                     // not listening: connections refused
	receiverSlow                     // 204 after slowAnswer
)

// slowAnswer is how long a slow receiver takes: within Orbt's 15 s.
const slowAnswer = 10 * time.Second

// receiver is a partner's webhook receiver on loopback, one path per
// workspace. It verifies every attempt's signature and remembers, per
// workspace and webhook-id, the body and how often it answered 2xx.
type receiver struct {
	t    *testing.T
	addr string

	mu      sync.Mutex
	mode    receiverMode
	srv     *http.Server
	secrets map[string]string // workspace → endpoint secret
	// delivered counts 2xx answers per workspace and webhook-id.
	delivered map[string]map[string]int
	bodies    map[string][]byte // webhook-id → the body first seen
	attempts  int
	problems  []string // bad signatures, a webhook-id with two bodies
}

func newReceiver(t *testing.T) *receiver {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &receiver{t: t, addr: ln.Addr().String(), secrets: map[string]string{},
		delivered: map[string]map[string]int{}, bodies: map[string][]byte{}}
	r.serve(ln)
	t.Cleanup(func() { r.setMode(receiverDown) })
	return r
}

func (r *receiver) url(workspace string) string { return "http://" + r.addr + "/hooks/" + workspace }

func (r *receiver) subscribe(workspace, secret string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.secrets[workspace] = secret
}

func (r *receiver) serve(ln net.Listener) {
	r.srv = &http.Server{Handler: http.HandlerFunc(r.handle)}
	go r.srv.Serve(ln)
}

// setMode switches how the receiver answers; down closes the listener
// (and every connection), up and slow listen again on the same address.
func (r *receiver) setMode(m receiverMode) {
	r.mu.Lock()
	defer r.mu.Unlock()
	was := r.mode
	r.mode = m
	switch {
	case m == receiverDown && was != receiverDown:
		r.srv.Close()
	case m != receiverDown && was == receiverDown:
		var ln net.Listener
		var err error
		for range 100 { // the port may linger a moment after the close
			if ln, err = net.Listen("tcp", r.addr); err == nil {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if err != nil {
			r.t.Errorf("receiver listen again: %v", err)
			return
		}
		r.serve(ln)
	}
}

func (r *receiver) handle(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		return
	}
	workspace := strings.TrimPrefix(req.URL.Path, "/hooks/")
	id := req.Header.Get("webhook-id")
	r.mu.Lock()
	r.attempts++
	secret, mode := r.secrets[workspace], r.mode
	if err := webhooksig.Verify(body, req.Header, secret); err != nil {
		r.problems = append(r.problems, fmt.Sprintf("%s: %s: signature: %v", workspace, id, err))
	}
	if first, ok := r.bodies[id]; ok && !bytes.Equal(first, body) {
		r.problems = append(r.problems, fmt.Sprintf("%s: webhook-id %s came with two bodies", workspace, id))
	} else if !ok {
		r.bodies[id] = body
	}
	r.mu.Unlock()
	if mode == receiverSlow {
		select {
		case <-time.After(slowAnswer):
		case <-req.Context().Done():
			return
		}
	}
	r.mu.Lock()
	if r.delivered[workspace] == nil {
		r.delivered[workspace] = map[string]int{}
	}
	r.delivered[workspace][id]++
	r.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// check fails the test on any problem seen so far.
func (r *receiver) check() {
	r.t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range r.problems[:min(len(r.problems), 10)] {
		r.t.Error("receiver: " + p)
	}
	if len(r.problems) > 10 {
		r.t.Errorf("receiver: %d problems in all", len(r.problems))
	}
}

// counts is how many events were answered 2xx, and how many of them more
// than once, over every workspace.
func (r *receiver) counts() (events, doubled int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, ids := range r.delivered {
		for _, n := range ids {
			events++
			if n > 1 {
				doubled++
			}
		}
	}
	return events, doubled
}

// reached is how many requests reached the receiver.
func (r *receiver) reached() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.attempts
}

// has reports whether the receiver answered 2xx to the event for workspace.
func (r *receiver) has(workspace, id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.delivered[workspace][id] > 0
}
