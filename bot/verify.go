package bot

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// maxClockSkew is how far a request's timestamp may be from the local clock,
// either way, as Slack recommends: an older signed request is a replay.
const maxClockSkew = 5 * time.Minute

// ErrBadSignature is wrapped by every refusal of Verify.
var ErrBadSignature = errors.New("invalid slack signature")

// Verifier checks Slack's v0 request signatures.
type Verifier struct {
	secret []byte
	now    func() time.Time
}

// NewVerifier returns a Verifier for the app's signing secret. now is the
// clock (nil: time.Now); tests set it to check Slack's documented vector.
func NewVerifier(signingSecret string, now func() time.Time) *Verifier {
	if now == nil {
		now = time.Now
	}
	return &Verifier{secret: []byte(signingSecret), now: now}
}

// Verify checks the signature of a request with raw body body: the
// X-Slack-Request-Timestamp must be within five minutes of now and
// X-Slack-Signature must be "v0=" + hex(HMAC-SHA256(secret, "v0:ts:body")).
// Its errors wrap ErrBadSignature and say why, never echoing the secret or
// the expected signature.
func (v *Verifier) Verify(h http.Header, body []byte) error {
	if len(v.secret) == 0 {
		return fmt.Errorf("%w: no signing secret configured", ErrBadSignature)
	}
	ts := h.Get("X-Slack-Request-Timestamp")
	if ts == "" {
		return fmt.Errorf("%w: missing X-Slack-Request-Timestamp header", ErrBadSignature)
	}
	sig := h.Get("X-Slack-Signature")
	if sig == "" {
		return fmt.Errorf("%w: missing X-Slack-Signature header", ErrBadSignature)
	}
	if !isDigits(ts) {
		return fmt.Errorf("%w: X-Slack-Request-Timestamp is not a number", ErrBadSignature)
	}
	sent, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: X-Slack-Request-Timestamp is not a number", ErrBadSignature)
	}
	// Compared in seconds, so that no timestamp can overflow a Duration.
	now := v.now().Unix()
	skew := int64(maxClockSkew / time.Second)
	if sent < now-skew || sent > now+skew {
		return fmt.Errorf("%w: timestamp is more than %s away from the local clock", ErrBadSignature, maxClockSkew)
	}
	hexSig, ok := strings.CutPrefix(sig, "v0=")
	if !ok {
		return fmt.Errorf("%w: unsupported signature version (want v0=)", ErrBadSignature)
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil || len(got) != sha256.Size {
		return fmt.Errorf("%w: signature is not a hex SHA-256", ErrBadSignature)
	}
	mac := hmac.New(sha256.New, v.secret)
	mac.Write([]byte("v0:"))
	mac.Write([]byte(ts))
	mac.Write([]byte(":"))
	mac.Write(body)
	if !hmac.Equal(got, mac.Sum(nil)) {
		return fmt.Errorf("%w: signature does not match", ErrBadSignature)
	}
	return nil
}

func isDigits(s string) bool {
	if s == "" || len(s) > 19 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
