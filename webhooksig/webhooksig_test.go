package webhooksig

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

const (
	secret    = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	newSecret = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"
)

// The signature is exactly the Standard Webhooks algorithm.
func TestSignMatchesTheStandard(t *testing.T) {
	at := time.Unix(1_700_000_000, 0)
	body := []byte(`{"id":"evt_1","type":"transaction.completed"}`)
	got, err := Sign("evt_1", at, body, secret)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	mac := hmac.New(sha256.New, key)
	fmt.Fprintf(mac, "%s.%d.%s", "evt_1", at.Unix(), body)
	want := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
	if got != want {
		t.Errorf("signature %q, want %q", got, want)
	}
}

func TestVerify(t *testing.T) {
	body := []byte(`{"id":"evt_1","amount":100}`)
	now := time.Now()
	h, err := Headers("evt_1", now, body, secret)
	if err != nil {
		t.Fatal(err)
	}
	if err := Verify(body, h, secret); err != nil {
		t.Fatalf("genuine delivery rejected: %v", err)
	}
	if err := Verify([]byte(`{"id":"evt_1","amount":900}`), h, secret); !errors.Is(err, ErrBadSignature) {
		t.Errorf("tampered body: %v", err)
	}
	if err := Verify(body, h, newSecret); !errors.Is(err, ErrBadSignature) {
		t.Errorf("wrong secret: %v", err)
	}
	old, _ := Headers("evt_1", now.Add(-10*time.Minute), body, secret)
	if err := Verify(body, old, secret); !errors.Is(err, ErrTooOld) {
		t.Errorf("old timestamp: %v", err)
	}
	future, _ := Headers("evt_1", now.Add(10*time.Minute), body, secret)
	if err := Verify(body, future, secret); !errors.Is(err, ErrTooNew) {
		t.Errorf("future timestamp: %v", err)
	}
	h.Del(HeaderID)
	if err := Verify(body, h, secret); !errors.Is(err, ErrMissingHeaders) {
		t.Errorf("missing id: %v", err)
	}
	if err := Verify(body, h); !errors.Is(err, ErrNoSecret) {
		t.Errorf("no secret: %v", err)
	}
}

// During a rotation both secrets sign; a receiver holding either verifies,
// and a receiver may hold both.
func TestVerifyDuringRotation(t *testing.T) {
	body := []byte(`{}`)
	h, err := Headers("evt_2", time.Now(), body, newSecret, secret)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(strings.Fields(h.Get(HeaderSignature))); n != 2 {
		t.Fatalf("%d signatures, want 2", n)
	}
	for _, secrets := range [][]string{{secret}, {newSecret}, {"whsec_" + base64.StdEncoding.EncodeToString([]byte("other")), newSecret}} {
		if err := Verify(body, h, secrets...); err != nil {
			t.Errorf("secrets %v: %v", secrets, err)
		}
	}
}

// A secret without key bytes verifies nothing: anybody can compute an
// HMAC keyed with nothing. A receiver whose ORBT_WEBHOOK_SECRET is unset,
// or whose list of secrets ends in a comma, must not pass a delivery
// forged that way.
func TestEmptySecretVerifiesNothing(t *testing.T) {
	body := []byte(`{"id":"evt_forged","type":"transaction.completed"}`)
	now := time.Now()
	mac := hmac.New(sha256.New, nil)
	fmt.Fprintf(mac, "%s.%d.%s", "evt_forged", now.Unix(), body)
	forged := http.Header{}
	forged.Set(HeaderID, "evt_forged")
	forged.Set(HeaderTimestamp, fmt.Sprint(now.Unix()))
	forged.Set(HeaderSignature, "v1,"+base64.StdEncoding.EncodeToString(mac.Sum(nil)))
	for _, secrets := range [][]string{{""}, {"whsec_"}, {secret, ""}, {"", secret}} {
		if err := Verify(body, forged, secrets...); !errors.Is(err, ErrNoSecret) {
			t.Errorf("secrets %q: %v, want ErrNoSecret", secrets, err)
		}
	}
	if _, err := Sign("evt_1", now, body, "whsec_"); !errors.Is(err, ErrNoSecret) {
		t.Errorf("Sign with an empty key: %v, want ErrNoSecret", err)
	}
}
