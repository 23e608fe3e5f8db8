// Package webhooksig signs and verifies Orbt's webhook deliveries, which
// follow Standard Webhooks: headers webhook-id, webhook-timestamp and
// webhook-signature ("v1,<base64 HMAC-SHA256 of id.timestamp.body>", several
// space-separated while a secret rotates). Receivers import it to verify:
//
//	err := webhooksig.Verify(body, r.Header, os.Getenv("ORBT_WEBHOOK_SECRET"))
//
// During a rotation pass both the new and the old secret.
package webhooksig

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// Header names.
const (
	HeaderID        = standardwebhooks.HeaderWebhookID
	HeaderTimestamp = standardwebhooks.HeaderWebhookTimestamp
	HeaderSignature = standardwebhooks.HeaderWebhookSignature
)

// Tolerance is how far a delivery's timestamp may be from the receiver's
// clock (fixed at five minutes by the Standard Webhooks library), which
// bounds how long a captured delivery could be replayed.
const Tolerance = 5 * time.Minute

// Errors Verify returns, wrapped; match with errors.Is.
var (
	ErrNoSecret       = errors.New("no webhook secret given")
	ErrBadSignature   = standardwebhooks.ErrNoMatchingSignature
	ErrTooOld         = standardwebhooks.ErrMessageTooOld
	ErrTooNew         = standardwebhooks.ErrMessageTooNew
	ErrMissingHeaders = standardwebhooks.ErrRequiredHeaders
)

// Sign returns the webhook-signature header value for a delivery: one
// signature per secret (whsec_…), space-separated.
func Sign(id string, at time.Time, body []byte, secrets ...string) (string, error) {
	if len(secrets) == 0 {
		return "", ErrNoSecret
	}
	sigs := make([]string, 0, len(secrets))
	for _, secret := range secrets {
		wh, err := webhookOf(secret)
		if err != nil {
			return "", err
		}
		sig, err := wh.Sign(id, at, body)
		if err != nil {
			return "", err
		}
		sigs = append(sigs, sig)
	}
	return strings.Join(sigs, " "), nil
}

// Headers returns the three headers of a signed delivery.
func Headers(id string, at time.Time, body []byte, secrets ...string) (http.Header, error) {
	sig, err := Sign(id, at, body, secrets...)
	if err != nil {
		return nil, err
	}
	h := http.Header{}
	h.Set(HeaderID, id)
	h.Set(HeaderTimestamp, fmt.Sprint(at.Unix()))
	h.Set(HeaderSignature, sig)
	return h, nil
}

// Verify checks a delivery's body and headers against any of the given
// secrets, and that its timestamp is within Tolerance of now. A nil error
// means Orbt sent exactly this body.
func Verify(body []byte, h http.Header, secrets ...string) error {
	if len(secrets) == 0 {
		return ErrNoSecret
	}
	var last error
	for _, secret := range secrets {
		wh, err := webhookOf(secret)
		if err != nil {
			return err
		}
		if last = wh.Verify(body, h); last == nil {
			return nil
		}
		if !errors.Is(last, ErrBadSignature) {
			return last // headers or timestamp: no other secret changes that
		}
	}
	return last
}

// secretPrefix starts a secret as Orbt shows it: whsec_ and the key in
// base64.
const secretPrefix = "whsec_"

// webhookOf is the signer of one secret. A secret without key bytes ("",
// "whsec_", the empty one a trailing comma leaves in a list) is
// ErrNoSecret: an HMAC keyed with nothing is one anybody can compute, so
// it must verify nothing.
func webhookOf(secret string) (*standardwebhooks.Webhook, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, secretPrefix))
	if err != nil {
		return nil, fmt.Errorf("webhook secret: %w", err)
	}
	if len(key) == 0 {
		return nil, fmt.Errorf("webhook secret: %w", ErrNoSecret)
	}
	return standardwebhooks.NewWebhookRaw(key)
}
