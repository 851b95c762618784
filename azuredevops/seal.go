package azuredevops

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// KeySize is the length of a sealing key: AES-256.
const KeySize = 32

// nonceSize is GCM's standard nonce length; a random nonce of this size is
// safe for far more tokens than the bot will ever seal under one key.
const nonceSize = 12

// errOpen is the one answer to every failure to open: which check failed
// (tag, key, task) is nobody's business, and the input is never quoted.
var errOpen = errors.New("azure devops: sealed job token cannot be opened (wrong key, another task's token, or tampered)")

// Sealer encrypts the job token Azure DevOps hands over with a check, so
// that a reader of the store alone cannot complete checks. It is safe for
// concurrent use.
type Sealer struct {
	aead cipher.AEAD
}

// NewSealer returns a sealer for a key of exactly 32 bytes.
func NewSealer(key []byte) (*Sealer, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("azure devops: encryption key must be %d bytes, got %d", KeySize, len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("azure devops: encryption key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("azure devops: encryption key: %w", err)
	}
	return &Sealer{aead: aead}, nil
}

// String keeps the key out of logs that print the sealer.
func (s *Sealer) String() string { return "azuredevops.Sealer{AES-256-GCM}" }

// GoString keeps the key out of %#v too.
func (s *Sealer) GoString() string { return s.String() }

// ParseKey decodes a configured key: 32 bytes in base64 (standard or URL
// alphabet, padded or not) or in hex (64 hex digits are read as hex, though
// they would be base64 of 48 bytes too). Its errors never quote the input,
// which is a secret even when it is malformed.
func ParseKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, errors.New("azure devops: encryption key is empty; generate one with: openssl rand -base64 32")
	}
	for _, decode := range []func(string) ([]byte, error){
		hex.DecodeString,
		base64.StdEncoding.DecodeString,
		base64.RawStdEncoding.DecodeString,
		base64.URLEncoding.DecodeString,
		base64.RawURLEncoding.DecodeString,
	} {
		if key, err := decode(s); err == nil && len(key) == KeySize {
			return key, nil
		}
	}
	return nil, fmt.Errorf("azure devops: encryption key must be %d bytes encoded in base64 or hex (e.g. openssl rand -base64 32)", KeySize)
}

// Seal encrypts plain, bound to aad, and returns the random nonce followed
// by the ciphertext and its tag.
func (s *Sealer) Seal(plain, aad []byte) ([]byte, error) {
	if s == nil || s.aead == nil {
		return nil, errors.New("azure devops: no encryption key is configured")
	}
	out := make([]byte, nonceSize, nonceSize+len(plain)+s.aead.Overhead())
	if _, err := rand.Read(out); err != nil {
		return nil, fmt.Errorf("azure devops: seal: nonce: %w", err)
	}
	return s.aead.Seal(out, out[:nonceSize], plain, aad), nil
}

// Open decrypts what Seal returned for the same aad.
func (s *Sealer) Open(sealed, aad []byte) ([]byte, error) {
	if s == nil || s.aead == nil {
		return nil, errors.New("azure devops: no encryption key is configured")
	}
	if len(sealed) < nonceSize+s.aead.Overhead() {
		return nil, errOpen
	}
	plain, err := s.aead.Open(nil, sealed[:nonceSize], sealed[nonceSize:], aad)
	if err != nil {
		return nil, errOpen
	}
	return plain, nil
}

// sealAAD binds a sealed token to its task: the record id the store keeps
// it under, so that a token copied into another task's record does not open.
func sealAAD(taskInstanceID string) []byte {
	return []byte(recordID(taskInstanceID))
}
