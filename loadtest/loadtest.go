// Package loadtest drives a running Orbt through its public HTTP API, the
// way partners do, and measures it: how fast credits are accepted (202s),
// how fast they are applied end to end, and how long bulk payouts take. It
// then checks the ledger: every balance equals what the completed
// transactions say, and nothing was applied twice.
package loadtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/orbt/orbt/client"
	"github.com/orbt/orbt/ledger"
	"github.com/orbt/orbt/partnerapi"
)

// Scenarios.
const (
	ScenarioSingle = "single" // single credits: accept rate and latency, then duplicate replays
	ScenarioHot    = "hot"    // single credits from one partner balance into many wallets
	ScenarioSpread = "spread" // the same spread over many partners
	ScenarioBulk   = "bulk"   // bulk payouts of BatchSize items
	ScenarioRedeem = "redeem" // gift card redemptions through the sandbox provider
	// ScenarioPartner sends the hot scenario's credits through the
	// Orbt-compatible API: each signed, each answered once final.
	ScenarioPartner = "partner"
)

// Options describe one run.
type Options struct {
	API        string
	Key        string // a write key of a funded workspace; empty: create workspaces with AdminToken
	AdminToken string
	Scenario   string
	Count      int // transactions (or batch items) to submit
	// Concurrency is how many requests are in flight at once.
	Concurrency int
	// Rate paces submissions at this many per second (open loop); 0 sends
	// as fast as Concurrency allows.
	Rate      int
	Wallets   int // wallets per partner
	Partners  int // partners for the spread scenario
	BatchSize int // items per batch for the bulk scenario
	// NewConsumers pays each credit or batch item to a consumer named by
	// its external id, new to the partner, so the wallet is made on the
	// way, instead of into a wallet opened beforehand.
	NewConsumers bool
	// Webhooks subscribes a fast receiver on loopback to every partner's
	// transaction.completed events and measures their delivery: the stack
	// must allow private addresses (ORBT_WEBHOOK_ALLOW_PRIVATE=true).
	Webhooks bool
	// LocalStack reads the CPU and memory of the stack's processes on this
	// machine (orbt, postgres, redis-server) from /proc around the run.
	LocalStack bool
	// Timeout bounds the wait for every transaction to become final.
	Timeout time.Duration
	// CheckLedger, when set, runs the ledger's own invariant scan in the
	// database after the run (the load test and the stack share a machine).
	CheckLedger func(context.Context) error
	Log         io.Writer
}

// Report is what a run measured.
type Report struct {
	Scenario    string  `json:"scenario"`
	Count       int     `json:"count"`
	Concurrency int     `json:"concurrency"`
	Rate        int     `json:"rate,omitempty"`
	Partners    int     `json:"partners"`
	Wallets     int     `json:"wallets"`
	AcceptedPS  float64 `json:"acceptedPerSecond"`
	AppliedPS   float64 `json:"appliedPerSecond"`
	// FinalAfterLastAccept is how long after the last 202 the last
	// transaction became final.
	FinalAfterLastAccept time.Duration `json:"finalAfterLastAcceptNs"`
	AcceptLatency        Percentiles   `json:"acceptLatency"`
	// AcceptToFinal is each transaction's completedAt − createdAt, as the
	// server recorded them.
	AcceptToFinal Percentiles `json:"acceptToFinal"`
	ReplayedPS    float64     `json:"replayedPerSecond,omitempty"`
	ReplayLatency Percentiles `json:"replayLatency"`
	// BatchWall is each batch's time from POST to completed, in the bulk scenario.
	BatchWall Percentiles `json:"batchWall"`
	// BatchAfterAccept is each batch's time from its 202 to completed: the
	// workers' share of BatchWall.
	BatchAfterAccept Percentiles   `json:"batchAfterAccept"`
	BulkWall         time.Duration `json:"bulkWallNs,omitempty"`
	Completed        int           `json:"completed"`
	Failed           int           `json:"failed"`
	Errors           int           `json:"errors"`
	Verified         []string      `json:"verified"`
	// CPU is what the stack's processes spent from the first request to
	// the last transaction final (and, with Webhooks, the last delivery);
	// set with LocalStack.
	CPU *StackCPU `json:"stackCpu,omitempty"`
	// RSS is the resident memory of Orbt's processes after the run, by
	// command (api, worker, dev); set with LocalStack.
	RSS map[string]int64 `json:"rssBytes,omitempty"`
	// Delivered counts the run's transaction.completed events the receiver
	// got, each once (Webhooks).
	Delivered   int     `json:"delivered,omitempty"`
	DeliveredPS float64 `json:"deliveredPerSecond,omitempty"`
	// DeliveryLag is how long after the last transaction was applied
	// (its completedAt) its event's delivery, the run's last, arrived.
	DeliveryLag time.Duration `json:"deliveryLagNs,omitempty"`
	// lastApplied is the latest completedAt of the run's transactions, and
	// lastDelivered when the receiver got the last of their events.
	lastApplied, lastDelivered time.Time
}

