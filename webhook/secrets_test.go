package webhook

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/orbt/orbt/ledger"
	"github.com/orbt/orbt/seal"
	"github.com/orbt/orbt/store"
	"github.com/orbt/orbt/webhooksig"
	"github.com/orbt/orbt/workspace"
)

// fixture is a funded workspace of its own and a store sealing under a
// data key of the test's.
type fixture struct {
	t      *testing.T
	hooks  *Store
	ledger *ledger.Ledger
	ws     string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	sealer, err := seal.NewSealer(store.RandomBytes(seal.DataKeySize))
	if err != nil {
		t.Fatal(err)
	}
	created, err := workspace.New(db.Pool, sealer).CreateWorkspace(context.Background(), "hooks "+t.Name())
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{t: t, hooks: NewStore(db.Pool, sealer, true), ledger: ledger.New(db.Pool, QueueFanout), ws: created.ID}
}

// recorder is a receiver that answers 200 to everything and keeps what
// it was sent.
type recorder struct {
	*httptest.Server
	mu   sync.Mutex
	got  []*http.Request
	body [][]byte
}

func newRecorder(t *testing.T) *recorder {
	r := &recorder{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.got, r.body = append(r.got, req), append(r.body, b)
		r.mu.Unlock()
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *recorder) requests() ([]*http.Request, [][]byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.got, r.body
}

// stored is an endpoint's row as a dump of the database shows it.
func (f *fixture) stored(id string) string {
	f.t.Helper()
	var row string
	if err := db.Pool.QueryRow(context.Background(), `SELECT w::text FROM webhook_endpoints w WHERE id = $1`, id).Scan(&row); err != nil {
		f.t.Fatal(err)
	}
	return row
}

// makeLegacy turns an endpoint into one made before secrets were sealed:
// its secrets in the clear-text columns only.
func (f *fixture) makeLegacy(id, secret, previous string) {
	f.t.Helper()
	if _, err := db.Pool.Exec(context.Background(), `UPDATE webhook_endpoints SET secret = $2, secret_sealed = NULL,
		previous_secret = NULLIF($3, ''), previous_secret_sealed = NULL,
		previous_secret_expires_at = CASE WHEN $3 <> '' THEN now() + interval '1 hour' END WHERE id = $1`, id, secret, previous); err != nil {
		f.t.Fatal(err)
	}
}

// The secrets an endpoint is made and rotated with are never stored in
// clear text (they were, in webhook_endpoints.secret and previous_secret).
func TestEndpointSecretsRestSealed(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	e, err := f.hooks.CreateEndpoint(ctx, f.ws, "https://hooks.example.com/a", []string{"transaction.completed"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(e.Secret, "whsec_") {
		t.Fatalf("secret %q", e.Secret)
	}
	rotated, err := f.hooks.RotateSecret(ctx, f.ws, e.ID)
	if err != nil {
		t.Fatal(err)
	}
	row := f.stored(e.ID)
	for _, secret := range []string{e.Secret, rotated.Secret, strings.TrimPrefix(e.Secret, "whsec_"), strings.TrimPrefix(rotated.Secret, "whsec_")} {
		if strings.Contains(row, secret) {
			t.Errorf("webhook_endpoints holds a secret in clear text: %s", row)
		}
	}
	var clearCols int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM webhook_endpoints WHERE id = $1 AND (secret IS NOT NULL OR previous_secret IS NOT NULL
		OR secret_sealed IS NULL OR previous_secret_sealed IS NULL)`, e.ID).Scan(&clearCols); err != nil || clearCols != 0 {
		t.Errorf("endpoint after create and rotate: %d rows with clear or missing sealed secrets (%v): %s", clearCols, err, row)
	}
	// A sealed secret is bound to its endpoint: copied to another, it
	// does not open.
	other, err := f.hooks.CreateEndpoint(ctx, f.ws, "https://hooks.example.com/b", []string{"transaction.completed"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Pool.Exec(ctx, `UPDATE webhook_endpoints SET secret_sealed = (SELECT secret_sealed FROM webhook_endpoints WHERE id = $1)
		WHERE id = $2`, e.ID, other.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.hooks.RotateSecret(ctx, f.ws, other.ID); err == nil {
		t.Error("a secret sealed for another endpoint opened")
	}
}

// An endpoint made before secrets were sealed keeps working, and is
// sealed: at a process's start (SealLegacySecrets), by a rotation, or by
// the delivery that reads it. Its deliveries are signed with the secrets
// it had.
func TestLegacyClearSecretsAreSealedAndKeepSigning(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	rcv := newRecorder(t)

	// 1. At start.
	started, err := f.hooks.CreateEndpoint(ctx, f.ws, "https://hooks.example.com/start", []string{"batch.completed"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	f.makeLegacy(started.ID, "whsec_legacycurrent1", "whsec_legacyprevious1")
	if n, err := f.hooks.SealLegacySecrets(ctx); err != nil || n < 1 {
		t.Fatalf("SealLegacySecrets: %d, %v", n, err)
	}
	if row := f.stored(started.ID); strings.Contains(row, "legacy") {
		t.Errorf("clear text left after SealLegacySecrets: %s", row)
	}
	if n, err := f.hooks.SealLegacySecrets(ctx); err != nil || n != 0 {
		t.Errorf("SealLegacySecrets again: %d, %v", n, err)
	}

	// 2. By a rotation: the legacy secret becomes the sealed previous one.
	rotated, err := f.hooks.CreateEndpoint(ctx, f.ws, "https://hooks.example.com/rotate", []string{"batch.completed"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	f.makeLegacy(rotated.ID, "whsec_legacycurrent2", "")
	after, err := f.hooks.RotateSecret(ctx, f.ws, rotated.ID)
	if err != nil {
		t.Fatal(err)
	}
	if row := f.stored(rotated.ID); strings.Contains(row, "legacy") || strings.Contains(row, after.Secret) {
		t.Errorf("clear text left after a rotation: %s", row)
	}

	// 3. By a delivery, signed with both legacy secrets.
	delivered, err := f.hooks.CreateEndpoint(ctx, f.ws, rcv.URL, []string{"transaction.completed"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	const current, previous = "whsec_bGVnYWN5Y3VycmVudDM=", "whsec_bGVnYWN5cHJldmlvdXMz"
	f.makeLegacy(delivered.ID, current, previous)
	funding, _, err := f.ledger.Fund(ctx, f.ws, "seed", "USD", 100)
	if err != nil {
		t.Fatal(err)
	}
	applied, err := f.ledger.ApplyLane(ctx, funding.LaneID())
	if err != nil || len(applied.Deliveries) != 1 {
		t.Fatalf("apply: %+v %v", applied, err)
	}
	sender := NewSender(f.hooks, f.ledger.EventsByID, nil)
	if res, err := sender.Deliver(ctx, applied.Deliveries[0]); err != nil || !res.Succeeded {
		t.Fatalf("deliver: %+v %v", res, err)
	}
	if row := f.stored(delivered.ID); strings.Contains(row, "bGVnYWN5") {
		t.Errorf("clear text left after a delivery: %s", row)
	}
	got, body := rcv.requests()
	if len(got) != 1 {
		t.Fatalf("receiver got %d requests", len(got))
	}
	for _, secret := range []string{current, previous} {
		if err := webhooksig.Verify(body[0], got[0].Header, secret); err != nil {
			t.Errorf("not signed with %s: %v", secret, err)
		}
	}
	if !bytes.Contains(body[0], []byte(funding.ID)) {
		t.Errorf("delivered %s", body[0])
	}
}

// During a rollout a process of the release before sealing rotates a
// sealed endpoint's secret the old way: the new secret in clear text
// beside the stale sealed one, and no previous secret (its clear column
// was NULL). The new secret signs, the replaced one signs alongside it
// until the overlap ends, and sealing keeps both rather than the stale one.
func TestRotationByTheReleaseBeforeKeepsTheNewSecret(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	rcv := newRecorder(t)
	e, err := f.hooks.CreateEndpoint(ctx, f.ws, rcv.URL, []string{"transaction.completed"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	const rotatedByOld = "whsec_cm90YXRlZGJ5b2xkcmVsZWFzZQ=="
	if _, err := db.Pool.Exec(ctx, `UPDATE webhook_endpoints SET previous_secret = secret,
		previous_secret_expires_at = now() + interval '1 hour', secret = $2 WHERE id = $1`, e.ID, rotatedByOld); err != nil {
		t.Fatal(err)
	}
	funding, _, err := f.ledger.Fund(ctx, f.ws, "seed", "USD", 100)
	if err != nil {
		t.Fatal(err)
	}
	applied, err := f.ledger.ApplyLane(ctx, funding.LaneID())
	if err != nil || len(applied.Deliveries) != 1 {
		t.Fatalf("apply: %+v %v", applied, err)
	}
	if res, err := NewSender(f.hooks, f.ledger.EventsByID, nil).Deliver(ctx, applied.Deliveries[0]); err != nil || !res.Succeeded {
		t.Fatalf("deliver: %+v %v", res, err)
	}
	// The delivery sealed the row; a start's sealing finds nothing left.
	if n, err := f.hooks.SealLegacySecrets(ctx); err != nil || n != 0 {
		t.Errorf("SealLegacySecrets after the delivery: %d, %v", n, err)
	}
	if row := f.stored(e.ID); strings.Contains(row, "cm90YXRl") {
		t.Errorf("clear text left: %s", row)
	}
	// A rotation now makes the old release's secret the previous one.
	again, err := f.hooks.RotateSecret(ctx, f.ws, e.ID)
	if err != nil {
		t.Fatal(err)
	}
	got, body := rcv.requests()
	if len(got) != 1 {
		t.Fatalf("receiver got %d requests", len(got))
	}
	for _, secret := range []string{rotatedByOld, e.Secret} {
		if err := webhooksig.Verify(body[0], got[0].Header, secret); err != nil {
			t.Errorf("not signed with %s: %v", secret, err)
		}
	}
	var st storedSecrets
	if err := db.Pool.QueryRow(ctx, `SELECT secret, secret_sealed, previous_secret, previous_secret_sealed FROM webhook_endpoints WHERE id = $1`,
		e.ID).Scan(&st.clear, &st.sealed, &st.clearPrevious, &st.sealedPrevious); err != nil {
		t.Fatal(err)
	}
	current, previous, err := f.hooks.open(e.ID, st)
	if err != nil || current != again.Secret || previous == nil || *previous != rotatedByOld {
		t.Errorf("after rotating again: current %q (want %q), previous %v (want the old release's), %v", current, again.Secret, previous, err)
	}
}
