package api_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/hibiken/asynq"

	"github.com/orbt/orbt/tasks"
	"github.com/orbt/orbt/testenv"
)

// The ops pages take the admin token by Basic auth, which browsers cache:
// a state change they receive from another site's form must be refused, or
// any page could pause the ledger queue and stop every payment.
func TestOpsRefuseCrossSiteStateChanges(t *testing.T) {
	s := getStack(t)
	insp := asynq.NewInspector(testenv.AsynqRedis(testenv.RedisOptions(redisDB)))
	defer insp.Close()
	// The queue must exist for the dashboard to pause it.
	if err := s.App.Enqueuer.Enqueue(t.Context(), tasks.NewLaneApply(-1, "ops-test-lane")); err != nil {
		t.Fatal(err)
	}
	paused := func() bool {
		info, err := insp.GetQueueInfo(tasks.QueueLedger)
		if err != nil {
			t.Fatal(err)
		}
		return info.Paused
	}
	pause := func(h http.Header) response {
		return callWith(t, s.URL, "POST", "/ops/queues/api/queues/ledger:pause", "", nil, h)
	}
	unpause := func() {
		expect(t, call(t, s.URL, "POST", "/ops/queues/api/queues/ledger:resume", adminToken, nil), 204)
	}
	basic := func(extra ...string) http.Header {
		req, _ := http.NewRequest("POST", "/", nil)
		req.SetBasicAuth("ops", adminToken)
		h := req.Header
		for i := 0; i+1 < len(extra); i += 2 {
			h.Set(extra[i], extra[i+1])
		}
		return h
	}

	for name, h := range map[string]http.Header{
		"another site's Origin":       basic("Origin", "https://evil.example"),
		"no Origin, cross-site fetch": basic("Sec-Fetch-Site", "cross-site"),
		"no Origin at all":            basic(),
	} {
		r := expect(t, pause(h), 403)
		if r.str("code") != "cross_site_request" || paused() {
			t.Errorf("%s: %s; paused %v", name, r.raw, paused())
		}
	}
	// The dashboard's own page (same origin), and a tool sending the token
	// as a bearer token, may.
	host := strings.TrimPrefix(s.URL, "http://")
	expect(t, pause(basic("Origin", "http://"+host)), 204)
	if !paused() {
		t.Error("a same-origin pause did not pause")
	}
	unpause()
	expect(t, call(t, s.URL, "POST", "/ops/queues/api/queues/ledger:pause", adminToken, nil), 204)
	unpause()
	if paused() {
		t.Error("the ledger queue is left paused")
	}
	// Reading needs no Origin.
	expect(t, callWith(t, s.URL, "GET", "/ops/queues/api/queues", "", nil, basic()), 200)
}
