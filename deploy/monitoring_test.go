package deploy_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"sigs.k8s.io/yaml"

	"github.com/orbt/orbt/app"
	"github.com/orbt/orbt/server"
	"github.com/orbt/orbt/testenv"
	"github.com/orbt/orbt/teststack"
)

// redisDB is this package's Redis database index (see the Makefile).
const redisDB = 9

var db *testenv.Database

func TestMain(m *testing.M) { os.Exit(testenv.Main(m, "deploy", &db)) }

// metricName finds the metric names in a PromQL expression: Orbt's, asynq's
// and the Go client's standard process and runtime ones.
var metricName = regexp.MustCompile(`\b(?:orbt|asynq|process|go)_[a-z_]+\b`)

// exported runs Orbt through what each metric counts (a credit applied, a
// webhook delivered, a gift card redeemed, a request refused for its rate
// limit) and returns the series names /metrics then holds.
func exported(t *testing.T) map[string]bool {
	t.Helper()
	ctx := context.Background()
	var delivered atomic.Int32
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		delivered.Add(1)
	}))
	defer receiver.Close()
	s := teststack.Start(t, db.Pool, redisDB, teststack.Options{
		Settings: app.Settings{RateLimits: server.RateLimits{Read: 1, Write: 1000}}})

	var ws struct{ ID, APIKey string }
	teststack.OK(t)(s.Admin.Call(ctx, "POST", "/admin/v1/workspaces", map[string]any{"name": "metrics"}, 201, &ws))
	teststack.OK(t)(s.Admin.Call(ctx, "PUT", "/admin/v1/workspaces/"+ws.ID+"/brands",
		map[string]any{"brandIds": []string{"sandbox-coffee"}}, 200, nil))
	wait := http.Header{"Prefer": {"wait=10"}}
	res, err := s.Admin.Do(ctx, "POST", "/admin/v1/workspaces/"+ws.ID+"/fundings",
		map[string]any{"referenceId": "fund", "currency": "USD", "amount": 100_000}, wait)
	if err != nil || res.Status != 200 {
		t.Fatalf("funding: %v %+v", err, res)
	}
	api := s.Client(ws.APIKey)
	teststack.OK(t)(api.Call(ctx, "POST", "/v1/webhook-endpoints",
		map[string]any{"url": receiver.URL, "events": []string{"transaction.completed"}}, 201, nil))
	var consumer, wallet struct{ ID string }
	teststack.OK(t)(api.Call(ctx, "POST", "/v1/consumers", map[string]any{"externalId": "m"}, 201, &consumer))
	teststack.OK(t)(api.Call(ctx, "POST", "/v1/consumers/"+consumer.ID+"/wallets",
		map[string]any{"currency": "USD", "type": "standard"}, 201, &wallet))
	for _, req := range []struct {
		path string
		body map[string]any
	}{
		{"/v1/transactions", map[string]any{"referenceId": "c1", "type": "credit", "walletId": wallet.ID, "amount": 5000, "currency": "USD"}},
		{"/v1/redemptions", map[string]any{"referenceId": "r1", "walletId": wallet.ID, "brandId": "sandbox-coffee", "amount": 1000}},
	} {
		res, err := api.Do(ctx, "POST", req.path, req.body, wait)
		if err != nil || res.Status != 200 {
			t.Fatalf("%s: %v %+v", req.path, err, res)
		}
	}
	// A read budget of one a second: the second read in a row is refused.
	for range 3 {
		api.Do(ctx, "GET", "/v1/consumers", nil, nil)
	}
	deadline := time.Now().Add(10 * time.Second)
	for delivered.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if delivered.Load() == 0 {
		t.Fatal("no webhook delivered")
	}
	// The webhook's attempt is counted once the sender has its answer.
	time.Sleep(200 * time.Millisecond)
	teststack.OK(t)(s.Admin.Call(ctx, "GET", "/metrics", nil, 200, nil)) // the queue collector and the HTTP histogram

	families, err := s.App.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, f := range families {
		names[f.GetName()] = true
		if f.GetType() == dto.MetricType_HISTOGRAM {
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				names[f.GetName()+suffix] = true
			}
		}
	}
	return names
}

// expressions are the PromQL of the dashboard's panels and of the alert
// rules, by where each comes from.
func expressions(t *testing.T) map[string]string {
	t.Helper()
	exprs := map[string]string{}
	data, err := os.ReadFile("monitoring/grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatalf("dashboard: %v", err)
	}
	for _, p := range dash.Panels {
		for _, target := range p.Targets {
			exprs["panel "+p.Title] += target.Expr + "\n"
		}
	}
	data, err = os.ReadFile("monitoring/alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Name  string `json:"name"`
			Rules []struct {
				Alert       string            `json:"alert"`
				Expr        string            `json:"expr"`
				For         string            `json:"for"`
				Labels      map[string]string `json:"labels"`
				Annotations map[string]string `json:"annotations"`
			} `json:"rules"`
		} `json:"groups"`
	}
	if err := yaml.UnmarshalStrict(data, &rules); err != nil {
		t.Fatalf("alerts.yml: %v", err)
	}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" || r.Expr == "" || r.Annotations["summary"] == "" || r.Labels["severity"] == "" {
				t.Errorf("alert rule %+v: want a name, an expression, a severity and a summary", r)
			}
			if r.For != "" {
				if _, err := time.ParseDuration(r.For); err != nil {
					t.Errorf("alert %s: for %q: %v", r.Alert, r.For, err)
				}
			}
			exprs["alert "+r.Alert] = r.Expr
		}
	}
	return exprs
}

// The dashboard and the alert rules are built on metrics Orbt exports:
// every series they ask for exists on a running Orbt's /metrics, and every
// metric of Orbt's own is on the dashboard or in an alert. The alerts the
// issue asks for are there: stuck pending work, delivery failures, a dead
// worker.
func TestMonitoringUsesExportedMetrics(t *testing.T) {
	exprs := expressions(t)
	names := exported(t)
	used := map[string]bool{}
	for where, expr := range exprs {
		for _, name := range metricName.FindAllString(expr, -1) {
			used[name] = true
			if !names[name] {
				t.Errorf("%s asks for %s, which Orbt does not export", where, name)
			}
		}
	}
	for name := range names {
		if strings.HasPrefix(name, "orbt_") && !used[name] && !used[name+"_bucket"] &&
			!strings.HasSuffix(name, "_sum") && !strings.HasSuffix(name, "_count") && !strings.HasSuffix(name, "_bucket") {
			t.Errorf("%s is exported but on neither the dashboard nor an alert", name)
		}
	}
	for _, alert := range []string{"alert OrbtTransactionsStuck", "alert OrbtWebhookDeliveriesFailing", "alert OrbtWorkersDown"} {
		if _, ok := exprs[alert]; !ok {
			t.Errorf("%s missing", alert)
		}
	}
	if !slices.ContainsFunc(metricName.FindAllString(exprs["alert OrbtWorkersDown"], -1), func(n string) bool { return n == "orbt_workers" }) {
		t.Error("OrbtWorkersDown does not watch orbt_workers")
	}
}
