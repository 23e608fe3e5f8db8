package loadtest_test

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/orbt/orbt/api"
	"github.com/orbt/orbt/ledger"
	"github.com/orbt/orbt/loadtest"
	"github.com/orbt/orbt/testenv"
	"github.com/orbt/orbt/webhook"
	"github.com/orbt/orbt/worker"
	"github.com/orbt/orbt/workspace"
)

// redisDB is this package's Redis database index (see the Makefile).
const redisDB = 4

var db *testenv.Database

func TestMain(m *testing.M) { os.Exit(testenv.Main(m, "loadtest", &db)) }

// stack starts the API and a worker in-process, as orbt dev does.
func stack(t *testing.T) string {
	t.Helper()
	ro := testenv.Redis(t, redisDB)
	opt := asynq.RedisClientOpt{Addr: ro.Addr, DB: ro.DB}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	queue := asynq.NewClient(opt)
	t.Cleanup(func() { queue.Close() })
	srv, err := api.New(api.Options{Ledger: ledger.New(db.Pool), Workspaces: workspace.New(db.Pool), Queue: queue,
		Webhooks: webhook.NewStore(db.Pool, true), AdminToken: "lt-admin", Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	w, err := worker.New(worker.Options{Redis: opt, Ledger: ledger.New(db.Pool), Concurrency: 8,
		Webhooks: webhook.NewStore(db.Pool, true), RelayAfter: time.Second, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return ts.URL
}

// Every scenario runs end to end against a real stack, every transaction
// ends final, and the verification (API read-back and the database scan)
// passes.
func TestScenariosRunAndVerify(t *testing.T) {
	base := stack(t)
	check := ledger.New(db.Pool).CheckInvariants
	for _, o := range []loadtest.Options{
		{Scenario: loadtest.ScenarioSingle, Count: 300, Concurrency: 16},
		{Scenario: loadtest.ScenarioHot, Count: 300, Concurrency: 16, Rate: 1000},
		{Scenario: loadtest.ScenarioSpread, Count: 300, Concurrency: 16, Partners: 3},
		{Scenario: loadtest.ScenarioBulk, Count: 500, BatchSize: 200},
	} {
		t.Run(o.Scenario, func(t *testing.T) {
			o.API, o.AdminToken, o.CheckLedger, o.Timeout = base, "lt-admin", check, time.Minute
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
			var row strings.Builder
			r.Row(&row)
			if !strings.HasPrefix(row.String(), "| "+o.Scenario+" | ") {
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
	} {
		if _, err := loadtest.Run(context.Background(), o); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
}