// Percentiles of a latency distribution.
type Percentiles struct {
	P50 time.Duration `json:"p50Ns"`
	P90 time.Duration `json:"p90Ns"`
	P99 time.Duration `json:"p99Ns"`
	Max time.Duration `json:"maxNs"`
	N   int           `json:"n"`
}

func percentiles(d []time.Duration) Percentiles {
	if len(d) == 0 {
		return Percentiles{}
	}
	slices.Sort(d)
	at := func(q float64) time.Duration { return d[min(len(d)-1, int(q*float64(len(d))))] }
	return Percentiles{P50: at(0.50), P90: at(0.90), P99: at(0.99), Max: d[len(d)-1], N: len(d)}
}

// Run sets up partners and wallets (not measured), runs the scenario,
// waits for every transaction to become final, and verifies the ledger.
func Run(ctx context.Context, o Options) (Report, error) {
	if err := o.defaults(); err != nil {
		return Report{}, err
	}
	c := newRunner(o)
	r := Report{Scenario: o.Scenario, Count: o.Count, Concurrency: o.Concurrency, Rate: o.Rate, Wallets: o.Wallets}
	run := fmt.Sprintf("lt%d", time.Now().UnixNano())

	partners, err := c.setup(ctx, o, run)
	if err != nil {
		return r, fmt.Errorf("set up: %w", err)
	}
	r.Partners = len(partners)

	var rc *receiver
	if o.Webhooks {
		if rc, err = startReceiver(run); err != nil {
			return r, err
		}
		defer rc.close()
		for i, p := range partners {
			if err := c.subscribe(ctx, rc, p, i); err != nil {
				return r, err
			}
		}
	}
	var before stackSnapshot
	if o.LocalStack {
		before = readStack()
	}
	start := time.Now()
	switch o.Scenario {
	case ScenarioBulk:
		err = c.bulk(ctx, o, run, partners, &r)
	case ScenarioRedeem:
		err = c.redeem(ctx, o, run, partners, &r)
	default:
		err = c.singles(ctx, o, run, partners, &r)
	}
	if err != nil {
		return r, err
	}
	if rc != nil {
		if err := c.awaitDeliveries(ctx, rc, start, &r); err != nil {
			return r, err
		}
	}
	if o.LocalStack {
		after := readStack()
		cpu := after.since(before)
		r.CPU, r.RSS = &cpu, after.rssByRole()
	}
	verify := c.verify
	if o.Scenario == ScenarioRedeem {
		verify = c.verifyRedemptions
	}
	if err := verify(ctx, run, partners, &r); err != nil {
		return r, fmt.Errorf("verify: %w", err)
	}
	if rc != nil {
		r.DeliveryLag = r.lastDelivered.Sub(r.lastApplied)
		r.Verified = append(r.Verified, "every completed credit's event delivered, signature valid, once")
	}
	if o.CheckLedger != nil {
		if err := o.CheckLedger(ctx); err != nil {
			return r, fmt.Errorf("ledger invariants: %w", err)
		}
		r.Verified = append(r.Verified, "ledger invariants (database scan)")
	}
	return r, nil
}

func (o *Options) defaults() error {
	switch o.Scenario {
	case ScenarioSingle, ScenarioHot, ScenarioBulk, ScenarioRedeem, ScenarioPartner:
		o.Partners = 1
	case ScenarioSpread:
		if o.Partners <= 0 {
			o.Partners = 20
		}
	default:
		return fmt.Errorf("unknown scenario %q: want single, hot, spread, bulk, redeem or partner", o.Scenario)
	}
	if o.API == "" {
		return errors.New("--api is required")
	}
	if o.Key == "" && o.AdminToken == "" {
		return errors.New("give --key (a funded workspace's write key) or --admin-token (to create workspaces)")
	}
	if o.Key != "" && o.Partners > 1 {
		return errors.New("the spread scenario creates its partners: give --admin-token instead of --key")
	}
	if o.Key != "" && o.Scenario == ScenarioPartner {
		return errors.New("the partner scenario signs with the signing secret of a workspace it creates: give --admin-token instead of --key")
	}
	if o.NewConsumers && o.Scenario != ScenarioBulk {
		return errors.New("--new-consumers is for the bulk scenario: batch items name their consumer")
	}
	if o.Webhooks && (o.Scenario == ScenarioBulk || o.Scenario == ScenarioRedeem) {
		return errors.New("--webhooks measures single credits: give the single, hot, spread or partner scenario")
	}
	if o.Count <= 0 {
		o.Count = 10_000
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 64
	}
	if o.Wallets <= 0 {
		o.Wallets = min(10_000, max(1, o.Count/10))
	}
	o.Wallets = min(o.Wallets, o.Count)
	if o.BatchSize <= 0 {
		o.BatchSize = 10_000
	}
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Minute
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	return nil
}

