package partnerapi_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orbt/orbt/partnerapi"
	"github.com/orbt/orbt/store"
	"github.com/orbt/orbt/teststack"
)

// Every way a signature can be wrong is a 403 that says which check
// failed, and a refused write moves nothing.
func TestEachSigningFailureIsA403SayingWhich(t *testing.T) {
	p := newPartner(t, "USD:10000")
	other := newPartner(t)
	_, w := p.customer("sig@example.com", "USD", "1")
	path := "/wallets/" + w + "/transactions"
	body := []byte(`{"amount": 5, "transactionType": "CREDIT", "referenceId": "signed-1"}`)

	ctx := context.Background()
	var revoked, readOnly struct{ ID, Key string }
	teststack.OK(t)(p.native.Call(ctx, "POST", "/v1/api-keys", map[string]any{"name": "old", "scope": "write"}, 201, &revoked))
	teststack.OK(t)(p.native.Call(ctx, "DELETE", "/v1/api-keys/"+revoked.ID, nil, 204, nil))
	teststack.OK(t)(p.native.Call(ctx, "POST", "/v1/api-keys", map[string]any{"name": "ro", "scope": "read"}, 201, &readOnly))

	as := func(edit func(c *orbtClient)) *orbtClient {
		c := *p.orbtClient
		edit(&c)
		return &c
	}
	for _, tc := range []struct {
		name   string
		req    func() *http.Request
		status int
		reason string
	}{
		{"no signature", func() *http.Request {
			r := p.signed("POST", path, body, time.Now())
			r.Header.Del("x-signature")
			return r
		}, 403, "missing_header"},
		{"no api key", func() *http.Request {
			r := p.signed("POST", path, body, time.Now())
			r.Header.Del("x-api-key")
			return r
		}, 403, "missing_header"},
		{"no client id", func() *http.Request {
			r := p.signed("POST", path, body, time.Now())
			r.Header.Del("x-client-id")
			return r
		}, 403, "missing_header"},
		{"no timestamp", func() *http.Request {
			r := p.signed("POST", path, body, time.Now())
			r.Header.Del("x-timestamp")
			return r
		}, 403, "missing_header"},
		{"no body hash", func() *http.Request {
			r := p.signed("POST", path, body, time.Now())
			r.Header.Del("x-body-hash")
			return r
		}, 403, "missing_header"},
		{"unknown key", func() *http.Request {
			return as(func(c *orbtClient) { c.apiKey = "orbt_sk_nosuchkey" }).signed("POST", path, body, time.Now())
		}, 403, "unknown_api_key"},
		{"revoked key", func() *http.Request {
			return as(func(c *orbtClient) { c.apiKey = revoked.Key }).signed("POST", path, body, time.Now())
		}, 403, "unknown_api_key"},
		{"another workspace's key", func() *http.Request {
			return as(func(c *orbtClient) { c.apiKey = other.apiKey }).signed("POST", path, body, time.Now())
		}, 403, "client_id_mismatch"},
		{"another workspace's secret", func() *http.Request {
			return as(func(c *orbtClient) { c.secret = other.secret }).signed("POST", path, body, time.Now())
		}, 403, "signature_mismatch"},
		{"timestamp 6 minutes old", func() *http.Request {
			return p.signed("POST", path, body, time.Now().Add(-6*time.Minute))
		}, 403, "stale_timestamp"},
		{"timestamp 6 minutes ahead", func() *http.Request {
			return p.signed("POST", path, body, time.Now().Add(6*time.Minute))
		}, 403, "stale_timestamp"},
		{"timestamp not ISO 8601", func() *http.Request {
			r := p.signed("POST", path, body, time.Now())
			r.Header.Set("x-timestamp", fmt.Sprint(time.Now().Unix()))
			return r
		}, 403, "invalid_timestamp"},
		{"timestamp changed after signing", func() *http.Request {
			r := p.signed("POST", path, body, time.Now())
			r.Header.Set("x-timestamp", time.Now().Add(time.Second).UTC().Format(time.RFC3339))
			return r
		}, 403, "signature_mismatch"},
		{"body changed after signing", func() *http.Request {
			r := p.signed("POST", path, []byte(`{"amount": 500, "transactionType": "CREDIT", "referenceId": "signed-1"}`), time.Now())
			good := p.signed("POST", path, body, time.Now())
			r.Header.Set("x-body-hash", good.Header.Get("x-body-hash"))
			r.Header.Set("x-signature", good.Header.Get("x-signature"))
			r.Header.Set("x-timestamp", good.Header.Get("x-timestamp"))
			return r
		}, 403, "body_hash_mismatch"},
		{"method changed after signing", func() *http.Request {
			r := p.signed("GET", "/customer", nil, time.Now())
			r.Method = "POST"
			return r
		}, 403, "signature_mismatch"},
		{"signature of another body hash", func() *http.Request {
			r := p.signed("POST", path, body, time.Now())
			r.Header.Set("x-signature", p.signed("POST", path, []byte("{}"), time.Now()).Header.Get("x-signature"))
			return r
		}, 403, "signature_mismatch"},
		{"read-only key writing", func() *http.Request {
			return as(func(c *orbtClient) { c.apiKey = readOnly.Key }).signed("POST", path, body, time.Now())
		}, 403, "insufficient_scope"},
		{"bearer key alone", func() *http.Request {
			r, _ := http.NewRequest("POST", p.base+path, strings.NewReader(string(body)))
			r.Header.Set("Authorization", "Bearer "+p.apiKey)
			return r
		}, 403, "missing_header"},
	} {
		a := p.send(tc.req())
		if a.status != tc.status || a.reason() != tc.reason {
			t.Errorf("%s: %d %s, want %d %s", tc.name, a.status, a.raw, tc.status, tc.reason)
		}
		if want := "AUTHENTICATION_ERROR"; tc.reason == "insufficient_scope" {
			if a.errorCode() != "ACCESS_DENIED" {
				t.Errorf("%s: code %s", tc.name, a.errorCode())
			}
		} else if a.errorCode() != want {
			t.Errorf("%s: code %s, want %s", tc.name, a.errorCode(), want)
		}
	}
	if got := p.nativeWallet(w); got.Balance != 100 {
		t.Fatalf("refused requests moved the wallet to %d", got.Balance)
	}
	// A key used without its signing secret does not look used.
	var fresh struct{ ID, Key string }
	teststack.OK(t)(p.native.Call(ctx, "POST", "/v1/api-keys", map[string]any{"name": "fresh", "scope": "write"}, 201, &fresh))
	leaked := as(func(c *orbtClient) { c.apiKey, c.secret = fresh.Key, "ssec_guess" })
	if a := leaked.do("GET", "/customer", nil); a.status != 403 {
		t.Fatalf("a guessed secret: %s", a.raw)
	}
	lastUsed := func() *time.Time {
		var keys struct {
			Data []struct {
				ID         string
				LastUsedAt *time.Time
			}
		}
		teststack.OK(t)(p.native.Call(ctx, "GET", "/v1/api-keys", nil, 200, &keys))
		for _, k := range keys.Data {
			if k.ID == fresh.ID {
				return k.LastUsedAt
			}
		}
		t.Fatal("the fresh key is not listed")
		return nil
	}
	if used := lastUsed(); used != nil {
		t.Fatalf("a refused request marked the key used at %v", used)
	}
	expect(t, as(func(c *orbtClient) { c.apiKey = fresh.Key }).do("GET", "/customer", nil), 200)
	if lastUsed() == nil {
		t.Fatal("a signed request did not mark its key used")
	}
	// The read-only key reads; the signed request with every check passing writes.
	ro := as(func(c *orbtClient) { c.apiKey = readOnly.Key })
	expect(t, ro.do("GET", "/customer", nil), 200)
	expect(t, p.send(p.signed("POST", path, body, time.Now())), 200)
	// Offsets other than Z name the same instant.
	r := p.signed("GET", "/customer", nil, time.Now())
	at, _ := time.Parse(time.RFC3339Nano, r.Header.Get("x-timestamp"))
	r = as(func(*orbtClient) {}).signedAt("GET", "/customer", nil, at.In(time.FixedZone("", 2*3600)).Format(time.RFC3339))
	expect(t, p.send(r), 200)
}

