package webhook

import (
	"os"
	"testing"

	"github.com/orbt/orbt/testenv"
)

var db *testenv.Database

func TestMain(m *testing.M) { os.Exit(testenv.Main(m, "webhook", &db)) }