// partner is one workspace and the wallets the run pays into.
type partner struct {
	id  string // known when the run created the workspace
	key string
	// signingSecret signs requests to the Orbt-compatible API (known when
	// the run created the workspace).
	signingSecret string
	wallets       []string
	// opening is each wallet's balance before the measured run.
	opening map[string]int64
	partner int64 // partner balance before the measured run
}

// itemAmountMax bounds each credit; amounts are random in 1..itemAmountMax.
const itemAmountMax = 100

// runner drives one run through the shared API client.
type runner struct {
	api *client.Client
	o   Options
}

func newRunner(o Options) *runner {
	return &runner{api: client.New(o.API, "", o.Concurrency*2), o: o}
}

// do sends one request with a JSON body (nil for none) as key and decodes a
// 2xx answer into out.
func (c *runner) do(ctx context.Context, method, path, key string, body, out any) (http.Header, error) {
	return c.send(ctx, method, path, key, body, 0, out)
}

// send sends a body (a value, or JSON already encoded as []byte) and checks
// the status: want, or any 2xx when want is 0.
func (c *runner) send(ctx context.Context, method, path, key string, body any, want int, out any) (http.Header, error) {
	res, err := c.api.WithKey(key).Call(ctx, method, path, body, want, out)
	if res != nil && res.Status == http.StatusTooManyRequests {
		// A load test measures capacity, not the partner's budget.
		return res.Header, fmt.Errorf("%w (the stack rate-limits API keys: start it with ORBT_RATE_LIMIT_WRITE=0 ORBT_RATE_LIMIT_READ=0 to load-test it)", err)
	}
	if res == nil {
		return nil, err
	}
	return res.Header, err
}

// setup creates (or uses) the partners, funds them, and opens their wallets
// with one setup batch each: consumers and wallets made by the bulk API.
func (c *runner) setup(ctx context.Context, o Options, run string) ([]*partner, error) {
	need := int64(o.Count/o.Partners+1)*itemAmountMax + int64(o.Wallets)
	if o.Scenario == ScenarioRedeem {
		need = int64(o.Wallets)*redemptionsPerWallet(o)*redeemAmount + int64(o.Wallets)
	}
	partners := make([]*partner, o.Partners)
	for i := range partners {
		p := &partner{key: o.Key}
		if p.key == "" {
			var created struct{ ID, APIKey, SigningSecret string }
			if _, err := c.do(ctx, "POST", "/admin/v1/workspaces", o.AdminToken,
				map[string]any{"name": fmt.Sprintf("%s-%d", run, i)}, &created); err != nil {
				return nil, fmt.Errorf("create workspace: %w", err)
			}
			p.id, p.key, p.signingSecret = created.ID, created.APIKey, created.SigningSecret
			var funding txn
			if _, err := c.do(ctx, "POST", "/admin/v1/workspaces/"+created.ID+"/fundings", o.AdminToken,
				map[string]any{"referenceId": run + "-funding", "currency": "USD", "amount": need}, &funding); err != nil {
				return nil, fmt.Errorf("fund workspace: %w", err)
			}
			if err := c.awaitTransaction(ctx, p.key, funding.ID); err != nil {
				return nil, fmt.Errorf("fund workspace: %w", err)
			}
		}
		partners[i] = p
	}
	fmt.Fprintf(o.Log, "setup: %d partners, opening %d wallets each\n", len(partners), o.Wallets)
	for _, p := range partners {
		if err := c.openWallets(ctx, o, run, p); err != nil {
			return nil, err
		}
		bal, err := c.partnerBalance(ctx, p)
		if err != nil {
			return nil, err
		}
		if bal < need-int64(o.Wallets) {
			return nil, fmt.Errorf("the workspace holds %d USD minor units; the run needs %d", bal, need)
		}
		p.partner = bal
	}
	return partners, nil
}

