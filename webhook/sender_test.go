package webhook

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/orbt/orbt/store"
	"github.com/orbt/orbt/webhooksig"
)

// DeliverMany sends a group's deliveries at once, each event its own
// request signed with its endpoint's secret, and records every attempt: a
// healthy endpoint's deliveries succeed once, a failing endpoint's are
// scheduled for retry, nothing is sent twice when two workers are handed
// the same deliveries at the same moment, and a delivery already made is
// not made again.
func TestDeliverManySendsEachEventOnItsOwn(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	healthy := newRecorder(t)
	var failing atomic.Int64
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		failing.Add(1)
		w.WriteHeader(http.StatusInternalServerError)
	}))
	t.Cleanup(down.Close)
	good, err := f.hooks.CreateEndpoint(ctx, f.ws, healthy.URL, []string{"transaction.completed"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.hooks.CreateEndpoint(ctx, f.ws, down.URL, []string{"transaction.completed"}, nil); err != nil {
		t.Fatal(err)
	}
	const events = 6
	var lane int64
	for i := range events {
		funding, _, err := f.ledger.Fund(ctx, f.ws, fmt.Sprintf("fund-%d", i), "USD", 100)
		if err != nil {
			t.Fatal(err)
		}
		lane = funding.LaneID()
	}
	applied, err := f.ledger.ApplyLane(ctx, lane)
	if err != nil || len(applied.Deliveries) != 2*events {
		t.Fatalf("apply: %d deliveries, %v", len(applied.Deliveries), err)
	}
	sender := NewSender(f.hooks, f.ledger.EventsByID, []time.Duration{time.Hour})

	// Two workers handed the same deliveries at once.
	var wg sync.WaitGroup
	results := make([]map[string]Result, 2)
	for i := range results {
		wg.Go(func() {
			var err error
			if results[i], err = sender.DeliverMany(ctx, applied.Deliveries); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	all := make(map[string]Result)
	for _, r := range results {
		for id, res := range r {
			if _, twice := all[id]; twice {
				t.Errorf("delivery %s attempted by both calls", id)
			}
			all[id] = res
		}
	}
	var succeeded, retrying int
	for _, res := range all {
		switch {
		case res.Succeeded && res.Attempt == 1 && res.Retry == nil:
			succeeded++
		case !res.Succeeded && res.Attempt == 1 && res.Retry != nil && res.Retry.After(time.Now().Add(50*time.Minute)):
			retrying++
		default:
			t.Errorf("unexpected result %+v", res)
		}
	}
	if succeeded != events || retrying != events {
		t.Errorf("%d succeeded and %d retrying, want %d each", succeeded, retrying, events)
	}

	got, bodies := healthy.requests()
	if len(got) != events || failing.Load() != events {
		t.Fatalf("the healthy endpoint got %d requests and the failing one %d, want %d each", len(got), failing.Load(), events)
	}
	var ids []string
	for i, req := range got {
		if err := webhooksig.Verify(bodies[i], req.Header, good.Secret); err != nil {
			t.Errorf("delivery %d not signed with its endpoint's secret: %v", i, err)
		}
		ids = append(ids, req.Header.Get(webhooksig.HeaderID))
	}
	slices.Sort(ids)
	if len(slices.Compact(ids)) != events {
		t.Errorf("webhook-ids %v: want %d distinct events", ids, events)
	}

	var attempts, pending, done int
	if err := db.Pool.QueryRow(ctx, `SELECT
			(SELECT count(*) FROM webhook_attempts WHERE delivery_id = ANY ($1)),
			count(*) FILTER (WHERE status = 'pending' AND attempts = 1 AND next_attempt_at > now() AND locked_until IS NULL),
			count(*) FILTER (WHERE status = 'succeeded' AND attempts = 1 AND completed_at IS NOT NULL)
		FROM webhook_deliveries WHERE id = ANY ($1)`, applied.Deliveries).Scan(&attempts, &pending, &done); err != nil {
		t.Fatal(err)
	}
	if attempts != 2*events || pending != events || done != events {
		t.Errorf("recorded %d attempts, %d pending for retry, %d succeeded; want %d, %d, %d", attempts, pending, done, 2*events, events, events)
	}

	// Nothing is due now: another call sends nothing.
	again, err := sender.DeliverMany(ctx, applied.Deliveries)
	if err != nil || len(again) != 0 {
		t.Errorf("a second call attempted %v (%v)", again, err)
	}
	if got, _ := healthy.requests(); len(got) != events {
		t.Errorf("the healthy endpoint got %d requests after a second call", len(got))
	}
	if _, err := sender.DeliverMany(ctx, make([]string, DeliverManyMax+1)); err == nil {
		t.Error("more than DeliverManyMax deliveries at once: no error")
	}
	if err := f.hooks.CheckInvariants(ctx); err != nil {
		t.Error(err)
	}
	// No foreign key holds a delivery to its endpoint or an attempt to its
	// delivery (migration 0013): the scan does.
	tx, err := db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `UPDATE webhook_deliveries SET endpoint_id = 'whk_gone' WHERE id = $1`, applied.Deliveries[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO webhook_attempts (delivery_id, attempt, latency_ms) VALUES ('whd_gone', 1, 0)`); err != nil {
		t.Fatal(err)
	}
	err = store.CheckRules(ctx, tx, invariantQueries)
	for _, rule := range []string{"endpoint and workspace exist", "an attempt's delivery exists"} {
		if err == nil || !strings.Contains(err.Error(), rule) {
			t.Errorf("%q broken, unnoticed: %v", rule, err)
		}
	}
}
