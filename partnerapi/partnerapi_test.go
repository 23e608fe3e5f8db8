package partnerapi_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orbt/orbt/app"
	"github.com/orbt/orbt/client"
	"github.com/orbt/orbt/store"
	"github.com/orbt/orbt/testenv"
	"github.com/orbt/orbt/teststack"
)

var db *testenv.Database

// redisDB is this package's Redis database index, and idleRedisDB one
// no worker reads (see the Makefile).
const (
	redisDB     = 7
	idleRedisDB = 8
)

// relayAfter is the shared stack's ORBT_RELAY_AFTER.
const relayAfter = 5 * time.Second

func TestMain(m *testing.M) {
	os.Exit(testenv.Main(m, "partnerapi", &db))
}

var (
	stackOnce sync.Once
	stack     *teststack.Stack
)

// getStack starts the package's shared stack (every surface and a worker) once.
func getStack(t *testing.T) *teststack.Stack {
	t.Helper()
	stackOnce.Do(func() {
		// The relay waits 5 s: the 202 test's credits, whose wake-ups no
		// worker hears, stay pending well past their 1 s wait.
		s, err := teststack.New(db.Pool, testenv.AsynqRedis(testenv.Redis(t, redisDB)),
			teststack.Options{Settings: app.Settings{RelayAfter: relayAfter}})
		if err != nil {
			t.Fatal(err)
		}
		stack = s
	})
	if stack == nil {
		t.Fatal("no stack")
	}
	return stack
}

// secondStack starts another API process (no worker) over the package's
// database, enqueueing into a Redis database no worker reads, with the
// shared stack's data key (signing secrets are sealed with it); it
// returns its URL.
func secondStack(t *testing.T) string {
	t.Helper()
	return secondStackWith(t, app.Settings{})
}

// secondStackWith is secondStack with settings of its own.
func secondStackWith(t *testing.T, settings app.Settings) string {
	t.Helper()
	settings.DataKey = getStack(t).App.Settings.DataKey
	s, err := teststack.New(db.Pool, testenv.AsynqRedis(testenv.RedisOptions(idleRedisDB)),
		teststack.Options{NoWorker: true, Settings: settings})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s.URL
}

// orbtClient signs requests exactly as Orbt's partner API documentation
// describes, written from the documentation and not from the server's
// code: x-body-hash is base64(SHA-256(body)), x-signature is
// base64(HMAC-SHA256(secret, METHOD\nTIMESTAMP\nCLIENT_ID\nBODY_HASH)).
type orbtClient struct {
	t        *testing.T
	base     string
	apiKey   string
	clientID string
	secret   string
}

// answer is a response of the partner API, its JSON body decoded with
// numbers kept as written.
type answer struct {
	status int
	header http.Header
	raw    string
	body   map[string]any
}

func (a answer) data() map[string]any {
	d, _ := a.body["data"].(map[string]any)
	return d
}

func (a answer) errorCode() string {
	e, _ := a.body["error"].(map[string]any)
	s, _ := e["code"].(string)
	return s
}

func (a answer) reason() string {
	e, _ := a.body["error"].(map[string]any)
	d, _ := e["details"].(map[string]any)
	s, _ := d["reason"].(string)
	return s
}

// detail is one of an error's details.
func (a answer) detail(key string) any {
	e, _ := a.body["error"].(map[string]any)
	d, _ := e["details"].(map[string]any)
	return d[key]
}

// fields are the request fields an error names.
func (a answer) fields() []string {
	e, _ := a.body["error"].(map[string]any)
	d, _ := e["details"].(map[string]any)
	list, _ := d["fields"].([]any)
	var names []string
	for _, f := range list {
		m, _ := f.(map[string]any)
		name, _ := m["field"].(string)
		names = append(names, name)
	}
	return names
}

// signed builds a request signed at a time.
func (o *orbtClient) signed(method, path string, body []byte, at time.Time) *http.Request {
	o.t.Helper()
	return o.signedAt(method, path, body, at.UTC().Format("2006-01-02T15:04:05.000Z"))
}

// signedAt builds a request signed with timestamp as its x-timestamp.
func (o *orbtClient) signedAt(method, path string, body []byte, timestamp string) *http.Request {
	o.t.Helper()
	req, err := http.NewRequest(method, o.base+path, bytes.NewReader(body))
	if err != nil {
		o.t.Fatal(err)
	}
	sum := sha256.Sum256(body)
	bodyHash := base64.StdEncoding.EncodeToString(sum[:])
	mac := hmac.New(sha256.New, []byte(o.secret))
	mac.Write([]byte(method + "\n" + timestamp + "\n" + o.clientID + "\n" + bodyHash))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("x-api-key", o.apiKey)
	req.Header.Set("x-client-id", o.clientID)
	req.Header.Set("x-timestamp", timestamp)
	req.Header.Set("x-body-hash", bodyHash)
	req.Header.Set("x-signature", base64.StdEncoding.EncodeToString(mac.Sum(nil)))
	return req
}

