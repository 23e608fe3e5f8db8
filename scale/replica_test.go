package scale_test

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/orbt/orbt/app"
	"github.com/orbt/orbt/client"
	"github.com/orbt/orbt/ledger"
	"github.com/orbt/orbt/migrations"
	"github.com/orbt/orbt/testproc"
	"github.com/orbt/orbt/teststack"
)

// Orbt with DATABASE_READ_URL on a real streaming replica: lists are read
// from it (a replica whose replay is paused does not show a consumer just
// made, while the consumer itself, read by id, is there at once); a
// replica lagging past the bound hands its reads to the primary and gets
// them back when it catches up; a lookup by referenceId stays on the
// primary; and a replica that dies leaves every list answering from the
// primary.
func TestReadReplica(t *testing.T) {
	primary, replica := testproc.PrimaryAndReplica(t)
	ctx := context.Background()
	primary.CreateDatabase(t, "orbt")
	primaryPool := primary.Pool(t, "orbt")
	if err := migrations.Up(ctx, primaryPool); err != nil {
		t.Fatal(err)
	}
	replicaPool := replica.Pool(t, "orbt")
	// CREATE DATABASE reaches the replica by streaming, a moment after it
	// commits on the primary: until then the replica refuses connections
	// to it (CI once asked too soon).
	var inRecovery bool
	testproc.WaitFor(t, "the database on the replica", 10*time.Second, func() error {
		return replicaPool.QueryRow(ctx, `SELECT pg_is_in_recovery()`).Scan(&inRecovery)
	})
	if !inRecovery {
		t.Fatal("the replica is not in recovery")
	}

	// A process starting while its replica is behind must not trust it,
	// however little time it has had to measure the lag.
	testproc.WaitFor(t, "the schema on the replica", 10*time.Second, func() error {
		return replicaPool.QueryRow(ctx, `SELECT count(*) FROM workspaces`).Scan(new(int))
	})
	if _, err := replicaPool.Exec(ctx, `SELECT pg_wal_replay_pause()`); err != nil {
		t.Fatal(err)
	}
	if _, err := primaryPool.Exec(ctx, `CREATE TABLE lag_marker (x int)`); err != nil {
		t.Fatal(err)
	}
	const maxLag = 3 * time.Second
	queue := testproc.Redis(t, "redis")
	stack := teststack.Start(t, primaryPool, -1, teststack.Options{Redis: asynq.RedisClientOpt{Addr: queue.Addr},
		Settings: app.Settings{ReadReplica: replicaPool, ReadMaxLag: maxLag}})
	reads := stack.App.Reads
	for deadline := time.Now().Add(2500 * time.Millisecond); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if reads.OnReplica() {
			t.Fatal("reads went to a replica paused behind the primary as the process started")
		}
	}
	if _, err := replicaPool.Exec(ctx, `SELECT pg_wal_replay_resume()`); err != nil {
		t.Fatal(err)
	}
	testproc.WaitFor(t, "reads on the replica", 10*time.Second, errUnless(reads.OnReplica, "reads on the primary"))

	var ws struct{ ID, APIKey string }
	teststack.OK(t)(stack.Admin.Call(ctx, "POST", "/admin/v1/workspaces", map[string]any{"name": "replica"}, 201, &ws))
	api := stack.Client(ws.APIKey)
	first := createConsumer(t, api, "first")
	testproc.WaitFor(t, "the first consumer listed", 10*time.Second, errUnless(func() bool { return slices.Contains(consumerIDs(t, api), first) }, "not listed"))
	servedBefore := metric(t, stack, `orbt_database_lagging_reads_total{database="replica"}`)
	consumerIDs(t, api)
	if metric(t, stack, `orbt_database_lagging_reads_total{database="replica"}`) <= servedBefore {
		t.Fatal("a list was not served by the replica")
	}

	// Replay paused: the replica stops where it is.
	if _, err := replicaPool.Exec(ctx, `SELECT pg_wal_replay_pause()`); err != nil {
		t.Fatal(err)
	}
	second := createConsumer(t, api, "second")
	teststack.OK(t)(api.Call(ctx, "GET", "/v1/consumers/"+second, nil, 200, nil)) // by id: the primary
	if ids := consumerIDs(t, api); slices.Contains(ids, second) || !slices.Contains(ids, first) {
		t.Fatalf("the list during the pause shows %v: want the first consumer only (read from the paused replica)", ids)
	}
	var byExternalID struct{ Data []struct{ ID string } }
	teststack.OK(t)(api.Call(ctx, "GET", "/v1/consumers?externalId=second", nil, 200, &byExternalID))
	if len(byExternalID.Data) != 1 || byExternalID.Data[0].ID != second {
		t.Fatalf("a lookup by externalId after the create: %+v (it must read the primary)", byExternalID)
	}

	// Past the bound the reads move to the primary, which shows both.
	pausedAt := time.Now()
	testproc.WaitFor(t, "reads moved to the primary", 10*time.Second, errUnless(func() bool { return !reads.OnReplica() }, "still on the replica"))
	t.Logf("reads left the paused replica %s after the pause", time.Since(pausedAt).Round(100*time.Millisecond))
	if lag := metric(t, stack, "orbt_database_replica_lag_seconds"); lag < maxLag.Seconds() {
		t.Errorf("lag gauge %.1f s with the replica paused past the %s bound", lag, maxLag)
	}
	if ids := consumerIDs(t, api); !slices.Contains(ids, second) {
		t.Fatalf("the list from the primary shows %v: want the second consumer too", ids)
	}

	// Replay resumed: it catches up and takes the reads back.
	if _, err := replicaPool.Exec(ctx, `SELECT pg_wal_replay_resume()`); err != nil {
		t.Fatal(err)
	}
	testproc.WaitFor(t, "reads back on the replica", 10*time.Second, errUnless(reads.OnReplica, "reads on the primary"))

	// The replica dies: every list answers at once, from the primary.
	replica.Kill()
	for _, path := range []string{"/v1/consumers", "/v1/transactions", "/v1/events", "/v1/batches", "/v1/campaigns",
		"/v1/redemptions", "/v1/webhook-endpoints", "/v1/api-keys"} {
		teststack.OK(t)(api.Call(ctx, "GET", path, nil, 200, nil))
	}
	if ids := consumerIDs(t, api); len(ids) != 2 {
		t.Fatalf("after the replica died the list shows %v", ids)
	}
	testproc.WaitFor(t, "the dead replica unfit", 10*time.Second, errUnless(func() bool { return !reads.OnReplica() }, "still on the replica"))
	if err := ledger.New(primaryPool, nil).CheckInvariants(ctx); err != nil {
		t.Fatal(err)
	}
}

