package workspace

import (
	"context"
	"strings"
	"testing"

	"github.com/orbt/orbt/seal"
	"github.com/orbt/orbt/store"
)

// A workspace made before signing secrets were sealed keeps its secret in
// clear text until something reads it; a process's start seals them all
// (SealLegacySigningSecrets), so one whose secret is never read keeps none
// in clear either, and the secret still verifies afterwards.
func TestLegacySigningSecretsAreSealedAtStart(t *testing.T) {
	ctx := context.Background()
	sealer, err := seal.NewSealer(store.RandomBytes(seal.DataKeySize))
	if err != nil {
		t.Fatal(err)
	}
	s := New(db.Pool, sealer)
	created, err := s.CreateWorkspace(ctx, "legacy")
	if err != nil {
		t.Fatal(err)
	}
	const legacy = "ssec_madebeforesealing0123456789"
	if _, err := db.Pool.Exec(ctx, `UPDATE workspaces SET signing_secret = $2, signing_secret_sealed = NULL WHERE id = $1`,
		created.ID, legacy); err != nil {
		t.Fatal(err)
	}
	if n, err := s.SealLegacySigningSecrets(ctx); err != nil || n < 1 {
		t.Fatalf("SealLegacySigningSecrets: %d, %v", n, err)
	}
	var row string
	if err := db.Pool.QueryRow(ctx, `SELECT w::text FROM workspaces w WHERE id = $1`, created.ID).Scan(&row); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(row, "madebeforesealing") {
		t.Errorf("the signing secret is still in clear text: %s", row)
	}
	if got, err := s.SigningSecrets(ctx, created.ID); err != nil || got.Current != legacy {
		t.Errorf("signing secret after sealing: %+v, %v", got, err)
	}
	if n, err := s.SealLegacySigningSecrets(ctx); err != nil || n != 0 {
		t.Errorf("SealLegacySigningSecrets again: %d, %v", n, err)
	}
}