func (o *orbtClient) send(req *http.Request) answer {
	o.t.Helper()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		o.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		o.t.Fatal(err)
	}
	a := answer{status: res.StatusCode, header: res.Header, raw: string(raw)}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&a.body); err != nil {
		o.t.Fatalf("%s %s: %d, not JSON: %q", req.Method, req.URL.Path, res.StatusCode, raw)
	}
	if ok, _ := a.body["success"].(bool); ok != (res.StatusCode/100 == 2) {
		o.t.Fatalf("%s %s: %d with success %v: %s", req.Method, req.URL.Path, res.StatusCode, a.body["success"], raw)
	}
	return a
}

// do sends a signed request; body is JSON text or a value to encode.
func (o *orbtClient) do(method, path string, body any) answer {
	o.t.Helper()
	return o.send(o.signed(method, path, encode(o.t, body), time.Now()))
}

func encode(t *testing.T, body any) []byte {
	t.Helper()
	switch b := body.(type) {
	case nil:
		return nil
	case string:
		return []byte(b)
	case []byte:
		return b
	}
	data, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func expect(t *testing.T, a answer, status int) answer {
	t.Helper()
	if a.status != status {
		t.Fatalf("status %d, want %d: %s", a.status, status, a.raw)
	}
	return a
}

// partner is a workspace on the stack: its Orbt-compatible client and its
// native one.
type partner struct {
	*orbtClient
	id     string
	native *client.Client
}

// newPartner makes a workspace funded with funding (minor units) in each
// currency given as "USD:100000".
func newPartner(t *testing.T, fundings ...string) *partner {
	t.Helper()
	s := getStack(t)
	ctx := context.Background()
	var created struct{ ID, APIKey, SigningSecret string }
	teststack.OK(t)(s.Admin.Call(ctx, "POST", "/admin/v1/workspaces", map[string]any{"name": "hosted"}, 201, &created))
	if created.SigningSecret == "" {
		t.Fatal("workspace created without a signing secret")
	}
	p := &partner{orbtClient: &orbtClient{t: t, base: s.URL + "/api/partner/v1", apiKey: created.APIKey,
		clientID: created.ID, secret: created.SigningSecret}, id: created.ID, native: s.Client(created.APIKey)}
	for _, f := range fundings {
		cur, amount, _ := strings.Cut(f, ":")
		res, err := s.Admin.Do(ctx, "POST", "/admin/v1/workspaces/"+created.ID+"/fundings",
			fmt.Sprintf(`{"referenceId": %q, "currency": %q, "amount": %s}`, store.NewID("fund"), cur, amount),
			http.Header{"Prefer": {"wait=10"}})
		if err != nil || res.Status != 200 {
			t.Fatalf("funding %s: %v %+v", f, err, res)
		}
	}
	return p
}

// nativeWallet reads a wallet through the native API.
func (p *partner) nativeWallet(id string) (w struct {
	Balance  int64
	Currency string
	Held     int64
}) {
	p.t.Helper()
	teststack.OK(p.t)(p.native.Call(context.Background(), "GET", "/v1/wallets/"+id, nil, 200, &w))
	return w
}

// partnerBalance reads a partner balance in minor units through the native API.
func (p *partner) partnerBalance(cur string) int64 {
	p.t.Helper()
	var ws struct {
		Balances []struct {
			Currency  string
			Available int64
		}
	}
	teststack.OK(p.t)(p.native.Call(context.Background(), "GET", "/v1/workspace", nil, 200, &ws))
	for _, b := range ws.Balances {
		if b.Currency == cur {
			return b.Available
		}
	}
	return 0
}

// customer creates a customer and returns its id and wallet id.
func (p *partner) customer(email, currency, initialFunds string) (int64, string) {
	p.t.Helper()
	body := fmt.Sprintf(`{"fullName": "Jane Doe", "email": %q, "currency": %q, "initialFunds": %s}`, email, currency, initialFunds)
	d := expect(p.t, p.do("POST", "/customer", body), 200).data()
	id, err := d["id"].(json.Number).Int64()
	if err != nil {
		p.t.Fatalf("customer id %v is not an integer", d["id"])
	}
	return id, d["walletId"].(string)
}

// transact credits or debits through the Orbt-compatible route; amount is
// the JSON text of the amount.
func (p *partner) transact(walletID, typ, ref, amount string) answer {
	p.t.Helper()
	return p.do("POST", "/wallets/"+walletID+"/transactions",
		fmt.Sprintf(`{"amount": %s, "transactionType": %q, "referenceId": %q}`, amount, typ, ref))
}

// text is a JSON number of an answer as written.
func text(v any) string {
	if n, ok := v.(json.Number); ok {
		return n.String()
	}
	return fmt.Sprintf("%v (%T)", v, v)
}
