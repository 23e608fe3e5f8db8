package teststack

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
)

// Visitor is a browser without JavaScript for page tests: it keeps
// cookies and does not follow redirects, so a test sees each answer.
type Visitor struct {
	t    testing.TB
	base string
	c    *http.Client
}

// NewVisitor is a visitor of the server at base.
func NewVisitor(t testing.TB, base string) *Visitor {
	jar, _ := cookiejar.New(nil)
	return &Visitor{t: t, base: base, c: &http.Client{Jar: jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// Do sends a request (a form when form is not nil) to path, relative to
// the base unless it is a whole URL, and returns the answer's status,
// headers and body.
func (v *Visitor) Do(method, path string, form url.Values, header http.Header) (int, http.Header, string) {
	v.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	u := path
	if !strings.HasPrefix(u, "http") {
		u = v.base + path
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		v.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	return v.Send(req, header)
}

// Send sends a request built by the caller (a multipart upload, say).
func (v *Visitor) Send(req *http.Request, header http.Header) (int, http.Header, string) {
	v.t.Helper()
	for k, vals := range header {
		req.Header[k] = vals
	}
	res, err := v.c.Do(req)
	if err != nil {
		v.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, res.Header, string(b)
}

// URL is the visitor's base URL.
func (v *Visitor) URL() string { return v.base }

// Cookies are the cookies the visitor would send to u.
func (v *Visitor) Cookies(u *url.URL) []*http.Cookie { return v.c.Jar.Cookies(u) }
