package web

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"time"
)

// Cookie names. Both live minutes. Over https they are sent as
// "__Host-" + name with Path=/ and Secure (Handler.cookie), so that no
// other host or path can set them; over plain http on loopback (tests,
// trials), where a browser refuses that prefix, by these names, each
// scoped to the path that reads it.
const (
	sessionCookie = "approvalbot_session"
	flowCookie    = "approvalbot_signin"
)

// session is who signed in: the chat user their verified email maps to.
// ID is random per sign-in and binds the CSRF tokens to it.
type session struct {
	ID      string `json:"sid"`
	User    string `json:"uid"`
	Name    string `json:"name,omitempty"`
	Email   string `json:"email"`
	Expires int64  `json:"exp"`
}

// flow is a sign-in under way: what the callback checks the provider's
// answer against, and where to go back to.
type flow struct {
	State    string `json:"state"`
	Nonce    string `json:"nonce"`
	Verifier string `json:"verifier"`
	Return   string `json:"return"`
	Expires  int64  `json:"exp"`
}

// flowTTL is how long a sign-in at the provider may take.
const flowTTL = 10 * time.Minute

// signer signs cookie values with HMAC-SHA256 under a key of their own
// for each purpose, derived from web.session_key: a value signed for one
// purpose is worth nothing for another.
type signer struct {
	session, flow, csrf []byte
}

func newSigner(key []byte) signer {
	derive := func(purpose string) []byte {
		m := hmac.New(sha256.New, key)
		m.Write([]byte("approvalbot web " + purpose))
		return m.Sum(nil)
	}
	return signer{session: derive("session"), flow: derive("sign-in"), csrf: derive("csrf")}
}

var b64 = base64.RawURLEncoding

func mac(key []byte, parts ...string) []byte {
	m := hmac.New(sha256.New, key)
	for _, p := range parts {
		m.Write([]byte(p))
		m.Write([]byte{0})
	}
	return m.Sum(nil)
}

// seal is the cookie value of v: its JSON encrypted and authenticated
// with AES-256-GCM under key (32 bytes, one per purpose), the cookie's
// name as additional data. Nothing in it is readable without the session
// key: the sign-in's cookie carries the task's one-time link token.
func seal(key []byte, name string, v any) string {
	payload, err := json.Marshal(v)
	if err != nil {
		panic("web: cookie: " + err.Error()) // structs of strings and numbers
	}
	aead := cookieAEAD(key)
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		panic("web: random: " + err.Error()) // crypto/rand does not fail on Linux
	}
	return b64.EncodeToString(nonce) + "." + b64.EncodeToString(aead.Seal(nil, nonce, payload, []byte(name)))
}

// open authenticates and decrypts a cookie value into v.
func open(key []byte, name, value string, v any) bool {
	n, ct, ok := strings.Cut(value, ".")
	if !ok {
		return false
	}
	aead := cookieAEAD(key)
	nonce, err := b64.DecodeString(n)
	if err != nil || len(nonce) != aead.NonceSize() {
		return false
	}
	sealed, err := b64.DecodeString(ct)
	if err != nil {
		return false
	}
	payload, err := aead.Open(nil, nonce, sealed, []byte(name))
	return err == nil && json.Unmarshal(payload, v) == nil
}

// cookieAEAD is AES-256-GCM under key, a 32-byte key derived by newSigner.
func cookieAEAD(key []byte) cipher.AEAD {
	block, err := aes.NewCipher(key)
	if err != nil {
		panic("web: cookie key: " + err.Error()) // derived keys are 32 bytes
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		panic("web: cookie key: " + err.Error())
	}
	return aead
}

// csrfToken is the form token of a session for a task: a MAC of both, so
// a form from another session or for another task is refused.
func (s signer) csrfToken(sess *session, taskID string) string {
	return b64.EncodeToString(mac(s.csrf, sess.ID, taskID))
}

func (s signer) checkCSRF(sess *session, taskID, token string) bool {
	got, err := b64.DecodeString(token)
	return err == nil && token != "" && hmac.Equal(got, mac(s.csrf, sess.ID, taskID))
}

// random returns n random bytes, URL-safe base64 encoded.
func random(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("web: random: " + err.Error()) // crypto/rand does not fail on Linux
	}
	return b64.EncodeToString(b)
}

// cookie builds one of the page's cookies: HttpOnly, SameSite=Lax (the
// provider's redirect back is a top-level GET, which Lax lets through; a
// cross-site POST carries none). Over https it is Secure and named
// "__Host-"+name with Path=/ (a browser then takes it only from this very
// host, over https, for the whole host); over plain http on loopback
// (tests and local trials, where a browser would neither send a Secure
// cookie back nor take the prefix) it keeps its name and goes only where
// it is read: the session to the task pages, the sign-in to the callback.
func (h *Handler) cookie(name, value string, maxAge time.Duration) *http.Cookie {
	path := "/approve/"
	if name == flowCookie {
		path = CallbackPath
	}
	if h.secure {
		path = "/"
	}
	c := &http.Cookie{
		Name: h.cookieName(name), Value: value, Path: path,
		HttpOnly: true, Secure: h.secure, SameSite: http.SameSiteLaxMode,
	}
	if maxAge > 0 {
		c.MaxAge = int(maxAge / time.Second)
	} else {
		c.MaxAge = -1
	}
	return c
}

// cookieName is the name a cookie is sent by: "__Host-" prefixed over https.
func (h *Handler) cookieName(name string) string {
	if h.secure {
		return "__Host-" + name
	}
	return name
}

// readSession returns the request's session, if it has a valid one.
func (h *Handler) readSession(r *http.Request) (*session, bool) {
	c, err := r.Cookie(h.cookieName(sessionCookie))
	if err != nil {
		return nil, false
	}
	var s session
	if !open(h.sign.session, sessionCookie, c.Value, &s) || s.ID == "" || s.User == "" || time.Now().Unix() >= s.Expires {
		return nil, false
	}
	return &s, true
}

// readFlow returns the request's sign-in under way, if it has a valid one.
func (h *Handler) readFlow(r *http.Request) (*flow, bool) {
	c, err := r.Cookie(h.cookieName(flowCookie))
	if err != nil {
		return nil, false
	}
	var f flow
	if !open(h.sign.flow, flowCookie, c.Value, &f) || f.State == "" || time.Now().Unix() >= f.Expires {
		return nil, false
	}
	return &f, true
}

// email is the session's email as the core compares it.
func (s *session) email() string { return strings.ToLower(strings.TrimSpace(s.Email)) }
