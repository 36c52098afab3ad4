package membership

import "crypto/sha256"

// keyContext separates the memberlist key from every other use of the
// cluster secret (the replication link authenticates with the same file),
// so that no two uses ever share key material. Changing it changes the
// key, so it is part of the protocol.
const keyContext = "hactl/membership/v1 memberlist AES-256-GCM key\x00"

// deriveKey returns the AES-256 key memberlist encrypts with:
// SHA-256(keyContext || secret). The secret file's bytes are used exactly
// as read, trailing newline included, as the replication link does, so
// every node must hold an identical file.
func deriveKey(secret []byte) []byte {
	h := sha256.New()
	h.Write([]byte(keyContext))
	h.Write(secret)
	return h.Sum(nil)
}