// openWallets pays 1 minor unit into each of o.Wallets new consumers, which
// creates their wallets, and collects the wallet ids from the batch.
func (c *runner) openWallets(ctx context.Context, o Options, run string, p *partner) error {
	p.opening = make(map[string]int64, o.Wallets)
	for start := 0; start < o.Wallets; start += o.BatchSize {
		var items []map[string]any
		for i := start; i < min(o.Wallets, start+o.BatchSize); i++ {
			items = append(items, map[string]any{"referenceId": fmt.Sprintf("%s-open-%d", run, i), "type": "credit",
				"consumerExternalId": fmt.Sprintf("%s-member-%d", run, i), "amount": 1, "currency": "USD"})
		}
		var b batch
		if _, err := c.do(ctx, "POST", "/v1/batches", p.key,
			map[string]any{"referenceId": fmt.Sprintf("%s-open-%d", run, start), "items": items}, &b); err != nil {
			return fmt.Errorf("open wallets: %w", err)
		}
		if _, err := c.awaitBatch(ctx, p, b.ID); err != nil {
			return err
		}
		err := c.pages(ctx, p, "/v1/batches/"+b.ID+"/transactions?limit=500", func(t txn) {
			if t.Status == "completed" {
				p.wallets = append(p.wallets, t.WalletID)
				p.opening[t.WalletID] = 1
			}
		})
		if err != nil {
			return err
		}
	}
	if len(p.wallets) != o.Wallets {
		return fmt.Errorf("opened %d of %d wallets", len(p.wallets), o.Wallets)
	}
	return nil
}

type txn struct {
	ID            string     `json:"id"`
	ReferenceID   string     `json:"referenceId"`
	WalletID      string     `json:"walletId"`
	Type          string     `json:"type"`
	Amount        int64      `json:"amount"`
	Status        string     `json:"status"`
	FailureReason *string    `json:"failureReason"`
	CreatedAt     time.Time  `json:"createdAt"`
	CompletedAt   *time.Time `json:"completedAt"`
}

type batch struct {
	ID          string     `json:"id"`
	Status      string     `json:"status"`
	CompletedAt *time.Time `json:"completedAt"`
	Counts      struct {
		Total, Pending, Completed, Failed, Skipped int
	} `json:"counts"`
}

// pages walks a cursor-paginated list of transactions.
func (c *runner) pages(ctx context.Context, p *partner, path string, each func(txn)) error {
	return client.ListAll(ctx, c.api.WithKey(p.key), path, each)
}