// The server's own helpers sign as the documentation says (they are what
// the README's Go example uses).
func TestSignatureHelpersMatchTheDocumentation(t *testing.T) {
	p := &orbtClient{t: t, base: "http://x", apiKey: "k", clientID: "ws_1", secret: "ssec_abc"}
	r := p.signedAt("POST", "/customer", []byte(`{"a":1}`), "2026-11-26T10:00:00Z")
	if got := partnerapi.BodyHash([]byte(`{"a":1}`)); got != r.Header.Get("x-body-hash") {
		t.Fatalf("BodyHash %s, want %s", got, r.Header.Get("x-body-hash"))
	}
	if got := partnerapi.Signature("ssec_abc", "POST", "2026-11-26T10:00:00Z", "ws_1", r.Header.Get("x-body-hash")); got != r.Header.Get("x-signature") {
		t.Fatalf("Signature %s, want %s", got, r.Header.Get("x-signature"))
	}
	// The empty body's hash, as every GET sends it.
	if got := partnerapi.BodyHash(nil); got != "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=" {
		t.Fatalf("hash of the empty body: %s", got)
	}
}

// A rotated signing secret is shown once; every secret rotated out keeps
// verifying for a day, however many rotations that day made, so a double
// click cuts no client off; another process sees a new secret at once.
func TestSigningSecretRotation(t *testing.T) {
	p := newPartner(t)
	ctx := context.Background()
	other := secondStack(t) // another API process: its own cache
	at := func(base, secret string) int {
		c := *p.orbtClient
		c.base, c.secret = base+"/api/partner/v1", secret
		return c.do("GET", "/customer", nil).status
	}
	local := getStack(t).URL
	rotate := func() (r struct {
		SigningSecret     string
		PreviousExpiresAt time.Time
	}) {
		t.Helper()
		teststack.OK(t)(p.native.Call(ctx, "POST", "/v1/workspace/signing-secret/rotate", nil, 200, &r))
		return r
	}
	original := p.secret
	if at(other, original) != 200 { // fills the other process's cache
		t.Fatal("the original secret is refused")
	}
	first := rotate()
	if first.SigningSecret == "" || first.SigningSecret == original {
		t.Fatalf("rotated: %+v", first)
	}
	if d := time.Until(first.PreviousExpiresAt); d < 23*time.Hour || d > 25*time.Hour {
		t.Fatalf("the old secret expires in %v, want a day", d)
	}
	// Another process re-reads a workspace's secrets, when a signature
	// matches none it holds, at most every 100 ms; its cache was filled
	// just now.
	settle := func() { time.Sleep(150 * time.Millisecond) }
	settle()
	for _, base := range []string{local, other} {
		if at(base, first.SigningSecret) != 200 || at(base, original) != 200 {
			t.Fatalf("after one rotation, %s refuses the new or the old secret", base)
		}
	}

	// Six rotations at once: each answer's secret works, and so do all before.
	secrets := []string{original, first.SigningSecret}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range 6 {
		wg.Go(func() {
			r := rotate()
			mu.Lock()
			secrets = append(secrets, r.SigningSecret)
			mu.Unlock()
		})
	}
	wg.Wait()
	settle()
	for i, secret := range secrets {
		if at(local, secret) != 200 || at(other, secret) != 200 {
			t.Errorf("secret %d of %d refused after concurrent rotations", i, len(secrets))
		}
	}
	// Ten rotated-out secrets live at once at most: then a rotation waits.
	for range 3 {
		rotate()
	}
	if res, err := p.native.Do(ctx, "POST", "/v1/workspace/signing-secret/rotate", nil, nil); err != nil || res.Status != 409 {
		t.Fatalf("an eleventh rotation within the day: %v %+v", err, res)
	}

	var readOnly struct{ Key string }
	teststack.OK(t)(p.native.Call(ctx, "POST", "/v1/api-keys", map[string]any{"name": "ro", "scope": "read"}, 201, &readOnly))
	if res, err := p.native.WithKey(readOnly.Key).Do(ctx, "POST", "/v1/workspace/signing-secret/rotate", nil, nil); err != nil || res.Status != 403 {
		t.Fatalf("a read-only key rotated the signing secret: %v %+v", err, res)
	}

	// A day later the rotated-out secrets stop verifying (seen by a process
	// that has not cached them), and rotation is open again.
	if _, err := db.Pool.Exec(ctx, `UPDATE previous_signing_secrets SET expires_at = now() - interval '1 second'
		WHERE workspace_id = $1`, p.id); err != nil {
		t.Fatal(err)
	}
	later := secondStack(t)
	if got := at(later, original); got != 403 {
		t.Fatalf("a secret rotated out a day ago: %d", got)
	}
	last := rotate()
	settle()
	if at(later, last.SigningSecret) != 200 {
		t.Fatal("the current secret is refused")
	}
}

