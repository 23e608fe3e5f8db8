package sweep

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/orbt/orbt/partnerapi"
)

// request is one HTTP request the sweep sends, relative to the base URL.
type request struct {
	method string
	path   string
	// body is sent as it is: JSON (jsonBody), a form (formBody) or nothing.
	body        []byte
	contentType string
	header      http.Header
}

// answer is a response, read whole.
type answer struct {
	status int
	header http.Header
	body   []byte
}

func (a answer) String() string {
	return fmt.Sprintf("%d %.200s", a.status, strings.Join(strings.Fields(string(a.body)), " "))
}

// decode reads a JSON answer into out; a body that is not what the
// caller expects fails the sweep's setup.
func (a answer) decode(out any) error { return json.Unmarshal(a.body, out) }

func jsonBody(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // the sweep's own values always encode
	}
	return b
}

func jsonRequest(method, path string, v any) request {
	r := request{method: method, path: path}
	if v != nil {
		r.body, r.contentType = jsonBody(v), "application/json"
	}
	return r
}

func formRequest(method, path string, form url.Values) request {
	return request{method: method, path: path, body: []byte(form.Encode()), contentType: "application/x-www-form-urlencoded"}
}

// agent is one client of the Orbt under sweep: a partner's code (no
// cookies) or a browser without JavaScript (cookies kept). Neither follows
// redirects, so every answer is seen as sent.
type agent struct {
	base string
	jar  *cookiejar.Jar
	http *http.Client
}

// requestTimeout bounds one request of the sweep (a redemption waits up
// to 10 s for its outcome).
const requestTimeout = 30 * time.Second

func newAgent(base string, cookies bool) *agent {
	a := &agent{base: strings.TrimRight(base, "/")}
	a.http = &http.Client{Timeout: requestTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	if cookies {
		a.jar, _ = cookiejar.New(nil)
		a.http.Jar = a.jar
	}
	return a
}

// Rate limits are not what the sweep checks: a 429 (the consumer pages'
// per-address limits, 5 a second after a burst of 40) is waited out a
// little at a time, for up to retryFor, and the request sent again.
const (
	retryEvery = 250 * time.Millisecond
	retryFor   = 15 * time.Second
)

// do sends r with the extra headers and reads the answer. A transport
// error is an answer of status 0.
func (a *agent) do(r request, extra http.Header) answer {
	deadline := time.Now().Add(retryFor)
	for {
		ans := a.once(r, extra)
		if ans.status != http.StatusTooManyRequests || time.Now().After(deadline) {
			return ans
		}
		time.Sleep(retryEvery)
	}
}

func (a *agent) once(r request, extra http.Header) answer {
	u := r.path
	if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
		u = a.base + r.path
	}
	req, err := http.NewRequest(r.method, u, bytes.NewReader(r.body))
	if err != nil {
		return answer{body: []byte(err.Error())}
	}
	if r.body == nil {
		req.Body, req.ContentLength = http.NoBody, 0
	}
	if r.contentType != "" {
		req.Header.Set("Content-Type", r.contentType)
	}
	for _, h := range []http.Header{r.header, extra} {
		for k, v := range h {
			req.Header[k] = v
		}
	}
	res, err := a.http.Do(req)
	if err != nil {
		return answer{body: []byte(err.Error())}
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(res.Body, 4<<20))
	return answer{status: res.StatusCode, header: res.Header, body: body}
}

// cookie is the value of the named cookie the agent would send to path.
func (a *agent) cookie(path, name string) string {
	if a.jar == nil {
		return ""
	}
	u, err := url.Parse(a.base + path)
	if err != nil {
		return ""
	}
	for _, c := range a.jar.Cookies(u) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

func bearer(token string) http.Header { return http.Header{"Authorization": {"Bearer " + token}} }

// signed are the headers of Orbt's request signing (the Orbt-compatible
// API), as its documentation describes them, at the time at.
func signed(r request, apiKey, clientID, secret string, at time.Time) http.Header {
	timestamp := at.UTC().Format(time.RFC3339)
	bodyHash := partnerapi.BodyHash(r.body)
	return http.Header{
		partnerapi.HeaderAPIKey:    {apiKey},
		partnerapi.HeaderClientID:  {clientID},
		partnerapi.HeaderTimestamp: {timestamp},
		partnerapi.HeaderBodyHash:  {bodyHash},
		partnerapi.HeaderSignature: {partnerapi.Signature(secret, r.method, timestamp, clientID, bodyHash)},
	}
}

// cookieHeader sends one cookie by hand (a replayed or tampered one).
func cookieHeader(name, value string) http.Header {
	return http.Header{"Cookie": {(&http.Cookie{Name: name, Value: value}).String()}}
}

var (
	csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
	// shownOnce is a secret a console page shows once (a key, a link, an
	// endpoint's or the workspace's secret).
	shownOnce = regexp.MustCompile(`id="(?:new-link|new-key|consumer-link|new-signing-secret|new-secret)" data-copy>([^<]+)<`)
	cardCode  = regexp.MustCompile(`<code id="code">([^<]+)</code>`)
)

// pathOf is the path (and query) of a URL Orbt built on its public URL,
// which may name another host than the sweep's base URL (a proxy's).
func pathOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	return u.RequestURI()
}

// redirectsToSignIn reports whether an answer sends a browser to the
// console's sign-in page.
func redirectsToSignIn(a answer) bool {
	return (a.status == http.StatusSeeOther || a.status == http.StatusFound) &&
		strings.HasPrefix(a.header.Get("Location"), "/console/login")
}