func (c *runner) awaitBatch(ctx context.Context, p *partner, id string) (batch, error) {
	deadline := time.Now().Add(c.o.Timeout)
	for {
		var b batch
		if _, err := c.do(ctx, "GET", "/v1/batches/"+id, p.key, nil, &b); err != nil {
			return b, fmt.Errorf("batch %s: %w", id, err)
		}
		if b.Status == "completed" {
			return b, nil
		}
		if time.Now().After(deadline) {
			return b, fmt.Errorf("batch %s still processing after %s: %+v", id, c.o.Timeout, b.Counts)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// awaitTransaction polls one transaction until it is final.
func (c *runner) awaitTransaction(ctx context.Context, key, id string) error {
	deadline := time.Now().Add(c.o.Timeout)
	for {
		var t txn
		if _, err := c.do(ctx, "GET", "/v1/transactions/"+id, key, nil, &t); err != nil {
			return err
		}
		if t.Status != "pending" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("transaction %s still pending after %s", id, c.o.Timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (c *runner) partnerBalance(ctx context.Context, p *partner) (int64, error) {
	var ws struct {
		Balances []struct {
			Currency  string `json:"currency"`
			Available int64  `json:"available"`
		} `json:"balances"`
	}
	if _, err := c.do(ctx, "GET", "/v1/workspace", p.key, nil, &ws); err != nil {
		return 0, err
	}
	for _, b := range ws.Balances {
		if b.Currency == "USD" {
			return b.Available, nil
		}
	}
	return 0, nil
}

// request is one credit the run submits.
type request struct {
	partner *partner
	body    map[string]any
	// raw is body encoded ahead of the run, so the generator spends its
	// share of the machine's cores on sending, not on encoding.
	raw []byte
	// path, when set, is where this request goes instead of the run's
	// path, signed as the Orbt-compatible API wants.
	path string
}

func (c *runner) plan(o Options, run string, partners []*partner) []request {
	rng := rand.New(rand.NewPCG(1, 2))
	reqs := make([]request, o.Count)
	for i := range reqs {
		p := partners[i%len(partners)]
		reqs[i] = request{partner: p, body: map[string]any{
			"referenceId": fmt.Sprintf("%s-t-%d", run, i), "type": "credit",
			"amount": 1 + rng.Int64N(itemAmountMax), "currency": "USD"}}
		if o.NewConsumers {
			reqs[i].body["consumerExternalId"] = fmt.Sprintf("%s-new-%d", run, i)
		} else {
			reqs[i].body["walletId"] = p.wallets[(i/len(partners))%len(p.wallets)]
		}
		reqs[i].raw, _ = json.Marshal(reqs[i].body)
	}
	return reqs
}

// singles submits Count single credits, then waits until they are final.
func (c *runner) singles(ctx context.Context, o Options, run string, partners []*partner, r *Report) error {
	reqs := c.plan(o, run, partners)
	if o.Scenario == ScenarioPartner {
		for i, req := range reqs {
			body := req.body
			reqs[i].path = partnerapi.Prefix + "/wallets/" + body["walletId"].(string) + "/transactions"
			reqs[i].raw, _ = json.Marshal(map[string]any{"referenceId": body["referenceId"], "transactionType": "CREDIT",
				"amount": json.Number(ledger.Currency("USD").FormatMajor(body["amount"].(int64)))})
		}
	}
	err := c.submit(ctx, o, "/v1/transactions", reqs, r, func() error { return c.awaitFinal(ctx, o, run, partners) })
	if err != nil {
		return err
	}

	if o.Scenario == ScenarioSingle {
		// Replays: the same requests again must answer the originals.
		replays := reqs[:min(len(reqs), 20_000)]
		start := time.Now()
		lat, errs, err := c.fire(ctx, o, "/v1/transactions", replays, func(h http.Header) error {
			if h.Get("Idempotent-Replayed") != "true" {
				return errors.New("a replay was not answered as one")
			}
			return nil
		})
		if err != nil {
			return err
		}
		if errs > 0 {
			return fmt.Errorf("%d replays failed", errs)
		}
		r.ReplayedPS = float64(len(replays)) / time.Since(start).Seconds()
		r.ReplayLatency = percentiles(lat)
	}
	return nil
}

// submit posts the run's requests to path (see fire), then waits with
// awaitFinal until every one is final, and records the accept and the
// end-to-end rates.
func (c *runner) submit(ctx context.Context, o Options, path string, reqs []request, r *Report, awaitFinal func() error) error {
	fmt.Fprintf(o.Log, "submitting %d %s, concurrency %d\n", len(reqs), r.unit(), o.Concurrency)
	start := time.Now()
	lat, errs, err := c.fire(ctx, o, path, reqs, func(http.Header) error { return nil })
	if err != nil {
		return err
	}
	lastAccept := time.Now()
	r.AcceptedPS = float64(len(reqs)-errs) / lastAccept.Sub(start).Seconds()
	r.AcceptLatency = percentiles(lat)
	r.Errors = errs
	fmt.Fprintf(o.Log, "accepted %.0f/s; waiting for every one to be final\n", r.AcceptedPS)
	if err := awaitFinal(); err != nil {
		return err
	}
	final := time.Now()
	r.AppliedPS = float64(len(reqs)) / final.Sub(start).Seconds()
	r.FinalAfterLastAccept = final.Sub(lastAccept)
	return nil
}

// fire posts the requests to path from o.Concurrency goroutines, paced at
// o.Rate when set, and returns each 202's latency and the number of failures.
func (c *runner) fire(ctx context.Context, o Options, path string, reqs []request, check func(http.Header) error) ([]time.Duration, int, error) {
	var (
		next     atomic.Int64
		failures atomic.Int64
		firstErr atomic.Value
		lat      = make([]time.Duration, len(reqs))
		wg       sync.WaitGroup
		start    = time.Now()
	)
	for range o.Concurrency {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(reqs) || ctx.Err() != nil {
					return
				}
				if o.Rate > 0 {
					due := start.Add(time.Duration(float64(i) / float64(o.Rate) * float64(time.Second)))
					time.Sleep(time.Until(due))
				}
				t0 := time.Now()
				h, err := c.post(ctx, path, reqs[i])
				lat[i] = time.Since(t0)
				if err == nil {
					err = check(h)
				}
				if err != nil {
					lat[i] = -1
					failures.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
				}
			}
		})
	}
	wg.Wait()
	ok := lat[:0:0]
	for _, d := range lat {
		if d >= 0 {
			ok = append(ok, d)
		}
	}
	if n := failures.Load(); n > 0 {
		fmt.Fprintf(o.Log, "%d requests failed; the first: %v\n", n, firstErr.Load())
		if n == int64(len(reqs)) {
			return nil, int(n), fmt.Errorf("every request failed: %v", firstErr.Load())
		}
	}
	return ok, int(failures.Load()), ctx.Err()
}

// post sends one request of the run: to the native API with the partner's
// key (202), or signed to the Orbt-compatible API, which answers once the
// credit is final (200).
func (c *runner) post(ctx context.Context, path string, req request) (http.Header, error) {
	if req.path == "" {
		return c.send(ctx, "POST", path, req.partner.key, req.raw, http.StatusAccepted, nil)
	}
	p := req.partner
	timestamp := time.Now().UTC().Format(time.RFC3339)
	bodyHash := partnerapi.BodyHash(req.raw)
	res, err := c.api.WithKey("").Do(ctx, "POST", req.path, req.raw, http.Header{
		"X-Api-Key": {p.key}, "X-Client-Id": {p.id}, "X-Timestamp": {timestamp}, "X-Body-Hash": {bodyHash},
		"X-Signature": {partnerapi.Signature(p.signingSecret, "POST", timestamp, p.id, bodyHash)}})
	if err != nil {
		return nil, err
	}
	if res.Status != http.StatusOK {
		return nil, &client.StatusError{Request: "POST " + req.path, Status: res.Status, Body: string(res.Body)}
	}
	return res.Header, nil
}

// awaitFinal polls until no transaction of the run is pending.
func (c *runner) awaitFinal(ctx context.Context, o Options, run string, partners []*partner) error {
	deadline := time.Now().Add(o.Timeout)
	for _, p := range partners {
		for {
			var page struct {
				Data []txn `json:"data"`
			}
			if _, err := c.do(ctx, "GET", "/v1/transactions?status=pending&limit=1", p.key, nil, &page); err != nil {
				return fmt.Errorf("poll pending: %w", err)
			}
			if len(page.Data) == 0 {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("transactions still pending %s after the run", o.Timeout)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	return nil
}

// awaitDeliveries waits for every completed credit's event to reach the
// receiver, and records how fast they did.
func (c *runner) awaitDeliveries(ctx context.Context, rc *receiver, start time.Time, r *Report) error {
	want := r.Count - r.Errors
	got, last := rc.await(ctx, want, 30*time.Second)
	rc.mu.Lock()
	repeats, rejected := rc.repeats, rc.rejected
	rc.mu.Unlock()
	if got < want {
		return fmt.Errorf("webhooks: %d of %d events delivered, none more for 30 s", got, want)
	}
	if rejected > 0 || repeats > 0 {
		return fmt.Errorf("webhooks: %d deliveries failed verification, %d events delivered more than once to a receiver that answered 204", rejected, repeats)
	}
	r.Delivered, r.lastDelivered = got, last
	r.DeliveredPS = float64(got) / last.Sub(start).Seconds()
	return nil
}

// bulk submits Count items in batches of BatchSize, all at once, and times
// each batch from POST to completed.
func (c *runner) bulk(ctx context.Context, o Options, run string, partners []*partner, r *Report) error {
	reqs := c.plan(o, run, partners)
	var chunks [][]request
	for start := 0; start < len(reqs); start += o.BatchSize {
		chunks = append(chunks, reqs[start:min(len(reqs), start+o.BatchSize)])
	}
	// Build the bodies first, so the measured time is the server's.
	bodies := make([][]byte, len(chunks))
	for i, chunk := range chunks {
		items := make([]map[string]any, len(chunk))
		for j, req := range chunk {
			items[j] = req.body
		}
		data, err := json.Marshal(map[string]any{"referenceId": fmt.Sprintf("%s-batch-%d", run, i), "items": items})
		if err != nil {
			return err
		}
		bodies[i] = data
	}
	fmt.Fprintf(o.Log, "submitting %d batches of up to %d items\n", len(chunks), o.BatchSize)
	walls, afterAccept := make([]time.Duration, len(chunks)), make([]time.Duration, len(chunks))
	errs := make([]error, len(chunks))
	var wg sync.WaitGroup
	start := time.Now()
	for i := range chunks {
		wg.Go(func() {
			p := chunks[i][0].partner
			t0 := time.Now()
			var b batch
			if _, errs[i] = c.send(ctx, "POST", "/v1/batches", p.key, bodies[i], http.StatusAccepted, &b); errs[i] != nil {
				return
			}
			accepted := time.Now()
			b, errs[i] = c.awaitBatch(ctx, p, b.ID)
			walls[i], afterAccept[i] = time.Since(t0), time.Since(accepted)
		})
	}
	wg.Wait()
	r.BulkWall = time.Since(start)
	if err := errors.Join(errs...); err != nil {
		return err
	}
	r.BatchWall, r.BatchAfterAccept = percentiles(walls), percentiles(afterAccept)
	r.AcceptedPS = float64(len(reqs)) / r.BulkWall.Seconds()
	r.AppliedPS = r.AcceptedPS
	return nil
}

// verify reads back every transaction of the run and every wallet: each
// referenceId was stored once and is final, and each wallet's and partner's
// balance equals its opening balance plus the completed credits.
func (c *runner) verify(ctx context.Context, run string, partners []*partner, r *Report) error {
	t := newTally(r)
	for _, p := range partners {
		want := maps.Clone(p.opening)
		var paid int64
		err := c.pages(ctx, p, "/v1/transactions?limit=500", func(x txn) {
			if strings.HasPrefix(x.ReferenceID, run+"-t-") && t.completed(x.ReferenceID, x.Status, x.CreatedAt, x.CompletedAt) {
				want[x.WalletID] += x.Amount
				paid += x.Amount
			}
		})
		if err != nil {
			return err
		}
		if err := c.checkWallets(ctx, p, want); err != nil {
			return err
		}
		bal, err := c.partnerBalance(ctx, p)
		if err != nil {
			return err
		}
		if bal != p.partner-paid {
			return fmt.Errorf("partner balance %d, want %d (before %d, paid %d)", bal, p.partner-paid, p.partner, paid)
		}
	}
	if err := t.check("transactions"); err != nil {
		return err
	}
	r.Verified = append(r.Verified, "every referenceId stored once and final",
		"every wallet balance = opening + completed credits", "every partner balance = opening − completed credits")
	return nil
}

// tally counts the run's items as they are read back: each referenceId
// once, each final.
type tally struct {
	r       *Report
	seen    map[string]bool
	toFinal []time.Duration
}

func newTally(r *Report) *tally { return &tally{r: r, seen: make(map[string]bool)} }

// completed counts one item and reports whether it completed.
func (t *tally) completed(ref, status string, created time.Time, completed *time.Time) bool {
	if t.seen[ref] {
		t.r.Errors++ // stored twice
		return false
	}
	t.seen[ref] = true
	if completed != nil {
		t.toFinal = append(t.toFinal, completed.Sub(created))
		if completed.After(t.r.lastApplied) {
			t.r.lastApplied = *completed
		}
	}
	switch status {
	case "completed":
		t.r.Completed++
		return true
	case "failed":
		t.r.Failed++
	default:
		t.r.Errors++
	}
	return false
}

// check fails unless every accepted item was read back once and final,
// and records their accept-to-final times.
func (t *tally) check(what string) error {
	r := t.r
	if got := r.Completed + r.Failed; got != r.Count-r.Errors {
		return fmt.Errorf("%d %s of the run are final, want %d", got, what, r.Count-r.Errors)
	}
	if r.Errors > 0 {
		return fmt.Errorf("%d requests failed or %s were stored twice", r.Errors, what)
	}
	r.AcceptToFinal = percentiles(t.toFinal)
	return nil
}

// checkWallets reads every wallet's balance, 32 at a time: each must be
// what the run expects, with nothing held.
func (c *runner) checkWallets(ctx context.Context, p *partner, want map[string]int64) error {
	ids := make(chan string)
	errc := make(chan error, 1)
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			for id := range ids {
				var w struct {
					Balance int64 `json:"balance"`
					Held    int64 `json:"held"`
				}
				_, err := c.do(ctx, "GET", "/v1/wallets/"+id, p.key, nil, &w)
				if err == nil && (w.Balance != want[id] || w.Held != 0) {
					err = fmt.Errorf("wallet %s balance %d (held %d), completed work says %d and nothing held", id, w.Balance, w.Held, want[id])
				}
				if err != nil {
					select {
					case errc <- err:
					default:
					}
				}
			}
		})
	}
	for id := range want {
		ids <- id
	}
	close(ids)
	wg.Wait()
	select {
	case err := <-errc:
		return err
	default:
		return nil
	}
}

// RowHeader is the header of the Markdown table Row writes rows of.
const RowHeader = `| scenario | count | concurrency | rate | accepted/s | accept p99 | applied/s | final after last 202 | accept→final p50 / p99 | replays/s | bulk wall (batch p99; after 202) | stack CPU ms/txn (Go / Postgres / Redis) | RSS after | webhooks delivered/s (last after last apply) |
|---|---|---|---|---|---|---|---|---|---|---|---|---|---|`

// Row writes the report as one row of a Markdown table.
func (r Report) Row(w io.Writer) {
	ms := func(d time.Duration) string { return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond)) }
	rate, replays, bulk := "–", "–", "–"
	if r.Rate > 0 {
		rate = fmt.Sprintf("%d/s", r.Rate)
	}
	if r.ReplayedPS > 0 {
		replays = fmt.Sprintf("%.0f", r.ReplayedPS)
	}
	accepted, acceptP99, final := fmt.Sprintf("%.0f", r.AcceptedPS), ms(r.AcceptLatency.P99), ms(r.FinalAfterLastAccept)
	if r.Scenario == ScenarioBulk {
		accepted, acceptP99, final = "–", "–", "–"
		bulk = fmt.Sprintf("%s (%s; %s after 202)", ms(r.BulkWall), ms(r.BatchWall.P99), ms(r.BatchAfterAccept.P99))
	}
	scenario := r.Scenario
	if r.Partners > 1 {
		scenario = fmt.Sprintf("%s (%d×%d)", r.Scenario, r.Partners, r.Wallets)
	}
	fmt.Fprintf(w, "| %s | %d | %d | %s | %s | %s | %.0f | %s | %s / %s | %s | %s | %s | %s | %s |\n", scenario, r.Count, r.Concurrency, rate,
		accepted, acceptP99, r.AppliedPS, final, ms(r.AcceptToFinal.P50), ms(r.AcceptToFinal.P99), replays, bulk,
		r.cpuPerItem(), formatRSS(r.RSS), r.deliveries())
}

// cpuPerItem is the stack's CPU per item as "0.41 (0.22 / 0.17 / 0.02)".
func (r Report) cpuPerItem() string {
	if r.CPU == nil {
		return "–"
	}
	total, goMS, pgMS, redisMS := r.CPU.PerItem(r.Count)
	return fmt.Sprintf("%.2f (%.2f / %.2f / %.2f)", total, goMS, pgMS, redisMS)
}

// deliveries is the webhook delivery rate and lag as "3900 (0.2 s)".
func (r Report) deliveries() string {
	if r.Delivered == 0 {
		return "–"
	}
	return fmt.Sprintf("%.0f (%.2f s)", r.DeliveredPS, r.DeliveryLag.Seconds())
}

// unit names what the scenario submits.
func (r Report) unit() string {
	switch r.Scenario {
	case ScenarioBulk:
		return "batch items"
	case ScenarioRedeem:
		return "redemptions"
	case ScenarioPartner:
		return "signed credits (Orbt-compatible API, each answered once final)"
	}
	return "credits"
}

// Print writes the report as an aligned table.
func (r Report) Print(w io.Writer) {
	ms := func(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }
	fmt.Fprintf(w, "scenario        %s: %d %s, %d partner(s), %d wallets each, concurrency %d", r.Scenario, r.Count,
		r.unit(), r.Partners, r.Wallets, r.Concurrency)
	if r.Rate > 0 {
		fmt.Fprintf(w, ", paced at %d/s", r.Rate)
	}
	fmt.Fprintln(w)
	if r.Scenario == ScenarioBulk {
		fmt.Fprintf(w, "bulk wall       %s for all %d items (%.0f items/s applied)\n", ms(r.BulkWall), r.Count, r.AppliedPS)
		fmt.Fprintf(w, "batch wall      p50 %s  p99 %s  max %s  (POST to completed, %d batches)\n",
			ms(r.BatchWall.P50), ms(r.BatchWall.P99), ms(r.BatchWall.Max), r.BatchWall.N)
		fmt.Fprintf(w, "after the 202   p50 %s  p99 %s  max %s  (202 to completed)\n",
			ms(r.BatchAfterAccept.P50), ms(r.BatchAfterAccept.P99), ms(r.BatchAfterAccept.Max))
	} else {
		if r.Scenario == ScenarioPartner {
			fmt.Fprintf(w, "answered        %.0f/s, each answer the final outcome (accept latency below is to the final answer)\n", r.AcceptedPS)
		} else {
			fmt.Fprintf(w, "accepted        %.0f/s\n", r.AcceptedPS)
		}
		fmt.Fprintf(w, "accept latency  p50 %s  p90 %s  p99 %s  max %s\n",
			ms(r.AcceptLatency.P50), ms(r.AcceptLatency.P90), ms(r.AcceptLatency.P99), ms(r.AcceptLatency.Max))
		fmt.Fprintf(w, "applied         %.0f/s end to end; all final %s after the last 202\n", r.AppliedPS, ms(r.FinalAfterLastAccept))
	}
	fmt.Fprintf(w, "accept→final    p50 %s  p90 %s  p99 %s  max %s\n",
		ms(r.AcceptToFinal.P50), ms(r.AcceptToFinal.P90), ms(r.AcceptToFinal.P99), ms(r.AcceptToFinal.Max))
	if r.ReplayedPS > 0 {
		fmt.Fprintf(w, "replays         %.0f/s  p99 %s\n", r.ReplayedPS, ms(r.ReplayLatency.P99))
	}
	if r.Delivered > 0 {
		fmt.Fprintf(w, "webhooks        %d events delivered, %.0f/s; the last %.2f s after the last transaction was applied\n",
			r.Delivered, r.DeliveredPS, r.DeliveryLag.Seconds())
	}
	if r.CPU != nil {
		fmt.Fprintf(w, "stack CPU       %s ms per item (Go / Postgres / Redis), %.1f s in all", r.cpuPerItem(), r.CPU.Total().Seconds())
		for _, role := range slices.Sorted(maps.Keys(r.CPU.ByRole)) {
			fmt.Fprintf(w, "; %s %.1f s", role, r.CPU.ByRole[role].Seconds())
		}
		fmt.Fprintf(w, "\nRSS after       %s\n", formatRSS(r.RSS))
	}
	fmt.Fprintf(w, "outcomes        %d completed, %d failed, %d errors\n", r.Completed, r.Failed, r.Errors)
	fmt.Fprintf(w, "verified        %s\n", strings.Join(r.Verified, "; "))
}
