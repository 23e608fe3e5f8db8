package webhooksig

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// FuzzVerify throws arbitrary headers, bodies and secrets at Verify and
// holds Sign and Verify to each other:
//   - Verify never panics, and passes a delivery only when one of its
//     signatures is the HMAC of exactly "id.timestamp.body" keyed with a
//     secret that has a key (an empty secret verifies nothing);
//   - what Sign signs with a secret, Verify passes with it;
//   - another body, id or timestamp (within the tolerance, so only the
//     signature can refuse it) fails with ErrBadSignature.
func FuzzVerify(f *testing.F) {
	now := strconv.FormatInt(time.Now().Unix(), 10)
	for _, seed := range []struct {
		body                     string
		id, timestamp, signature string
		secret                   string
		key                      []byte
		otherBody, otherID       string
		skew, otherSkew          int16
	}{
		{`{"id":"evt_1"}`, "evt_1", now, "v1,AAAA", secret, []byte("k"), `{"id":"evt_2"}`, "evt_2", 0, 1},
		{"", "evt_1", now, "v1,", "", nil, "x", "evt_1.", -299, 299},
		{"b", "evt_1", now, "v1", "whsec_", []byte{0}, "b ", "evt_10", 10, -10},
		{"b", "evt_1", "+" + now, "v1,a v1,b,c v2,d", "whsec_!!", []byte("0123456789abcdef0123456789abcdef"), "B", "evt_1 ", 0, 0},
		{"b", "", "0" + now, " ", "whsec_" + base64.StdEncoding.EncodeToString(nil), []byte("x"), "", "e", 1, 2},
		{"b", "evt_1", "-9223372036854775808", "v1,x", secret + "," + newSecret, []byte("y"), "c", "evt_2", 0, 0},
		{"b.1700000000", "evt", "1700000000", "v1,x", newSecret, []byte("z"), "b", "evt.1700000000", 0, 0},
	} {
		f.Add([]byte(seed.body), seed.id, seed.timestamp, seed.signature, seed.secret, seed.key, []byte(seed.otherBody), seed.otherID,
			seed.skew, seed.otherSkew)
	}
	f.Fuzz(func(t *testing.T, body []byte, id, timestamp, signature, secret string, key, otherBody []byte, otherID string,
		skew, otherSkew int16) {
		// Arbitrary headers and secret.
		h := http.Header{}
		h.Set(HeaderID, id)
		h.Set(HeaderTimestamp, timestamp)
		h.Set(HeaderSignature, signature)
		err := Verify(body, h, secret)
		if err == nil {
			rawKey, decodeErr := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
			at, parseErr := strconv.ParseInt(timestamp, 10, 64)
			if decodeErr != nil || parseErr != nil || len(rawKey) == 0 || !carries(signature, expected(rawKey, id, at, body)) {
				t.Fatalf("Verify passed a delivery no secret signed: id %q timestamp %q signature %q secret %q", id, timestamp, signature, secret)
			}
		}

		// Sign, then Verify, with a secret made of key.
		s := "whsec_" + base64.StdEncoding.EncodeToString(key)
		at := time.Now().Add(time.Duration(skew%skewMax) * time.Second)
		signed, err := Headers(id, at, body, s)
		if len(key) == 0 {
			if !errors.Is(err, ErrNoSecret) {
				t.Fatalf("Headers with an empty key: %v, want ErrNoSecret", err)
			}
			if err := Verify(body, h, s); !errors.Is(err, ErrNoSecret) {
				t.Fatalf("Verify with an empty key: %v, want ErrNoSecret", err)
			}
			return
		}
		if err != nil {
			t.Fatalf("Headers: %v", err)
		}
		if want := expected(key, id, at.Unix(), body); signed.Get(HeaderSignature) != want {
			t.Fatalf("signature %q, want %q", signed.Get(HeaderSignature), want)
		}
		if id == "" {
			if err := Verify(body, signed, s); !errors.Is(err, ErrMissingHeaders) {
				t.Fatalf("Verify without an id: %v, want ErrMissingHeaders", err)
			}
			return
		}
		if err := Verify(body, signed, s); err != nil {
			t.Fatalf("Verify of what Sign signed (id %q, at %d): %v", id, at.Unix(), err)
		}

		// Change one thing at a time: each fails the signature.
		if string(otherBody) != string(body) {
			if err := Verify(otherBody, signed, s); !errors.Is(err, ErrBadSignature) {
				t.Fatalf("another body (%q for %q): %v, want ErrBadSignature", otherBody, body, err)
			}
		}
		if otherID != "" && otherID != id {
			changed := signed.Clone()
			changed.Set(HeaderID, otherID)
			if err := Verify(body, changed, s); !errors.Is(err, ErrBadSignature) {
				t.Fatalf("another id (%q for %q): %v, want ErrBadSignature", otherID, id, err)
			}
		}
		if other := int64(otherSkew % skewMax); other != 0 {
			changed := signed.Clone()
			changed.Set(HeaderTimestamp, strconv.FormatInt(at.Unix()+other, 10))
			if err := Verify(body, changed, s); !errors.Is(err, ErrBadSignature) {
				t.Fatalf("another timestamp (%+d s): %v, want ErrBadSignature", other, err)
			}
		}
	})
}

// skewMax bounds, in seconds, how far the fuzzed timestamps are from now
// and from each other: twice it is well within Tolerance, so only the
// signature can refuse them.
const skewMax = 120

// carries reports whether a webhook-signature header holds sig, the way
// Standard Webhooks reads one: space-separated "version,signature" pairs.
func carries(header, sig string) bool {
	version, want, _ := strings.Cut(sig, ",")
	for _, part := range strings.Split(header, " ") {
		fields := strings.Split(part, ",")
		if len(fields) >= 2 && fields[0] == version && fields[1] == want {
			return true
		}
	}
	return false
}

// expected is the Standard Webhooks signature, computed apart from the
// library: "v1," and the base64 HMAC-SHA256 of "id.timestamp.body".
func expected(key []byte, id string, at int64, body []byte) string {
	mac := hmac.New(sha256.New, key)
	fmt.Fprintf(mac, "%s.%d.%s", id, at, body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}
