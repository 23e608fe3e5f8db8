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
)

// audit waits until nothing is left to do (no transaction pending, no
// redemption open, no webhook delivery pending), then checks what every
// scenario must leave behind:
//   - the ledger's and the gift cards' invariants (entries sum to zero per
//     transaction and currency; each balance equals its entries; none below
//     zero; held amounts equal open redemptions; one card per completed
//     redemption; counters and events agree);
//   - at most one transaction per (workspace, referenceId);
//   - every request answered 2xx reached a final state;
//   - every committed event is listed by catch-up and was answered 2xx by
//     the workspace's receiver, with no delivery to it failed;
//   - no task asynq archived refers to work still open;
//   - no orbt process panicked.
//
// It returns how long the system took to go quiet.
func (s *system) audit(t *testing.T, ctx context.Context, tr *traffic, rcv *receiver, partners []*partner) time.Duration {
	t.Helper()
	start := time.Now()
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
		if ctx.Err() != nil {
			t.Fatalf("not quiet when the scenario's time ran out: %+v open (%v)", open, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	quiet := time.Since(start)

	l := ledger.New(s.pool, nil)
	if err := errors.Join(l.CheckInvariants(ctx), giftcard.NewStore(s.pool, l, nil).CheckInvariants(ctx)); err != nil {
		t.Errorf("invariants: %v", err)
	}
	var dup string
	if err := s.pool.QueryRow(ctx, `SELECT COALESCE(min(workspace_id || ' ' || reference_id), '') FROM (
			SELECT workspace_id, reference_id FROM transactions WHERE reference_id IS NOT NULL GROUP BY 1, 2 HAVING count(*) > 1) d`).
		Scan(&dup); err != nil || dup != "" {
		t.Errorf("a referenceId stored twice: %q (%v)", dup, err)
	}
	s.auditAccepted(t, ctx, tr)
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
	}
	s.checkLogs()
	return quiet
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
		sql, arg = `SELECT count(*) FROM transactions WHERE id = $1 AND status = 'pending'`, p.TransactionID
	case tasks.TypeLaneApply:
		var p tasks.LaneApply
		json.Unmarshal(task.Payload, &p)
		sql, arg = `SELECT count(*) FROM transactions WHERE lane_account_id = $1 AND status = 'pending'`, p.LaneID
	case tasks.TypeWebhookDeliver:
		var p tasks.WebhookDeliver
		json.Unmarshal(task.Payload, &p)
		sql, arg = `SELECT count(*) FROM webhook_deliveries WHERE id = $1 AND status = 'pending'`, p.DeliveryID
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