// Signing secrets rest sealed; one a workspace made before they were
// sealed is sealed the first time it is read, and keeps working.
func TestSigningSecretsRestSealed(t *testing.T) {
	p := newPartner(t)
	ctx := context.Background()
	var clear *string
	var sealed []byte
	if err := db.Pool.QueryRow(ctx, `SELECT signing_secret, signing_secret_sealed FROM workspaces WHERE id = $1`, p.id).
		Scan(&clear, &sealed); err != nil {
		t.Fatal(err)
	}
	if clear != nil || len(sealed) == 0 || strings.Contains(string(sealed), p.secret) {
		t.Fatalf("stored in clear: %v %q", clear, sealed)
	}
	legacy := store.NewID("ws")
	if _, err := db.Pool.Exec(ctx, `INSERT INTO workspaces (id, name, signing_secret) VALUES ($1, 'legacy', 'ssec_legacy')`, legacy); err != nil {
		t.Fatal(err)
	}
	ws := getStack(t).App.Workspaces
	for range 2 {
		secrets, err := ws.SigningSecrets(ctx, legacy)
		if err != nil || secrets.Current != "ssec_legacy" {
			t.Fatalf("legacy secret: %+v %v", secrets, err)
		}
	}
	if err := db.Pool.QueryRow(ctx, `SELECT signing_secret, signing_secret_sealed FROM workspaces WHERE id = $1`, legacy).
		Scan(&clear, &sealed); err != nil {
		t.Fatal(err)
	}
	if clear != nil || len(sealed) == 0 {
		t.Fatalf("the legacy secret was not sealed: %v %q", clear, sealed)
	}
}

// Rotations at once stop at ten live rotated-out secrets all the same:
// each waits for the one before and counts what it left.
func TestConcurrentRotationsStopAtTen(t *testing.T) {
	p := newPartner(t)
	ctx := context.Background()
	const n = 12
	statuses := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			res, err := p.native.Do(ctx, "POST", "/v1/workspace/signing-secret/rotate", nil, nil)
			if err != nil {
				t.Error(err)
				return
			}
			statuses[i] = res.Status
		})
	}
	wg.Wait()
	var ok, refused int
	for _, s := range statuses {
		switch s {
		case 200:
			ok++
		case 409:
			refused++
		}
	}
	var live int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM previous_signing_secrets WHERE workspace_id = $1 AND expires_at > now()`,
		p.id).Scan(&live); err != nil {
		t.Fatal(err)
	}
	if ok != 10 || refused != 2 || live != 10 {
		t.Fatalf("%d rotations at once: %d made, %d refused (%v), %d live", n, ok, refused, statuses, live)
	}
}
