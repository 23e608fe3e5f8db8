package api

import (
	_ "embed"
	"fmt"
	"net/http"

	"github.com/gin-gonic/gin"
	"sigs.k8s.io/yaml"
)

// The OpenAPI 3.1 document of the native API, written as YAML beside the
// handlers it describes and served as JSON; tests check it against the
// router both ways and every response of the API's tests against it.
//
//go:embed openapi.yaml
var openapiYAML []byte

// The reference pages render the document in the browser with Redoc
// (redoc.standalone.js from the redoc 2.5.1 npm package, MIT; its licenses
// sit beside it), embedded so /docs needs nothing from the internet.
//
//go:embed docs/redoc.standalone.js
var redocJS []byte

// OpenAPI is the native API's OpenAPI 3.1 document, as JSON.
func OpenAPI() ([]byte, error) {
	doc, err := yaml.YAMLToJSON(openapiYAML)
	if err != nil {
		return nil, fmt.Errorf("openapi.yaml: %w", err)
	}
	return doc, nil
}

const docsPage = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Orbt API reference</title>
</head>
<body>
<redoc spec-url="/openapi.json" hide-download-button="false"></redoc>
<script src="/docs/redoc.standalone.js"></script>
</body>
</html>
`

// docsPolicy lets the page run its one script, from here; Redoc styles
// with inline style elements and searches in a worker it makes from a blob.
const docsPolicy = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; " +
	"font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; frame-ancestors 'none'; base-uri 'none'"

// docsRoutes serves the document and the pages that render it.
func docsRoutes(r gin.IRoutes, doc []byte) {
	r.GET("/openapi.json", func(c *gin.Context) {
		c.Header("Cache-Control", "no-cache")
		c.Data(http.StatusOK, "application/json", doc)
	})
	r.GET("/docs", func(c *gin.Context) {
		c.Header("Content-Security-Policy", docsPolicy)
		c.Header("X-Content-Type-Options", "nosniff")
		c.Data(http.StatusOK, "text/html; charset=utf-8", []byte(docsPage))
	})
	r.GET("/docs/redoc.standalone.js", func(c *gin.Context) {
		c.Header("Cache-Control", "public, max-age=86400")
		c.Header("X-Content-Type-Options", "nosniff")
		c.Data(http.StatusOK, "text/javascript; charset=utf-8", redocJS)
	})
}
