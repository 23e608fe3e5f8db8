package loadtest_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/orbt/orbt/giftcard"
	"github.com/orbt/orbt/ledger"
	"github.com/orbt/orbt/loadtest"
	"github.com/orbt/orbt/testenv"
	"github.com/orbt/orbt/teststack"
)

// redisDB is this package's Redis database index (see the Makefile).
const redisDB = 4

var db *testenv.Database

func TestMain(m *testing.M) { os.Exit(testenv.Main(m, "loadtest", &db)) }

// stack starts the API and a worker in-process, as orbt dev does.
func stack(t *testing.T) string {
	t.Helper()
	s, err := teststack.New(db.Pool, testenv.AsynqRedis(testenv.Redis(t, redisDB)), teststack.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.StopWithTest(t) // every answer the load test drew matches openapi.yaml
	return s.URL
}

// Every scenario runs end to end against a real stack, every transaction
// ends final, and the verification (API read-back and the database scan)
// passes.
func TestScenariosRunAndVerify(t *testing.T) {
	base := stack(t)
	l := ledger.New(db.Pool, nil)
	check := func(ctx context.Context) error {
		return errors.Join(l.CheckInvariants(ctx), giftcard.NewStore(db.Pool, l, nil).CheckInvariants(ctx))
	}
	headerPipes := strings.Count(strings.SplitN(loadtest.RowHeader, "\n", 2)[0], "|")
	for _, o := range []loadtest.Options{
		{Scenario: loadtest.ScenarioSingle, Count: 300, Concurrency: 16},
		{Scenario: loadtest.ScenarioHot, Count: 300, Concurrency: 16, Rate: 1000},
		{Scenario: loadtest.ScenarioSpread, Count: 300, Concurrency: 16, Partners: 3},
		{Scenario: loadtest.ScenarioBulk, Count: 500, BatchSize: 200},
		{Scenario: loadtest.ScenarioBulk, Count: 300, BatchSize: 300, NewConsumers: true},
		{Scenario: loadtest.ScenarioHot, Count: 300, Concurrency: 16, Webhooks: true, LocalStack: true},
		{Scenario: loadtest.ScenarioRedeem, Count: 200, Concurrency: 16, Wallets: 50},
		{Scenario: loadtest.ScenarioPartner, Count: 300, Concurrency: 16},
	} {
		name := o.Scenario
		if o.NewConsumers {
			name += "/new-consumers"
		}
		if o.Webhooks {
			name += "/webhooks"
		}
		t.Run(name, func(t *testing.T) {
			o.API, o.AdminToken, o.CheckLedger, o.Timeout = base, teststack.AdminToken, check, time.Minute
			r, err := loadtest.Run(context.Background(), o)
			if err != nil {
				t.Fatal(err)
			}
			if r.Completed != o.Count || r.Errors != 0 || r.AppliedPS <= 0 || r.AcceptToFinal.N != o.Count {
				t.Errorf("report %+v", r)
			}
			if o.Scenario == loadtest.ScenarioSingle && r.ReplayedPS <= 0 {
				t.Error("no replays measured")
			}
			// The receiver verified every signature and got each event once.
			if o.Webhooks && (r.Delivered != o.Count || r.DeliveredPS <= 0) {
				t.Errorf("delivered %d of %d (%.0f/s)", r.Delivered, o.Count, r.DeliveredPS)
			}
			// This test's stack runs inside the test binary, so only
			// Postgres and Redis are found; they did work.
			if o.LocalStack && (r.CPU == nil || r.CPU.Postgres <= 0) {
				t.Errorf("stack CPU %+v", r.CPU)
			}
			var row strings.Builder
			r.Row(&row)
			// The label may name the shape after the scenario: "spread (3×30)".
			if !strings.HasPrefix(row.String(), "| "+o.Scenario+" ") || strings.Count(row.String(), "|") != headerPipes {
				t.Errorf("row %q", row.String())
			}
		})
	}
}

// A run without credentials, or with an unknown scenario, is refused
// before it sends anything.
func TestOptionsAreChecked(t *testing.T) {
	for _, o := range []loadtest.Options{
		{API: "http://127.0.0.1:1", Scenario: "hot"},
		{API: "http://127.0.0.1:1", AdminToken: "x", Scenario: "sideways"},
		{API: "http://127.0.0.1:1", Key: "k", Scenario: "spread"},
		{API: "http://127.0.0.1:1", Key: "k", Scenario: "partner"},
	} {
		if _, err := loadtest.Run(context.Background(), o); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
}
