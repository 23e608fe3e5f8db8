package app

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
)

// backlogCollector measures, at each scrape, the work Postgres holds that
// is not done yet: transactions to apply, webhook deliveries to make,
// redemptions to finish. The counts are the deployment's, whichever
// process answers the scrape (dashboards take their max); the ages are
// what the stuck-work alerts watch.
type backlogCollector struct {
	sources []backlogSource
	log     *slog.Logger
}

type backlogSource struct {
	count, age *prometheus.Desc
	measure    func(context.Context) (int64, time.Duration, error)
}

// backlogTimeout bounds a scrape's queries.
const backlogTimeout = 2 * time.Second

func newBacklogCollector(a *App) *backlogCollector {
	source := func(name, countHelp, ageName, ageHelp string, measure func(context.Context) (int64, time.Duration, error)) backlogSource {
		return backlogSource{count: prometheus.NewDesc(name, countHelp, nil, nil),
			age: prometheus.NewDesc(ageName, ageHelp, nil, nil), measure: measure}
	}
	return &backlogCollector{log: a.Log.With("component", "metrics"), sources: []backlogSource{
		source("orbt_transactions_pending", "Transactions accepted and not applied yet.",
			"orbt_transactions_pending_oldest_seconds", "How long the oldest pending transaction has waited (0 with none).",
			a.Ledger.Backlog),
		source("orbt_webhook_deliveries_pending", "Webhook deliveries not made yet, retries included.",
			"orbt_webhook_deliveries_overdue_seconds", "How far past its due time the most overdue delivery is (0 with none due).",
			a.Webhooks.Backlog),
		source("orbt_redemptions_open", "Redemptions not final yet.",
			"orbt_redemptions_open_oldest_seconds", "How long the stalest open redemption has gone without a change (0 with none).",
			a.GiftCards.Backlog),
	}}
}

func (b *backlogCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, s := range b.sources {
		ch <- s.count
		ch <- s.age
	}
}

// Collect leaves out what it cannot measure (Postgres down): a gap in the
// series, which the alerts' absent() rules see, rather than a false zero.
func (b *backlogCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), backlogTimeout)
	defer cancel()
	for _, s := range b.sources {
		n, age, err := s.measure(ctx)
		if err != nil {
			b.log.Warn("backlog unmeasured", "err", err)
			continue
		}
		ch <- prometheus.MustNewConstMetric(s.count, prometheus.GaugeValue, float64(n))
		ch <- prometheus.MustNewConstMetric(s.age, prometheus.GaugeValue, age.Seconds())
	}
}

// workersCollector counts the worker processes whose heartbeat asynq has
// in Redis: zero, or a gap while Redis answers, is a dead worker tier.
type workersCollector struct{ inspector *asynq.Inspector }

var workersDesc = prometheus.NewDesc("orbt_workers", "Worker processes alive (processes with an asynq server's current heartbeat in Redis).", nil, nil)

func (w workersCollector) Describe(ch chan<- *prometheus.Desc) { ch <- workersDesc }

func (w workersCollector) Collect(ch chan<- prometheus.Metric) {
	servers, err := w.inspector.Servers()
	if err != nil {
		return // Redis down: a gap, not a false zero
	}
	// A worker process runs one asynq server per queue.
	processes := make(map[string]bool, len(servers))
	for _, s := range servers {
		processes[fmt.Sprintf("%s/%d", s.Host, s.PID)] = true
	}
	ch <- prometheus.MustNewConstMetric(workersDesc, prometheus.GaugeValue, float64(len(processes)))
}