func createConsumer(t *testing.T, api *client.Client, externalID string) string {
	t.Helper()
	var c struct{ ID string }
	teststack.OK(t)(api.Call(context.Background(), "POST", "/v1/consumers", map[string]any{"externalId": externalID}, 201, &c))
	return c.ID
}

func consumerIDs(t *testing.T, api *client.Client) []string {
	t.Helper()
	var page struct{ Data []struct{ ID string } }
	teststack.OK(t)(api.Call(context.Background(), "GET", "/v1/consumers", nil, 200, &page))
	var ids []string
	for _, c := range page.Data {
		ids = append(ids, c.ID)
	}
	return ids
}

// errUnless is a waitFor check passing when ok does.
func errUnless(ok func() bool, otherwise string) func() error {
	return func() error {
		if ok() {
			return nil
		}
		return errors.New(otherwise)
	}
}

// metric reads one sample of the stack's /metrics, by its name and labels
// as Prometheus's text format writes them.
func metric(t *testing.T, stack *teststack.Stack, sample string) float64 {
	t.Helper()
	res, err := stack.Admin.Do(context.Background(), "GET", "/metrics", nil, nil)
	if err != nil || res.Status != 200 {
		t.Fatalf("/metrics: %v %+v", err, res)
	}
	for line := range strings.Lines(string(res.Body)) {
		if value, ok := strings.CutPrefix(strings.TrimSpace(line), sample+" "); ok {
			f, err := strconv.ParseFloat(value, 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return f
		}
	}
	t.Fatalf("/metrics has no %s", sample)
	return 0
}
