package chaos_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/orbt/orbt/client"
)

// partner is one workspace of a scenario, driven through the public API
// as a partner drives it.
type partner struct {
	id, key string
	wallets []string
	// endpointID is its webhook endpoint at the scenario's receiver, if any.
	endpointID string
}

// newPartner makes a workspace through the admin API, subscribes it to
// every event at the receiver (when there is one: before any money moves,
// so every event it has is one the receiver must get), funds it with
// funds minor units of USD and opens wallets wallets with one batch.
func newPartner(t *testing.T, ctx context.Context, s *system, tr *traffic, name string, rcv *receiver, funds int64, wallets int) *partner {
	t.Helper()
	var ws struct{ ID, APIKey string }
	mustCall(t, ctx, s.admin(), "POST", "/admin/v1/workspaces", map[string]any{"name": name}, 201, &ws)
	p := &partner{id: ws.ID, key: ws.APIKey}
	api := client.New(s.liveAPI(0).base, p.key, 4)
	if rcv != nil {
		var e struct{ ID, Secret string }
		mustCall(t, ctx, api, "POST", "/v1/webhook-endpoints", map[string]any{"url": rcv.url(p.id),
			"events": []string{"transaction.completed", "transaction.failed", "batch.completed", "redemption.completed", "redemption.failed"}},
			201, &e)
		p.endpointID = e.ID
		rcv.subscribe(p.id, e.Secret)
	}
	res, err := s.admin().Do(ctx, "POST", "/admin/v1/workspaces/"+p.id+"/fundings",
		map[string]any{"referenceId": name + "-funding", "currency": "USD", "amount": funds}, http.Header{"Prefer": {"wait=30"}})
	if err != nil || res.Status != 200 {
		t.Fatalf("fund %s: %v %+v", name, err, res)
	}
	if wallets > 0 {
		items := make([]map[string]any, wallets)
		for i := range items {
			items[i] = map[string]any{"referenceId": fmt.Sprintf("%s-open-%d", name, i), "type": "credit",
				"consumerExternalId": fmt.Sprintf("%s-member-%d", name, i), "amount": 1, "currency": "USD"}
		}
		b := tr.batch(t, ctx, s, p, name+"-open", items)
		awaitBatch(t, ctx, api, b)
		for _, txn := range listAll[struct{ WalletID, Status string }](t, ctx, api, "/v1/batches/"+b+"/transactions?limit=500") {
			if txn.Status != "completed" {
				t.Fatalf("opening %s's wallets: a credit %s", name, txn.Status)
			}
			p.wallets = append(p.wallets, txn.WalletID)
		}
		if len(p.wallets) != wallets {
			t.Fatalf("opened %d of %d wallets", len(p.wallets), wallets)
		}
	}
	return p
}

func mustCall(t *testing.T, ctx context.Context, c *client.Client, method, path string, body any, want int, out any) {
	t.Helper()
	if _, err := c.Call(ctx, method, path, body, want, out); err != nil {
		t.Fatal(err)
	}
}

// listAll reads every page of a list (path has its query already).
func listAll[T any](t *testing.T, ctx context.Context, c *client.Client, path string) []T {
	t.Helper()
	var all []T
	if err := client.ListAll(ctx, c, path, func(item T) { all = append(all, item) }); err != nil {
		t.Fatal(err)
	}
	return all
}

