// Package scale_test runs Orbt on the engines it scales out on, as real
// processes on loopback (package testproc): Redis behind three sentinels, a
// Redis Cluster, and a streaming Postgres replica.
package scale_test

import (
	"os"
	"testing"

	"github.com/orbt/orbt/testenv"
)

var db *testenv.Database

func TestMain(m *testing.M) { os.Exit(testenv.Main(m, "scale", &db)) }
