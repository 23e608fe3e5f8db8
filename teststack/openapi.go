package teststack

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/orbt/orbt/api"
)

// specCheck holds every exchange with the native API a test stack has to
// the OpenAPI document /openapi.json serves, so each test that drives the
// API also proves the document describes what the API does: every
// response must match its schema, and a request the document refuses must
// not be taken (2xx): the document is never stricter than the handlers.
// (The other way cannot be held: the handlers also refuse what no schema
// says, as a cursor they did not issue, a currency ISO 4217 does not
// list, a wallet that does not exist.) It records what does not match;
// it never changes a response.
type specCheck struct {
	router routers.Router
	mu     sync.Mutex
	// violations are the mismatches seen, at most violationsMax.
	violations []string
}

const violationsMax = 50

// LoadOpenAPI loads the native API's document with kin-openapi and
// validates it.
func LoadOpenAPI(ctx context.Context) (*openapi3.T, error) {
	data, err := api.OpenAPI()
	if err != nil {
		return nil, err
	}
	doc, err := openapi3.NewLoader().LoadFromData(data)
	if err != nil {
		return nil, fmt.Errorf("load openapi: %w", err)
	}
	if err := doc.Validate(ctx); err != nil {
		return nil, fmt.Errorf("openapi document: %w", err)
	}
	return doc, nil
}

// The reference page is HTML; kin-openapi decodes it as text.
func init() { openapi3filter.RegisterBodyDecoder("text/html", openapi3filter.PlainBodyDecoder) }

// specRouter finds a request's operation in the document, loaded once
// for all the stacks of a test binary.
var specRouter = sync.OnceValues(func() (routers.Router, error) {
	doc, err := LoadOpenAPI(context.Background())
	if err != nil {
		return nil, err
	}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("openapi router: %w", err)
	}
	return router, nil
})

func newSpecCheck() (*specCheck, error) {
	router, err := specRouter()
	if err != nil {
		return nil, err
	}
	return &specCheck{router: router}, nil
}

// recorder passes a response through while keeping a copy.
type recorder struct {
	http.ResponseWriter
	status int
	body   bytes.Buffer
}

func (r *recorder) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
	r.ResponseWriter.WriteHeader(status)
}

func (r *recorder) Write(p []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	r.body.Write(p)
	return r.ResponseWriter.Write(p)
}

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// wrap serves h, validating the responses of documented routes.
func (s *specCheck) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		route, params, err := s.router.FindRoute(r)
		if err != nil {
			h.ServeHTTP(w, r) // not a documented route (the other surfaces)
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, requestBodyMax))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(io.MultiReader(bytes.NewReader(body), r.Body))
		rec := &recorder{ResponseWriter: w}
		h.ServeHTTP(rec, r)
		if rec.status == 0 {
			rec.status = http.StatusOK
		}
		s.checkRequest(r, body, route, params, rec)
		in := &openapi3filter.ResponseValidationInput{
			RequestValidationInput: &openapi3filter.RequestValidationInput{Request: r, PathParams: params, Route: route},
			Status:                 rec.status,
			Header:                 rec.Header(),
			Body:                   io.NopCloser(bytes.NewReader(rec.body.Bytes())),
			Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
		}
		if err := openapi3filter.ValidateResponse(r.Context(), in); err != nil {
			s.record(fmt.Sprintf("%s %s → %d: %v\n  body: %.300s", r.Method, r.URL.Path, rec.status, err, rec.body.String()))
		}
	})
}

// requestBodyMax is the most of a request body kept for checking (the
// API's largest, a bulk payout, is 8 MiB).
const requestBodyMax = 9 << 20

// checkRequest holds a request to the document, by what the API answered.
func (s *specCheck) checkRequest(r *http.Request, body []byte, route *routers.Route, params map[string]string, rec *recorder) {
	req := r.Clone(context.Background())
	req.Body = io.NopCloser(bytes.NewReader(body))
	err := openapi3filter.ValidateRequest(req.Context(), &openapi3filter.RequestValidationInput{Request: req, PathParams: params,
		Route: route, Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, MultiError: true}})
	if err != nil && rec.status/100 == 2 {
		s.record(fmt.Sprintf("%s %s: the document refuses a request the API took (%d): %v\n  request: %.300s",
			r.Method, r.URL.RequestURI(), rec.status, err, body))
	}
}

func (s *specCheck) record(v string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.violations) < violationsMax {
		s.violations = append(s.violations, v)
	}
}

// SpecViolations are the responses of the stack's native API that did not
// match the OpenAPI document.
func (s *Stack) SpecViolations() []string {
	s.spec.mu.Lock()
	defer s.spec.mu.Unlock()
	return append([]string(nil), s.spec.violations...)
}

// StopWithTest stops the stack when the test ends and then fails the test
// for each exchange that did not match the OpenAPI document.
func (s *Stack) StopWithTest(t testing.TB) {
	t.Cleanup(func() {
		s.Stop()
		s.CheckSpec(t)
	})
}

// CheckSpec fails the test for each response of the stack's native API
// that did not match the OpenAPI document.
func (s *Stack) CheckSpec(t testing.TB) {
	t.Helper()
	for _, v := range s.SpecViolations() {
		t.Errorf("a response does not match openapi.yaml: %s", v)
	}
}