// awaitBatch waits until a batch is completed.
func awaitBatch(t *testing.T, ctx context.Context, c *client.Client, id string) {
	t.Helper()
	for {
		var b struct{ Status string }
		mustCall(t, ctx, c, "GET", "/v1/batches/"+id, nil, 200, &b)
		if b.Status == "completed" {
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("batch %s: %s when the scenario's time ran out", id, b.Status)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// traffic sends a scenario's requests as a careful partner does: through
// whichever api process is up, again with the same referenceId after a
// 503 (waiting as Retry-After says, up to a second) or a broken
// connection, until the answer is final. It counts every answer.
type traffic struct {
	mu       sync.Mutex
	clients  map[string]*client.Client
	statuses map[int]int
	// brokenConnections counts requests that got no answer at all.
	brokenConnections int
	// noRetryAfter counts 503s without Retry-After.
	noRetryAfter int
	// accepted holds each referenceId answered 2xx, by workspace.
	accepted map[string]map[string]bool
	// credits holds, by workspace and referenceId, each credit the run
	// sent into a wallet that could take it: each must be completed, as sent.
	credits map[string]map[string]sentCredit
	// refused counts the load's 4xx answers: none is expected.
	refused int
	done    atomic.Int64
}

// sentCredit is what a credit asked for.
type sentCredit struct {
	wallet string
	amount int64
}

func newTraffic() *traffic {
	return &traffic{clients: map[string]*client.Client{}, statuses: map[int]int{}, accepted: map[string]map[string]bool{},
		credits: map[string]map[string]sentCredit{}}
}

// accept records a referenceId answered 2xx (tr.mu held).
func (tr *traffic) accept(workspace, ref string) {
	if tr.accepted[workspace] == nil {
		tr.accepted[workspace] = map[string]bool{}
	}
	tr.accepted[workspace][ref] = true
}

// expectCredit records a credit that must complete as sent.
func (tr *traffic) expectCredit(workspace, ref, wallet string, amount int64) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if tr.credits[workspace] == nil {
		tr.credits[workspace] = map[string]sentCredit{}
	}
	tr.credits[workspace][ref] = sentCredit{wallet, amount}
}

func (tr *traffic) client(base string) *client.Client {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	c, ok := tr.clients[base]
	if !ok {
		c = client.New(base, "", 128)
		tr.clients[base] = c
	}
	return c
}

// retryAfterMax caps the driver's wait after a 503: a partner polling
// harder than Retry-After asks, so the suite sees the service come back
// within a second.
const retryAfterMax = time.Second

// send sends one request until it has a final answer: 2xx or 4xx (both
// returned), or the context ends (nil). Each attempt goes to the next api
// process that is up.
func (tr *traffic) send(ctx context.Context, s *system, p *partner, method, path string, body []byte, header http.Header, ref string) *client.Response {
	return tr.sendVia(ctx, func(attempt int) *orbtProcess { return s.liveAPI(int(tr.done.Load()) + attempt) },
		p, method, path, body, header, ref)
}

// sendVia is send through the api process pick names for each attempt.
func (tr *traffic) sendVia(ctx context.Context, pick func(attempt int) *orbtProcess, p *partner, method, path string, body []byte, header http.Header, ref string) *client.Response {
	backoff := 20 * time.Millisecond
	for attempt := 0; ctx.Err() == nil; attempt++ {
		api := pick(attempt)
		res, err := tr.client(api.base).WithKey(p.key).Do(ctx, method, path, body, header)
		tr.mu.Lock()
		switch {
		case err != nil:
			tr.brokenConnections++
		default:
			tr.statuses[res.Status]++
			if res.Status == http.StatusServiceUnavailable && res.Header.Get("Retry-After") == "" {
				tr.noRetryAfter++
			}
			if res.Status < 300 && ref != "" {
				tr.accept(p.id, ref)
			}
			if res.Status >= 400 && res.Status < 500 {
				tr.refused++
			}
		}
		tr.mu.Unlock()
		if err == nil && res.Status < 500 {
			return res
		}
		wait := backoff
		if err == nil {
			if secs, perr := strconv.Atoi(res.Header.Get("Retry-After")); perr == nil {
				wait = min(max(time.Duration(secs)*time.Second, backoff), retryAfterMax)
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
		backoff = min(2*backoff, 500*time.Millisecond)
	}
	return nil
}

// credit sends one credit, which must complete as sent.
func (tr *traffic) credit(ctx context.Context, s *system, p *partner, ref, wallet string, amount int64) *client.Response {
	tr.expectCredit(p.id, ref, wallet, amount)
	body, _ := json.Marshal(map[string]any{"referenceId": ref, "type": "credit", "walletId": wallet, "amount": amount, "currency": "USD"})
	res := tr.send(ctx, s, p, "POST", "/v1/transactions", body, nil, ref)
	if res == nil {
		tr.unexpectCredit(p.id, ref) // the run stopped sending it, not Orbt
	}
	return res
}

// batch submits a batch (its items' referenceIds count as accepted with
// it) and returns its id.
func (tr *traffic) batch(t *testing.T, ctx context.Context, s *system, p *partner, ref string, items []map[string]any) string {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"referenceId": ref, "items": items})
	res := tr.send(ctx, s, p, "POST", "/v1/batches", body, nil, "")
	if res == nil || res.Status != http.StatusAccepted && res.Status != http.StatusOK {
		t.Fatalf("batch %s: %+v", ref, res)
	}
	var b struct{ ID string }
	if err := res.Decode(&b); err != nil {
		t.Fatal(err)
	}
	tr.mu.Lock()
	for _, it := range items {
		tr.accept(p.id, it["referenceId"].(string))
	}
	tr.mu.Unlock()
	return b.ID
}

// run calls each(i) for i in [0, n) from concurrency goroutines, paced at
// rate a second when rate > 0, counting in tr.done as each returns.
func (tr *traffic) run(ctx context.Context, n, concurrency, rate int, each func(i int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range concurrency {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				if rate > 0 {
					time.Sleep(time.Until(start.Add(time.Duration(float64(i) / float64(rate) * float64(time.Second)))))
				}
				each(i)
				tr.done.Add(1)
			}
		})
	}
	wg.Wait()
}

// awaitDone waits until at least n requests are done.
func (tr *traffic) awaitDone(ctx context.Context, n int) {
	for tr.done.Load() < int64(n) && ctx.Err() == nil {
		time.Sleep(5 * time.Millisecond)
	}
}

// answers describes every answer by status, for failure messages and figures.
func (tr *traffic) answers() string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	var parts []string
	for _, st := range slices.Sorted(maps.Keys(tr.statuses)) {
		parts = append(parts, fmt.Sprintf("%d×%d", tr.statuses[st], st))
	}
	if tr.brokenConnections > 0 {
		parts = append(parts, fmt.Sprintf("%d broken connections", tr.brokenConnections))
	}
	return strings.Join(parts, ", ")
}

// badAnswers counts 5xx answers other than 503, 503s without
// Retry-After, and 4xx answers to the load (which is well formed and
// funded): none may ever happen.
func (tr *traffic) badAnswers() error {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	var errs []error
	if tr.refused > 0 {
		errs = append(errs, fmt.Errorf("%d requests refused with a 4xx", tr.refused))
	}
	for st, n := range tr.statuses {
		if st >= 500 && st != http.StatusServiceUnavailable {
			errs = append(errs, fmt.Errorf("%d answers %d", n, st))
		}
	}
	if tr.noRetryAfter > 0 {
		errs = append(errs, fmt.Errorf("%d answers 503 without Retry-After", tr.noRetryAfter))
	}
	return errors.Join(errs...)
}

// unexpectCredit forgets a credit the run stopped sending.
func (tr *traffic) unexpectCredit(workspace, ref string) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	delete(tr.credits[workspace], ref)
}
