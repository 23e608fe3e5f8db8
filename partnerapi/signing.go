package partnerapi

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/orbt/orbt/server"
	"github.com/orbt/orbt/validate"
	"github.com/orbt/orbt/workspace"
)

// The headers of Orbt's request signing.
const (
	HeaderAPIKey    = "x-api-key"
	HeaderClientID  = "x-client-id"
	HeaderTimestamp = "x-timestamp"
	HeaderBodyHash  = "x-body-hash"
	HeaderSignature = "x-signature"
)

var signedHeaders = []string{HeaderAPIKey, HeaderClientID, HeaderTimestamp, HeaderBodyHash, HeaderSignature}

// timestampSkewMax is how far a request's x-timestamp may be from the
// server's clock either way: it bounds how long a captured request can be
// replayed.
const timestampSkewMax = 5 * time.Minute

// BodyHash is the x-body-hash of a body: base64 of its SHA-256 (of the
// empty string when there is no body).
func BodyHash(body []byte) string { return base64.StdEncoding.EncodeToString(bodyDigest(body)) }

func bodyDigest(body []byte) []byte {
	sum := sha256.Sum256(body)
	return sum[:]
}

// Signature is the x-signature of a request: base64 of the HMAC-SHA256,
// keyed with the workspace's signing secret, of
// METHOD\nTIMESTAMP\nCLIENT_ID\nBODY_HASH (the header values as sent).
func Signature(secret, method, timestamp, clientID, bodyHash string) string {
	return base64.StdEncoding.EncodeToString(signatureMAC(secret, method, timestamp, clientID, bodyHash))
}

func signatureMAC(secret, method, timestamp, clientID, bodyHash string) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(method + "\n" + timestamp + "\n" + clientID + "\n" + bodyHash))
	return m.Sum(nil)
}

// bodyContext names the verified body in the gin context.
const bodyContext = "orbt.partnerBody"

// deny answers a request whose signing fails one check: 403 saying which.
func deny(c *gin.Context, reason, message string) {
	renderError(c, http.StatusForbidden, codeAuthentication, message, &errorDetails{Reason: reason}, 0)
}

// verify authenticates a signed request: the key, that it belongs to the
// workspace x-client-id names, the timestamp's freshness, the body's hash
// and the signature, each refusal saying which check failed. Secrets and
// hashes are compared in constant time. The cheap header checks come
// before reading the body, so an unknown caller costs no body read.
func (p *API) verify(c *gin.Context) {
	h := c.Request.Header
	var missing []string
	for _, name := range signedHeaders {
		if h.Get(name) == "" {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		deny(c, "missing_header", "Sign the request: missing "+strings.Join(missing, ", ")+".")
		return
	}
	key, err := p.auth.Key(c, h.Get(HeaderAPIKey))
	if errors.Is(err, workspace.ErrUnauthorized) {
		deny(c, "unknown_api_key", "The x-api-key is unknown or revoked.")
		return
	}
	if err != nil {
		p.fail(c, err)
		return
	}
	clientID := h.Get(HeaderClientID)
	if subtle.ConstantTimeCompare([]byte(clientID), []byte(key.WorkspaceID)) != 1 {
		deny(c, "client_id_mismatch", "The x-api-key belongs to another workspace than x-client-id names.")
		return
	}
	timestamp := h.Get(HeaderTimestamp)
	at, err := time.Parse(time.RFC3339Nano, timestamp)
	if err != nil {
		deny(c, "invalid_timestamp", "The x-timestamp must be ISO 8601 in UTC, such as 2026-11-26T10:00:00Z.")
		return
	}
	if skew := p.now().Sub(at); skew > timestampSkewMax || skew < -timestampSkewMax {
		deny(c, "stale_timestamp", "The x-timestamp is more than 5 minutes from the server's clock ("+
			p.now().UTC().Format(time.RFC3339)+").")
		return
	}
	body, e := validate.ReadBody(c.Writer, c.Request, validate.BodyBytesMax)
	if e != nil {
		Render(c, e)
		return
	}
	bodyHash := h.Get(HeaderBodyHash)
	if sent, ok := decodeBase64(bodyHash); !ok || !hmac.Equal(sent, bodyDigest(body)) {
		deny(c, "body_hash_mismatch", "The x-body-hash is not the base64 SHA-256 of the body as received.")
		return
	}
	// Each live secret in turn (within a day of rotations there are
	// several); one that matches none makes the secrets be read afresh,
	// in case one was rotated in since they were cached.
	sent, wellFormed := decodeBase64(h.Get(HeaderSignature))
	signedWith := func(fresh bool) (bool, error) {
		secrets, err := p.auth.SigningSecrets(c, key.WorkspaceID, fresh)
		if err != nil {
			return false, err
		}
		matches := func(secret string) bool {
			return hmac.Equal(sent, signatureMAC(secret, c.Request.Method, timestamp, clientID, bodyHash))
		}
		return matches(secrets.Current) || slices.ContainsFunc(secrets.Previous, matches), nil
	}
	var matched bool
	if wellFormed {
		if matched, err = signedWith(false); err == nil && !matched {
			matched, err = signedWith(true)
		}
	}
	if err != nil {
		p.fail(c, err)
		return
	}
	if !matched {
		deny(c, "signature_mismatch", "The x-signature is not the base64 HMAC-SHA256 of METHOD\\nTIMESTAMP\\nCLIENT_ID\\nBODY_HASH "+
			"keyed with the workspace's signing secret.")
		return
	}
	p.auth.Used(c, key)
	c.Set(bodyContext, body)
	server.SetAPIKey(c, key)
	c.Next()
}

// decodeBase64 reads a base64 value a client sent (padding left off is
// fine), to be compared in constant time with what was computed.
func decodeBase64(sent string) ([]byte, bool) {
	b, err := base64.StdEncoding.DecodeString(sent)
	if err != nil {
		b, err = base64.RawStdEncoding.DecodeString(sent)
	}
	return b, err == nil
}

// wsID is the workspace of the request's key.
func wsID(c *gin.Context) string { return server.WorkspaceID(c) }
