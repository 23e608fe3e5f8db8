package sweep_test

import (
	"log/slog"
	"os"
	"testing"

	"github.com/orbt/orbt/sweep"
	"github.com/orbt/orbt/testenv"
	"github.com/orbt/orbt/teststack"
	"github.com/orbt/orbt/workspace"
)

// redisDB is this package's Redis database index (see the Makefile).
const redisDB = 3

var db *testenv.Database

func TestMain(m *testing.M) {
	// Cheaper password hashes: the sweep makes six console members, and
	// -race makes argon2 slow.
	workspace.PasswordParams.Memory, workspace.PasswordParams.Iterations = 1024, 1
	os.Exit(testenv.Main(m, "sweep", &db))
}

// The whole sweep against the in-process stack (the assembly orbt dev
// runs), with private webhook addresses refused as in a deployment and
// every log line kept, debug included.
func TestSecuritySweep(t *testing.T) {
	var logs testenv.SyncBuffer
	log := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s := teststack.Start(t, db.Pool, redisDB, teststack.Options{Logger: log, DenyPrivateWebhooks: true})
	sweep.Run(t, sweep.Target{BaseURL: s.URL, AdminToken: teststack.AdminToken, DatabaseURL: db.URL,
		Logs: func() []byte { return []byte(logs.String()) }})
}
