// Package seal keeps secrets that Orbt must be able to read back (gift card
// codes, workspaces' request-signing secrets) sealed at rest with AES-256-GCM
// under the data key (ORBT_DATA_KEY). It is a leaf over the standard
// library and store's random source.
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"github.com/orbt/orbt/store"
)

// Each value is sealed bound to what it belongs to (a redemption's code, a
// workspace's signing secret) as additional data, so a sealed value copied
// to another row or field does not open.

// DataKeySize is the length of a data key: AES-256.
const DataKeySize = 32

// DevelopmentDataKey is the key a non-production process uses when
// ORBT_DATA_KEY is unset: public, so anything sealed with it is readable
// by anyone with this source. Production refuses to start without a key.
const DevelopmentDataKey = "b3JidC1kZXZlbG9wbWVudC1rZXktbm90LWEtc2VjcmU="

// ParseDataKey decodes a data key given as base64 (standard or URL alphabet,
// padded or not) of 32 bytes.
func ParseDataKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if key, err := enc.DecodeString(s); err == nil {
			if len(key) != DataKeySize {
				return nil, fmt.Errorf("data key: want %d bytes, got %d", DataKeySize, len(key))
			}
			return key, nil
		}
	}
	return nil, errors.New("data key: not base64")
}

// sealVersion is the first byte of every sealed value; keyTagSize bytes of
// the key's fingerprint follow, so a value sealed under another key fails
// with a clear error rather than a bare authentication failure.
const (
	sealVersion = 1
	keyTagSize  = 4
)

// ErrSealedWithOtherKey is a sealed value whose key is not the one given.
var ErrSealedWithOtherKey = errors.New("sealed under another data key")

// Sealer seals and opens secrets.
type Sealer struct {
	aead cipher.AEAD
	tag  [keyTagSize]byte
	// derive keys other uses of the data key (the sandbox's codes) apart.
	derive []byte
}

// NewSealer builds a Sealer over a 32-byte data key.
func NewSealer(key []byte) (*Sealer, error) {
	if len(key) != DataKeySize {
		return nil, fmt.Errorf("data key: want %d bytes, got %d", DataKeySize, len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("data key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("data key: %w", err)
	}
	s := &Sealer{aead: aead, derive: key}
	sum := sha256.Sum256(append([]byte("orbt key tag "), key...))
	copy(s.tag[:], sum[:])
	return s, nil
}

// Subkey is an HMAC-derived key for another purpose than sealing.
func (s *Sealer) Subkey(purpose string) []byte {
	m := hmac.New(sha256.New, s.derive)
	m.Write([]byte(purpose))
	return m.Sum(nil)
}

// Seal encrypts plain, bound to context (what it belongs to).
func (s *Sealer) Seal(plain, context string) []byte {
	nonce := store.RandomBytes(s.aead.NonceSize())
	out := make([]byte, 0, 1+keyTagSize+len(nonce)+len(plain)+s.aead.Overhead())
	out = append(out, sealVersion)
	out = append(out, s.tag[:]...)
	out = append(out, nonce...)
	return s.aead.Seal(out, nonce, []byte(plain), []byte(context))
}

// Open decrypts what Seal sealed under the same context.
func (s *Sealer) Open(sealed []byte, context string) (string, error) {
	head := 1 + keyTagSize + s.aead.NonceSize()
	if len(sealed) < head || sealed[0] != sealVersion {
		return "", errors.New("open sealed value: unknown format")
	}
	if !hmac.Equal(sealed[1:1+keyTagSize], s.tag[:]) {
		return "", ErrSealedWithOtherKey
	}
	plain, err := s.aead.Open(nil, sealed[1+keyTagSize:head], sealed[head:], []byte(context))
	if err != nil {
		return "", fmt.Errorf("open sealed value: %w", err)
	}
	return string(plain), nil
}
