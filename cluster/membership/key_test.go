package membership

import (
	"bytes"
	"encoding/hex"
	"testing"
)

func TestDeriveKey(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789abcdef\n")
	k := deriveKey(secret)
	// Known answer, computed outside Go with
	//   printf 'hactl/membership/v1 memberlist AES-256-GCM key\0%s\n' 0123…cdef | sha256sum
	// Changing the derivation splits a cluster during a rolling upgrade.
	const want = "8e5a166fe676dd2ccaa6a598669cf583deec3f1120bef01a76858c791f67f410"
	if got := hex.EncodeToString(k); got != want {
		t.Errorf("deriveKey = %s, want %s", got, want)
	}
	if !bytes.Equal(k, deriveKey(bytes.Clone(secret))) {
		t.Error("same secret, different keys")
	}
	// Not the bare hash of the secret: the context separates this key from
	// other uses of the same file.
	if hex.EncodeToString(k) == "6ed6653dba3d6aee8110c6e23de37f15c609b8a6e29aa164d1acace604e5cb7e" {
		t.Error("key equals SHA-256(secret)")
	}
	for _, other := range [][]byte{
		[]byte("0123456789abcdef0123456789abcdef"), // the newline matters
		[]byte("0123456789abcdef0123456789abcdeg\n"),
		{0},
	} {
		if bytes.Equal(k, deriveKey(other)) {
			t.Errorf("secrets %q and %q give the same key", secret, other)
		}
	}
}
