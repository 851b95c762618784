package webhook

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
)

// sealNonce is GCM's standard nonce length.
const sealNonce = 12

// errOpen is the one answer to every failure to open a sealed callback URL.
var errOpen = errors.New("webhook: the task's callback URL cannot be opened (was webhook.signing_secret changed?)")

// sealer keeps callback URLs encrypted at rest: a URL may be a capability
// (Jenkins' webhook step, a token in the query), and a reader of the store
// alone must not learn it. Its key is derived from the signing key, so the
// configuration needs no second secret; changing the signing secret makes
// the callbacks of tasks taken in before unreadable (their delivery fails,
// shown on the message).
type sealer struct{ aead cipher.AEAD }

func newSealer(signingKey []byte) (*sealer, error) {
	mac := hmac.New(sha256.New, signingKey)
	mac.Write([]byte("approvalbot webhook callback seal v1"))
	block, err := aes.NewCipher(mac.Sum(nil))
	if err != nil {
		return nil, fmt.Errorf("webhook: seal key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("webhook: seal key: %w", err)
	}
	return &sealer{aead: aead}, nil
}

// seal encrypts plain bound to aad (the task's record id, so that a sealed
// URL copied into another task does not open).
func (s *sealer) seal(plain, aad string) ([]byte, error) {
	out := make([]byte, sealNonce, sealNonce+len(plain)+s.aead.Overhead())
	if _, err := rand.Read(out); err != nil {
		return nil, fmt.Errorf("webhook: seal: nonce: %w", err)
	}
	return s.aead.Seal(out, out[:sealNonce], []byte(plain), []byte(aad)), nil
}

func (s *sealer) open(sealed []byte, aad string) (string, error) {
	if len(sealed) < sealNonce+s.aead.Overhead() {
		return "", errOpen
	}
	plain, err := s.aead.Open(nil, sealed[:sealNonce], sealed[sealNonce:], []byte(aad))
	if err != nil {
		return "", errOpen
	}
	return string(plain), nil
}
