package chaos_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/orbt/orbt/client"
	"github.com/orbt/orbt/giftcard"
	"github.com/orbt/orbt/ledger"
	"github.com/orbt/orbt/tasks"
	"github.com/orbt/orbt/webhook"
)

// audit waits until nothing is left to do (no transaction pending, no
// redemption open, no webhook delivery pending), then checks what every
// scenario must leave behind:
//   - the ledger's and the gift cards' invariants (entries sum to zero per
//     transaction and currency; each balance equals its entries; none below
//     zero; held amounts equal open redemptions; one card per completed
//     redemption; counters and events agree);
//   - every request answered 2xx reached a final state, and every credit
//     the load sent (into wallets funded for all of them) is completed,
//     into the wallet and for the amount it asked (at most one transaction
//     per (workspace, referenceId) is the table's UNIQUE constraint; that
//     each was applied once is the ledger's one pair of entries);
//   - no answer was a 5xx other than 503, a 503 without Retry-After, or
//     a 4xx to the load;
//   - every committed event is listed by catch-up and was answered 2xx by
//     the workspace's receiver, with no delivery to it failed;
//   - no task asynq archived refers to work still open (the wait for
//     quiet, bounded by quietMax, is what fails when one does: work left
//     to a dead task never becomes final);
//   - every orbt process the scenario did not leave down is running, and
//     none panicked.
//
// It returns how long the system took to go quiet.
func (s *system) audit(t *testing.T, ctx context.Context, tr *traffic, rcv *receiver, partners []*partner) time.Duration {
	t.Helper()
	start := time.Now()
	quietCtx, cancel := context.WithTimeout(ctx, quietMax)
	defer cancel()
	var open struct{ transactions, redemptions, deliveries int }
	for {
		err := s.pool.QueryRow(ctx, `SELECT
			(SELECT count(*) FROM transactions WHERE status = 'pending'),
			(SELECT count(*) FROM redemptions WHERE status IN ('pending', 'processing')),
			(SELECT count(*) FROM webhook_deliveries WHERE status = 'pending')`).
			Scan(&open.transactions, &open.redemptions, &open.deliveries)
		if err == nil && open.transactions+open.redemptions+open.deliveries == 0 {
			break
		}
		if quietCtx.Err() != nil {
			s.checkProcesses()
			t.Fatalf("not quiet %s after the scenario: %+v open (%v)", quietMax, open, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	quiet := time.Since(start)
	defer func() {
		t.Logf("quiet after %s; the audit's checks took %s more", seconds(quiet), seconds(time.Since(start)-quiet))
	}()

	l := ledger.New(s.pool, nil)
	if err := errors.Join(l.CheckInvariants(ctx), giftcard.NewStore(s.pool, l, nil).CheckInvariants(ctx),
		webhook.NewStore(s.pool, nil, false).CheckInvariants(ctx)); err != nil {
		t.Errorf("invariants: %v", err)
	}
	s.auditAccepted(t, ctx, tr)
	s.auditCredits(t, ctx, tr)
	if err := tr.badAnswers(); err != nil {
		t.Error(err)
	}
	for _, p := range partners {
		s.auditEvents(t, ctx, p, rcv)
	}
	var endpoints []string
	for _, p := range partners {
		if p.endpointID != "" {
			endpoints = append(endpoints, p.endpointID)
		}
	}
	var failed int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM webhook_deliveries WHERE status = 'failed' AND endpoint_id = ANY($1)`,
		endpoints).Scan(&failed); err != nil || failed > 0 {
		t.Errorf("%d webhook deliveries to a healthy receiver failed (%v)", failed, err)
	}
	s.auditArchived(t, ctx)
	if rcv != nil {
		rcv.check()
		if events, doubled := rcv.counts(); doubled > 0 {
			// At least once: a worker killed between the receiver's 2xx and
			// its record sends again. Scenario 5, with no kill, allows none.
			t.Logf("%d of %d events were answered 2xx more than once", doubled, events)
		}
	}
	s.checkProcesses()
	return quiet
}

// quietMax bounds the wait for a scenario's work to be done: long enough
// for the webhook retry schedule the suite runs with, short enough that a
// stuck scenario fails well inside CI's time.
const quietMax = 3 * time.Minute

// auditCredits checks that every credit the load sent is completed, into
// the wallet and for the amount it asked.
func (s *system) auditCredits(t *testing.T, ctx context.Context, tr *traffic) {
	t.Helper()
	tr.mu.Lock()
	defer tr.mu.Unlock()
	for workspace, credits := range tr.credits {
		refs := make([]string, 0, len(credits))
		for ref := range credits {
			refs = append(refs, ref)
		}
		rows, err := s.pool.Query(ctx, `SELECT reference_id, wallet_id, amount, status FROM transactions
			WHERE workspace_id = $1 AND reference_id = ANY($2)`, workspace, refs)
		if err != nil {
			t.Fatal(err)
		}
		seen, wrong := 0, 0
		var example string
		for rows.Next() {
			var ref, wallet, status string
			var amount int64
			if err := rows.Scan(&ref, &wallet, &amount, &status); err != nil {
				t.Fatal(err)
			}
			seen++
			if want := credits[ref]; status != "completed" || wallet != want.wallet || amount != want.amount {
				wrong++
				example = fmt.Sprintf("%s: %s %d into %s, sent %d into %s", ref, status, amount, wallet, want.amount, want.wallet)
			}
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		if seen != len(credits) || wrong > 0 {
			t.Errorf("workspace %s: %d credits sent, %d stored, %d not completed as sent (%s)", workspace, len(credits), seen, wrong, example)
		}
	}
}

// auditAccepted checks that every referenceId answered 2xx is stored
// once and final: a transaction completed or failed, a redemption
// completed or failed.
func (s *system) auditAccepted(t *testing.T, ctx context.Context, tr *traffic) {
	t.Helper()
	tr.mu.Lock()
	defer tr.mu.Unlock()
	for workspace, refs := range tr.accepted {
		var want []string
		for ref := range refs {
			want = append(want, ref)
		}
		var final int
		err := s.pool.QueryRow(ctx, `SELECT
			(SELECT count(*) FROM transactions WHERE workspace_id = $1 AND reference_id = ANY($2) AND status IN ('completed', 'failed'))
			+ (SELECT count(*) FROM redemptions WHERE workspace_id = $1 AND reference_id = ANY($2) AND status IN ('completed', 'failed'))`,
			workspace, want).Scan(&final)
		if err != nil || final != len(want) {
			t.Errorf("workspace %s: %d of %d requests answered 2xx are stored and final (%v)", workspace, final, len(want), err)
		}
	}
}

// auditEvents checks that every event of the workspace is listed by
// catch-up and, when it has an endpoint, was delivered.
func (s *system) auditEvents(t *testing.T, ctx context.Context, p *partner, rcv *receiver) {
	t.Helper()
	rows, err := s.pool.Query(ctx, `SELECT id FROM events WHERE workspace_id = $1`, p.id)
	if err != nil {
		t.Fatal(err)
	}
	var stored []string
	for rows.Next() {
		var id string
		rows.Scan(&id)
		stored = append(stored, id)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	api := client.New(s.liveAPI(0).base, p.key, 4)
	listed := map[string]bool{}
	for _, e := range listAll[struct{ ID string }](t, ctx, api, "/v1/events?limit=500") {
		listed[e.ID] = true
	}
	var unlisted, undelivered int
	for _, id := range stored {
		if !listed[id] {
			unlisted++
		}
		if rcv != nil && p.endpointID != "" && !rcv.has(p.id, id) {
			undelivered++
		}
	}
	if unlisted > 0 || undelivered > 0 || len(listed) != len(stored) {
		t.Errorf("workspace %s: %d events stored, %d listed by catch-up, %d stored but not listed, %d not delivered",
			p.id, len(stored), len(listed), unlisted, undelivered)
	}
}

// auditArchived checks each task asynq archived (it ran out of retries):
// the work it stood for must be final, picked up from Postgres by the
// relay, so nothing waits on a dead task.
func (s *system) auditArchived(t *testing.T, ctx context.Context) {
	t.Helper()
	insp := asynq.NewInspector(asynq.RedisClientOpt{Addr: s.redis.Addr})
	defer insp.Close()
	queues, err := insp.Queues()
	if err != nil {
		t.Errorf("asynq queues: %v", err)
		return
	}
	archived := 0
	for _, q := range queues {
		list, err := insp.ListArchivedTasks(q, asynq.PageSize(10_000))
		if err != nil {
			t.Errorf("archived tasks of %s: %v", q, err)
			continue
		}
		for _, task := range list {
			archived++
			if open, err := s.stillOpen(ctx, task); err != nil || open {
				t.Errorf("archived task %s %s (%s) refers to open work (%v)", task.Type, task.ID, task.LastErr, err)
			}
		}
	}
	if archived > 0 {
		t.Logf("%d archived tasks, each reconciled from Postgres", archived)
	}
}

// stillOpen reports whether the work an archived task stood for is open.
func (s *system) stillOpen(ctx context.Context, task *asynq.TaskInfo) (bool, error) {
	var sql string
	var arg any
	switch task.Type {
	case tasks.TypeTransactionApply:
		var p tasks.TransactionApply
		json.Unmarshal(task.Payload, &p)
		sql, arg = `SELECT count(*) FROM transactions WHERE lane_account_id = ANY ($1) AND status = 'pending'`, p.Lanes()
	case tasks.TypeLaneApply:
		var p tasks.LaneApply
		json.Unmarshal(task.Payload, &p)
		sql, arg = `SELECT count(*) FROM transactions WHERE lane_account_id = $1 AND status = 'pending'`, p.LaneID
	case tasks.TypeWebhookDeliver:
		var p tasks.WebhookDeliver
		json.Unmarshal(task.Payload, &p)
		sql, arg = `SELECT count(*) FROM webhook_deliveries WHERE id = ANY ($1) AND status = 'pending'`, p.IDs()
	case tasks.TypeRedemptionProcess:
		var p tasks.RedemptionProcess
		json.Unmarshal(task.Payload, &p)
		sql, arg = `SELECT count(*) FROM redemptions WHERE id = $1 AND status IN ('pending', 'processing')`, p.RedemptionID
	default:
		return false, fmt.Errorf("a task type the audit does not know: %s", task.Type)
	}
	var n int
	err := s.pool.QueryRow(ctx, sql, arg).Scan(&n)
	return n > 0, err
}
