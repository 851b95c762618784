// Package tokens mints and verifies the expiring one-time tokens that the
// decision buttons carry. A token is a JWT (HS256, header kid naming the
// signing key) with claims tid (task id), jti and exp. The store keeps only
// the token's SHA-256 (approvals.HashToken); the jti is derived from the
// signing key, the task's key and a random nonce kept with the task, so the
// key holder can mint the very same token again after a restart while a
// reader of the store alone cannot.
//
// The store backends live in store/bolt and store/dynamodb; both pass the
// contract in store/storetest.
package tokens

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/approvalbot/approvalbot/approvals"
)

// MinSecretLen is the shortest signing secret accepted: 256 bits, the size of
// an HS256 key that does not weaken the MAC.
const MinSecretLen = 32

// NonceLen is the size of a task's nonce.
const NonceLen = 32

// Key is one signing key. ID goes into the token's kid header.
type Key struct {
	ID     string
	Secret []byte
}

// Issuer mints tokens with its first key and verifies tokens of any of its
// keys, so keys can be rotated: put the new key first and keep the old one
// until its tokens have expired.
type Issuer struct {
	signing string
	keys    map[string][]byte
	// headers holds each key's encoded JWT header, the token's first
	// segment, made once; macs each key's HMAC-SHA256 states for reuse.
	headers map[string]string
	macs    map[string]*sync.Pool
	parser  *jwt.Parser
}

var _ approvals.TokenIssuer = (*Issuer)(nil)

// NewIssuer returns an Issuer for keys; the first key signs, all verify.
func NewIssuer(keys []Key) (*Issuer, error) {
	if len(keys) == 0 {
		return nil, errors.New("tokens: no signing key configured")
	}
	iss := &Issuer{
		signing: keys[0].ID,
		keys:    make(map[string][]byte, len(keys)),
		headers: make(map[string]string, len(keys)),
		macs:    make(map[string]*sync.Pool, len(keys)),
		// Only HS256: a token naming alg none or any other algorithm is
		// refused before a key is looked up. Strict decoding refuses
		// non-canonical base64, so that no second spelling of a valid
		// signature verifies. Claims are checked by hand against the
		// caller's clock (see Verify).
		parser: jwt.NewParser(
			jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
			jwt.WithStrictDecoding(),
			jwt.WithoutClaimsValidation(),
		),
	}
	for i, k := range keys {
		switch {
		case k.ID == "":
			return nil, fmt.Errorf("tokens: signing key %d has no id", i+1)
		case len(k.Secret) < MinSecretLen:
			// The secret itself is never named, only its key's id.
			return nil, fmt.Errorf("tokens: signing key %q is shorter than %d bytes", k.ID, MinSecretLen)
		}
		if _, dup := iss.keys[k.ID]; dup {
			return nil, fmt.Errorf("tokens: signing key id %q is used twice", k.ID)
		}
		iss.keys[k.ID] = append([]byte(nil), k.Secret...)
		h, err := json.Marshal(header(k.ID))
		if err != nil {
			return nil, fmt.Errorf("tokens: signing key %q: %w", k.ID, err)
		}
		iss.headers[k.ID] = base64.RawURLEncoding.EncodeToString(h)
		secret := iss.keys[k.ID]
		iss.macs[k.ID] = &sync.Pool{New: func() any { return hmac.New(sha256.New, secret) }}
	}
	return iss, nil
}

// header is the JWT header of a token signed with key id: what jwt-go's
// NewWithClaims for HS256 sets, and the kid.
func header(id string) map[string]any {
	return map[string]any{"typ": "JWT", "alg": jwt.SigningMethodHS256.Alg(), "kid": id}
}

// claims is the token payload. A struct, not a map, so the JSON field order
// is fixed and minting the same task twice yields byte-identical tokens.
type claims struct {
	TaskID    string `json:"tid"`
	ID        string `json:"jti"`
	ExpiresAt int64  `json:"exp"`
}

func (c *claims) GetExpirationTime() (*jwt.NumericDate, error) {
	return jwt.NewNumericDate(time.Unix(c.ExpiresAt, 0)), nil
}
func (c *claims) GetIssuedAt() (*jwt.NumericDate, error)  { return nil, nil }
func (c *claims) GetNotBefore() (*jwt.NumericDate, error) { return nil, nil }
func (c *claims) GetIssuer() (string, error)              { return "", nil }
func (c *claims) GetSubject() (string, error)             { return "", nil }
func (c *claims) GetAudience() (jwt.ClaimStrings, error)  { return nil, nil }

