// Package client is a small Go client of Orbt's native HTTP API: one way to
// send a request and read the answer, shared by the tests, the fault suite
// and orbt loadtest, which drive Orbt the way partners do.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"
)

// Client sends requests to one Orbt base URL with one key (an API key, or
// the admin token for /admin routes).
type Client struct {
	base string
	key  string
	http *http.Client
}

// requestTimeout bounds one request, whatever the caller's context.
const requestTimeout = time.Minute

// New returns a client of base (http://127.0.0.1:8080) sending key as a
// bearer token; conns is how many connections it keeps open to the server
// (the load test's concurrency).
func New(base, key string, conns int) *Client {
	tr := &http.Transport{MaxIdleConns: conns, MaxIdleConnsPerHost: conns, IdleConnTimeout: time.Minute}
	return &Client{base: base, key: key, http: &http.Client{Transport: tr, Timeout: requestTimeout}}
}

// WithKey is the same client sending another key.
func (c *Client) WithKey(key string) *Client {
	cc := *c
	cc.key = key
	return &cc
}

// Response is an answer, read whole.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Decode reads the JSON body into out.
func (r *Response) Decode(out any) error { return json.Unmarshal(r.Body, out) }

// StatusError is an answer with a status the caller did not want.
type StatusError struct {
	Request string
	Status  int
	Body    string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("%s: status %d: %.300s", e.Request, e.Status, e.Body)
}

// Do sends a request and reads the answer, whatever its status. body is
// nil, a []byte or string sent as it is (with Content-Type
// application/json unless header says otherwise), or any other value sent
// as JSON.
func (c *Client) Do(ctx context.Context, method, path string, body any, header http.Header) (*Response, error) {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	case string:
		rd = bytes.NewReader([]byte(b))
	default:
		data, err := json.Marshal(b)
		if err != nil {
			return nil, fmt.Errorf("%s %s: encode body: %w", method, path, err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if req.Header.Get("Content-Type") == "" && rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.key != "" && req.Header.Get("Authorization") == "" {
		req.Header.Set("Authorization", "Bearer "+c.key)
	}
	res, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	return &Response{Status: res.StatusCode, Header: res.Header, Body: data}, nil
}

// Call is Do for a request that must answer want (0: any 2xx): any other
// status is a *StatusError. A 2xx body is decoded into out unless out is nil.
func (c *Client) Call(ctx context.Context, method, path string, body any, want int, out any) (*Response, error) {
	res, err := c.Do(ctx, method, path, body, nil)
	if err != nil {
		return nil, err
	}
	if (want == 0 && res.Status/100 != 2) || (want != 0 && res.Status != want) {
		return res, &StatusError{Request: method + " " + path, Status: res.Status, Body: string(res.Body)}
	}
	if out != nil {
		if err := res.Decode(out); err != nil {
			return res, fmt.Errorf("%s %s: %w", method, path, err)
		}
	}
	return res, nil
}

// ListAll walks a cursor-paginated list (path holds its query already,
// limit included), calling each for every item, page after page.
func ListAll[T any](ctx context.Context, c *Client, path string, each func(T)) error {
	cursor := ""
	for {
		var page struct {
			Data       []T     `json:"data"`
			NextCursor *string `json:"nextCursor"`
		}
		u := path
		if cursor != "" {
			u += "&cursor=" + cursor
		}
		if _, err := c.Call(ctx, "GET", u, nil, 200, &page); err != nil {
			return fmt.Errorf("list %s: %w", path, err)
		}
		for _, item := range page.Data {
			each(item)
		}
		if page.NextCursor == nil {
			return nil
		}
		cursor = *page.NextCursor
	}
}
