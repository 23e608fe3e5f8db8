package worker_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/orbt/orbt/app"
	"github.com/orbt/orbt/ledger"
	"github.com/orbt/orbt/tasks"
	"github.com/orbt/orbt/testenv"
	"github.com/orbt/orbt/teststack"
	"github.com/orbt/orbt/webhook"
	"github.com/orbt/orbt/webhooksig"
	"github.com/orbt/orbt/workspace"
)

// redisDB is this package's Redis database index (see the Makefile).
const redisDB = 2

var db *testenv.Database

func TestMain(m *testing.M) { os.Exit(testenv.Main(m, "worker", &db)) }

// fastSchedule retries in tens of milliseconds so tests see every attempt.
var fastSchedule = []time.Duration{50 * time.Millisecond, 50 * time.Millisecond, 50 * time.Millisecond}

type harness struct {
	t      *testing.T
	ledger *ledger.Ledger
	hooks  *webhook.Store
	queue  *tasks.Enqueuer
	ws     string
	wallet string
}

var (
	sharedOnce  sync.Once
	sharedStack *teststack.Stack
)

// newHarness returns a funded workspace with one wallet, served by the
// package's one stack (the whole process, worker included), shared by its
// tests (they run one after another).
func newHarness(t *testing.T) *harness {
	t.Helper()
	ctx := context.Background()
	sharedOnce.Do(func() {
		s, err := teststack.New(db.Pool, testenv.AsynqRedis(testenv.Redis(t, redisDB)), teststack.Options{
			Settings: app.Settings{WebhookRetrySchedule: fastSchedule, WorkerConcurrency: 10}})
		if err != nil {
			t.Fatal(err)
		}
		sharedStack = s
	})
	a := sharedStack.App
	h := &harness{t: t, ledger: a.Ledger, hooks: a.Webhooks, queue: a.Enqueuer}
	created, err := a.Workspaces.CreateWorkspace(ctx, "hooks")
	if err != nil {
		t.Fatal(err)
	}
	h.ws = created.ID
	seed, _, err := h.ledger.Fund(ctx, h.ws, "seed", "USD", 1_000_000)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.ledger.ApplyLane(ctx, seed.LaneID()); err != nil {
		t.Fatal(err)
	}
	consumer, err := a.Workspaces.CreateConsumer(ctx, h.ws, workspace.Consumer{ExternalID: "c1"})
	if err != nil {
		t.Fatal(err)
	}
	w, err := h.ledger.CreateWallet(ctx, h.ws, consumer.ID, ledger.WalletStandard, "USD", nil)
	if err != nil {
		t.Fatal(err)
	}
	h.wallet = w.ID
	return h
}

// credit submits a credit and enqueues it, as the API does.
func (h *harness) credit(ref string, amount int64) ledger.Transaction {
	h.t.Helper()
	txn, _, err := h.ledger.Submit(context.Background(), ledger.TransactionRequest{WorkspaceID: h.ws, ReferenceID: ref,
		Type: ledger.TypeCredit, WalletID: h.wallet, Amount: amount, Currency: "USD"})
	if err != nil {
		h.t.Fatal(err)
	}
	h.queue.TransactionAccepted(context.Background(), txn.ID, txn.LaneID())
	return txn
}

