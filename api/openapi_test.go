package api_test

import (
	"context"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/orbt/orbt/api"
	"github.com/orbt/orbt/ops"
	"github.com/orbt/orbt/server"
	"github.com/orbt/orbt/teststack"
)

// ginParam is a gin path parameter (":id"), written {id} in OpenAPI.
var ginParam = regexp.MustCompile(`:([A-Za-z]+)`)

// The OpenAPI document loads and validates with kin-openapi, and it and
// the router agree both ways: every route of the native API (and the
// probes) is documented, and every documented operation is a route.
func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	doc, err := teststack.LoadOpenAPI(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !doc.IsOpenAPI31OrLater() {
		t.Errorf("openapi %s, want 3.1", doc.OpenAPI)
	}
	documented := map[string]bool{}
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			documented[method+" "+path] = true
		}
	}

	s, err := server.New(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	native, err := api.New(api.Options{AdminToken: adminToken})
	if err != nil {
		t.Fatal(err)
	}
	native.Routes(s)
	ops.Probes(s, ops.Options{})
	routed := map[string]bool{}
	for _, r := range s.Engine.Routes() {
		if strings.HasPrefix(r.Path, "/docs/") { // the reference page's script
			continue
		}
		routed[r.Method+" "+ginParam.ReplaceAllString(r.Path, "{$1}")] = true
	}
	for route := range routed {
		if !documented[route] {
			t.Errorf("%s is routed but not in openapi.yaml", route)
		}
	}
	for op := range documented {
		if !routed[op] {
			t.Errorf("%s is in openapi.yaml but not routed", op)
		}
	}
	if len(routed) < 45 {
		t.Errorf("only %d routes found", len(routed))
	}
}

// /openapi.json serves the document and /docs the page that renders it,
// with its script, all from this server.
func TestOpenAPIAndDocsAreServed(t *testing.T) {
	s := getStack(t)
	spec := expect(t, call(t, s.URL, "GET", "/openapi.json", "", nil), 200)
	if spec.str("openapi") != "3.1.0" || spec.body["paths"] == nil {
		t.Fatalf("/openapi.json: %.200s", spec.raw)
	}
	page := call(t, s.URL, "GET", "/docs", "", nil)
	if page.status != 200 || !strings.Contains(page.raw, `spec-url="/openapi.json"`) ||
		!strings.Contains(page.header.Get("Content-Security-Policy"), "script-src 'self'") {
		t.Fatalf("/docs: %d %v %.200s", page.status, page.header, page.raw)
	}
	script := call(t, s.URL, "GET", "/docs/redoc.standalone.js", "", nil)
	if script.status != 200 || len(script.raw) < 100_000 || !slices.Contains(script.header.Values("Content-Type"), "text/javascript; charset=utf-8") {
		t.Fatalf("/docs/redoc.standalone.js: %d, %d bytes", script.status, len(script.raw))
	}
}
