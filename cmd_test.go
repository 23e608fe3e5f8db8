package main

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/orbt/orbt/config"
)

func TestBrandsImportIsAllOrNothing(t *testing.T) {
	t.Setenv("DATABASE_URL", db.URL)
	dir := t.TempDir()
	good := filepath.Join(dir, "good.csv")
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(good, []byte("id,name,currency,minAmount,maxAmount,denominations\ncli-a,CLI A,USD,100,900,\ncli-b,CLI B,GBP,500,500,500\n"), 0o644)
	os.WriteFile(bad, []byte("[\n {\"id\": \"cli-c\", \"name\": \"C\", \"currency\": \"USD\", \"minAmount\": 1, \"maxAmount\": 2},\n"+
		" {\"id\": \"cli-d\", \"name\": \"D\", \"currency\": \"USD\", \"minAmount\": -1, \"maxAmount\": 2}\n]"), 0o644)
	for range 2 { // idempotent
		if err := run([]string{"brands", "import", good}); err != nil {
			t.Fatal(err)
		}
	}
	err := run([]string{"brands", "import", bad})
	if err == nil || !strings.Contains(err.Error(), "line 3, column 2: minAmount") || !strings.Contains(err.Error(), "nothing was imported") {
		t.Fatalf("malformed file: %v", err)
	}
	var n int
	db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM brands WHERE id LIKE 'cli-%'`).Scan(&n)
	if n != 2 {
		t.Fatalf("%d cli- brands, want 2 (cli-a, cli-b; none of the malformed file)", n)
	}
}

func TestProductionRefusesToStartWithoutADataKey(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	if _, err := settings(config.Config{Env: config.EnvProduction}, log); err == nil || !strings.Contains(err.Error(), "ORBT_DATA_KEY") {
		t.Fatalf("production without a key: %v", err)
	}
	if _, err := settings(config.Config{Env: config.EnvProduction, DataKey: "dG9vIHNob3J0"}, log); err == nil {
		t.Fatal("a short data key was accepted")
	}
	s, err := settings(config.Config{Env: config.EnvDevelopment}, log)
	if err != nil || len(s.DataKey) != 32 {
		t.Fatalf("development falls back to the development key: %v", err)
	}
	if _, err := settings(config.Config{Env: config.EnvDevelopment, SandboxFaults: "unavailable=0.8,timeout=0.5"}, log); err == nil {
		t.Fatal("sandbox faults over 100% were accepted")
	}
}

// What an operator sets in the environment reaches the process's parts
// (ORBT_SMTP_URL once did not).
func TestEnvironmentReachesSettings(t *testing.T) {
	t.Setenv("ORBT_SMTP_URL", "smtp://mail.example.com:587?from=orbt@example.com")
	t.Setenv("ORBT_RATE_LIMIT_READ", "7")
	t.Setenv("ORBT_RATE_LIMIT_WRITE", "0")
	cfg, err := config.Load()
	if err != nil {
		t.Fatal(err)
	}
	s, err := settings(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if s.SMTPURL != "smtp://mail.example.com:587?from=orbt@example.com" {
		t.Errorf("SMTPURL %q", s.SMTPURL)
	}
	if s.RateLimits.Read != 7 || s.RateLimits.Write != 0 {
		t.Errorf("RateLimits %+v, want read 7, write off", s.RateLimits)
	}
	t.Setenv("ORBT_RATE_LIMIT_WRITE", "-1")
	if _, err := config.Load(); err == nil || !strings.Contains(err.Error(), "ORBT_RATE_LIMIT_WRITE") {
		t.Errorf("a negative budget: %v", err)
	}
}
