package wire

import (
	"regexp"
	"testing"
)

func TestNewCode(t *testing.T) {
	format := regexp.MustCompile(`^[a-z2-7]{8}(-[a-z2-7]{8}){3}$`)
	seen := map[string]bool{}
	for range 1000 {
		code, err := NewCode()
		if err != nil {
			t.Fatal(err)
		}
		if !format.MatchString(code) {
			t.Fatalf("code %q does not have the format of four groups of eight base32 characters", code)
		}
		if seen[code] {
			t.Fatalf("code %q generated twice", code)
		}
		seen[code] = true
	}
}

func TestHashCode(t *testing.T) {
	// The pattern of the Activation CRD's spec.codeHash.
	pattern := regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)
	h := HashCode("abc")
	if !pattern.MatchString(h) {
		t.Fatalf("HashCode = %q, want sha256:<64 hex>", h)
	}
	if want := "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"; h != want {
		t.Fatalf("HashCode(abc) = %s, want %s", h, want)
	}
	if HashCode("abd") == h {
		t.Fatal("different codes hash alike")
	}
}
