package web

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"time"
)

// Cookie names. Both are scoped to the page's paths and live minutes.
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

// seal is the cookie value of v: its JSON and the MAC of the cookie's
// name and the JSON.
func seal(key []byte, name string, v any) string {
	payload, err := json.Marshal(v)
	if err != nil {
		panic("web: cookie: " + err.Error()) // structs of strings and numbers
	}
	p := b64.EncodeToString(payload)
	return p + "." + b64.EncodeToString(mac(key, name, p))
}

// open checks a cookie value's MAC and decodes it into v.
func open(key []byte, name, value string, v any) bool {
	p, sig, ok := strings.Cut(value, ".")
	if !ok {
		return false
	}
	got, err := b64.DecodeString(sig)
	if err != nil || !hmac.Equal(got, mac(key, name, p)) {
		return false
	}
	payload, err := b64.DecodeString(p)
	return err == nil && json.Unmarshal(payload, v) == nil
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
// cross-site POST carries none), Secure unless the public URL is plain
// http on loopback (tests and local trials, where a browser would not
// send a Secure cookie back).
func (h *Handler) cookie(name, value string, maxAge time.Duration) *http.Cookie {
	// Each cookie goes only where it is read: the session to the task
	// pages, the sign-in under way to the callback.
	path := "/approve/"
	if name == flowCookie {
		path = CallbackPath
	}
	c := &http.Cookie{
		Name: name, Value: value, Path: path,
		HttpOnly: true, Secure: h.secure, SameSite: http.SameSiteLaxMode,
	}
	if maxAge > 0 {
		c.MaxAge = int(maxAge / time.Second)
	} else {
		c.MaxAge = -1
	}
	return c
}

// readSession returns the request's session, if it has a valid one.
func (h *Handler) readSession(r *http.Request) (*session, bool) {
	c, err := r.Cookie(sessionCookie)
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
	c, err := r.Cookie(flowCookie)
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
