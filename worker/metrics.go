package worker

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/orbt/orbt/ledger"
)

type metrics struct {
	applied   *prometheus.CounterVec
	groupTime prometheus.Histogram
	relayed   prometheus.Counter
	// deliveries counts webhook attempts by outcome.
	deliveries *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		applied: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "orbt_transactions_applied_total",
			Help: "Transactions applied to the ledger, by final status.",
		}, []string{"status"}),
		groupTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "orbt_apply_drain_seconds",
			Help:    "Time to drain one lane's pending transactions.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}),
		relayed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "orbt_relay_enqueued_total",
			Help: "Work the relay enqueued again: lanes with stale pending transactions, overdue webhook deliveries.",
		}),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "orbt_webhook_attempts_total",
			Help: "Webhook delivery attempts, by outcome (succeeded, retrying, failed).",
		}, []string{"outcome"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.applied, m.groupTime, m.relayed, m.deliveries} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("worker metrics: %w", err)
			}
		}
	}
	return m, nil
}

func (m *metrics) observe(outcomes []ledger.Outcome, took time.Duration) {
	for _, o := range outcomes {
		m.applied.WithLabelValues(o.Status).Inc()
	}
	m.groupTime.Observe(took.Seconds())
}
