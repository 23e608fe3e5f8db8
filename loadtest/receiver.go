package loadtest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/orbt/orbt/webhooksig"
)

// receiver is a fast webhook receiver on loopback, as a partner's would be
// at its best: it verifies every delivery's signature with its partner's
// endpoint secret, answers 204 at once, and records when each of the run's
// transaction.completed events first arrived. It measures whether
// deliveries keep up with the ledger.
type receiver struct {
	srv      *http.Server
	url      string
	run      string
	mu       sync.Mutex
	secrets  map[string]string    // by partner path
	first    map[string]time.Time // by webhook-id, the run's completed credits only
	last     time.Time
	repeats  int // deliveries of a webhook-id already delivered
	rejected int // signature or body refused
	arrived  chan struct{}
}

func startReceiver(run string) (*receiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("webhook receiver: %w", err)
	}
	rc := &receiver{url: "http://" + ln.Addr().String(), run: run, secrets: make(map[string]string),
		first: make(map[string]time.Time), arrived: make(chan struct{}, 1)}
	rc.srv = &http.Server{Handler: rc, ReadHeaderTimeout: 5 * time.Second}
	go rc.srv.Serve(ln)
	return rc, nil
}

func (rc *receiver) close() { rc.srv.Close() }

// subscribe registers a partner's endpoint, subscribed to
// transaction.completed, at a path of its own.
func (c *runner) subscribe(ctx context.Context, rc *receiver, p *partner, i int) error {
	path := fmt.Sprintf("/p%d", i)
	var ep struct{ Secret string }
	if _, err := c.do(ctx, "POST", "/v1/webhook-endpoints", p.key,
		map[string]any{"url": rc.url + path, "events": []string{"transaction.completed"}}, &ep); err != nil {
		return fmt.Errorf("webhook endpoint (the stack must allow private addresses: ORBT_WEBHOOK_ALLOW_PRIVATE=true): %w", err)
	}
	rc.mu.Lock()
	rc.secrets[path] = ep.Secret
	rc.mu.Unlock()
	return nil
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	now := time.Now()
	rc.mu.Lock()
	secret := rc.secrets[r.URL.Path]
	rc.mu.Unlock()
	var event struct {
		Type string `json:"type"`
		Data struct {
			ReferenceID string `json:"referenceId"`
		} `json:"data"`
	}
	if err == nil {
		err = webhooksig.Verify(body, r.Header, secret)
	}
	if err == nil {
		err = json.Unmarshal(body, &event)
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if err != nil {
		rc.rejected++
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	w.WriteHeader(http.StatusNoContent)
	if event.Type != "transaction.completed" || !strings.HasPrefix(event.Data.ReferenceID, rc.run+"-t-") {
		return
	}
	id := r.Header.Get(webhooksig.HeaderID)
	if _, seen := rc.first[id]; seen {
		rc.repeats++
		return
	}
	rc.first[id] = now
	rc.last = now
	select {
	case rc.arrived <- struct{}{}:
	default:
	}
}

// await waits until n of the run's events have arrived, or nothing arrived
// for idle, and returns how many did and when the last one did.
func (rc *receiver) await(ctx context.Context, n int, idle time.Duration) (int, time.Time) {
	for {
		rc.mu.Lock()
		got, last := len(rc.first), rc.last
		rc.mu.Unlock()
		if got >= n {
			return got, last
		}
		select {
		case <-rc.arrived:
		case <-time.After(idle):
			return got, last
		case <-ctx.Done():
			return got, last
		}
	}
}