func (h *harness) endpoint(url string, events ...string) webhook.Endpoint {
	h.t.Helper()
	if len(events) == 0 {
		events = []string{"transaction.completed", "transaction.failed"}
	}
	e, err := h.hooks.CreateEndpoint(context.Background(), h.ws, url, events, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	return e
}

// deliveries waits until the endpoint has n deliveries, none pending.
func (h *harness) deliveries(endpointID string, n int) []webhook.Delivery {
	h.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		list, err := h.hooks.Deliveries(context.Background(), h.ws, endpointID, "", 1000)
		if err != nil {
			h.t.Fatal(err)
		}
		settled := len(list) == n
		for _, d := range list {
			settled = settled && d.Status != webhook.DeliveryPending
		}
		if settled {
			return list
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("endpoint %s: %d deliveries %+v, want %d settled", endpointID, len(list), list, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// receiver records every request and answers with status(n) for the n-th.
type receiver struct {
	mu       sync.Mutex
	requests []received
	status   func(n int) int
	srv      *httptest.Server
}

type received struct {
	header http.Header
	body   []byte
}

func newReceiver(t *testing.T, status func(n int) int) *receiver {
	r := &receiver{status: status}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.requests = append(r.requests, received{header: req.Header.Clone(), body: body})
		n := len(r.requests)
		r.mu.Unlock()
		w.WriteHeader(r.status(n))
		fmt.Fprint(w, "receiver says hi")
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) got() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.requests...)
}

func TestDeliveryIsSignedAndRetriedUntilTheReceiverAccepts(t *testing.T) {
	h := newHarness(t)
	rcv := newReceiver(t, func(n int) int {
		if n <= 2 {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	})
	ep := h.endpoint(rcv.srv.URL)
	txn := h.credit("hook-1", 500)

	d := h.deliveries(ep.ID, 1)[0]
	if d.Status != webhook.DeliverySucceeded || d.Attempts != 3 || len(d.History) != 3 {
		t.Fatalf("delivery %+v", d)
	}
	if *d.History[0].StatusCode != 500 || *d.History[2].StatusCode != 200 || *d.History[2].ResponseExcerpt != "receiver says hi" {
		t.Errorf("attempt history %+v", d.History)
	}
	reqs := rcv.got()
	if len(reqs) != 3 {
		t.Fatalf("receiver got %d requests, want 3", len(reqs))
	}
	for i, r := range reqs {
		if r.header.Get("webhook-id") != d.EventID {
			t.Errorf("attempt %d webhook-id %q, want the event id %s", i+1, r.header.Get("webhook-id"), d.EventID)
		}
		if err := webhooksig.Verify(r.body, r.header, ep.Secret); err != nil {
			t.Errorf("attempt %d does not verify: %v", i+1, err)
		}
	}
	var event struct {
		ID   string             `json:"id"`
		Type string             `json:"type"`
		Data ledger.Transaction `json:"data"`
	}
	if err := json.Unmarshal(reqs[2].body, &event); err != nil {
		t.Fatal(err)
	}
	if event.Type != "transaction.completed" || event.Data.ID != txn.ID || event.Data.Status != "completed" || event.Data.Amount != 500 {
		t.Errorf("event %+v", event)
	}
}

func TestReceiverDownForTheWholeScheduleThenRedelivered(t *testing.T) {
	h := newHarness(t)
	var up sync.Mutex
	down := true
	rcv := newReceiver(t, func(int) int {
		up.Lock()
		defer up.Unlock()
		if down {
			return http.StatusServiceUnavailable
		}
		return http.StatusNoContent
	})
	ep := h.endpoint(rcv.srv.URL)
	h.credit("hook-down", 100)
	d := h.deliveries(ep.ID, 1)[0]
	if d.Status != webhook.DeliveryFailed || d.Attempts != len(fastSchedule)+1 {
		t.Fatalf("after the schedule: %+v", d)
	}

	up.Lock()
	down = false
	up.Unlock()
	ids, err := h.hooks.Redeliver(context.Background(), ledger.EventRef{ID: d.EventID, WorkspaceID: h.ws, Type: "transaction.completed"}, "")
	if err != nil || len(ids) != 1 {
		t.Fatalf("redeliver: %v %v", ids, err)
	}
	h.queue.Deliveries(context.Background(), ids)
	list := h.deliveries(ep.ID, 2)
	if list[0].Status != webhook.DeliverySucceeded || list[0].EventID != d.EventID {
		t.Errorf("redelivery %+v", list[0])
	}
	reqs := rcv.got()
	if last := reqs[len(reqs)-1]; last.header.Get("webhook-id") != d.EventID {
		t.Errorf("redelivery webhook-id %q, want %s", last.header.Get("webhook-id"), d.EventID)
	}
}

func TestGoneDisablesTheEndpoint(t *testing.T) {
	h := newHarness(t)
	rcv := newReceiver(t, func(int) int { return http.StatusGone })
	ep := h.endpoint(rcv.srv.URL)
	h.credit("hook-gone", 100)
	if d := h.deliveries(ep.ID, 1)[0]; d.Status != webhook.DeliveryFailed || d.Attempts != 1 {
		t.Fatalf("delivery to a 410 endpoint: %+v", d)
	}
	got, err := h.hooks.Endpoint(context.Background(), h.ws, ep.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Enabled || got.DisabledReason == nil {
		t.Errorf("endpoint after 410: %+v", got)
	}
	// A disabled endpoint gets no new deliveries.
	h.credit("hook-gone-2", 100)
	time.Sleep(300 * time.Millisecond)
	if n := len(rcv.got()); n != 1 {
		t.Errorf("disabled endpoint got %d requests, want 1", n)
	}
}

func TestRedirectsAreNotFollowed(t *testing.T) {
	h := newHarness(t)
	target := newReceiver(t, func(int) int { return http.StatusOK })
	redirector := httptest.NewServer(http.RedirectHandler(target.srv.URL, http.StatusFound))
	defer redirector.Close()
	ep := h.endpoint(redirector.URL)
	h.credit("hook-redirect", 100)
	d := h.deliveries(ep.ID, 1)[0]
	if d.Status != webhook.DeliveryFailed || *d.History[0].StatusCode != http.StatusFound ||
		*d.History[0].Error != webhook.ErrorHTTPStatus {
		t.Errorf("redirected delivery %+v %+v", d, d.History[0])
	}
	if n := len(target.got()); n != 0 {
		t.Errorf("redirect target got %d requests", n)
	}
}

// Private addresses are refused at registration and, for names that
// resolve to them, at dial time.
func TestPrivateAddressesAreRefused(t *testing.T) {
	h := newHarness(t)
	strict := webhook.NewStore(db.Pool, sharedStack.App.Sealer, false)
	for _, u := range []string{"http://example.com/hook", "https://127.0.0.1/hook", "https://10.1.2.3/x",
		"https://169.254.169.254/latest", "https://[::1]/x", "https://localhost/x", "https://user:pw@example.com/", "ftp://example.com",
		"https://[2002:a00:1::1]/6to4", "https://[2001:0:a00:1::1]/teredo", "https://[fec0::1]/site-local"} {
		if err := strict.ValidateURL(u); err == nil {
			t.Errorf("%s accepted", u)
		}
	}
	// Link-local and cloud metadata addresses stay refused when private
	// addresses are allowed for development.
	permissive := webhook.NewStore(db.Pool, sharedStack.App.Sealer, true)
	for _, u := range []string{"http://169.254.169.254/latest/meta-data", "http://[fe80::1]/x", "http://[fd00:ec2::254]/x",
		"http://[64:ff9b::a9fe:a9fe]/nat64", "http://[2002:a9fe:a9fe::1]/6to4",
		"http://[fe80::1%25eth0]/zoned", "http://[64:ff9b:1::a9fe:a9fe]/local-nat64"} {
		if err := permissive.ValidateURL(u); err == nil {
			t.Errorf("%s accepted with private addresses allowed", u)
		}
	}
	if err := permissive.ValidateURL("http://10.1.2.3/x"); err != nil {
		t.Errorf("private address refused with private addresses allowed: %v", err)
	}
	if err := strict.ValidateURL("https://hooks.example.com/orbt"); err != nil {
		t.Errorf("public https URL refused: %v", err)
	}

	rcv := newReceiver(t, func(int) int { return http.StatusOK })
	// A name passes registration; the dialer sees the loopback address it
	// resolves to and refuses it. The endpoint subscribes to nothing the
	// shared (permissive) worker would send; the strict sender below makes
	// the one attempt.
	url := strings.Replace(rcv.srv.URL, "127.0.0.1", "localhost", 1)
	ep, err := strict.CreateEndpoint(context.Background(), h.ws, url, []string{"batch.completed"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	txn := h.credit("hook-private", 100)
	var eventID string
	deadline := time.Now().Add(10 * time.Second)
	for eventID == "" {
		events, err := h.ledger.Events(context.Background(), h.ws, "transaction.completed", "", 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range events {
			if strings.Contains(string(e.Data), txn.ID) {
				eventID = e.ID
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("no event")
		}
		time.Sleep(20 * time.Millisecond)
	}
	ids, err := strict.Redeliver(context.Background(), ledger.EventRef{ID: eventID, WorkspaceID: h.ws, Type: "transaction.completed"}, ep.ID)
	if err != nil || len(ids) != 1 {
		t.Fatalf("redeliver: %v %v", ids, err)
	}
	res, err := webhook.NewSender(strict, h.ledger.EventsByID, nil).Deliver(context.Background(), ids[0])
	if err != nil {
		t.Fatal(err)
	}
	if res.Succeeded || res.Attempt != 1 {
		t.Errorf("delivery to a loopback address with private addresses refused: %+v", res)
	}
	list, _ := strict.Deliveries(context.Background(), h.ws, ep.ID, "", 10)
	if len(list) != 1 || len(list[0].History) != 1 || list[0].History[0].Error == nil ||
		*list[0].History[0].Error != webhook.ErrorBlockedAddress {
		t.Errorf("attempt not refused at dial: %+v", list)
	}
	if n := len(rcv.got()); n != 0 {
		t.Errorf("loopback receiver got %d requests", n)
	}
}

func TestRotatedSecretSignsAlongsideTheOld(t *testing.T) {
	h := newHarness(t)
	rcv := newReceiver(t, func(int) int { return http.StatusOK })
	ep := h.endpoint(rcv.srv.URL)
	rotated, err := h.hooks.RotateSecret(context.Background(), h.ws, ep.ID)
	if err != nil {
		t.Fatal(err)
	}
	h.credit("hook-rotate", 100)
	h.deliveries(ep.ID, 1)
	r := rcv.got()[0]
	if n := len(strings.Fields(r.header.Get("webhook-signature"))); n != 2 {
		t.Errorf("%d signatures during rotation, want 2", n)
	}
	for _, secret := range []string{ep.Secret, rotated.Secret} {
		if err := webhooksig.Verify(r.body, r.header, secret); err != nil {
			t.Errorf("secret %s: %v", secret[:10], err)
		}
	}
}

// Five hundred events to one endpoint: each delivered exactly once, each
// with one attempt record.
func TestManyEventsDeliveredExactlyOnce(t *testing.T) {
	h := newHarness(t)
	rcv := newReceiver(t, func(int) int { return http.StatusOK })
	ep := h.endpoint(rcv.srv.URL, "transaction.completed")
	const events = 500
	for i := range events {
		h.credit(fmt.Sprintf("bulk-hook-%d", i), 1)
	}
	list := h.deliveries(ep.ID, events)
	seen := map[string]int{}
	for _, r := range rcv.got() {
		seen[r.header.Get("webhook-id")]++
	}
	if len(seen) != events {
		t.Errorf("receiver saw %d distinct events, want %d", len(seen), events)
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("event %s delivered %d times", id, n)
		}
	}
	for _, d := range list {
		if d.Status != webhook.DeliverySucceeded || len(d.History) != 1 {
			t.Errorf("delivery %s: %s with %d attempts", d.ID, d.Status, len(d.History))
		}
	}
	if err := h.hooks.CheckInvariants(context.Background()); err != nil {
		t.Error(err)
	}
}

// A failed attempt tells the partner what kind of failure it was, never
// the address the endpoint's name resolved to.
func TestDeliveryErrorsNameACategoryNotAnAddress(t *testing.T) {
	h := newHarness(t)
	closed := httptest.NewServer(http.NotFoundHandler())
	url := closed.URL
	closed.Close() // nothing listens there now
	ep := h.endpoint(url)
	h.credit("hook-refused", 100)
	d := h.deliveries(ep.ID, 1)[0]
	for d.Status == webhook.DeliveryPending {
		time.Sleep(20 * time.Millisecond)
		d = h.deliveries(ep.ID, 1)[0]
	}
	if len(d.History) == 0 || d.History[0].Error == nil || *d.History[0].Error != webhook.ErrorConnectionRefused {
		t.Fatalf("attempt %+v", d.History)
	}
	shown, _ := json.Marshal(d)
	if strings.Contains(string(shown), "127.0.0.1") || strings.Contains(string(shown), "dial") {
		t.Errorf("delivery shown to the partner names the address: %s", shown)
	}
}

// A receiver that holds every webhook goroutine of the worker (it answers
// only when the test ends) never holds the ledger: a credit is applied
// while every one of those deliveries is still waiting for its answer.
// (Found by the fault suite: with one asynq server over every queue, a
// slow receiver took every goroutine and credits waited for its answers.)
func TestSlowReceiverNeverHoldsTheLedger(t *testing.T) {
	h := newHarness(t)
	release := make(chan struct{})
	var mu sync.Mutex
	held, answered := 0, 0
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		held++
		mu.Unlock()
		select {
		case <-release:
		case <-r.Context().Done(): // the sender's attempt timed out
		}
		mu.Lock()
		answered++
		mu.Unlock()
	}))
	t.Cleanup(func() { close(release); slow.Close() })
	h.endpoint(slow.URL)
	concurrency := sharedStack.App.Settings.WorkerConcurrency // each queue's goroutines
	for i := range concurrency + 5 {
		h.credit(fmt.Sprintf("hold-%d", i), 1)
	}
	heldNow := func() int { mu.Lock(); defer mu.Unlock(); return held }
	for deadline := time.Now().Add(30 * time.Second); heldNow() < concurrency; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the receiver holds %d deliveries; want %d", heldNow(), concurrency)
		}
	}
	// The held attempts time out after 15 s and free their goroutines; the
	// credit must not need that (it takes milliseconds otherwise).
	deadline := time.Now().Add(10 * time.Second)
	txn := h.credit("while-held", 1)
	for {
		got, err := h.ledger.Transaction(context.Background(), h.ws, txn.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != ledger.StatusPending {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the credit waits for the receiver's held deliveries")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Every held delivery is still waiting: the credit did not wait for one.
	mu.Lock()
	defer mu.Unlock()
	if answered > 0 {
		t.Fatalf("the credit was applied after %d held deliveries ended", answered)
	}
}

// One wake-up carries every lane its process accepted work on meanwhile,
// and the task ends only once each of them has been drained; a task queued
// by the release before, which woke one lane per task, still drains it.
func TestOneWakeupDrainsEveryLaneItCarries(t *testing.T) {
	ctx := context.Background()
	var lanes []int64
	var txns []ledger.Transaction
	var workspaces []string
	var h *harness
	for i := range 3 {
		h = newHarness(t)
		txn, _, err := h.ledger.Submit(ctx, ledger.TransactionRequest{WorkspaceID: h.ws, ReferenceID: fmt.Sprintf("wake-%d", i),
			Type: ledger.TypeCredit, WalletID: h.wallet, Amount: 5, Currency: "USD"})
		if err != nil {
			t.Fatal(err)
		}
		lanes, txns, workspaces = append(lanes, txn.LaneID()), append(txns, txn), append(workspaces, h.ws)
	}
	redis := testenv.AsynqRedis(testenv.Redis(t, redisDB))
	client := asynq.NewClient(redis)
	defer client.Close()
	inspector := asynq.NewInspector(redis)
	defer inspector.Close()
	legacy := asynq.NewTask(tasks.TypeTransactionApply, []byte(`{"transactionId":"`+txns[2].ID+`","laneId":`+fmt.Sprint(lanes[2])+`}`),
		asynq.TaskID("legacy-"+txns[2].ID), asynq.Queue(tasks.QueueLedger))
	for _, task := range []*asynq.Task{tasks.NewTransactionApply(txns[1].ID, lanes[:2]), legacy} {
		if _, err := client.Enqueue(task, asynq.Retention(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, id := range []string{txns[1].ID, "legacy-" + txns[2].ID} {
		for {
			info, err := inspector.GetTaskInfo(tasks.QueueLedger, id)
			if err == nil && info.State == asynq.TaskStateCompleted {
				// The relay applies what a task left only a second after
				// it was accepted: a task that drained only some of its
				// lanes would end before the others were applied (asynq
				// keeps the end to the second).
				for i, txn := range txns {
					if id == txns[1].ID && i == 2 || id != txns[1].ID && i != 2 {
						continue
					}
					got, err := h.ledger.Transaction(ctx, workspaces[i], txn.ID)
					if err != nil || got.Status != ledger.StatusCompleted || got.CompletedAt.Truncate(time.Second).After(info.CompletedAt) {
						t.Errorf("task %s ended at %s; its lane's transaction %s: %+v %v", id, info.CompletedAt, txn.ID, got, err)
					}
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("task %s: %+v %v", id, info, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}
