package seal_test

import (
	"errors"
	"testing"

	"github.com/orbt/orbt/seal"
)

func TestSealedCodesOpenOnlyWhereSealed(t *testing.T) {
	key := make([]byte, seal.DataKeySize)
	s, err := seal.NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	sealed := s.Seal("SBX-1234", "redemption red_1 code")
	if got, err := s.Open(sealed, "redemption red_1 code"); err != nil || got != "SBX-1234" {
		t.Fatalf("open: %q %v", got, err)
	}
	if _, err := s.Open(sealed, "redemption red_2 code"); err == nil {
		t.Fatal("a sealed code opened for another redemption")
	}
	key[0] = 1
	other, _ := seal.NewSealer(key)
	if _, err := other.Open(sealed, "redemption red_1 code"); !errors.Is(err, seal.ErrSealedWithOtherKey) {
		t.Fatalf("other key: %v", err)
	}
	if _, err := seal.ParseDataKey("c2hvcnQ="); err == nil {
		t.Fatal("a 5-byte data key was accepted")
	}
}