// Mint returns the task's token. It signs with t.KeyID, setting it to the
// current signing key when empty, so that a task keeps the key it was first
// minted with and its token can be minted again after a key rotation, for as
// long as that key is configured. exp is t.ExpiresAt in whole seconds,
// rounded down, so the token never outlives the task.
func (i *Issuer) Mint(t *approvals.Task) (string, error) {
	switch {
	case t.ID == "":
		return "", errors.New("tokens: mint: task has no id")
	case len(t.Nonce) == 0:
		return "", fmt.Errorf("tokens: mint task %s: no nonce", t.ID)
	case t.ExpiresAt.IsZero():
		return "", fmt.Errorf("tokens: mint task %s: no expiry", t.ID)
	}
	keyID := t.KeyID
	if keyID == "" {
		keyID = i.signing
	}
	macs, ok := i.macs[keyID]
	if !ok {
		return "", fmt.Errorf("tokens: mint task %s: signing key %q is no longer configured", t.ID, keyID)
	}

	mac := macs.Get().(hash.Hash)
	defer macs.Put(mac)
	mac.Reset()
	mac.Write([]byte(t.Key()))
	mac.Write([]byte{0})
	mac.Write(t.Nonce)
	var sum [sha256.Size]byte
	c := &claims{
		TaskID:    t.ID,
		ID:        base64.RawURLEncoding.EncodeToString(mac.Sum(sum[:0])),
		ExpiresAt: t.ExpiresAt.Unix(),
	}
	payload, err := json.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("tokens: mint task %s: %w", t.ID, err)
	}
	// The token as jwt-go's SignedString writes it (header, claims and
	// signature, each base64url without padding), built here without its
	// map and string copies: intake and every post mint one. A test holds
	// the two to the same bytes, so tokens minted before stay the same.
	head := i.headers[keyID]
	enc := base64.RawURLEncoding
	tok := make([]byte, 0, len(head)+1+enc.EncodedLen(len(payload))+1+enc.EncodedLen(sha256.Size))
	tok = append(tok, head...)
	tok = append(tok, '.')
	tok = enc.AppendEncode(tok, payload)
	mac.Reset()
	mac.Write(tok)
	tok = append(tok, '.')
	tok = enc.AppendEncode(tok, mac.Sum(sum[:0]))
	t.KeyID = keyID
	return string(tok), nil
}

// Verify checks the token's algorithm, key, signature and expiry at now and
// returns the id of the task it is for. Errors wrap approvals.ErrBadToken or,
// for a genuine token past its exp, approvals.ErrExpired. They never contain
// the token; only an expired (hence genuine) token's task id is named.
func (i *Issuer) Verify(token string, now time.Time) (string, error) {
	var c claims
	_, err := i.parser.ParseWithClaims(token, &c, i.key)
	if err != nil {
		return "", fmt.Errorf("tokens: %s: %w", reason(err), approvals.ErrBadToken)
	}
	if c.TaskID == "" || c.ID == "" || c.ExpiresAt == 0 {
		return "", fmt.Errorf("tokens: token lacks a claim: %w", approvals.ErrBadToken)
	}
	// Expired from exp on, as approvals.Task.Expired, with no leeway: the
	// clock that counts is this process's.
	if !now.Before(time.Unix(c.ExpiresAt, 0)) {
		return "", fmt.Errorf("tokens: token of task %s: %w", c.TaskID, approvals.ErrExpired)
	}
	return c.TaskID, nil
}

// key is the jwt.Keyfunc: the secret of the key the kid header names.
func (i *Issuer) key(tok *jwt.Token) (any, error) {
	kid, _ := tok.Header["kid"].(string)
	secret, ok := i.keys[kid]
	if !ok {
		return nil, errUnknownKey
	}
	return secret, nil
}

var errUnknownKey = errors.New("unknown signing key")

// reason says in fixed words why jwt refused a token; jwt's own messages may
// quote parts of the token.
func reason(err error) string {
	switch {
	case errors.Is(err, errUnknownKey):
		return "token signed by an unknown key"
	case errors.Is(err, jwt.ErrTokenMalformed):
		return "malformed token"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return "bad token signature or algorithm"
	default:
		return "unverifiable token"
	}
}
