// Package chaos_test is Orbt's fault suite (make chaos): each scenario runs
// the real orbt binary as separate api and worker processes against a
// Postgres cluster and a redis-server of its own, injects faults (kill -9,
// Redis flushed, shut down and restarted, Postgres restarted, a webhook
// receiver down and slow, a failing gift card provider), then audits the
// ledger, the events and the queue. Each scenario is seeded: CHAOS_SEED
// replays a run. CHAOS_PROFILE=ci is the short profile CI runs; full is
// for people (RELIABILITY.md holds its figures). Without CHAOS_PROFILE the
// scenarios skip, so `go test ./...` stays quick.
package chaos_test

import (
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

// profile sizes every scenario.
type profile struct {
	name string
	// bulkItems is scenario 1's payout; workerKills how often a worker dies in it.
	bulkItems, workerKills int
	// credits is the single credits of the Redis, Postgres and process scenarios.
	credits int
	// redisDown is scenario 3's outage; rate paces its ingestion.
	redisDown time.Duration
	rate      int
	// postgresRestarts is scenario 4's count.
	postgresRestarts int
	// receiverDown and receiverSlow are scenario 5's phases; webhookCredits its load.
	receiverDown, receiverSlow time.Duration
	webhookCredits             int
	// redemptions is scenario 7's count.
	redemptions int
}

var profiles = map[string]profile{
	"ci": {name: "ci", bulkItems: 10_000, workerKills: 10, credits: 3_000, redisDown: 15 * time.Second, rate: 150,
		postgresRestarts: 5, receiverDown: 8 * time.Second, receiverSlow: 12 * time.Second, webhookCredits: 600, redemptions: 150},
	"full": {name: "full", bulkItems: 50_000, workerKills: 10, credits: 20_000, redisDown: 60 * time.Second, rate: 200,
		postgresRestarts: 5, receiverDown: 30 * time.Second, receiverSlow: 30 * time.Second, webhookCredits: 3_000, redemptions: 600},
}

var (
	prof     profile
	orbtBin  string // the orbt binary under test
	seedBase uint64 // CHAOS_SEED, or the time
	figures  *os.File
	figureMu sync.Mutex
)

func TestMain(m *testing.M) {
	name := os.Getenv("CHAOS_PROFILE")
	if name == "" {
		os.Exit(m.Run()) // every scenario skips
	}
	p, ok := profiles[name]
	if !ok {
		fmt.Fprintf(os.Stderr, "CHAOS_PROFILE=%s: want ci or full\n", name)
		os.Exit(2)
	}
	prof = p
	seedBase = uint64(time.Now().UnixNano() % 1_000_000)
	if s := os.Getenv("CHAOS_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			fmt.Fprintf(os.Stderr, "CHAOS_SEED=%s: want a number\n", s)
			os.Exit(2)
		}
		seedBase = n
	}
	dir, err := os.MkdirTemp("", "orbt-chaos-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	orbtBin = filepath.Join(dir, "orbt")
	// The binary people run: no race detector.
	build := exec.Command("go", "build", "-o", orbtBin, "..")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build orbt:", err)
		os.Exit(1)
	}
	report := os.Getenv("CHAOS_REPORT")
	if report == "" {
		report = filepath.Join(dir, "figures.md")
	}
	if figures, err = os.OpenFile(report, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "chaos: profile %s, seed %d (replay with CHAOS_SEED=%d), figures in %s\n", name, seedBase, seedBase, report)
	code := m.Run()
	figures.Close()
	os.RemoveAll(dir)
	os.Exit(code)
}

// scenario starts one scenario: it skips unless make chaos runs the suite,
// and gives the scenario its seeded randomness.
func scenario(t *testing.T) *rand.Rand {
	t.Helper()
	if prof.name == "" {
		t.Skip("the fault suite runs under make chaos (CHAOS_PROFILE=ci or full)")
	}
	t.Logf("seed %d: replay with CHAOS_SEED=%d CHAOS_PROFILE=%s go test -v -run '^%s$' ./chaos/", seedBase, seedBase, prof.name, t.Name())
	name := fnv.New64a()
	name.Write([]byte(t.Name()))
	return rand.New(rand.NewPCG(seedBase, name.Sum64()))
}

// figure records one measured figure of a scenario that passed, with how
// to replay the run that produced it; a failed scenario records none.
func figure(t *testing.T, format string, args ...any) {
	t.Helper()
	if t.Failed() {
		return
	}
	line := fmt.Sprintf(format, args...)
	t.Log("FIGURE " + line)
	figureMu.Lock()
	defer figureMu.Unlock()
	fmt.Fprintf(figures, "| %s | %s | %s | `CHAOS_PROFILE=%s CHAOS_SEED=%d go test -v -run '^%s$' ./chaos/` |\n",
		t.Name(), prof.name, line, prof.name, seedBase, t.Name())
}
